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
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	reportsv1alpha1 "github.com/auditops/auditops/api/v1alpha1"
)

// One real control plane (etcd + kube-apiserver from bin/k8s, via
// KUBEBUILDER_ASSETS), one real S3 server (versitygw, started by
// hack/s3-server.sh) and real GCS and Azure emulators (fake-gcs-server and
// Azurite, started by hack/storage-emulator.sh) serve every test of this package.
var (
	k8sClient client.Client
	s3srv     s3Server
)

// s3Server is what hack/s3-server.sh start prints.
type s3Server struct {
	endpoint, accessKey, secretKey, region string
	client                                 *s3.Client
}

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "KUBEBUILDER_ASSETS is not set: run with KUBEBUILDER_ASSETS=$PWD/bin/k8s/v1.37.1 (built by hack/build-control-plane.sh)")
		return 1
	}
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(reportsv1alpha1.AddToScheme(scheme))

	start := time.Now()
	testEnv := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		Scheme:                scheme,
	}
	cfg, err := testEnv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the control plane:", err)
		return 1
	}
	defer func() {
		if err := testEnv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
		}
	}()
	fmt.Fprintf(os.Stderr, "control plane up in %s\n", time.Since(start).Round(time.Millisecond))
	k8sClient, err = client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		fmt.Fprintln(os.Stderr, "creating client:", err)
		return 1
	}

	dir, err := os.MkdirTemp("", "sink-s3-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "creating the S3 server's directory:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	start = time.Now()
	if err := startS3(dir); err != nil {
		// Never skip: the object-store tests are only meaningful against a real server.
		fmt.Fprintln(os.Stderr, "starting the S3 server:", err)
		return 1
	}
	defer func() {
		if err := s3Script("stop", dir).Run(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the S3 server:", err)
		}
	}()
	fmt.Fprintf(os.Stderr, "S3 server up in %s at %s\n", time.Since(start).Round(time.Millisecond), s3srv.endpoint)
	start = time.Now()
	stopEmulators, err := startEmulators(dir)
	if err != nil {
		// Never skip either: gs:// and azblob:// are checked against real emulators.
		fmt.Fprintln(os.Stderr, "starting the GCS and Azure emulators:", err)
		return 1
	}
	defer stopEmulators()
	fmt.Fprintf(os.Stderr, "GCS and Azure emulators up in %s at %s, %s\n", time.Since(start).Round(time.Millisecond), gcsEndpoint, azEndpoint)
	return m.Run()
}

func s3Script(args ...string) *exec.Cmd {
	cmd := exec.Command("bash", append([]string{filepath.Join("..", "..", "hack", "s3-server.sh")}, args...)...)
	cmd.Stderr = os.Stderr
	return cmd
}

// startS3 starts versitygw (building it first if bin/ lacks it) and reads
// the endpoint and keys it prints.
func startS3(dir string) error {
	out, err := s3Script("start", dir).Output()
	if err != nil {
		return fmt.Errorf("hack/s3-server.sh start: %w", err)
	}
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			env[k] = v
		}
	}
	s3srv = s3Server{endpoint: env["S3_ENDPOINT"], accessKey: env["S3_ACCESS_KEY"], secretKey: env["S3_SECRET_KEY"], region: env["S3_REGION"]}
	if s3srv.endpoint == "" || s3srv.accessKey == "" || s3srv.secretKey == "" || s3srv.region == "" {
		return fmt.Errorf("hack/s3-server.sh start printed no complete environment: %q", out)
	}
	s3srv.client = s3.New(s3.Options{
		Region:       s3srv.region,
		BaseEndpoint: aws.String(s3srv.endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s3srv.accessKey, s3srv.secretKey, ""),
	})
	return nil
}

// newBucket creates a bucket for one test with a signed request.
func newBucket(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("t%d", time.Now().UnixNano())
	if _, err := s3srv.client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("creating bucket %s: %v", name, err)
	}
	return name
}

// s3URL is the gocloud.dev URL of a bucket (and key prefix) on the test server.
func s3URL(bucket, prefix string) string {
	u := "s3://" + bucket
	if prefix != "" {
		u += "/" + prefix
	}
	return u + "?endpoint=" + s3srv.endpoint + "&use_path_style=true&region=" + s3srv.region
}

func s3Creds() map[string][]byte {
	return map[string][]byte{CredAccessKeyID: []byte(s3srv.accessKey), CredSecretAccessKey: []byte(s3srv.secretKey)}
}

// createNamespace makes a fresh namespace for one test.
func createNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "sink-"}}
	if err := k8sClient.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	return ns.Name
}

// createAuditReport creates a real AuditReport to own the ConfigMaps.
func createAuditReport(t *testing.T, ns, name string, typ reportsv1alpha1.ReportType) *reportsv1alpha1.AuditReport {
	t.Helper()
	from := metav1.NewTime(time.Date(2024, 5, 21, 0, 0, 0, 0, time.UTC))
	to := metav1.NewTime(from.Add(24 * time.Hour))
	ar := &reportsv1alpha1.AuditReport{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: reportsv1alpha1.AuditReportSpec{
			Type:  typ,
			Range: reportsv1alpha1.ReportRange{From: &from, To: &to},
		},
	}
	if typ == reportsv1alpha1.UserLogs {
		ar.Spec.User = "alice"
	}
	if err := k8sClient.Create(context.Background(), ar); err != nil {
		t.Fatalf("creating AuditReport %s/%s: %v", ns, name, err)
	}
	return ar
}
