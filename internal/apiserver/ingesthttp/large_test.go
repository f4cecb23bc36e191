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

package ingesthttp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/auditops/auditops/internal/ingest"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/auditops/auditops/internal/store"
)

// TestOversizedObjectsBecomeMarkers: an object over MaxObjectBytes is
// replaced by the marker of spec/API.md 2 and its event is stored whole
// otherwise; kube-apiserver's own truncation annotation shows in details.
func TestOversizedObjectsBecomeMarkers(t *testing.T) {
	st := newTestStore(t)
	reg := prometheus.NewRegistry()
	met := ingest.NewMetrics(reg)
	srv := httptest.NewServer(NewHandler(ingest.NewService(st, ingest.Options{MaxObjectBytes: 64 << 10, Metrics: met}), Options{}))
	defer srv.Close()
	big := bigObject(100 << 10)
	body := `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[` +
		kubeItem("big", "cm-big", 100<<10, "") + "," +
		kubeItem("small", "cm-small", 1<<10, "") + "," +
		kubeItem("cut", "cm-cut", 1<<10, `,"annotations":{"audit.k8s.io/truncated":"true"}`) + "]}"
	code, _, m := post(t, srv.URL+KubeAuditPath, "application/json", []byte(body))
	if code != http.StatusOK || m["stored"] != float64(3) || m["truncated"] != float64(2) {
		t.Fatalf("status %d %v, want 3 stored, 2 objects truncated", code, m)
	}
	sum := sha256.Sum256([]byte(big))
	marker := fmt.Sprintf(`{"auditops.dev/truncated":true,"bytes":%d,"sha256":"%s"}`, len(big), hex.EncodeToString(sum[:]))
	got := map[string]int{}
	for _, e := range storedEvents(t, st, "team-a") {
		got[e.ID]++
		switch e.ID {
		case "big":
			if string(e.Request) != marker || string(e.Response) != marker || string(e.CurrentState) != marker {
				t.Errorf("oversized objects stored as %.200s, want the marker %s", e.Request, marker)
			}
			if e.Method != "create" || e.EntityID != "team-a/cm-big" || e.User != "alice" || e.Details != "kubectl/v1.37" {
				t.Errorf("truncation changed the rest of the event: %+v", e)
			}
		case "small":
			if len(e.Request) < 1<<10-10 || bytes.Contains(e.Request, []byte("truncated")) {
				t.Errorf("a small object was changed: %.100s", e.Request)
			}
		case "cut":
			if e.Details != "kubectl/v1.37; audit.k8s.io/truncated=true" {
				t.Errorf("details %q, want kube-apiserver's truncation annotation kept", e.Details)
			}
		}
	}
	if got["big"] != 1 || got["small"] != 1 || got["cut"] != 1 {
		t.Fatalf("stored %v", got)
	}
	if v := counterValue(t, reg, "auditops_ingest_truncated_objects_total", "source", ingest.SourceKubeAudit); v != 2 {
		t.Errorf("auditops_ingest_truncated_objects_total = %v, want 2", v)
	}
}

// streamBody writes a webhook EventList of n ConfigMap creates with objects
// of objBytes each into a pipe, so the body never exists in memory whole.
func streamBody(n, objBytes int) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		_, _ = io.WriteString(pw, `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[`)
		for i := range n {
			if i > 0 {
				_, _ = io.WriteString(pw, ",")
			}
			if _, err := io.WriteString(pw, kubeItem(fmt.Sprintf("big-%03d", i), fmt.Sprintf("cm-%03d", i), objBytes, "")); err != nil {
				return
			}
		}
		_, _ = io.WriteString(pw, `,`+kubeItem("the-small-one", "tiny", 200, "")+`]}`)
		pw.Close()
	}()
	return pr
}

// TestLargeBatchStreamsInBoundedMemory posts a 200 MiB webhook batch (100
// creates of ~1 MiB ConfigMaps, request and response objects each, and
// one small create after them), which a 32 MiB limit used to refuse whole:
// every event is stored, with markers, and the live heap stays far below
// the body's size.
func TestLargeBatchStreamsInBoundedMemory(t *testing.T) {
	st := newTestStore(t)
	srv := httptest.NewServer(NewHandler(ingest.NewService(st, ingest.Options{}), Options{}))
	defer srv.Close()
	const n, objBytes = 100, 1 << 20
	stop := make(chan struct{})
	peak := peakHeap(stop)
	req, err := http.NewRequest(http.MethodPost, srv.URL+KubeAuditPath, streamBody(n, objBytes))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	code, _, m := do(t, req)
	close(stop)
	heap := <-peak
	if code != http.StatusOK || m["stored"] != float64(n+1) || m["truncated"] != float64(2*n) {
		t.Fatalf("status %d %v, want %d stored and %d objects truncated", code, m, n+1, 2*n)
	}
	got := storedEvents(t, st, "team-a")
	if len(got) != n+1 || got[len(got)-1].ID != "the-small-one" && got[0].ID != "the-small-one" {
		t.Fatalf("stored %d events, want %d with the small create", len(got), n+1)
	}
	t.Logf("200 MiB batch: peak live heap %.1f MiB", float64(heap)/(1<<20))
	if heap > 96<<20 {
		t.Errorf("peak live heap %.1f MiB for a 200 MiB body: memory grows with the body", float64(heap)/(1<<20))
	}
}

// TestSpooledBatch: a batch whose events exceed BatchMemoryBytes waits in
// a spool file and is stored whole, part by part; a malformed event at its
// end still stores nothing.
// countingInserter counts the parts a batch was stored in, so the test can
// tell a spooled batch from one held in memory; failAfter, when set, makes
// reading the part after that many fail, as a spool that cannot be read.
type countingInserter struct {
	ingest.BatchInserter
	calls     atomic.Int64
	failAfter int64
}

func (c *countingInserter) Insert(ctx context.Context, events []store.Event) (store.InsertResult, error) {
	c.calls.Add(1)
	return c.BatchInserter.Insert(ctx, events)
}

func (c *countingInserter) InsertParts(ctx context.Context, next func() ([]store.Event, error)) (store.InsertResult, error) {
	return c.BatchInserter.InsertParts(ctx, func() ([]store.Event, error) {
		if c.failAfter > 0 && c.calls.Load() == c.failAfter {
			return nil, errors.New("reading a spooled batch: unexpected EOF")
		}
		part, err := next()
		if part != nil {
			c.calls.Add(1)
		}
		return part, err
	})
}

func TestSpooledBatch(t *testing.T) {
	st := &countingInserter{BatchInserter: newTestStore(t)}
	dir := t.TempDir()
	srv := httptest.NewServer(NewHandler(ingest.NewService(st, ingest.Options{BatchMemoryBytes: 32 << 10, SpoolDir: dir}), Options{}))
	defer srv.Close()
	var b strings.Builder
	const n = 2000
	// request: JSON values are stored as sent, white space and all, also
	// from the spool (encoding/json would compact them and escape <, >, &).
	request := func(i int) string { return fmt.Sprintf(`{"q": "a<b && c>d", "i": %d}`, i) }
	for i := range n {
		fmt.Fprintf(&b, `{"id":"e%04d","time":"2024-05-22T10:00:%02dZ","namespace":"spool","user":"u","message":"%s","request":%s}`+"\n",
			i, i%60, strings.Repeat("m", 100), request(i))
	}
	good := b.String()
	code, _, m := post(t, srv.URL+EventsPath, "application/x-ndjson", []byte(good+`{"id":"bad","time":"nope","namespace":"spool","user":"u"}`+"\n"))
	if code != http.StatusBadRequest || !strings.Contains(m["message"].(string), fmt.Sprintf("line %d", n+1)) {
		t.Fatalf("malformed last line: %d %v, want 400 naming line %d", code, m, n+1)
	}
	if got := storedEvents(t, st.BatchInserter.(store.Store), "spool"); len(got) != 0 || st.calls.Load() != 0 {
		t.Fatalf("a malformed spooled batch stored %d events in %d inserts", len(got), st.calls.Load())
	}
	// A spooled batch is one transaction (spec/API.md 2): its fifth part
	// failing, nothing of the four before is stored, and the sender, told
	// 503, retries all of it.
	st.failAfter = 4
	code, _, m = post(t, srv.URL+EventsPath, "application/x-ndjson", []byte(good))
	if code != http.StatusServiceUnavailable {
		t.Fatalf("a spooled batch whose fifth part fails: %d %v, want 503", code, m)
	}
	if got := storedEvents(t, st.BatchInserter.(store.Store), "spool"); len(got) != 0 {
		t.Fatalf("a spooled batch whose fifth part failed stored %d events", len(got))
	}
	st.failAfter = 0
	st.calls.Store(0)
	code, _, m = post(t, srv.URL+EventsPath, "application/x-ndjson", []byte(good))
	if code != http.StatusOK || m["stored"] != float64(n) {
		t.Fatalf("spooled batch: %d %v, want %d stored", code, m, n)
	}
	// ~700 KiB of events in parts of 32 KiB: many inserts, and the spool
	// file gone with the request (it is unlinked when created).
	if c := st.calls.Load(); c < 10 {
		t.Errorf("the batch took %d inserts: it was not spooled and stored in parts", c)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("spool dir holds %d files after the request", len(left))
	}
	code, _, m = post(t, srv.URL+EventsPath, "application/x-ndjson", []byte(good))
	if code != http.StatusOK || m["duplicates"] != float64(n) {
		t.Fatalf("re-sent spooled batch: %d %v, want %d duplicates", code, m, n)
	}
	// The same events re-sent in batches small enough to stay in memory
	// are re-sends too: what the spool stored is what was sent.
	lines := strings.SplitAfter(good, "\n")
	for i := 0; i < n; i += 100 {
		code, _, m = post(t, srv.URL+EventsPath, "application/x-ndjson", []byte(strings.Join(lines[i:i+100], "")))
		if code != http.StatusOK || m["duplicates"] != float64(100) {
			t.Fatalf("events %d to %d re-sent in a small batch: %d %v, want 100 duplicates", i, i+99, code, m)
		}
	}
	got := storedEvents(t, st.BatchInserter.(store.Store), "spool")
	if len(got) != n {
		t.Fatalf("stored %d events, want %d", len(got), n)
	}
	for _, e := range got {
		i, err := strconv.Atoi(strings.TrimPrefix(e.ID, "e"))
		if err != nil {
			t.Fatal(err)
		}
		if want := request(i); string(e.Request) != want {
			t.Fatalf("event %s: request %s, want %s as sent", e.ID, e.Request, want)
		}
	}
}

// TestReusedIDStoredAndCounted: through the handler, an event reusing a
// stored id is stored, reported in the answer and counted in
// auditops_ingest_id_reuse_total.
func TestReusedIDStoredAndCounted(t *testing.T) {
	st := newTestStore(t)
	reg := prometheus.NewRegistry()
	m := ingest.NewMetrics(reg)
	srv := httptest.NewServer(NewHandler(ingest.NewService(st, ingest.Options{Metrics: m}), Options{}))
	defer srv.Close()
	decoy := `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[` + strings.Replace(kubeItem("X", "decoy", 100, ""), `"code":201`, `"code":403`, 1) + `]}`
	action := `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[` + strings.Replace(kubeItem("X", "secret", 100, ""), `"verb":"create"`, `"verb":"delete"`, 1) + `]}`
	for i, body := range []string{decoy, action, action} {
		code, _, res := post(t, srv.URL+KubeAuditPath, "application/json", []byte(body))
		if code != http.StatusOK {
			t.Fatalf("post %d: %d %v", i, code, res)
		}
	}
	var verbs []string
	for _, e := range storedEvents(t, st, "team-a") {
		verbs = append(verbs, e.Method)
	}
	if strings.Join(verbs, ",") != "create,delete" {
		t.Fatalf("stored verbs %v, want the decoy and the action it tried to hide, once each", verbs)
	}
	if v := counterValue(t, reg, "auditops_ingest_id_reuse_total", "source", ingest.SourceKubeAudit); v != 1 {
		t.Errorf("auditops_ingest_id_reuse_total = %v, want 1", v)
	}
	if v := counterValue(t, reg, "auditops_ingest_events_total", "source", ingest.SourceKubeAudit, "result", "duplicate"); v != 1 {
		t.Errorf("duplicates = %v, want 1 (the re-sent action)", v)
	}
}

// TestRequestsCountedByCode: every ingest answer is counted by source and
// status code, and every commit's duration observed.
func TestRequestsCountedByCode(t *testing.T) {
	st := newTestStore(t)
	reg := prometheus.NewRegistry()
	m := ingest.NewMetrics(reg)
	srv := httptest.NewServer(NewHandler(ingest.NewService(st, ingest.Options{Metrics: m}), Options{MaxBytes: 64 << 10}))
	defer srv.Close()
	ok := `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[` + kubeItem("a", "cm-a", 100, "") + `]}`
	tooLarge := `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[` + kubeItem("b", "cm-b", 100<<10, "") + `]}`
	for _, tc := range []struct {
		path, body string
		code       int
	}{
		{KubeAuditPath, ok, http.StatusOK},
		{KubeAuditPath, ok, http.StatusOK}, // a re-send: 200, stores nothing
		{KubeAuditPath, `{"items":[`, http.StatusBadRequest},
		{KubeAuditPath, tooLarge, http.StatusRequestEntityTooLarge},
		{EventsPath, `{"id":"e","namespace":"n","user":"u","time":"2026-11-22T08:15:30Z"}`, http.StatusOK},
	} {
		if code, _, res := post(t, srv.URL+tc.path, "application/json", []byte(tc.body)); code != tc.code {
			t.Fatalf("POST %s: %d %v, want %d", tc.path, code, res, tc.code)
		}
	}
	for _, want := range []struct {
		source, code string
		n            float64
	}{
		{ingest.SourceKubeAudit, "200", 2}, {ingest.SourceKubeAudit, "400", 1}, {ingest.SourceKubeAudit, "413", 1},
		{ingest.SourceEvents, "200", 1},
	} {
		if v := counterValue(t, reg, "auditops_ingest_requests_total", "source", want.source, "code", want.code); v != want.n {
			t.Errorf("auditops_ingest_requests_total{source=%q,code=%q} = %v, want %v", want.source, want.code, v, want.n)
		}
	}
	if v := counterValue(t, reg, "auditops_store_insert_duration_seconds", "source", ingest.SourceKubeAudit); v != 2 {
		t.Errorf("auditops_store_insert_duration_seconds{source=kube-audit} has %v samples, want 2 (one per committed batch)", v)
	}
}

// TestOneLargeObjectWithinReservation: an event whose object is far larger
// than --max-event-object-bytes (a RequestResponse list, say) is cut as the
// body streams in, so the request holds no more than it reserved from its
// route's budget (18 MiB here), whatever the object's size. Its object was
// decoded whole before: a 32 MiB line took 156 MiB of heap. The marker
// still gives the object's size and SHA-256, and a create's name still
// comes from its response object.
func TestOneLargeObjectWithinReservation(t *testing.T) {
	const objBytes = 48 << 20
	obj := `{"kind":"ConfigMap","metadata":{"name":"cm-gen-x1","generateName":"cm-gen-"},"data":{"blob":"` + strings.Repeat("x", objBytes) + `"}}`
	sum := sha256.Sum256([]byte(obj))
	marker := fmt.Sprintf(`{"auditops.dev/truncated":true,"bytes":%d,"sha256":"%s"}`, len(obj), hex.EncodeToString(sum[:]))
	generic := func(id, request string) string {
		return `{"id":"` + id + `","time":"2024-05-22T10:00:00Z","namespace":"team-a","user":"alice","request":` + request + `}`
	}
	kube := strings.Replace(kubeItem("big", "", 100, ""), `"responseObject":`+bigObject(100), `"responseObject":`+obj, 1)
	for _, tc := range []struct {
		name, path string
		body       string
		hidden     bool // no Content-Length
		entityID   string
	}{
		{"events: NDJSON", EventsPath, generic("big", obj) + "\n" + generic("small", "{}") + "\n", true, ""},
		{"events: JSON array", EventsPath, "[" + generic("big", obj) + "," + generic("small", "{}") + "]", false, ""},
		{"webhook, length known", KubeAuditPath, `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[` + kube + "," + kubeItem("small", "cm-small", 100, "") + `]}`, false, "team-a/cm-gen-x1"},
		{"webhook, length unknown", KubeAuditPath, `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[` + kube + "," + kubeItem("small", "cm-small", 100, "") + `]}`, true, "team-a/cm-gen-x1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newTestStore(t)
			srv := httptest.NewServer(NewHandler(ingest.NewService(st, ingest.Options{}), Options{}))
			defer srv.Close()
			var body io.Reader = strings.NewReader(tc.body)
			size := int64(len(tc.body))
			if tc.hidden {
				body, size = lengthHidden{body}, -1
			}
			req, err := http.NewRequest(http.MethodPost, srv.URL+tc.path, body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			reserve := ingest.ReserveBytes(size, ingest.DefaultBatchMemoryBytes)
			base := liveHeap()
			stop := make(chan struct{})
			peak := peakHeap(stop)
			code, _, m := do(t, req)
			close(stop)
			top := <-peak
			grew := top - min(base, top)
			t.Logf("%.0f MiB body: %d %v, reserved %.2f MiB, heap peak %.1f MiB above the start", float64(len(tc.body))/(1<<20), code, m, float64(reserve)/(1<<20), float64(grew)/(1<<20))
			if code != http.StatusOK || m["stored"] != float64(2) {
				t.Fatalf("answer %d %v, want 200 with 2 stored", code, m)
			}
			if grew > uint64(reserve) {
				t.Errorf("the heap grew by %.1f MiB for a request that reserved %.2f MiB", float64(grew)/(1<<20), float64(reserve)/(1<<20))
			}
			for _, e := range storedEvents(t, st, "team-a") {
				if e.ID != "big" {
					continue
				}
				cut := e.Request
				if tc.path == KubeAuditPath {
					cut = e.Response
				}
				if string(cut) != marker {
					t.Errorf("the large object was stored as %.200s, want %s", cut, marker)
				}
				if e.EntityID != tc.entityID {
					t.Errorf("entityId %q, want %q", e.EntityID, tc.entityID)
				}
			}
		})
	}
}

// TestLongEventRefusedEarly: a generic event longer than 4 MiB besides its
// object fields (here 100 MiB of details) is refused naming it, and the
// request holds no more than it reserved: a caller allowed to ingest into
// one namespace could make the manager hold ~3x such an event before.
func TestLongEventRefusedEarly(t *testing.T) {
	details := strings.Repeat("d", 100<<20)
	event := func(id, details string) string {
		return `{"id":"` + id + `","time":"2024-05-22T10:00:00Z","namespace":"team-a","user":"alice","details":"` + details + `"}`
	}
	for _, tc := range []struct {
		name, body, where string
	}{
		{"NDJSON", event("ok", "x") + "\n" + event("long", details) + "\n", "line 2"},
		{"JSON array", "[" + event("ok", "x") + "," + event("long", details) + "]", "index 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newTestStore(t)
			srv := httptest.NewServer(NewHandler(ingest.NewService(st, ingest.Options{}), Options{}))
			defer srv.Close()
			req, err := http.NewRequest(http.MethodPost, srv.URL+EventsPath, lengthHidden{strings.NewReader(tc.body)})
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			reserve := ingest.ReserveBytes(-1, ingest.DefaultBatchMemoryBytes)
			base := liveHeap()
			stop := make(chan struct{})
			peak := peakHeap(stop)
			code, _, m := do(t, req)
			close(stop)
			grew := <-peak - base
			t.Logf("answer %d %v, heap peak %.1f MiB above the start (reserved %.2f MiB)", code, m, float64(grew)/(1<<20), float64(reserve)/(1<<20))
			want := tc.where + ": the event is more than 4 MiB long besides its object fields"
			if msg, _ := m["message"].(string); code != http.StatusBadRequest || !strings.Contains(msg, want) {
				t.Fatalf("answer %d %v, want 400 with %q", code, m, want)
			}
			if grew > uint64(reserve) {
				t.Errorf("the heap grew by %.1f MiB for a request that reserved %.2f MiB", float64(grew)/(1<<20), float64(reserve)/(1<<20))
			}
			if n := len(storedEvents(t, st, "team-a")); n != 0 {
				t.Errorf("%d events stored from a refused batch", n)
			}
		})
	}
}
