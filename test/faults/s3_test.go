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

package faults

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/auditops/auditops/internal/sink/sinktest"
)

// TestKillDuringS3Report is scenario 2 of the fault suite for object
// storage, against a real S3 server (versitygw): a report large enough for
// a multipart upload (> 16 MiB) is killed after a staged chunk before its
// checkpoint, inside the multipart upload of the final object, after the
// upload before the status, and at random. Each finished object must equal
// the undisturbed one byte for byte and match status.outputs[].sha256, with
// no staging part and no open multipart upload left. (The object sink does
// not depend on the store: SQLite only.)
func TestKillDuringS3Report(t *testing.T) {
	st := sqliteUnderTest(t)
	n := rounds(t, 1)
	ns := "faults-s3"
	cfg := configFor(t, st)
	srv := sinktest.StartS3(t)
	endpoint, access, secret, s3c := srv.Endpoint, srv.AccessKey, srv.SecretKey, srv.Client
	if _, err := s3c.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String("reports")}); err != nil {
		t.Fatal(err)
	}
	kubectl(t, "create", "namespace", ns)
	kubectl(t, "create", "secret", "generic", "-n", ns, "s3-creds", "--from-literal=accessKeyID="+access, "--from-literal=secretAccessKey="+secret)
	output := fmt.Sprintf("objectStore: {url: %q, credentialsSecretRef: {name: s3-creds}}",
		"s3://reports/audit?endpoint="+endpoint+"&use_path_style=true&region=us-east-1")
	// The endpoint is the operator's to allow (spec/API.md section 5).
	cfg.extraArgs = []string{"--allowed-output-urls", "s3://reports?endpoint=" + endpoint}

	p := startManager(t, cfg)
	base := time.Now().UTC().Truncate(time.Hour).Add(-4 * time.Hour)
	seedReportEvents(t, ns, base, 12000)
	window := [2]time.Time{base.Add(-time.Hour), base.Add(4 * time.Hour)}

	createReportTo(t, ns, "undisturbed", window, output, 100)
	want := s3Report(t, s3c, waitReport(t, ns, "undisturbed"))
	if len(want) <= 16<<20 {
		t.Fatalf("the reference report is %d bytes: the scenario needs more than 16 MiB for a multipart upload", len(want))
	}
	t.Logf("reference report: %d bytes", len(want))

	type round struct {
		name, point string
		hit         int
	}
	var plan []round
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	for i := range n {
		plan = append(plan,
			round{fmt.Sprintf("after-append-%d", i), "report-after-append", 2 + rnd.IntN(20)},
			round{fmt.Sprintf("in-upload-%d", i), "objectstore-in-upload", 4},
			round{fmt.Sprintf("before-status-%d", i), "report-before-status", 1},
			round{fmt.Sprintf("random-%d", i), "", 0},
		)
	}
	for _, r := range plan {
		p.kill()
		c := cfg
		if r.point != "" {
			c.env = []string{fmt.Sprintf("AUDITOPS_FAULT_KILL_AT=%s:%d", r.point, r.hit)}
		}
		p = startManager(t, c)
		createReportTo(t, ns, r.name, window, output, 100)
		if r.point != "" {
			awaitFaultKill(t, p, ns, r.name, r.point, r.hit)
		} else {
			// Once the report is under way, a little later.
			waitUntil(t, t.Context(), time.Minute, r.name+" to start", func() bool { return reportPhase(t, ns, r.name) != "" })
			time.Sleep(time.Duration(rnd.IntN(400)) * time.Millisecond)
			p.kill()
			// Where the kill landed, for the log: a report that had
			// already finished proves nothing about resuming.
			r.point = "a random moment (the report was " + reportPhase(t, ns, r.name) + ")"
		}
		p = startManager(t, cfg)
		got := s3Report(t, s3c, waitReport(t, ns, r.name))
		if !bytes.Equal(got, want) {
			t.Errorf("%s: the object after a kill (%d bytes) differs from the undisturbed one (%d bytes)", r.name, len(got), len(want))
		}
		t.Logf("%s: killed at %s, resumed: %d bytes, byte-identical: %v", r.name, orRandom(r.point), len(got), bytes.Equal(got, want))
	}
	if err := p.stop(); err != nil {
		t.Fatalf("stopping the manager: %v", err)
	}
}

// s3Report reads the report's object, checks it against status.outputs,
// and checks that no staging part or open multipart upload of it is left.
func s3Report(t *testing.T, c *s3.Client, rep auditReport) []byte {
	t.Helper()
	if len(rep.Status.Outputs) != 1 || rep.Status.Outputs[0].URL == "" {
		t.Fatalf("status.outputs = %+v, want one object", rep.Status.Outputs)
	}
	o := rep.Status.Outputs[0]
	key := strings.TrimPrefix(o.URL, "s3://reports/")
	obj, err := c.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String("reports"), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("reading %s: %v", o.URL, err)
	}
	b, err := io.ReadAll(obj.Body)
	obj.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	if o.SHA256 != hex.EncodeToString(sum[:]) || o.Bytes != int64(len(b)) {
		t.Errorf("status.outputs says %d bytes, sha256 %s; the object holds %d bytes, sha256 %x", o.Bytes, o.SHA256, len(b), sum)
	}
	parts, err := c.ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: aws.String("reports"), Prefix: aws.String(key + ".parts/")})
	if err != nil {
		t.Fatal(err)
	}
	if len(parts.Contents) > 0 {
		t.Errorf("%d staging parts of %s are left", len(parts.Contents), key)
	}
	ups, err := c.ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{Bucket: aws.String("reports"), Prefix: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	if len(ups.Uploads) > 0 {
		t.Errorf("%d multipart uploads of %s are left open", len(ups.Uploads), key)
	}
	return b
}
