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

package bench

import (
	"fmt"
	"math"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/auditops/auditops/internal/store/storetest"
)

func TestMain(m *testing.M) {
	if ChildMain() { // report jobs re-run this test binary
		return
	}
	os.Exit(m.Run())
}

// TestPipeline runs the whole benchmark on a small data set against SQLite
// and PostgreSQL: every phase works, every required metric is produced, and
// (checked by Run) every report has the row count of its SQL floor and the
// summary that of the jq pipeline.
func TestPipeline(t *testing.T) {
	pg := storetest.RequirePostgres(t)
	log := &testWriter{t: t}
	res, err := Run(t.Context(), Config{Events: 2000, Dir: t.TempDir(), PostgresURL: pg, PageIterations: 5, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	checkPhaseLines(t, log.String(), phaseCount(2, true, false, true, true))
	for _, name := range []string{
		"ingest_events_per_s{store=sqlite}", "ingest_events_per_s{store=postgres}",
		"import_events_per_s{store=sqlite}", "import_events_per_s{store=postgres}",
		"floor_insert_events_per_s{store=sqlite}", "floor_insert_events_per_s{store=postgres}",
		"report_seconds{type=NamespaceUsersSummary,store=sqlite}", "floor_sql_seconds{type=NamespaceUsersSummary,store=sqlite}",
		"report_rows_per_s{type=AuditDetails,store=sqlite}", "report_peak_rss_mib{type=AuditDetails}",
		"page_ms_p99{endpoint=audit-details,depth=1}", "page_ms_p99{endpoint=audit-details,depth=1000}",
		"floor_jq_seconds{type=NamespaceUsersSummary}",
		"seal_lag_p99_seconds{store=sqlite}", "seal_lag_p99_seconds{store=postgres}",
		"ingest_events_per_s{store=sqlite,seal=off}", "ingest_events_per_s{store=postgres,seal=off}",
		"seal_catchup_leaves_per_s{store=sqlite}", "seal_catchup_leaves_per_s{store=postgres}",
		"verify_events_per_s{store=sqlite}", "verify_events_per_s{store=postgres}",
		"store_bytes_per_event{store=sqlite,compacted=true}", "store_bytes_per_event{store=postgres,compacted=true}",
		"report_rows_per_s{type=AuditDetails,store=sqlite,pinned=true}", "report_rows_per_s{type=AuditDetails,store=postgres,pinned=true}",
	} {
		if v, ok := res.Get(name); !ok || v <= 0 {
			t.Errorf("%s = %v, %v; want a positive value", name, v, ok)
		}
	}
	// The store's parts add up to it, and the events are where the
	// bytes are.
	for store, biggest := range map[string]string{"sqlite": "events", "postgres": "events_default"} {
		whole, _ := res.Get("store_bytes_per_event{store=" + store + "}")
		var sum float64
		var parts []string
		for _, m := range res.Metrics {
			if p, ok := strings.CutPrefix(m.Metric, "store_bytes_per_event{store="+store+",part="); ok {
				sum += m.Value
				parts = append(parts, strings.TrimSuffix(p, "}"))
			}
		}
		if math.Abs(sum-whole) > whole/200 || !slices.Contains(parts, biggest) {
			t.Errorf("%s: parts %v add up to %.1f bytes per event, the store holds %.1f", store, parts, sum, whole)
		}
	}
	for _, m := range res.Metrics {
		if m.Metric == "floor_jq_seconds{type=NamespaceUsersSummary}" {
			t.Log(m.Note)
		}
	}
	out := t.TempDir() + "/results.json"
	if err := res.WriteJSON(out); err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	res.WriteTable(&table)
	t.Log("\n" + table.String())
}

// checkPhaseLines: each of the n phases logged its start, "[k/n] name ...",
// and then its end with a figure, its time and its storage writes,
// "[k/n] name: figure [1.2 s, 3 MiB written]",
// in order.
func checkPhaseLines(t *testing.T, log string, n int) {
	t.Helper()
	line := regexp.MustCompile(`bench: \[(\d+)/(\d+)\] (.*)`)
	var got []string
	for _, l := range strings.Split(log, "\n") {
		if m := line.FindStringSubmatch(l); m != nil {
			got = append(got, m[1]+"/"+m[2]+" "+m[3])
		}
	}
	if len(got) != 2*n {
		t.Fatalf("%d phase lines, want %d (a start and an end for each of %d phases):\n%s", len(got), 2*n, n, strings.Join(got, "\n"))
	}
	end := regexp.MustCompile(`: .*\d.* \[\d+\.\d s, \d+ MiB written\]$`)
	for k := 1; k <= n; k++ {
		start, done := got[2*k-2], got[2*k-1]
		prefix := fmt.Sprintf("%d/%d ", k, n)
		name, ok := strings.CutSuffix(strings.TrimPrefix(start, prefix), " ...")
		if !strings.HasPrefix(start, prefix) || !ok {
			t.Errorf("phase %d starts with %q", k, start)
			continue
		}
		if !strings.HasPrefix(done, prefix+name+": ") || !end.MatchString(done) {
			t.Errorf("phase %d (%s) ends with %q, want its figure and time", k, name, done)
		}
	}
}

// testWriter logs what the benchmark logs and keeps it.
type testWriter struct {
	t  *testing.T
	mu sync.Mutex
	b  strings.Builder
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *testWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
