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
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/auditops/auditops/internal/ingest"
)

// benchmarkIngest posts 400-event batches from 4 concurrent senders through
// the real handler into a real SQLite store, each batch new events.
func benchmarkIngest(b *testing.B, path string, body func(n int, prefix string) []byte, storedPerBatch int) {
	st := newTestStore(b)
	srv := httptest.NewServer(NewHandler(ingest.NewService(st, ingest.Options{}), Options{}))
	defer srv.Close()
	const senders, batch = 4, 400
	// Bodies are built before timing: the senders' own cost is not ours.
	bodies := make([][]byte, b.N)
	for i := range bodies {
		bodies[i] = body(batch, fmt.Sprintf("b%d", i))
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for s := 0; s < senders; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				resp, err := http.Post(srv.URL+path, "application/json", bytes.NewReader(bodies[i]))
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(storedPerBatch*b.N)/b.Elapsed().Seconds(), "stored/s")
}

func BenchmarkIngestKubeAuditSQLite(b *testing.B) {
	benchmarkIngest(b, ingest.KubeAuditPath, webhookBody, 200)
}

func BenchmarkIngestEventsSQLite(b *testing.B) {
	benchmarkIngest(b, ingest.EventsPath, eventsBody, 400)
}
