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
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"k8s.io/apimachinery/pkg/types"

	reportsv1alpha1 "github.com/auditops/auditops/api/v1alpha1"
)

// reportSeq gives every object-store test report its own name.
var reportSeq atomic.Int64

func objectReport(ext string) Report {
	n := reportSeq.Add(1)
	return Report{
		Namespace: "team-a", Name: fmt.Sprintf("daily-%d", n), UID: types.UID(fmt.Sprintf("uid-%d", n)),
		Type: reportsv1alpha1.AuditDetails, Ext: ext, ContentType: contentTypeOf(ext),
	}
}

// s3Target writes to a fresh bucket of the versitygw server under prefix.
func s3Target(name, prefix string) target {
	return target{
		name: name,
		newReport: func(t *testing.T, ext string) (Report, func(t *testing.T) Sink) {
			r := objectReport(ext)
			out := reportsv1alpha1.ObjectStoreOutput{URL: s3URL(newBucket(t), prefix)}
			return r, func(t *testing.T) Sink { return mustObjectStore(t, r, out, s3Creds()) }
		},
		read: func(t *testing.T, r Report, outs []reportsv1alpha1.OutputRef) []byte {
			bucket, key := splitS3(t, outs)
			obj, err := s3srv.client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
			if err != nil {
				t.Fatalf("GetObject %s/%s: %v", bucket, key, err)
			}
			defer obj.Body.Close()
			b, err := io.ReadAll(obj.Body)
			if err != nil {
				t.Fatalf("reading %s/%s: %v", bucket, key, err)
			}
			return b
		},
		check: func(t *testing.T, r Report, _ *conformanceCase, outs []reportsv1alpha1.OutputRef) {
			ctx := context.Background()
			bucket, key := splitS3(t, outs)
			wantKey := r.Namespace + "/" + r.Name + "/report." + r.Ext
			if prefix != "" {
				wantKey = prefix + "/" + wantKey
			}
			mustEqual(t, "key", key, wantKey)
			head, err := s3srv.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
			if err != nil {
				t.Fatalf("HeadObject %s/%s: %v", bucket, key, err)
			}
			mustEqual(t, "content type", aws.ToString(head.ContentType), r.ContentType)
			// Staging parts are gone, and nothing else was written.
			list, err := s3srv.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket})
			if err != nil {
				t.Fatalf("listing %s: %v", bucket, err)
			}
			var keys []string
			for _, o := range list.Contents {
				keys = append(keys, aws.ToString(o.Key))
			}
			mustEqual(t, "objects in the bucket", keys, []string{key})
		},
	}
}

// splitS3 checks outs is one s3:// URL and returns its bucket and key.
func splitS3(t *testing.T, outs []reportsv1alpha1.OutputRef) (string, string) {
	t.Helper()
	if len(outs) != 1 || outs[0].ConfigMap != "" || outs[0].Key != "" {
		t.Fatalf("outputs %+v, want one URL", outs)
	}
	rest, ok := strings.CutPrefix(outs[0].URL, "s3://")
	if !ok || strings.ContainsAny(rest, "?@") {
		t.Fatalf("output URL %q is not a plain s3://bucket/key", outs[0].URL)
	}
	bucket, key, _ := strings.Cut(rest, "/")
	return bucket, key
}

// fileTarget writes below a fresh temporary directory.
func fileTarget() target {
	return target{
		name: "file",
		newReport: func(t *testing.T, ext string) (Report, func(t *testing.T) Sink) {
			r := objectReport(ext)
			out := reportsv1alpha1.ObjectStoreOutput{URL: "file://" + t.TempDir()}
			return r, func(t *testing.T) Sink { return mustObjectStore(t, r, out, nil) }
		},
		read: func(t *testing.T, r Report, outs []reportsv1alpha1.OutputRef) []byte {
			b, err := os.ReadFile(filePath(t, outs))
			if err != nil {
				t.Fatalf("reading the report: %v", err)
			}
			return b
		},
		check: func(t *testing.T, r Report, _ *conformanceCase, outs []reportsv1alpha1.OutputRef) {
			path := filePath(t, outs)
			mustEqual(t, "path", filepath.Base(path), "report."+r.Ext)
			mustEqual(t, "directory", filepath.Base(filepath.Dir(path)), r.Name)
			root := filepath.Dir(filepath.Dir(filepath.Dir(path)))
			// Only the report remains: no staging part, and no .attrs
			// sidecar (fileblob creates one through a symbolic link planted
			// at its name; a file has no content type to keep).
			var files []string
			err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					rel, _ := filepath.Rel(root, p)
					files = append(files, rel)
				}
				return err
			})
			if err != nil {
				t.Fatalf("walking %s: %v", root, err)
			}
			rel := r.Namespace + "/" + r.Name + "/report." + r.Ext
			mustEqual(t, "files", files, []string{rel})
		},
	}
}

func filePath(t *testing.T, outs []reportsv1alpha1.OutputRef) string {
	t.Helper()
	if len(outs) != 1 {
		t.Fatalf("outputs %+v, want one URL", outs)
	}
	p, ok := strings.CutPrefix(outs[0].URL, "file://")
	if !ok || !strings.HasPrefix(p, "/") {
		t.Fatalf("output URL %q is not file:///path", outs[0].URL)
	}
	return p
}

func mustObjectStore(t *testing.T, r Report, out reportsv1alpha1.ObjectStoreOutput, creds map[string][]byte) Sink {
	t.Helper()
	s, err := NewObjectStore(context.Background(), r, out, creds)
	if err != nil {
		t.Fatalf("NewObjectStore(%s): %v", out.URL, err)
	}
	return s
}

func TestObjectStoreConformance(t *testing.T) {
	runConformance(t, []target{
		s3Target("s3", ""),
		s3Target("s3 with prefix", "reports/v1"),
		fileTarget(),
	})
}

// TestObjectStore covers what only the object-store sink has.
func TestObjectStore(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"output URL has no query or credentials", func(t *testing.T) {
			bucket := newBucket(t)
			r := objectReport("csv")
			s := mustObjectStore(t, r, reportsv1alpha1.ObjectStoreOutput{URL: s3URL(bucket, "/reports/")}, s3Creds())
			c := conformanceCase{last: []byte("a,b\n"), crashAt: -1}
			outs := writeReport(t, func(*testing.T) Sink { return s }, &c)
			mustEqual(t, "outputs", outs, []reportsv1alpha1.OutputRef{{
				URL: "s3://" + bucket + "/reports/team-a/" + r.Name + "/report.csv", Bytes: 4, SHA256: hexSum([]byte("a,b\n")),
			}})
		}},
		{"a failed finish on s3 keeps the earlier object and aborts the upload", func(t *testing.T) {
			bucket := newBucket(t)
			r := objectReport("json")
			out := reportsv1alpha1.ObjectStoreOutput{URL: s3URL(bucket, "")}
			failFinish(t, r, out, s3Creds())
			key := "team-a/" + r.Name + "/report.json"
			obj, err := s3srv.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
			if err != nil {
				t.Fatalf("GetObject after a failed Finish: %v", err)
			}
			defer obj.Body.Close()
			if b, _ := io.ReadAll(obj.Body); string(b) != "[earlier]" {
				t.Fatalf("object holds %d bytes after a failed Finish, want the earlier report", len(b))
			}
			ups, err := s3srv.client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &bucket})
			if err != nil {
				t.Fatalf("ListMultipartUploads: %v", err)
			}
			if len(ups.Uploads) != 0 {
				t.Errorf("%d multipart uploads left open", len(ups.Uploads))
			}
		}},
		{"a failed finish on file keeps the earlier file", func(t *testing.T) {
			dir := t.TempDir()
			r := objectReport("json")
			failFinish(t, r, reportsv1alpha1.ObjectStoreOutput{URL: "file://" + dir}, nil)
			b, err := os.ReadFile(filepath.Join(dir, "team-a", r.Name, "report.json"))
			if err != nil || string(b) != "[earlier]" {
				t.Fatalf("file after a failed Finish: %d bytes, %v; want the earlier report", len(b), err)
			}
			entries, err := os.ReadDir(filepath.Join(dir, "team-a", r.Name))
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			// Staging parts stay for the next Resume; no temporary file is left.
			mustEqual(t, "files", names, []string{"report.json", "report.json.parts"})
		}},
		{"resume after a completed finish asks to start over", func(t *testing.T) {
			r := objectReport("json")
			out := reportsv1alpha1.ObjectStoreOutput{URL: s3URL(newBucket(t), "")}
			s := mustObjectStore(t, r, out, s3Creds())
			if err := s.Resume(ctx, Progress{}); err != nil {
				t.Fatalf("Resume: %v", err)
			}
			p, err := s.Append(ctx, []byte("[1"))
			if err != nil {
				t.Fatalf("Append: %v", err)
			}
			if _, err := s.Finish(ctx, []byte("]"), 3, hexSum([]byte("[1]"))); err != nil {
				t.Fatalf("Finish: %v", err)
			}
			s = mustObjectStore(t, r, out, s3Creds())
			defer closeSink(t, s)
			mustErrorIs(t, "Resume after Finish", s.Resume(ctx, checkpoint(t, p)), ErrStartOver)
			if err := s.Resume(ctx, Progress{}); err != nil {
				t.Fatalf("Resume(zero) after ErrStartOver: %v", err)
			}
		}},
		{"wrong credentials fail", func(t *testing.T) {
			creds := s3Creds()
			creds[CredSecretAccessKey] = []byte("wrong")
			s := mustObjectStore(t, objectReport("json"), reportsv1alpha1.ObjectStoreOutput{URL: s3URL(newBucket(t), "")}, creds)
			defer closeSink(t, s)
			err := s.Resume(ctx, Progress{})
			if err == nil {
				_, err = s.Append(ctx, []byte("x"))
			}
			if err == nil {
				t.Fatal("Resume and Append with a wrong secret key succeeded")
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t)
		})
	}
}

// failFinish publishes a small report, then runs a 20 MiB one whose Finish
// is given the wrong checksum: the failure is only known once every byte was
// sent (on S3, past the SDK's multipart threshold).
func failFinish(t *testing.T, r Report, out reportsv1alpha1.ObjectStoreOutput, creds map[string][]byte) {
	t.Helper()
	ctx := context.Background()
	earlier := conformanceCase{last: []byte("[earlier]"), crashAt: -1}
	writeReport(t, func(t *testing.T) Sink { return mustObjectStore(t, r, out, creds) }, &earlier)
	s := mustObjectStore(t, r, out, creds)
	defer closeSink(t, s)
	if err := s.Resume(ctx, Progress{}); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	if _, err := s.Append(ctx, randomBytes(40, 20<<20)); err != nil {
		t.Fatalf("Append: %v", err)
	}
	_, err := s.Finish(ctx, []byte("x"), 20<<20+1, hexSum([]byte("other")))
	if err == nil || !strings.Contains(err.Error(), "SHA-256") {
		t.Fatalf("Finish with a wrong checksum: %v, want a checksum error", err)
	}
}

func TestNewObjectStoreRejects(t *testing.T) {
	creds := map[string][]byte{CredAccessKeyID: []byte("a"), CredSecretAccessKey: []byte("b")}
	tests := []struct {
		name  string
		url   string
		creds map[string][]byte
		want  string
	}{
		{"unknown scheme", "ftp://host/dir", nil, "scheme"},
		{"credentials in the URL", "s3://ak:sk@bucket?region=us-east-1", creds, "must not carry credentials"},
		{"no bucket", "s3:///prefix?region=us-east-1", creds, "names no bucket"},
		{"no region", "s3://bucket?endpoint=http://127.0.0.1:1", creds, "region"},
		{"unknown parameter", "s3://bucket?region=us-east-1&profile=x", creds, "unsupported s3 URL parameter"},
		{"bad boolean", "s3://bucket?region=us-east-1&use_path_style=maybe", creds, "use_path_style"},
		{"half the credentials", "s3://bucket?region=us-east-1", map[string][]byte{CredAccessKeyID: []byte("a")}, "secretAccessKey"},
		{"credentials for a file URL", "file:///tmp", creds, "only for s3://"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewObjectStore(context.Background(), objectReport("json"), reportsv1alpha1.ObjectStoreOutput{URL: tc.url}, tc.creds)
			if err == nil {
				closeSink(t, s)
				t.Fatalf("NewObjectStore(%s) succeeded", tc.url)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewObjectStore(%s): %v, want an error mentioning %q", tc.url, err, tc.want)
			}
			if strings.Contains(err.Error(), "sk@") {
				t.Fatalf("error leaks the URL's credentials: %v", err)
			}
		})
	}
}

// TestObjectStoreStreams checks a large report reaches the server as a
// multipart upload (parts of uploadPartBytes), not one buffered PUT. The
// SDK's transfer manager sends reports under its 16 MiB multipart threshold
// in one PUT, so the report here is larger.
func TestObjectStoreStreams(t *testing.T) {
	ctx := context.Background()
	bucket := newBucket(t)
	r := objectReport("csv")
	s := mustObjectStore(t, r, reportsv1alpha1.ObjectStoreOutput{URL: s3URL(bucket, "")}, s3Creds())
	c := conformanceCase{chunks: split(randomBytes(41, 20<<20), 1<<20), crashAt: -1}
	outs := writeReport(t, func(*testing.T) Sink { return s }, &c)
	_, key := splitS3(t, outs)
	head, err := s3srv.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("HeadObject: %v", err)
	}
	// A multipart upload's ETag is "<md5 of part md5s>-<parts>".
	etag := aws.ToString(head.ETag)
	if want := fmt.Sprintf("-%d\"", (20<<20)/uploadPartBytes); !strings.HasSuffix(etag, want) {
		t.Errorf("ETag %s: want a multipart upload of %s parts", etag, want[1:len(want)-1])
	}
	if got := aws.ToInt64(head.ContentLength); got != 20<<20 {
		t.Errorf("object holds %d bytes, want %d", got, 20<<20)
	}
	if !bytes.Equal([]byte(outs[0].SHA256), []byte(hexSum(c.want()))) {
		t.Errorf("sha256 %s, want %s", outs[0].SHA256, hexSum(c.want()))
	}
}

// TestFileOutputRefusesLinks: a symbolic link below a file:// output's
// directory, planted by whoever else may write the shared directory, is not
// written through: the report (or fileblob's .attrs file beside it) landed
// where it pointed before (attacker reviews found both).
func TestFileOutputRefusesLinks(t *testing.T) {
	r := objectReport("json")
	for _, link := range []string{r.Namespace, r.Namespace + "/" + r.Name + "/report.json", r.Namespace + "/" + r.Name + "/report.json.attrs"} {
		t.Run(link, func(t *testing.T) {
			root := t.TempDir()
			allowed, outside := filepath.Join(root, "allowed"), filepath.Join(root, "manager-data")
			precious := filepath.Join(outside, "precious")
			if err := os.MkdirAll(filepath.Dir(filepath.Join(allowed, link)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(outside, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(precious, []byte("PRECIOUS"), 0o644); err != nil {
				t.Fatal(err)
			}
			target := outside
			if strings.Contains(link, "report.json") {
				target = precious
			}
			if err := os.Symlink(target, filepath.Join(allowed, link)); err != nil {
				t.Fatal(err)
			}
			s := mustObjectStore(t, r, reportsv1alpha1.ObjectStoreOutput{URL: "file://" + allowed}, nil)
			defer closeSink(t, s)
			err := s.Resume(t.Context(), Progress{})
			if err == nil {
				sum := sha256.Sum256([]byte("[]"))
				_, err = s.Finish(t.Context(), []byte("[]"), 2, hex.EncodeToString(sum[:]))
			}
			t.Logf("write: %v", err)
			if got, _ := os.ReadFile(precious); string(got) != "PRECIOUS" {
				t.Errorf("written through the link: %s now holds %q", precious, got)
			}
			if entries, _ := os.ReadDir(outside); len(entries) != 1 {
				t.Errorf("written through the link: %s holds %d entries", outside, len(entries))
			}
		})
	}
}
