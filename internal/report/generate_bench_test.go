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

package report

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	reportsv1alpha1 "github.com/auditops/auditops/api/v1alpha1"
	"github.com/auditops/auditops/internal/store"
	"github.com/auditops/auditops/internal/store/postgres"
	"github.com/auditops/auditops/internal/store/sqlite"
	"github.com/auditops/auditops/internal/store/storetest"
)

// benchReportEvents is the size of the one tenant of the report
// benchmarks: BENCH_EVENTS, default 20000.
func benchReportEvents() int {
	if n, err := strconv.Atoi(os.Getenv("BENCH_EVENTS")); err == nil && n > 0 {
		return n
	}
	return 20000
}

// BenchmarkGenerate measures the generators alone (the bytes are dropped)
// over one tenant of realistic 1-2 KB events, per store; `make bench`
// measures them end to end. Run with hack/with-postgres.sh for PostgreSQL.
func BenchmarkGenerate(b *testing.B) {
	ctx := context.Background()
	opts := store.Options{TokenKey: []byte("report-bench-token-key-012345678")}
	stores := map[string]func(b *testing.B) store.Store{
		"sqlite": func(b *testing.B) store.Store {
			st, err := sqlite.New(ctx, filepath.Join(b.TempDir(), "audit.db"), opts)
			if err != nil {
				b.Fatal(err)
			}
			return st
		},
	}
	if os.Getenv(storetest.EnvPostgresURL) != "" {
		stores["postgres"] = func(b *testing.B) store.Store {
			st, err := postgres.New(ctx, storetest.PostgresDatabase(b), opts)
			if err != nil {
				b.Fatal(err)
			}
			return st
		}
	}
	for _, kind := range []string{"sqlite", "postgres"} {
		open, ok := stores[kind]
		if !ok {
			continue
		}
		b.Run(kind, func(b *testing.B) {
			st := open(b)
			defer st.Close()
			batch := make([]store.Event, 0, storetest.BenchBatch)
			n := benchReportEvents()
			for i := range n {
				batch = append(batch, storetest.BigEvent("bench", i, t0.Add(time.Duration(i)*time.Second)))
				if len(batch) == cap(batch) || i == n-1 {
					if _, err := st.Insert(ctx, batch); err != nil {
						b.Fatal(err)
					}
					batch = batch[:0]
				}
			}
			for _, typ := range []reportsv1alpha1.ReportType{reportsv1alpha1.AuditDetails, reportsv1alpha1.UserAccess, reportsv1alpha1.NamespaceUsersSummary} {
				b.Run(string(typ), func(b *testing.B) {
					p := Params{Type: typ, Namespace: "bench", Range: store.TimeRange{From: t0, To: t0.Add(time.Duration(n) * time.Second)}, PageSize: 500}
					var rows, bytes int64
					for b.Loop() {
						err := Generate(ctx, st, p, Cursor{}, func(_ context.Context, chunk []byte, next Cursor) error {
							rows, bytes = next.Records, bytes+int64(len(chunk))
							return nil
						})
						if err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
					b.SetBytes(bytes / int64(b.N))
				})
			}
		})
	}
}
