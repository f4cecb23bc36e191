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
	"fmt"
	"github.com/auditops/auditops/internal/ingest"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// slowBody sends head, then trickles one byte every gap until ctx ends:
// a sender that holds its request open.
type slowBody struct {
	ctx  context.Context
	head []byte
	gap  time.Duration
}

func (b *slowBody) Read(p []byte) (int, error) {
	if len(b.head) > 0 {
		n := copy(p, b.head)
		b.head = b.head[n:]
		return n, nil
	}
	select {
	case <-b.ctx.Done():
		return 0, b.ctx.Err()
	case <-time.After(b.gap):
		p[0] = ' '
		return 1, nil
	}
}

// TestIngestFloodKeepsWebhookRoom: a caller of the generic route who holds
// every request it can open with slow uploads, and sends large bodies as
// fast as it can, neither takes the audit webhook's room nor stalls it:
// every webhook batch gets 200 while the flood runs, and the flood's excess
// gets 503 with Retry-After (or 408 when it trickles too slowly), never a
// hung slot.
func TestIngestFloodKeepsWebhookRoom(t *testing.T) {
	st := newTestStore(t)
	h := NewHandler(ingest.NewService(st, ingest.Options{}), Options{EventsBudget: Budget{Requests: 4, MemoryBytes: 8 << 20}, KubeAuditBudget: Budget{Requests: 4, MemoryBytes: 8 << 20}, BudgetWait: 300 * time.Millisecond, ReadTimeout: 3 * time.Second, IdleTimeout: time.Second})
	srv := httptest.NewServer(h)
	defer srv.Close()
	ctx, stop := context.WithCancel(t.Context())
	defer stop()

	// Slow senders: twice the route's slots, each trickling a byte every
	// 300 ms (inside the idle timeout, so only the overall one ends them).
	var codes sync.Map // code -> *atomic.Int64
	count := func(code int) {
		v, _ := codes.LoadOrStore(code, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	}
	var wg sync.WaitGroup
	flood := func(body func() io.Reader) {
		defer wg.Done()
		for ctx.Err() == nil {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+EventsPath, body())
			req.Header.Set("Content-Type", "application/x-ndjson")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			count(resp.StatusCode)
		}
	}
	for range 8 {
		wg.Add(1)
		go flood(func() io.Reader { return &slowBody{ctx: ctx, head: []byte("["), gap: 300 * time.Millisecond} })
	}
	// The slow senders take the route's slots first, so that some are
	// admitted and cut off (408) however busy the machine is; on a loaded
	// machine the large bodies, started together with them, took every
	// slot and the slow ones only ever got 503s.
	time.Sleep(200 * time.Millisecond)
	big := bytes.Repeat(eventsBody(1, "flood"), 20000) // ~5 MB of NDJSON
	for range 4 {
		wg.Add(1)
		go flood(func() io.Reader { return bytes.NewReader(big) })
	}

	// The webhook, meanwhile: a batch every 100 ms for 6 s.
	time.Sleep(500 * time.Millisecond)
	var batches, ok int
	for deadline := time.Now().Add(6 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		batches++
		code, _, m := post(t, srv.URL+KubeAuditPath, "application/json", webhookBody(8, "w"+strings.Repeat("x", batches%7)+string(rune('a'+batches%26))))
		if code == http.StatusOK {
			ok++
		} else {
			t.Errorf("webhook batch %d: %d %v", batches, code, m)
		}
	}
	stop()
	wg.Wait()
	t.Logf("webhook: %d of %d batches stored; flood answers: %s", ok, batches, describeCodes(&codes))
	for _, want := range []int{http.StatusServiceUnavailable, http.StatusRequestTimeout} {
		if v, found := codes.Load(want); !found || v.(*atomic.Int64).Load() == 0 {
			t.Errorf("the flood got no %d: its excess must be refused and its slow bodies cut off", want)
		}
	}
}

func describeCodes(m *sync.Map) string {
	var parts []string
	m.Range(func(k, v any) bool {
		parts = append(parts, fmt.Sprintf("%d x%d", k.(int), v.(*atomic.Int64).Load()))
		return true
	})
	return strings.Join(parts, ", ")
}
