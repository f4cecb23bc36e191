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

package apiserver

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/auditops/auditops/internal/seal"
	"github.com/auditops/auditops/internal/store"
)

type checkpointsBody struct {
	Items []struct {
		Origin   string `json:"origin"`
		Size     int64  `json:"size"`
		RootHash string `json:"rootHash"`
		Time     string `json:"time"`
		Note     string `json:"note"`
	} `json:"items"`
	Continue string `json:"continue"`
}

type leavesBody struct {
	Items []struct {
		Index  int64  `json:"index"`
		Seq    int64  `json:"seq"`
		ID     string `json:"id"`
		Time   string `json:"time"`
		Digest string `json:"digest"`
	} `json:"items"`
}

type proofBody struct {
	From     int64    `json:"from"`
	Size     int64    `json:"size"`
	Index    int64    `json:"index"`
	LeafHash string   `json:"leafHash"`
	Hashes   []string `json:"hashes"`
}

func decodeOK(t *testing.T, r result, path string, into any) {
	t.Helper()
	if r.code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, r.code, r.body)
	}
	if err := json.Unmarshal(r.body, into); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, r.body)
	}
}

func b64Hashes(t *testing.T, in []string) [][]byte {
	t.Helper()
	out := make([][]byte, len(in))
	for i, s := range in {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b) != 32 {
			t.Fatalf("hash %q is not 32 base64 bytes", s)
		}
		out[i] = b
	}
	return out
}

func toTlogHashes(in [][]byte) []tlog.Hash {
	out := make([]tlog.Hash, len(in))
	for i, h := range in {
		copy(out[i][:], h)
	}
	return out
}

// TestLogEndpoints (spec/API.md 6): a namespace's checkpoints, leaves and
// proofs through kube-apiserver as a reader of the namespace: every note
// opens with the published verifier keys, the leaves give each
// checkpoint's root, the events' own digests are the leaves', and every
// inclusion and consistency proof checks with tlog and with
// transparency-dev/merkle; then the errors, RBAC and kubectl's table.
func TestLogEndpoints(t *testing.T) {
	ctx := context.Background()
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	var evs []store.Event
	for i := range 23 {
		evs = append(evs, store.Event{ID: fmt.Sprintf("log-%02d", i), Namespace: nsA, User: "log-user", Time: base.Add(time.Duration(i) * time.Second),
			Method: "get", API: "/pods", Status: store.StatusSuccess})
	}
	if _, err := ts.st.Insert(ctx, evs); err != nil {
		t.Fatal(err)
	}
	logs := ts.st.(seal.Log)
	sealer := &seal.Sealer{Store: logs, Keys: ts.sealKeys, Origin: seal.DefaultOriginPrefix, Now: time.Now, Batch: 7}
	if _, err := sealer.Seal(ctx, nsA); err != nil {
		t.Fatal(err)
	}
	verifiers, err := seal.Verifiers(ts.sealKeys.VerifierKeys()...)
	if err != nil {
		t.Fatal(err)
	}
	c := viaKube(t, "reader")
	nsPrefix := P + "/namespaces/" + nsA

	// Checkpoints, newest first, paged two at a time.
	var cps []seal.Checkpoint
	next := ""
	for pages := 0; ; pages++ {
		path := nsPrefix + "/checkpoints?limit=2"
		if next != "" {
			path += "&continue=" + next
		}
		var body checkpointsBody
		decodeOK(t, c.get(t, path), path, &body)
		if len(body.Items) > 2 {
			t.Fatalf("GET %s: %d items, limit 2", path, len(body.Items))
		}
		for _, it := range body.Items {
			cp, err := seal.Open([]byte(it.Note), verifiers)
			if err != nil {
				t.Fatalf("checkpoint %d: %v", it.Size, err)
			}
			root := base64.StdEncoding.EncodeToString(cp.Root[:])
			if cp.Origin != "auditops/"+nsA || cp.Size != it.Size || root != it.RootHash || cp.Time.Format(time.RFC3339Nano) != it.Time || it.Origin != cp.Origin {
				t.Errorf("checkpoint item %+v does not say what its note says: %+v", it, cp)
			}
			if len(cps) > 0 && cp.Size >= cps[len(cps)-1].Size {
				t.Errorf("checkpoints not newest first: %d after %d", cp.Size, cps[len(cps)-1].Size)
			}
			cps = append(cps, cp)
		}
		if next = body.Continue; next == "" {
			break
		}
		if pages > 100 {
			t.Fatal("checkpoints never end")
		}
	}
	if len(cps) < 4 {
		t.Fatalf("%d checkpoints, want at least 4 (23+ leaves in batches of 7)", len(cps))
	}
	size := cps[0].Size

	// The leaves give every checkpoint's root; ours carry our events' digests.
	path := nsPrefix + "/leaves?start=0&end=" + strconv.FormatInt(size, 10)
	var lb leavesBody
	decodeOK(t, c.get(t, path), path, &lb)
	if int64(len(lb.Items)) != size {
		t.Fatalf("GET %s: %d leaves, want %d", path, len(lb.Items), size)
	}
	stored := map[int64]store.Event{}
	page, err := ts.st.Events(ctx, store.EventQuery{View: "audit-details", Namespace: nsA, Range: store.TimeRange{From: base, To: base.Add(time.Minute)}, Page: store.Page{Size: 100}})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range page.Events {
		if e.Namespace == "" {
			e.Namespace = nsA
		}
		stored[e.Seq] = e
	}
	var mem memHashes
	ours := 0
	for i, l := range lb.Items {
		if l.Index != int64(i) {
			t.Fatalf("leaf %d has index %d", i, l.Index)
		}
		tm, err := time.Parse(time.RFC3339Nano, l.Time)
		if err != nil {
			t.Fatalf("leaf %d: time %q: %v", i, l.Time, err)
		}
		dg, err := hex.DecodeString(l.Digest)
		if err != nil || len(dg) != 32 {
			t.Fatalf("leaf %d: digest %q", i, l.Digest)
		}
		data := seal.LeafData(tm, [32]byte(dg))
		mem.add(t, data[:])
		if e, ok := stored[l.Seq]; ok && strings.HasPrefix(e.ID, "log-") {
			ours++
			want, err := seal.Digest(&e, seal.EncodingV1)
			if err != nil {
				t.Fatal(err)
			}
			if hex.EncodeToString(want[:]) != l.Digest || l.ID != e.ID || !tm.Equal(e.Time) {
				t.Errorf("leaf %d (seq %d, %s): digest %s time %s, the event's %x %s", i, l.Seq, l.ID, l.Digest, l.Time, want, e.Time)
			}
		}
	}
	if ours != len(evs) {
		t.Errorf("%d of our %d events have leaves", ours, len(evs))
	}
	for _, cp := range cps {
		root, err := tlog.TreeHash(cp.Size, &mem)
		if err != nil || root != cp.Root {
			t.Errorf("the leaves give root %x at %d, the checkpoint says %x (%v)", root, cp.Size, cp.Root, err)
		}
	}

	// Inclusion proofs of every leaf in the newest tree and in an older one.
	hasher := rfc6962.DefaultHasher
	for _, cp := range []seal.Checkpoint{cps[0], cps[len(cps)-2]} {
		for i := int64(0); i < cp.Size; i++ {
			path := fmt.Sprintf("%s/proofs?size=%d&index=%d", nsPrefix, cp.Size, i)
			var pb proofBody
			decodeOK(t, c.get(t, path), path, &pb)
			lh := b64Hashes(t, []string{pb.LeafHash})[0]
			hs := b64Hashes(t, pb.Hashes)
			if pb.Size != cp.Size || pb.Index != i || tlog.Hash(lh) != seal.LeafHash(mem.leaves[i]) {
				t.Fatalf("GET %s: %+v", path, pb)
			}
			if err := tlog.CheckRecord(toTlogHashes(hs), cp.Size, cp.Root, i, tlog.Hash(lh)); err != nil {
				t.Errorf("GET %s: tlog: %v", path, err)
			}
			if err := proof.VerifyInclusion(hasher, uint64(i), uint64(cp.Size), lh, hs, cp.Root[:]); err != nil {
				t.Errorf("GET %s: merkle: %v", path, err)
			}
		}
	}
	// Consistency proofs from every older checkpoint to the newest.
	for _, old := range cps[1:] {
		path := fmt.Sprintf("%s/proofs?size=%d&from=%d", nsPrefix, size, old.Size)
		var pb proofBody
		decodeOK(t, c.get(t, path), path, &pb)
		hs := b64Hashes(t, pb.Hashes)
		if pb.From != old.Size || pb.Size != size {
			t.Fatalf("GET %s: %+v", path, pb)
		}
		if err := tlog.CheckTree(toTlogHashes(hs), size, cps[0].Root, old.Size, old.Root); err != nil {
			t.Errorf("GET %s: tlog: %v", path, err)
		}
		if err := proof.VerifyConsistency(hasher, uint64(old.Size), uint64(size), hs, old.Root[:], cps[0].Root[:]); err != nil {
			t.Errorf("GET %s: merkle: %v", path, err)
		}
	}
	// A proof against a root the log never had fails: the check can fail.
	{
		path := fmt.Sprintf("%s/proofs?size=%d&index=0", nsPrefix, size)
		var pb proofBody
		decodeOK(t, c.get(t, path), path, &pb)
		wrong := cps[0].Root
		wrong[0] ^= 1
		if tlog.CheckRecord(toTlogHashes(b64Hashes(t, pb.Hashes)), size, wrong, 0, seal.LeafHash(mem.leaves[0])) == nil {
			t.Error("an inclusion proof checked against a wrong root")
		}
	}

	sz := strconv.FormatInt(size, 10)
	for _, tc := range []struct {
		user, path string
		code       int
		msg        string
	}{
		{"reader", "/proofs?size=" + sz, 400, "give exactly one of index"},
		{"reader", "/proofs?size=" + sz + "&index=0&from=1", 400, "give exactly one of index"},
		{"reader", "/proofs?index=0", 400, "size is required"},
		{"reader", "/proofs?size=x&index=0", 400, `size must be an integer`},
		{"reader", "/proofs?size=" + sz + "&index=" + sz, 400, "index must be an integer between 0 and " + strconv.FormatInt(size-1, 10)},
		{"reader", "/proofs?size=" + sz + "&from=0", 400, "from must be an integer between 1"},
		{"reader", "/proofs?size=" + strconv.FormatInt(size+1000, 10) + "&index=0", 404, "has no signed checkpoint of size"},
		{"reader", "/leaves?start=0", 400, "end is required"},
		{"reader", "/leaves?start=5&end=5", 400, "end must be greater than start"},
		{"reader", "/leaves?start=0&end=10001", 400, "at most 10000 past it"},
		{"reader", "/leaves?start=0&end=" + strconv.FormatInt(size+1, 10), 400, "past the log"},
		{"reader", "/checkpoints?limit=1001", 400, "limit must be an integer between 0 and 1000"},
		{"reader", "/checkpoints?continue=abc", 400, "continue is invalid"},
		{"nobody", "/checkpoints", 403, `cannot list resource "checkpoints"`},
		{"nobody", "/leaves?start=0&end=1", 403, `cannot list resource "leaves"`},
		{"nobody", "/proofs?size=1&index=0", 403, `cannot list resource "proofs"`},
	} {
		// Through kube-apiserver and straight to our port (our own
		// SubjectAccessReview).
		for _, cl := range []caller{viaKube(t, tc.user), direct(t, tc.user)} {
			r := cl.get(t, nsPrefix+tc.path)
			var st struct{ Kind, Message string }
			if err := json.Unmarshal(r.body, &st); err != nil || st.Kind != "Status" {
				t.Errorf("%s GET %s: not a Status: %s", cl.name, tc.path, r.body)
			}
			if r.code != tc.code || !strings.Contains(st.Message, tc.msg) {
				t.Errorf("%s GET %s: %d %s, want %d with %q", cl.name, tc.path, r.code, r.body, tc.code, tc.msg)
			}
		}
	}
	// Another namespace's log is another tenant's.
	if r := c.get(t, P+"/namespaces/"+nsB+"/checkpoints"); r.code != http.StatusForbidden {
		t.Errorf("reader GET %s's checkpoints: %d %s, want 403", nsB, r.code, r.body)
	}

	// kubectl get checkpoints prints size, root and time, newest first.
	kc := kubectlUser(t, "log-reader", "auditops-report-reader")
	out, errOut, code := kubectlRun(t, kc, "get", "checkpoints", "-n", nsA)
	if code != 0 {
		t.Fatalf("kubectl get checkpoints: exit %d: %s", code, errOut)
	}
	t.Logf("$ kubectl get checkpoints -n %s\n%s", nsA, out)
	lines := tableLines(out)
	if len(lines) != len(cps)+1 || !slices.Equal(lines[0], []string{"SIZE", "ROOT", "TIME"}) {
		t.Fatalf("kubectl get checkpoints printed %q", lines)
	}
	want := []string{sz, base64.StdEncoding.EncodeToString(cps[0].Root[:]), cps[0].Time.Format(time.RFC3339Nano)}
	if !slices.Equal(lines[1], want) {
		t.Errorf("kubectl's first row %q, want %q", lines[1], want)
	}
}

// memHashes is a tlog hash storage in memory, built leaf by leaf.
type memHashes struct {
	hashes []tlog.Hash
	leaves [][]byte
}

func (m *memHashes) add(t *testing.T, data []byte) {
	t.Helper()
	hs, err := tlog.StoredHashes(int64(len(m.leaves)), data, m)
	if err != nil {
		t.Fatal(err)
	}
	m.hashes = append(m.hashes, hs...)
	m.leaves = append(m.leaves, data)
}

func (m *memHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		out[i] = m.hashes[x]
	}
	return out, nil
}
