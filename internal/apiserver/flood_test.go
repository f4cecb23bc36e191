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
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/auditops/auditops/internal/apiserver/ingesthttp"
	"github.com/auditops/auditops/internal/store"
	"github.com/auditops/auditops/internal/store/sqlite"
)

// trickle sends "[" and then a space every gap until ctx ends: an upload
// that holds its request open.
type trickle struct {
	ctx  context.Context
	sent bool
	gap  time.Duration
}

func (b *trickle) Read(p []byte) (int, error) {
	if !b.sent {
		b.sent = true
		p[0] = '['
		return 1, nil
	}
	select {
	case <-b.ctx.Done():
		return 0, b.ctx.Err()
	case <-time.After(b.gap):
		p[0] = ' '
		return 1, nil
	}
}

// TestIngestFloodKeepsWebhookRoom runs a server whose shared in-flight limit
// for mutating requests is 4, and has a tenant with ingest rights hold
// three times that many slow uploads open on the generic route while the
// audit webhook's identity posts a batch every 100 ms: every webhook batch
// must get 200 (in the shared pool they got 429, and kube-apiserver drops
// a batch it cannot deliver), the flood's excess 503 with Retry-After, and
// its slow uploads 408 once their time is up (the read deadline works
// through the API server's handler chain).
func TestIngestFloodKeepsWebhookRoom(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	st, err := sqlite.New(ctx, filepath.Join(dir, "flood.db"), store.Options{TokenKey: []byte("flood-test-token-key-0123456789ab")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	o := NewOptions()
	o.SecureServing.ServerCert.CertDirectory = dir
	stop, port, err := startServer(ctx, o, ts.kubeconfig, st, func(c *Config, d *Deps) {
		c.generic.MaxMutatingRequestsInFlight = 4
		d.IngestHTTP.EventsBudget = ingesthttp.Budget{Requests: 4}
		d.IngestHTTP.BudgetWait = 300 * time.Millisecond
		d.IngestHTTP.ReadTimeout = 4 * time.Second
		d.IngestHTTP.IdleTimeout = 2 * time.Second
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	base := "https://127.0.0.1:" + strconv.Itoa(port)
	client := func(user string) *http.Client {
		cfg := rest.CopyConfig(ts.users[user])
		cfg.Host = base
		// The server's certificate is self-signed at start.
		cfg.TLSClientConfig = rest.TLSClientConfig{Insecure: true, CertData: cfg.CertData, KeyData: cfg.KeyData}
		return httpClient(t, cfg)
	}
	tenant, webhook := client("reader"), client("admin")

	floodCtx, stopFlood := context.WithCancel(ctx)
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	for range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for floodCtx.Err() == nil {
				req, _ := http.NewRequestWithContext(floodCtx, http.MethodPost, base+"/ingest/v1/events", &trickle{ctx: floodCtx, gap: 500 * time.Millisecond})
				req.Header.Set("Content-Type", "application/json")
				resp, err := tenant.Do(req)
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if code := resp.StatusCode; code != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "" {
					mu.Lock()
					codes[code]++
					mu.Unlock()
				}
			}
		}()
	}

	time.Sleep(time.Second) // the flood holds every slot it can
	var sent, stored int
	for deadline := time.Now().Add(7 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		sent++
		body := fmt.Sprintf(`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[{"level":"Metadata","auditID":"flood-%d","stage":"ResponseComplete",`+
			`"requestURI":"/api/v1/namespaces/team-a/pods","verb":"list","user":{"username":"alice"},"objectRef":{"resource":"pods","namespace":"team-a","apiVersion":"v1"},`+
			`"responseStatus":{"code":200},"requestReceivedTimestamp":"2024-07-01T00:00:00.000000Z","stageTimestamp":"2024-07-01T00:00:00.100000Z"}]}`, sent)
		resp, err := webhook.Post(base+"/ingest/v1/kube-audit", "application/json", bytes.NewReader([]byte(body)))
		if err != nil {
			t.Errorf("webhook batch %d: %v", sent, err)
			continue
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			stored++
		} else {
			t.Errorf("webhook batch %d: %d %s", sent, resp.StatusCode, strings.TrimSpace(string(answer)))
		}
	}
	stopFlood()
	wg.Wait()
	t.Logf("webhook: %d of %d batches stored during the flood; the flood's answers: %v", stored, sent, codes)
	if codes[http.StatusServiceUnavailable] == 0 || codes[http.StatusRequestTimeout] == 0 {
		t.Errorf("the flood's answers %v: want 503s with Retry-After (no room) and 408s (slow bodies cut off)", codes)
	}
}
