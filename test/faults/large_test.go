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
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestLargeObjectsWithinMemoryLimit: kube-apiserver logs a create at
// RequestResponse level with a response object far over
// --max-event-object-bytes (a big ConfigMap, a list), and six such batches
// arrive at once. The manager, run as the chart runs it (512Mi), cuts the
// objects as the bodies stream in: every batch is stored, each object as
// its marker, and the manager's anonymous RSS stays far below the limit.
// Before, each request decoded its object whole (~290 MiB of heap for 48
// MiB), and six took the manager past its container's limit.
func TestLargeObjectsWithinMemoryLimit(t *testing.T) {
	st := sqliteUnderTest(t)
	cfg := configFor(t, st)
	cfg.env = append(cfg.env, fmt.Sprintf("AUDITOPS_MEMORY_LIMIT=%dMi", chartMemoryLimitMiB))
	p := startManager(t, cfg)
	ns := "faults-large"
	const batches, objectBytes = 6, 48 << 20
	blob := strings.Repeat("x", objectBytes)
	body := func(b int) []byte {
		ts := time.Now().UTC().Format("2006-01-02T15:04:05.000000Z07:00")
		item := func(id, response string) string {
			return `{"level":"RequestResponse","auditID":"` + id + `","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/` + ns +
				`/configmaps","verb":"create","user":{"username":"alice"},"objectRef":{"resource":"configmaps","namespace":"` + ns +
				`","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":201},"responseObject":` + response +
				`,"requestReceivedTimestamp":"` + ts + `","stageTimestamp":"` + ts + `"}`
		}
		big := fmt.Sprintf(`{"kind":"ConfigMap","metadata":{"name":"big-%d","generateName":"big-"},"data":{"blob":"%s"}}`, b, blob)
		return []byte(`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[` +
			item(fmt.Sprintf("big-%d", b), big) + "," + item(fmt.Sprintf("small-%d", b), `{"metadata":{"name":"small"}}`) + `]}`)
	}
	bodies := make([][]byte, batches)
	for b := range bodies {
		bodies[b] = body(b)
	}
	before := sample(t, p)
	var wg sync.WaitGroup
	results := make([]string, batches)
	for b := range bodies {
		wg.Go(func() {
			code, answer, err := post(t.Context(), ingestClient(), kubeAuditPath, bodies[b])
			var m map[string]any
			if err == nil && code == 200 && json.Unmarshal(answer, &m) == nil && m["stored"] == float64(2) && m["truncated"] == float64(1) {
				return
			}
			results[b] = fmt.Sprintf("batch %d: %d %s %v", b, code, answer, err)
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	most := before
	for waiting := true; waiting; {
		select {
		case <-done:
			waiting = false
		case <-time.After(100 * time.Millisecond):
			most = most.max(sample(t, p))
		}
	}
	for _, r := range results {
		if r != "" {
			t.Error(r)
		}
	}
	t.Logf("%d batches of a %d MiB object: anonymous RSS %.0f MiB before, at most %.0f MiB while they were stored (Go heap in use at most %.0f MiB)",
		batches, objectBytes>>20, before.anonMiB, most.anonMiB, most.heapMiB)
	if most.anonMiB > before.anonMiB+160 {
		t.Errorf("anonymous RSS grew from %.0f to %.0f MiB for %d MiB of objects cut as they streamed", before.anonMiB, most.anonMiB, batches*objectBytes>>20)
	}
	rows, err := st.rows(t.Context(), ns)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2*batches {
		t.Errorf("%d events stored, want %d", len(rows), 2*batches)
	}
}
