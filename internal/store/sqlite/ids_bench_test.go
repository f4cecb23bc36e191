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

package sqlite

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/auditops/auditops/internal/store"
)

// BenchmarkIDMerge measures a merge of ids_recent (mergeRecentIDs) in a
// store that already holds the id entries of n events: what it writes to
// the WAL per event it moves (walB/event), which decides how ingest slows
// as the store grows: straight into ids, and through ids_mid (tiersFrom).
// Each merge moves recentIDsMax entries of random hashes in 8 namespaces,
// as ingest would; the first merges only bring the tiers to their steady
// state and are not measured.
//
//	go test ./internal/store/sqlite -run '^$' -bench IDMerge -benchtime 6x
func BenchmarkIDMerge(b *testing.B) {
	for _, bc := range []struct {
		n      int
		tiered bool
	}{{1 << 20, false}, {1 << 20, true}, {1 << 21, false}, {1 << 21, true}, {1 << 22, false}, {1 << 22, true}} {
		b.Run(fmt.Sprintf("ids=%d/tiered=%v", bc.n, bc.tiered), func(b *testing.B) {
			n := bc.n
			path := filepath.Join(b.TempDir(), "audit.db")
			s := openStore(b, path, store.Options{TokenKey: testKey})
			if bc.tiered {
				setTiered(s)
			}
			ctx := b.Context()
			wal := path + "-wal"
			// Entries of events 1..n, in key order as a merge leaves them.
			if _, err := s.w.ExecContext(ctx, "INSERT INTO ids (namespace, id_hash, ts, seq)"+
				" SELECT * FROM (WITH RECURSIVE c(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM c WHERE v < ?)"+
				" SELECT 'ns-' || (v % 8), random(), v, v FROM c) ORDER BY 1, 2, 3, 4", n); err != nil {
				b.Fatal(err)
			}
			seq := int64(n)
			merge := func() int64 {
				b.Helper()
				if _, err := s.w.ExecContext(ctx, "INSERT INTO ids_recent (namespace, id_hash, ts, seq)"+
					" SELECT 'ns-' || (v % 8), random(), v, v FROM (WITH RECURSIVE c(v) AS (SELECT ? UNION ALL SELECT v + 1 FROM c WHERE v < ?) SELECT v FROM c)",
					seq+1, seq+s.recentIDsMax); err != nil {
					b.Fatal(err)
				}
				seq += s.recentIDsMax
				if _, err := s.w.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
					b.Fatal(err)
				}
				s.recentIDs.Store(s.recentIDsMax)
				s.mergeRecentIDs(ctx)
				if s.recentIDs.Load() != 0 {
					b.Fatal("the merge failed")
				}
				fi, err := os.Stat(wal)
				if err != nil {
					b.Fatal(err)
				}
				return fi.Size()
			}
			for range 20 {
				merge()
			}
			var written int64
			b.ResetTimer()
			for range b.N {
				written += merge()
			}
			b.ReportMetric(float64(written)/float64(int64(b.N)*s.recentIDsMax), "walB/event")
		})
	}
}
