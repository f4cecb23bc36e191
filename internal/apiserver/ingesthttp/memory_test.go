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
	"crypto/rand"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/auditops/auditops/internal/ingest"
	"github.com/auditops/auditops/internal/ingest/ingesttest"
	"github.com/auditops/auditops/internal/seal"
	"github.com/auditops/auditops/internal/store"
	"github.com/auditops/auditops/internal/store/sqlite"
)

// waitingStore tells when a request has reached the store.
type waitingStore struct {
	*sqlite.Store
	reached chan struct{}
	once    sync.Once
}

func (w *waitingStore) Insert(ctx context.Context, events []store.Event) (store.InsertResult, error) {
	w.once.Do(func() { close(w.reached) })
	return w.Store.Insert(ctx, events)
}

func (w *waitingStore) InsertParts(ctx context.Context, next func() ([]store.Event, error)) (store.InsertResult, error) {
	w.once.Do(func() { close(w.reached) })
	return w.Store.InsertParts(ctx, next)
}

// lengthHidden hides a body's length: it is sent chunked, as a sender
// that streams does.
type lengthHidden struct{ r io.Reader }

func (l lengthHidden) Read(p []byte) (int, error) { return l.r.Read(p) }

// TestHeldMemoryWithinReservation: what a request holds while it waits for
// a stuck store (its decoded events, their keys, payloads and leaves, and
// the body's copies its strings point into) must fit in the memory it
// reserved from its route's budget. Otherwise the
// budget does not bound memory: under a disk that stopped, the requests in
// flight hold several times what the budget allows, and the manager meets
// its container's limit (the fault suite's TestSlowStoreDuringIngest).
func TestHeldMemoryWithinReservation(t *testing.T) {
	kubeItems := func(n, objBytes int) []byte {
		items := make([]string, n)
		for i := range items {
			items[i] = ingesttest.KubeItem(fmt.Sprintf("big-%d", i), fmt.Sprintf("cm-%d", i), objBytes, "")
		}
		return []byte(`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[` + strings.Join(items, ",") + `]}`)
	}
	// The least an item can be: the most events for the bytes.
	minimalKube := func(n int) []byte {
		items := make([]string, n)
		for i := range items {
			items[i] = fmt.Sprintf(`{"auditID":"m%d","stage":"ResponseComplete","verb":"get","user":{"username":"a"},"objectRef":{"resource":"pods","namespace":"team-a"},"stageTimestamp":"2024-05-22T10:00:00.000001Z"}`, i)
		}
		return []byte(`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[` + strings.Join(items, ",") + `]}`)
	}
	minimalEvents := func(n int) []byte {
		var b bytes.Buffer
		for i := range n {
			fmt.Fprintf(&b, `{"id":"m%d","time":"2024-05-22T10:00:00Z","namespace":"team-a","user":"u","method":"m","api":"/a","status":"success"}`+"\n", i)
		}
		return b.Bytes()
	}
	bigEvents := func(n, objBytes int) []byte {
		var b bytes.Buffer
		obj := ingesttest.BigObject(objBytes)
		for i := range n {
			fmt.Fprintf(&b, `{"id":"b%d","time":"2024-05-22T10:00:00Z","namespace":"team-a","user":"u","method":"m","api":"/a","status":"success","request":%s,"response":%s}`+"\n", i, obj, obj)
		}
		return b.Bytes()
	}
	for _, tc := range []struct {
		name   string
		path   string
		body   []byte
		hidden bool // sent chunked, its length unknown
	}{
		{"webhook: 400 events of ~1.1 KB", KubeAuditPath, ingesttest.WebhookBody(400, "small"), false},
		{"webhook: 200 events with two 8 KiB objects", KubeAuditPath, kubeItems(200, 8<<10), false},
		{"webhook: 4,000 minimal events", KubeAuditPath, minimalKube(4000), false},
		{"webhook: 1,500 events with two 8 KiB objects, spooled", KubeAuditPath, kubeItems(1500, 8<<10), false},
		{"webhook: 40,000 minimal events, length unknown", KubeAuditPath, minimalKube(40000), true},
		{"events: 4,000 minimal events", EventsPath, minimalEvents(4000), false},
		{"events: 40,000 minimal events, length unknown", EventsPath, minimalEvents(40000), true},
		{"events: 300 events with two 8 KiB objects", EventsPath, bigEvents(300, 8<<10), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kr, err := seal.NewKeyring(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "audit.db")
			st, err := sqlite.New(t.Context(), path, store.Options{
				TokenKey: []byte("ingest-test-token-key-32-bytes!!"), BusyTimeout: 3 * time.Second,
				Leaves: seal.LeafMaker{Keys: kr},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			// Another program's transaction holds the write lock: the
			// request waits in the store with all it has prepared.
			other, err := sql.Open("sqlite", path+"?_txlock=immediate")
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			tx, err := other.BeginTx(t.Context(), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()

			ws := &waitingStore{Store: st, reached: make(chan struct{})}
			h := NewHandler(ingest.NewService(ws, ingest.Options{}), Options{})
			var reserved atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				reserved.Store(reserveFor(r, ingest.DefaultBatchMemoryBytes))
				h.ServeHTTP(w, r)
			}))
			defer srv.Close()
			var body io.Reader = bytes.NewReader(tc.body)
			if tc.hidden {
				body = lengthHidden{body}
			}
			req, err := http.NewRequest(http.MethodPost, srv.URL+tc.path, body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")

			base := liveHeap()
			done := make(chan int, 1)
			go func() {
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					done <- 0
					return
				}
				resp.Body.Close()
				done <- resp.StatusCode
			}()
			// Sampled while the request waits in the store: a collection
			// then counts what it holds, not what decoding is allocating.
			select {
			case <-ws.reached:
			case code := <-done:
				t.Fatalf("answer %d before the request reached the store", code)
			}
			var held uint64
			for waiting := true; waiting; {
				select {
				case code := <-done:
					if code != http.StatusServiceUnavailable {
						t.Fatalf("answer %d while the store is locked, want 503", code)
					}
					waiting = false
				case <-time.After(20 * time.Millisecond):
					h := liveHeap()
					held = max(held, h-min(base, h))
				}
			}
			r := reserved.Load()
			t.Logf("body %.2f MiB, reserved %.2f MiB, held at most %.2f MiB (%.1fx the body)",
				float64(len(tc.body))/(1<<20), float64(r)/(1<<20), float64(held)/(1<<20), float64(held)/float64(len(tc.body)))
			if held > uint64(r) {
				t.Errorf("the request held %.2f MiB while waiting for the store, more than the %.2f MiB it reserved", float64(held)/(1<<20), float64(r)/(1<<20))
			}
		})
	}
}

// TestTinyItemsDoNotAmplifyMemory: a webhook body of empty items, 3 bytes
// each, decoded whole would take a 320-byte auditv1.Event an item, ~100x
// its length: one 15 MiB request took 4.5 GiB, past any container's limit
// (a caller allowed to ingest could stop the manager, and with it the
// record of what it did next). Such a body streams: the heap stays small.
func TestTinyItemsDoNotAmplifyMemory(t *testing.T) {
	srv := httptest.NewServer(NewHandler(ingest.NewService(newTestStore(t), ingest.Options{}), Options{}))
	defer srv.Close()
	for _, n := range []int{1_300_000, 5_000_000} { // within the fast path's length, and past it
		body := []byte(`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[{}` + strings.Repeat(`,{}`, n-1) + `]}`)
		base := liveHeap()
		stop := make(chan struct{})
		peak := peakHeap(stop)
		req, err := http.NewRequest(http.MethodPost, srv.URL+KubeAuditPath, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		code, _, m := do(t, req)
		close(stop)
		top := <-peak
		grew := top - min(base, top)
		t.Logf("%d empty items (%.1f MiB): %d %v, heap peak %.1f MiB above the start", n, float64(len(body))/(1<<20), code, m, float64(grew)/(1<<20))
		if code != http.StatusOK || m["skipped"] != float64(n) {
			t.Errorf("answer %d %v, want 200 with %d skipped (no stage: not an event to store)", code, m, n)
		}
		if grew > 64<<20 {
			t.Errorf("the heap grew by %.1f MiB for a %.1f MiB body of empty items", float64(grew)/(1<<20), float64(len(body))/(1<<20))
		}
	}
}
