/*
Copyright 2026 The auditops Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package sink

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
	"gocloud.dev/blob"
	"gocloud.dev/blob/azureblob"
	"gocloud.dev/blob/gcsblob"
	"google.golang.org/api/option"

	reportsv1alpha1 "github.com/auditops/auditops/api/v1alpha1"
)

// The package's GCS and Azure emulators (hack/storage-emulator.sh:
// fake-gcs-server and Azurite), started once by runSuite like the S3 server.
var (
	gcsEndpoint string // http://127.0.0.1:P
	gcsAdmin    *storage.Client
	gcsKey      *rsa.PrivateKey
	gcsKeyJSON  []byte // a service-account key file for gcsKey

	azEndpoint, azAccount, azKey string // Azurite's blob endpoint and its one account
)

// startEmulators starts both emulators storing under dir and returns what
// stops them.
func startEmulators(dir string) (stop func(), err error) {
	var stops []func()
	stop = func() {
		for _, s := range stops {
			s()
		}
	}
	for _, kind := range []string{"gcs", "azure"} {
		kdir := filepath.Join(dir, kind)
		env, err := runEmulator(kind, "start", kdir)
		if err != nil {
			stop()
			return nil, err
		}
		stops = append(stops, func() {
			if _, err := runEmulator(kind, "stop", kdir); err != nil {
				fmt.Fprintf(os.Stderr, "stopping the %s emulator: %v\n", kind, err)
			}
		})
		switch kind {
		case "gcs":
			gcsEndpoint = env["GCS_ENDPOINT"]
		case "azure":
			azEndpoint, azAccount, azKey = env["AZURE_BLOB_ENDPOINT"], env["AZURE_ACCOUNT_NAME"], env["AZURE_ACCOUNT_KEY"]
		}
	}
	if gcsEndpoint == "" || azEndpoint == "" || azAccount == "" || azKey == "" {
		stop()
		return nil, errors.New("hack/storage-emulator.sh start printed no complete environment")
	}
	// The test's own view of the emulator: no credentials, as
	// fake-gcs-server does not check them (the sink's are checked by
	// TestGCSCredentials on the wire).
	gcsAdmin, err = storage.NewClient(context.Background(), option.WithoutAuthentication(),
		option.WithEndpoint(gcsEndpoint+"/storage/v1/"), storage.WithDisabledClientMetrics())
	if err != nil {
		stop()
		return nil, fmt.Errorf("creating the GCS test client: %w", err)
	}
	stops = append(stops, func() { _ = gcsAdmin.Close() })
	if gcsKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		stop()
		return nil, err
	}
	gcsKeyJSON, err = json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     "auditops-test",
		"private_key_id": "test-key-1",
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: mustPKCS8(gcsKey)})),
		"client_email":   "reports@auditops-test.iam.gserviceaccount.com",
		"client_id":      "1",
		// Nothing listens here: the sink signs its own tokens and must
		// never ask a key's token_uri (a Secret's author chooses it).
		"token_uri": "http://127.0.0.1:1/token",
	})
	if err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}

func mustPKCS8(k *rsa.PrivateKey) []byte {
	b, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		panic(err)
	}
	return b
}

func runEmulator(args ...string) (map[string]string, error) {
	cmd := exec.Command("bash", append([]string{filepath.Join("..", "..", "hack", "storage-emulator.sh")}, args...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("hack/storage-emulator.sh %s: %w", strings.Join(args, " "), err)
	}
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			env[k] = v
		}
	}
	return env, nil
}

// newGCSBucket creates a bucket on fake-gcs-server for one test.
func newGCSBucket(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("t%d", time.Now().UnixNano())
	if err := gcsAdmin.Bucket(name).Create(context.Background(), "auditops-test", nil); err != nil {
		t.Fatalf("creating bucket %s: %v", name, err)
	}
	return name
}

func gcsCreds() map[string][]byte {
	return map[string][]byte{CredGCSServiceAccountKey: gcsKeyJSON}
}

// azContainer returns a client for a container of Azurite's account.
func azContainer(t *testing.T, name string) *container.Client {
	t.Helper()
	cred, err := container.NewSharedKeyCredential(azAccount, azKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := container.NewClientWithSharedKeyCredential(azEndpoint+"/"+name, cred, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newAzContainer creates a container on Azurite for one test.
func newAzContainer(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("t%d", time.Now().UnixNano())
	if _, err := azContainer(t, name).Create(context.Background(), nil); err != nil {
		t.Fatalf("creating container %s: %v", name, err)
	}
	return name
}

func azSharedKeyCreds() map[string][]byte {
	return map[string][]byte{CredAzureAccountName: []byte(azAccount), CredAzureAccountKey: []byte(azKey)}
}

// azConnString is the connection string the Azure portal (or Azurite's
// documentation) gives for the account.
func azConnString() string {
	return "DefaultEndpointsProtocol=http;AccountName=" + azAccount + ";AccountKey=" + azKey + ";BlobEndpoint=" + azEndpoint + ";"
}

// azSAS returns a container SAS token allowing what a report does.
func azSAS(t *testing.T, containerName string, perms sas.ContainerPermissions) string {
	t.Helper()
	cred, err := container.NewSharedKeyCredential(azAccount, azKey)
	if err != nil {
		t.Fatal(err)
	}
	q, err := sas.BlobSignatureValues{
		Protocol:      sas.ProtocolHTTPSandHTTP,
		ExpiryTime:    time.Now().Add(time.Hour),
		ContainerName: containerName,
		Permissions:   perms.String(),
	}.SignWithSharedKey(cred)
	if err != nil {
		t.Fatalf("signing a SAS: %v", err)
	}
	return q.Encode()
}

// adminBucket opens, with the test's own access, the bucket an output URL
// names: what the test reads back and lists.
type adminBucket func(t *testing.T, bucket string) *blob.Bucket

func gcsAdminBucket(t *testing.T, name string) *blob.Bucket {
	b, err := gcsblob.OpenBucket(context.Background(), nil, name, &gcsblob.Options{Client: gcsAdmin})
	if err != nil {
		t.Fatalf("opening bucket %s: %v", name, err)
	}
	return b
}

func azAdminBucket(t *testing.T, name string) *blob.Bucket {
	b, err := azureblob.OpenBucket(context.Background(), azContainer(t, name), nil)
	if err != nil {
		t.Fatalf("opening container %s: %v", name, err)
	}
	return b
}

// cloudTarget writes to a fresh bucket (made by newBucket) through the URL
// url(bucket) with creds(bucket), and reads back through admin.
func cloudTarget(name, scheme, prefix string, newBucket func(*testing.T) string, url func(bucket string) string,
	creds func(t *testing.T, bucket string) map[string][]byte, admin adminBucket) target {
	return target{
		name: name,
		newReport: func(t *testing.T, ext string) (Report, func(t *testing.T) Sink) {
			r := objectReport(ext)
			bucket := newBucket(t)
			out := reportsv1alpha1.ObjectStoreOutput{URL: url(bucket)}
			c := creds(t, bucket)
			return r, func(t *testing.T) Sink { return mustObjectStore(t, r, out, c) }
		},
		read: func(t *testing.T, r Report, outs []reportsv1alpha1.OutputRef) []byte {
			bucket, key := splitURL(t, scheme, outs)
			b := admin(t, bucket)
			defer b.Close()
			data, err := b.ReadAll(context.Background(), key)
			if err != nil {
				t.Fatalf("reading %s: %v", outs[0].URL, err)
			}
			return data
		},
		check: func(t *testing.T, r Report, _ *conformanceCase, outs []reportsv1alpha1.OutputRef) {
			ctx := context.Background()
			bucket, key := splitURL(t, scheme, outs)
			wantKey := r.Namespace + "/" + r.Name + "/report." + r.Ext
			if prefix != "" {
				wantKey = prefix + "/" + wantKey
			}
			mustEqual(t, "key", key, wantKey)
			b := admin(t, bucket)
			defer b.Close()
			attrs, err := b.Attributes(ctx, key)
			if err != nil {
				t.Fatalf("attributes of %s: %v", outs[0].URL, err)
			}
			mustEqual(t, "content type", attrs.ContentType, r.ContentType)
			// Staging parts are gone, and nothing else was written.
			var keys []string
			it := b.List(nil)
			for {
				obj, err := it.Next(ctx)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("listing %s: %v", bucket, err)
				}
				keys = append(keys, obj.Key)
			}
			mustEqual(t, "objects in the bucket", keys, []string{key})
		},
	}
}

// splitURL checks outs is one scheme://bucket/key URL and returns its parts.
func splitURL(t *testing.T, scheme string, outs []reportsv1alpha1.OutputRef) (string, string) {
	t.Helper()
	if len(outs) != 1 || outs[0].ConfigMap != "" || outs[0].Key != "" {
		t.Fatalf("outputs %+v, want one URL", outs)
	}
	rest, ok := strings.CutPrefix(outs[0].URL, scheme+"://")
	if !ok || strings.ContainsAny(rest, "?@") {
		t.Fatalf("output URL %q is not a plain %s://bucket/key", outs[0].URL, scheme)
	}
	bucket, key, _ := strings.Cut(rest, "/")
	return bucket, key
}

func gcsTarget(name, prefix string) target {
	return cloudTarget(name, "gs", prefix, newGCSBucket,
		func(bucket string) string {
			return withPrefix("gs://"+bucket, prefix) + "?endpoint=" + url.QueryEscape(gcsEndpoint)
		},
		func(*testing.T, string) map[string][]byte { return gcsCreds() }, gcsAdminBucket)
}

func azTarget(name, prefix string, creds func(t *testing.T, bucket string) map[string][]byte) target {
	return cloudTarget(name, "azblob", prefix, newAzContainer,
		func(bucket string) string {
			return withPrefix("azblob://"+bucket, prefix) + "?endpoint=" + url.QueryEscape(azEndpoint)
		},
		creds, azAdminBucket)
}

func withPrefix(u, prefix string) string {
	if prefix != "" {
		return u + "/" + prefix
	}
	return u
}

func TestCloudObjectStoreConformance(t *testing.T) {
	runConformance(t, []target{
		gcsTarget("gcs", ""),
		gcsTarget("gcs with prefix", "reports/v1"),
		azTarget("azure shared key", "", func(*testing.T, string) map[string][]byte { return azSharedKeyCreds() }),
		azTarget("azure connection string with prefix", "reports/v1", func(*testing.T, string) map[string][]byte {
			return map[string][]byte{CredAzureConnectionString: []byte(azConnString())}
		}),
		azTarget("azure sas", "", func(t *testing.T, bucket string) map[string][]byte {
			return map[string][]byte{
				CredAzureSASToken: []byte(azSAS(t, bucket, sas.ContainerPermissions{Read: true, Create: true, Write: true, Delete: true, List: true})),
			}
		}),
	})
}

// TestGCSCredentials checks, on the wire, that every request the gs://
// sink sends carries a token signed by the Secret's service-account key:
// fake-gcs-server accepts any, so a proxy in front of it verifies them.
func TestGCSCredentials(t *testing.T) {
	target, err := url.Parse(gcsEndpoint)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var requests int
	var bad []string
	// SetURL also sets the Host header: fake-gcs-server serves object
	// downloads (GET /bucket/key) only on its public host.
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) }}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		requests++
		if err := checkServiceAccountJWT(req.Header.Get("Authorization"), &gcsKey.PublicKey); err != nil {
			bad = append(bad, fmt.Sprintf("%s %s: %v", req.Method, req.URL.Path, err))
		}
		mu.Unlock()
		proxy.ServeHTTP(w, req)
	}))
	defer srv.Close()

	bucket := newGCSBucket(t)
	r := objectReport("json")
	out := reportsv1alpha1.ObjectStoreOutput{URL: "gs://" + bucket + "?endpoint=" + url.QueryEscape(srv.URL)}
	c := conformanceCase{chunks: split(jsonRows(30, 64*kib), 16*kib), last: []byte("]"), crashAt: 1}
	outs := writeReport(t, func(t *testing.T) Sink { return mustObjectStore(t, r, out, gcsCreds()) }, &c)
	checkOutputs(t, outs, c.want())
	mu.Lock()
	defer mu.Unlock()
	if requests < 5 {
		t.Fatalf("the proxy saw %d requests, want the whole report's (list, parts, upload, reads, deletes)", requests)
	}
	for _, b := range bad {
		t.Error(b)
	}

	// Another key is refused by checkServiceAccountJWT, so the check above
	// can fail.
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkServiceAccountJWT(signTestJWT(t, other), &gcsKey.PublicKey); err == nil {
		t.Fatal("checkServiceAccountJWT accepted a token signed by another key")
	}
}

// checkServiceAccountJWT checks a "Bearer <JWT>" header: RS256, signed by
// pub, issued by the key's service account for the storage scope.
func checkServiceAccountJWT(header string, pub *rsa.PublicKey) error {
	tok, ok := strings.CutPrefix(header, "Bearer ")
	if !ok {
		return fmt.Errorf("authorization %q is not a bearer token", header)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return errors.New("the bearer token is not a JWT")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return fmt.Errorf("JWT signature: %w", err)
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
		return fmt.Errorf("JWT not signed by the Secret's key: %w", err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return fmt.Errorf("JWT claims: %w", err)
	}
	var claims struct {
		Iss   string `json:"iss"`
		Scope string `json:"scope"`
		Exp   int64  `json:"exp"`
	}
	if err := json.Unmarshal(raw, &claims); err != nil {
		return fmt.Errorf("JWT claims: %w", err)
	}
	if claims.Iss != "reports@auditops-test.iam.gserviceaccount.com" || !strings.Contains(claims.Scope, gcsScope) || claims.Exp < time.Now().Unix() {
		return fmt.Errorf("JWT claims %+v: want the key's service account, scope %s, not expired", claims, gcsScope)
	}
	return nil
}

// signTestJWT makes a bearer header like the sink's, signed by key.
func signTestJWT(t *testing.T, key *rsa.PrivateKey) string {
	t.Helper()
	enc := base64.RawURLEncoding
	head := enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`))
	claims := enc.EncodeToString(fmt.Appendf(nil, `{"iss":"reports@auditops-test.iam.gserviceaccount.com","scope":%q,"exp":%d}`,
		gcsScope, time.Now().Add(time.Hour).Unix()))
	sum := sha256.Sum256([]byte(head + "." + claims))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return "Bearer " + head + "." + claims + "." + enc.EncodeToString(sig)
}

// TestCloudCredentials covers how gs:// and azblob:// credentials are read
// and refused, against the emulators.
func TestCloudCredentials(t *testing.T) {
	ctx := context.Background()
	// writeFails opens a sink and runs a small report through it; it wants
	// an error mentioning want at NewObjectStore or at the first write.
	writeFails := func(t *testing.T, rawURL string, creds map[string][]byte, want string) {
		t.Helper()
		s, err := NewObjectStore(ctx, objectReport("json"), reportsv1alpha1.ObjectStoreOutput{URL: rawURL}, creds)
		if err == nil {
			defer closeSink(t, s)
			if err = s.Resume(ctx, Progress{}); err == nil {
				_, err = s.Finish(ctx, []byte("x"), 1, hexSum([]byte("x")))
			}
		}
		if err == nil {
			t.Fatalf("a report to %s with these credentials succeeded", rawURL)
		}
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %v, want one mentioning %q", err, want)
		}
		for _, secret := range []string{azKey, "PRIVATE KEY"} {
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error leaks a secret: %v", err)
			}
		}
	}
	gsURL := func() string { return "gs://" + newGCSBucket(t) + "?endpoint=" + url.QueryEscape(gcsEndpoint) }
	azURL := func(container string) string {
		return "azblob://" + container + "?endpoint=" + url.QueryEscape(azEndpoint)
	}
	wrongKey := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 64))
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"gs without a key", func(t *testing.T) {
			writeFails(t, gsURL(), map[string][]byte{"other": []byte("x")}, CredGCSServiceAccountKey)
		}},
		{"gs with a credential file that is not a service-account key", func(t *testing.T) {
			ext := []byte(`{"type":"external_account","audience":"x","subject_token_type":"x","token_url":"http://127.0.0.1:1/token","credential_source":{"file":"/etc/passwd"}}`)
			writeFails(t, gsURL(), map[string][]byte{CredGCSServiceAccountKey: ext}, "not a service-account key")
		}},
		{"gs with an unknown parameter", func(t *testing.T) {
			writeFails(t, gsURL()+"&access_id=x", gcsCreds(), `unsupported gs URL parameter "access_id"`)
		}},
		{"gs endpoint with a query", func(t *testing.T) {
			writeFails(t, "gs://b?endpoint="+url.QueryEscape(gcsEndpoint+"?x=1"), gcsCreds(), "without credentials, query")
		}},
		{"azure wrong account key", func(t *testing.T) {
			writeFails(t, azURL(newAzContainer(t)), map[string][]byte{CredAzureAccountName: []byte(azAccount), CredAzureAccountKey: []byte(wrongKey)}, "403")
		}},
		{"azure sas without write", func(t *testing.T) {
			c := newAzContainer(t)
			writeFails(t, azURL(c), map[string][]byte{CredAzureSASToken: []byte(azSAS(t, c, sas.ContainerPermissions{Read: true, List: true}))}, "403")
		}},
		{"azure account name that is a host", func(t *testing.T) {
			writeFails(t, "azblob://reports", map[string][]byte{CredAzureAccountName: []byte("evil.example.com#"), CredAzureAccountKey: []byte(azKey)}, "not a storage account name")
		}},
		{"azure account name in a connection string that is a host and port", func(t *testing.T) {
			cs := "DefaultEndpointsProtocol=https;AccountName=127.0.0.1:6379/x?;AccountKey=" + azKey + ";EndpointSuffix=core.windows.net"
			writeFails(t, "azblob://reports", map[string][]byte{CredAzureConnectionString: []byte(cs)}, "not a storage account name")
		}},
		{"azure connection string pointing elsewhere", func(t *testing.T) {
			cs := "DefaultEndpointsProtocol=http;AccountName=" + azAccount + ";AccountKey=" + azKey + ";BlobEndpoint=http://127.0.0.1:1/" + azAccount
			writeFails(t, azURL(newAzContainer(t)), map[string][]byte{CredAzureConnectionString: []byte(cs)}, "the URL decides")
		}},
		{"azure connection string without endpoint to the emulator", func(t *testing.T) {
			// No BlobEndpoint: the string points at Azure itself, the URL at the emulator.
			cs := "DefaultEndpointsProtocol=https;AccountName=" + azAccount + ";AccountKey=" + azKey + ";EndpointSuffix=core.windows.net"
			writeFails(t, azURL(newAzContainer(t)), map[string][]byte{CredAzureConnectionString: []byte(cs)}, "the URL decides")
		}},
		{"azure connection string and keys together", func(t *testing.T) {
			creds := azSharedKeyCreds()
			creds[CredAzureConnectionString] = []byte(azConnString())
			writeFails(t, azURL(newAzContainer(t)), creds, "one or the other")
		}},
		{"azure development storage shortcut", func(t *testing.T) {
			writeFails(t, azURL("c"), map[string][]byte{CredAzureConnectionString: []byte("UseDevelopmentStorage=true")}, "UseDevelopmentStorage")
		}},
		{"azure URL without its account off the emulator", func(t *testing.T) {
			writeFails(t, "azblob://c", map[string][]byte{CredAzureAccountKey: []byte(azKey)}, "names its storage account")
		}},
		{"azure Secret for another account than the URL's", func(t *testing.T) {
			// Whoever may edit the Secret but not read the audit data must
			// not send the report to an account of theirs (it was taken from
			// the Secret).
			writeFails(t, "azblob://reports?storage_account=tenantacct", map[string][]byte{CredAzureAccountName: []byte("attackeracct"), CredAzureSASToken: []byte("sv=2022-11-02&sp=cw&sig=abc")}, "the URL decides")
			cs := "DefaultEndpointsProtocol=https;AccountName=attackeracct;AccountKey=" + azKey + ";EndpointSuffix=core.windows.net"
			writeFails(t, "azblob://reports?storage_account=tenantacct", map[string][]byte{CredAzureConnectionString: []byte(cs)}, "the URL decides")
		}},
		{"azure storage_account that is a host", func(t *testing.T) {
			writeFails(t, "azblob://reports?storage_account=evil.example.com", azSharedKeyCreds(), "not a storage account name")
		}},
		{"azure sas that is not one", func(t *testing.T) {
			writeFails(t, azURL("c"), map[string][]byte{CredAzureSASToken: []byte("se=2030-01-01")}, "not a SAS token")
		}},
		{"azure endpoint and domain", func(t *testing.T) {
			writeFails(t, azURL("c")+"&domain=blob.core.usgovcloudapi.net", azSharedKeyCreds(), "exclude each other")
		}},
		{"azure unknown parameter", func(t *testing.T) {
			writeFails(t, azURL("c")+"&localemu=true", azSharedKeyCreds(), `unsupported azblob URL parameter "localemu"`)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t)
		})
	}
}

// TestCloudFailedFinish: a Finish whose bytes do not match leaves the
// earlier report in place on GCS and Azure too (the upload is abandoned, not
// completed with what was read).
func TestCloudFailedFinish(t *testing.T) {
	tests := []struct {
		name   string
		bucket func(*testing.T) string
		url    func(bucket string) string
		creds  map[string][]byte
		admin  adminBucket
	}{
		{"gcs", newGCSBucket, func(b string) string { return "gs://" + b + "?endpoint=" + url.QueryEscape(gcsEndpoint) }, gcsCreds(), gcsAdminBucket},
		{"azure", newAzContainer, func(b string) string { return "azblob://" + b + "?endpoint=" + url.QueryEscape(azEndpoint) }, azSharedKeyCreds(), azAdminBucket},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bucket := tc.bucket(t)
			r := objectReport("json")
			failFinish(t, r, reportsv1alpha1.ObjectStoreOutput{URL: tc.url(bucket)}, tc.creds)
			b := tc.admin(t, bucket)
			defer b.Close()
			got, err := b.ReadAll(context.Background(), "team-a/"+r.Name+"/report.json")
			if err != nil || string(got) != "[earlier]" {
				t.Fatalf("object after a failed Finish: %d bytes, %v; want the earlier report", len(got), err)
			}
		})
	}
}

// TestAzureServiceURL checks where an azblob:// sink connects, from the URL
// alone, without connecting: the account it names on Azure, in another
// cloud's domain, or the listed endpoint; a Secret (account, connection
// string) is taken when it is for the same account.
func TestAzureServiceURL(t *testing.T) {
	key := base64.StdEncoding.EncodeToString([]byte("key"))
	tests := []struct {
		name  string
		url   string
		creds map[string][]byte
		want  string
	}{
		{"account on Azure", "azblob://reports/team-a?storage_account=acct", map[string][]byte{CredAzureAccountName: []byte("acct"), CredAzureAccountKey: []byte(key)},
			"https://acct.blob.core.windows.net/reports"},
		{"another Azure cloud", "azblob://reports?storage_account=acct&domain=blob.core.usgovcloudapi.net", map[string][]byte{CredAzureAccountName: []byte("acct"), CredAzureAccountKey: []byte(key)},
			"https://acct.blob.core.usgovcloudapi.net/reports"},
		{"portal connection string", "azblob://reports?storage_account=acct", map[string][]byte{CredAzureConnectionString: []byte("DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=" + key + ";EndpointSuffix=core.windows.net")},
			"https://acct.blob.core.windows.net/reports"},
		{"connection string with a matching endpoint", "azblob://reports?endpoint=" + url.QueryEscape("http://127.0.0.1:10000/devstoreaccount1"),
			map[string][]byte{CredAzureConnectionString: []byte("AccountName=devstoreaccount1;AccountKey=" + key + ";BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1/;")},
			"http://127.0.0.1:10000/devstoreaccount1/reports"},
		{"sas token", "azblob://reports?storage_account=acct", map[string][]byte{CredAzureAccountName: []byte("acct"), CredAzureSASToken: []byte("?sv=2024-01-01&sp=rcwdl&sig=abc")},
			"https://acct.blob.core.windows.net/reports?sig=abc&sp=rcwdl&sv=2024-01-01"},
		{"sas token, no account in the Secret", "azblob://reports?storage_account=acct", map[string][]byte{CredAzureSASToken: []byte("?sv=2024-01-01&sp=rcwdl&sig=abc")},
			"https://acct.blob.core.windows.net/reports?sig=abc&sp=rcwdl&sv=2024-01-01"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := mustObjectStore(t, objectReport("json"), reportsv1alpha1.ObjectStoreOutput{URL: tc.url}, tc.creds)
			defer closeSink(t, s)
			var c *container.Client
			if !s.(redactingSink).s.bucket.As(&c) {
				t.Fatal("the bucket is not an Azure container")
			}
			mustEqual(t, "container URL", c.URL(), tc.want)
		})
	}
}

// TestSinkErrorsHideSecrets: an SDK's transport error quotes the request's
// URL, an Azure SAS token's signature included; the sink's errors reach
// the report's status and events (readable with the view role, which may
// not read the Secret) and the manager's log, so they show it redacted.
func TestSinkErrorsHideSecrets(t *testing.T) {
	const sig = "SECRETSIGvalue0123456789"
	// A closed port: the upload fails below HTTP, with a url.Error.
	s := mustObjectStore(t, objectReport("json"), reportsv1alpha1.ObjectStoreOutput{
		URL: "azblob://reports?endpoint=" + url.QueryEscape("http://127.0.0.1:1/acct")},
		map[string][]byte{CredAzureSASToken: []byte("sv=2022-11-02&sp=cw&sig=" + sig)})
	defer closeSink(t, s)
	// The SDK retries for ~10 s; cut short, its error would name no URL.
	err := s.Resume(t.Context(), Progress{})
	if err == nil {
		sum := sha256.Sum256([]byte("[]"))
		_, err = s.Finish(t.Context(), []byte("[]"), 2, hex.EncodeToString(sum[:]))
	}
	if err == nil {
		t.Fatal("an upload to a closed port succeeded")
	}
	t.Logf("error: %v", err)
	if strings.Contains(err.Error(), sig) {
		t.Errorf("the error shows the SAS signature: %v", err)
	}
	if !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("the error no longer says where it failed: %v", err)
	}
}

func TestRedactErr(t *testing.T) {
	base := &url.Error{Op: "Put", URL: "https://acct.blob.core.windows.net/reports/x?comp=block&sig=s3cr3t&sp=cw", Err: errors.New("dial tcp: connection refused")}
	err := redactErr(fmt.Errorf("uploading: %w", base))
	if strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(err.Error(), "acct.blob.core.windows.net") {
		t.Errorf("redacted: %v", err)
	}
	var ue *url.Error
	if !errors.As(err, &ue) || ue != base {
		t.Error("the redacted error no longer unwraps to the url.Error")
	}
	if plain := errors.New("no URL here"); redactErr(plain) != plain {
		t.Error("an error without a URL was wrapped")
	}
}
