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

package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/auditops/auditops/internal/ingest/ingesttest"
	"github.com/auditops/auditops/internal/store"
)

// auditLog is a kube-apiserver JSON audit log of n requests, each logged at
// RequestReceived and ResponseComplete, as the log backend writes it.
func auditLog(n int, prefix string) []byte {
	var b bytes.Buffer
	for i := 0; i < n; i++ {
		for _, stage := range []string{"RequestReceived", "ResponseComplete"} {
			code := ""
			if stage == "ResponseComplete" {
				code = `,"responseStatus":{"metadata":{},"code":200}`
			}
			fmt.Fprintf(&b, `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"%s-%d","stage":"%s","requestURI":"/api/v1/namespaces/ns-%d/pods/p-%d","verb":"get","user":{"username":"alice","groups":["system:authenticated"]},"sourceIPs":["10.0.0.1"],"userAgent":"kubectl","objectRef":{"resource":"pods","namespace":"ns-%d","name":"p-%d","apiVersion":"v1"}%s,"requestReceivedTimestamp":"2026-11-22T08:00:%02d.000001Z","stageTimestamp":"2026-11-22T08:00:%02d.000002Z"}`+"\n",
				prefix, i, stage, i%2, i, i%2, i, code, i%60, i%60)
		}
	}
	return b.Bytes()
}

func writeFile(t *testing.T, dir, name string, data []byte, gz bool) string {
	t.Helper()
	if gz {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		if _, err := zw.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		data = b.Bytes()
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestImportKubeAudit(t *testing.T) {
	st := newTestStore(t)
	dir := t.TempDir()
	// A rotated, compressed log (its name says nothing: detected by magic
	// bytes) and the current plain one.
	rotated := writeFile(t, dir, "audit-2026-11-21T00-00-00.000.log", auditLog(250, "old"), true)
	current := writeFile(t, dir, "audit.log", auditLog(120, "new"), false)

	var progress bytes.Buffer
	stats, err := Import(context.Background(), st, FormatKubeAudit, []string{rotated, current}, ImportOptions{BatchSize: 64, Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Files != 2 || stats.Read != 740 || stats.Stored != 370 || stats.Duplicates != 0 || stats.Skipped != 370 || stats.Invalid != 0 {
		t.Errorf("first import: %+v", stats)
	}
	out := progress.String()
	// One final line (the import takes less than the second between lines).
	if !strings.HasPrefix(out, "\r") || !strings.HasSuffix(out, "\x1b[K\n") ||
		!strings.Contains(out, "files 2/2, 740 events read (370 stored, 0 duplicates, 370 skipped, 0 invalid)") {
		t.Errorf("progress %q", out)
	}

	// Re-running (an interrupted import resumed) stores nothing twice.
	stats, err = Import(context.Background(), st, FormatKubeAudit, []string{rotated, current}, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Stored != 0 || stats.Duplicates != 370 {
		t.Errorf("re-import: %+v", stats)
	}
	ns0 := storedEvents(t, st, "ns-0")
	if len(ns0) != 185 {
		t.Fatalf("ns-0 holds %d events, want 185", len(ns0))
	}
	e := ns0[0]
	if e.User != "alice" || e.API != "/pods" || e.EntityID == "" || e.StatusCode != 200 || e.Time.Nanosecond() != 2000 {
		t.Errorf("imported %+v", e)
	}
}

func TestImportEvents(t *testing.T) {
	st := newTestStore(t)
	dir := t.TempDir()
	nd := writeFile(t, dir, "events.ndjson.gz", eventsBody(30, "f"), true)
	arr := writeFile(t, dir, "events.json", []byte(`[{"id":"arr-1","time":"2024-05-22T10:00:00Z","namespace":"tenant-0","user":"u"}]`), false)
	stats, err := Import(context.Background(), st, FormatEvents, []string{nd, arr}, ImportOptions{BatchSize: 7})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Read != 31 || stats.Stored != 31 {
		t.Errorf("import: %+v", stats)
	}
	stats, err = Import(context.Background(), st, FormatEvents, []string{nd, arr}, ImportOptions{BatchSize: 7})
	if err != nil || stats.Stored != 0 || stats.Duplicates != 31 {
		t.Errorf("re-import: %+v, %v", stats, err)
	}
}

func TestImportErrors(t *testing.T) {
	st := newTestStore(t)
	dir := t.TempDir()
	// A log cut short by a crash: half a line at the end.
	log := auditLog(5, "cut")
	log = append(log, []byte(`{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"cut-`)...)
	cut := writeFile(t, dir, "cut.log.gz", log, true)

	_, err := Import(context.Background(), st, FormatKubeAudit, []string{cut}, ImportOptions{})
	var ie *InputError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), cut+" line 11: invalid JSON") {
		t.Errorf("err = %v, want an InputError at %s line 11", err, cut)
	}

	stats, err := Import(context.Background(), st, FormatKubeAudit, []string{cut}, ImportOptions{SkipInvalid: true})
	if err != nil || stats.Invalid != 1 || stats.Read != 10 {
		t.Errorf("SkipInvalid: %+v, %v", stats, err)
	}

	if _, err := Import(context.Background(), st, "syslog", []string{cut}, ImportOptions{}); err == nil || !strings.Contains(err.Error(), "unknown import format") {
		t.Errorf("unknown format: %v", err)
	}
	if _, err := Import(context.Background(), st, FormatEvents, []string{filepath.Join(dir, "missing")}, ImportOptions{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	bad := writeFile(t, dir, "bad.json", []byte(`[{"id":"x","time":"2024-05-22T10:00:00Z","namespace":"n"}]`), false)
	if _, err := Import(context.Background(), st, FormatEvents, []string{bad}, ImportOptions{}); err == nil || !strings.Contains(err.Error(), bad+` index 0: field "user"`) {
		t.Errorf("bad array: %v", err)
	}

	// The store going away mid-import is an error carrying what was done.
	closed := newTestStore(t)
	_ = closed.Close()
	stats, err = Import(context.Background(), closed, FormatKubeAudit, []string{cut}, ImportOptions{SkipInvalid: true})
	if err == nil || !strings.Contains(err.Error(), "storing a batch") || stats.Stored != 0 {
		t.Errorf("closed store: %+v, %v", stats, err)
	}
}

// countingInserter stores through st, counting the batches it holds at
// once; it fails the batch numbered failAt (from 1; 0: none), and calls
// cancel once the batch numbered cancelAt is stored.
type countingInserter struct {
	st       Inserter
	failAt   int64
	cancelAt int64
	cancel   context.CancelFunc
	calls    atomic.Int64
	inFlight atomic.Int64
	most     atomic.Int64
}

func (c *countingInserter) Insert(ctx context.Context, events []store.Event) (store.InsertResult, error) {
	n := c.inFlight.Add(1)
	defer c.inFlight.Add(-1)
	for m := c.most.Load(); n > m && !c.most.CompareAndSwap(m, n); m = c.most.Load() {
	}
	call := c.calls.Add(1)
	if call == c.failAt {
		return store.InsertResult{}, errors.New("disk on fire")
	}
	res, err := c.st.Insert(ctx, events)
	time.Sleep(time.Millisecond) // so that batches overlap
	if call == c.cancelAt {
		c.cancel() // after a batch that was stored
	}
	return res, err
}

// TestImportConcurrentBatches stores batches importWorkers at a time:
// every event exactly once, the stats adding up; a failing batch stops the
// import, counting exactly what was stored; a cancelled import is an error,
// whichever batches it had left.
func TestImportConcurrentBatches(t *testing.T) {
	dir := t.TempDir()
	log := writeFile(t, dir, "audit.log", auditLog(500, "c"), false)
	stored := func(st store.Store) int64 {
		return int64(len(storedEvents(t, st, "ns-0")) + len(storedEvents(t, st, "ns-1")))
	}

	st := newTestStore(t)
	ins := &countingInserter{st: st}
	stats, err := Import(t.Context(), ins, FormatKubeAudit, []string{log}, ImportOptions{BatchSize: 7})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Read != 1000 || stats.Skipped != 500 || stats.Stored != 500 || stats.Duplicates != 0 || stored(st) != 500 {
		t.Fatalf("stats %+v, %d in the store; want 1000 read, 500 skipped (RequestReceived), 500 stored", stats, stored(st))
	}
	if got, want := ins.most.Load(), int64(importWorkers(7)); got < 2 || got > want {
		t.Errorf("at most %d batches at once, want 2..%d", got, want)
	}
	// A re-run stores nothing twice.
	if stats, err = Import(t.Context(), st, FormatKubeAudit, []string{log}, ImportOptions{BatchSize: 7}); err != nil || stats.Stored != 0 || stats.Duplicates != 500 {
		t.Fatalf("re-run: %+v, %v; want 500 duplicates", stats, err)
	}

	failStore := newTestStore(t)
	failing := &countingInserter{st: failStore, failAt: 20}
	stats, err = Import(t.Context(), failing, FormatKubeAudit, []string{log}, ImportOptions{BatchSize: 7})
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("err = %v, want the store's", err)
	}
	// The batches in flight beside the failing one finish and are counted.
	if n := stored(failStore); stats.Stored == 0 || stats.Stored != n {
		t.Fatalf("stats say %d stored after the failure, the store holds %d", stats.Stored, n)
	}

	// A store that finishes what it was given whatever ctx says (as a
	// committed group does), so that only Import decides what a cancel
	// leaves unstored.
	for _, at := range []int64{1, 30, 64, 66, 67, 68, 69, 70} { // of 72 batches: near the end the reader is done
		ctx, cancel := context.WithCancel(t.Context())
		mem := &memInserter{}
		c := &countingInserter{st: mem, cancelAt: at, cancel: cancel}
		_, err := Import(ctx, c, FormatKubeAudit, []string{log}, ImportOptions{BatchSize: 7})
		// Success only when every event is stored (the last batches may
		// all have been handed over when the cancel came).
		if n := mem.n.Load(); (err == nil && n != 500) || (err != nil && !errors.Is(err, context.Canceled)) {
			t.Errorf("cancelled after batch %d: err = %v with %d of 500 stored, want context.Canceled or all", at, err, n)
		}
		cancel()
	}
}

// memInserter counts what it is given and stores nothing: it fails only
// when Import hands it a cancelled ctx before the batch (an Insert that
// checks ctx on the way in).
type memInserter struct{ n atomic.Int64 }

func (m *memInserter) Insert(ctx context.Context, events []store.Event) (store.InsertResult, error) {
	if err := ctx.Err(); err != nil {
		return store.InsertResult{}, err
	}
	m.n.Add(int64(len(events)))
	return store.InsertResult{Inserted: len(events)}, nil
}

// TestImportWorkers bounds what a large --batch-size puts in flight.
func TestImportWorkers(t *testing.T) {
	for _, c := range []struct{ batch, want int }{{1, 4}, {1000, 4}, {4000, 4}, {5000, 3}, {8000, 2}, {10000, 1}, {100000, 1}} {
		if got := importWorkers(c.batch); got != c.want {
			t.Errorf("importWorkers(%d) = %d, want %d", c.batch, got, c.want)
		}
	}
}

// TestImportCutsLongLines: an audit log line with a 40 MiB response object
// is imported holding the limit, not the line (the line was held whole, a
// few times over); the marker, the create's name from its response, and
// --skip-invalid past a line whose cut object is not valid JSON all hold.
func TestImportCutsLongLines(t *testing.T) {
	st := newTestStore(t)
	dir := t.TempDir()
	blob := strings.Repeat("x", 40<<20)
	obj := `{"kind":"ConfigMap","metadata":{"name":"cm-gen-x1","generateName":"cm-gen-"},"data":{"blob":"` + blob + `"}}`
	line := func(id, response string) string {
		return `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"` + id + `","stage":"ResponseComplete",` +
			`"requestURI":"/api/v1/namespaces/team-a/configmaps","verb":"create","user":{"username":"alice"},` +
			`"objectRef":{"resource":"configmaps","namespace":"team-a","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":201},` +
			`"responseObject":` + response + `,"stageTimestamp":"2026-11-22T08:00:00.000002Z"}` + "\n"
	}
	log := writeFile(t, dir, "big.log", []byte(line("big", obj)+line("broken", `{"data":"`+blob+`",}`)+line("small", `{"metadata":{"name":"cm-small"}}`)), false)
	base := ingesttest.LiveHeap()
	stop := make(chan struct{})
	peak := ingesttest.PeakHeap(stop)
	stats, err := Import(t.Context(), st, FormatKubeAudit, []string{log}, ImportOptions{SkipInvalid: true})
	close(stop)
	grew := <-peak - base
	t.Logf("%+v, heap peak %.1f MiB above the start", stats, float64(grew)/(1<<20))
	if err != nil || stats.Stored != 2 || stats.Invalid != 1 || stats.Truncated != 1 {
		t.Fatalf("%+v, %v: want 2 stored, 1 invalid, 1 object truncated", stats, err)
	}
	if grew > 32<<20 {
		t.Errorf("importing 40 MiB lines took %.1f MiB of heap", float64(grew)/(1<<20))
	}
	sum := sha256.Sum256([]byte(obj))
	marker := fmt.Sprintf(`{"auditops.dev/truncated":true,"bytes":%d,"sha256":"%s"}`, len(obj), hex.EncodeToString(sum[:]))
	for _, e := range storedEvents(t, st, "team-a") {
		switch e.ID {
		case "big":
			if string(e.Response) != marker || e.EntityID != "team-a/cm-gen-x1" {
				t.Errorf("big: response %.200s, entityId %q; want %s and team-a/cm-gen-x1", e.Response, e.EntityID, marker)
			}
		case "small":
			if e.EntityID != "team-a/cm-small" {
				t.Errorf("small: entityId %q", e.EntityID)
			}
		}
	}
	_, err = Import(t.Context(), st, FormatKubeAudit, []string{log}, ImportOptions{})
	if want := log + ` line 2: field "responseObject": invalid JSON: object key expected at byte`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want one containing %q", err, want)
	}
}

// TestImportRefusesLongEvents: a generic event longer than MaxEventBytes
// besides its objects is an invalid line for import too: skipped with
// --skip-invalid, else the error naming it.
func TestImportRefusesLongEvents(t *testing.T) {
	st := newTestStore(t)
	event := func(id, details string) string {
		return `{"id":"` + id + `","time":"2026-11-22T08:00:00Z","namespace":"team-a","user":"alice","details":"` + details + `"}` + "\n"
	}
	file := writeFile(t, t.TempDir(), "events.ndjson", []byte(event("long", strings.Repeat("d", 10<<20))+event("short", "x")), false)
	_, err := Import(t.Context(), st, FormatEvents, []string{file}, ImportOptions{})
	if want := file + " line 1: the event is more than 4 MiB long besides its object fields"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want one containing %q", err, want)
	}
	stats, err := Import(t.Context(), st, FormatEvents, []string{file}, ImportOptions{SkipInvalid: true})
	if err != nil || stats.Invalid != 1 || stats.Stored != 1 {
		t.Fatalf("--skip-invalid: %+v, %v; want the long event skipped and the short one stored", stats, err)
	}
}
