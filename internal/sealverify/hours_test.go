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

package sealverify

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/auditops/auditops/internal/seal"
	"github.com/auditops/auditops/internal/store"
)

// TestHourCounts: the counts per hour a store keeps for the network CSV
// views' totals (category_hours) are no leaf's; an intruder who lowers,
// deletes or invents one makes totalRecords lie while every row still
// matches its leaf. Verify compares them with the events, in one snapshot,
// and names each hour that differs; retention's deletions and the
// untouched store are not findings.
func TestHourCounts(t *testing.T) {
	hour := t0.Truncate(time.Hour).Unix() / 3600
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, st Store, exec func(*testing.T, string))
		want   []string // "category hour kept events", hour relative to t0's
	}{
		{name: "untouched", tamper: func(*testing.T, Store, func(*testing.T, string)) {}},
		{name: "retention", tamper: func(t *testing.T, st Store, _ func(*testing.T, string)) {
			if n, err := st.DeleteBefore(t.Context(), t0.Truncate(time.Hour).Add(time.Hour)); err != nil || n != 6 {
				t.Fatalf("DeleteBefore = %d, %v; want the 6 events of the first hour", n, err)
			}
		}},
		{name: "count lowered", tamper: func(t *testing.T, _ Store, exec func(*testing.T, string)) {
			exec(t, fmt.Sprintf("UPDATE category_hours SET n = 1 WHERE namespace = 'team-a' AND category = 'access' AND hour = %d", hour))
		}, want: []string{"access +0 1 4"}},
		{name: "hour deleted", tamper: func(t *testing.T, _ Store, exec func(*testing.T, string)) {
			exec(t, fmt.Sprintf("DELETE FROM category_hours WHERE namespace = 'team-a' AND category = 'user' AND hour = %d", hour+1))
		}, want: []string{"user +1 0 3"}},
		{name: "hour invented", tamper: func(t *testing.T, _ Store, exec func(*testing.T, string)) {
			exec(t, fmt.Sprintf("INSERT INTO category_hours (namespace, category, hour, n) VALUES ('team-a', 'access', %d, 7)", hour+5))
		}, want: []string{"access +5 7 0"}},
		{name: "hour out of time's range", tamper: func(t *testing.T, _ Store, exec func(*testing.T, string)) {
			exec(t, fmt.Sprintf("INSERT INTO category_hours (namespace, category, hour, n) VALUES ('team-a', 'user', %d, 1)", int64(1)<<62))
		}, want: []string{fmt.Sprintf("user +%d 1 0", int64(1)<<62-hour)}},
	} {
		for _, b := range backends {
			t.Run(b.name+"/"+tc.name, func(t *testing.T) {
				kr := newKeyring(t)
				st, exec := b.open(t, seal.LeafMaker{Keys: kr})
				var batch []store.Event
				add := func(id, category string, at time.Duration) {
					e := event("team-a", id, 0)
					e.Time, e.Category = t0.Truncate(time.Hour).Add(at), category
					batch = append(batch, e)
				}
				for i := range 4 { // the first hour: 4 access, 2 user
					add(fmt.Sprintf("acc%d", i), store.CategoryAccess, time.Duration(i)*time.Minute)
				}
				add("usr0", store.CategoryUser, 10*time.Minute)
				add("usr1", store.CategoryUser, 11*time.Minute)
				for i := range 3 { // the next: 3 user, 1 data
					add(fmt.Sprintf("usr%d", i+2), store.CategoryUser, time.Hour+time.Duration(i)*time.Minute)
				}
				add("data0", store.CategoryData, time.Hour+30*time.Minute)
				if res, err := st.Insert(t.Context(), batch); err != nil || res.Inserted != len(batch) {
					t.Fatalf("insert: %+v, %v", res, err)
				}
				now := time.Now()
				sealer := &seal.Sealer{Store: st, Keys: kr, Origin: seal.DefaultOriginPrefix, Now: func() time.Time { return now }}
				if _, err := sealer.SealAll(t.Context()); err != nil {
					t.Fatal(err)
				}
				if tc.name == "retention" {
					if unbound, err := sealer.BindRetention(t.Context(), t0.Truncate(time.Hour).Add(time.Hour)); err != nil || len(unbound) > 0 {
						t.Fatalf("BindRetention: %v, %v", unbound, err)
					}
				}
				tc.tamper(t, st, exec)
				vs, _ := seal.Verifiers(kr.VerifierKeys()...)
				var got []string
				if _, err := Verify(t.Context(), st, Options{Verifiers: vs, SealInterval: time.Minute, Now: func() time.Time { return now }}, func(f Finding) {
					t.Logf("finding: %+v", f)
					if f.Problem != Inconsistent || f.Namespace != "team-a" || f.Seq != nil || f.Index != nil {
						got = append(got, fmt.Sprintf("unexpected %+v", f))
						return
					}
					got = append(got, f.Detail)
				}); err != nil {
					t.Fatal(err)
				}
				var want []string
				for _, w := range tc.want {
					var cat string
					var rel, kept, events int64
					if _, err := fmt.Sscanf(w, "%s +%d %d %d", &cat, &rel, &kept, &events); err != nil {
						t.Fatal(err)
					}
					want = append(want, hourCountFinding("team-a", store.HourCount{Category: cat, Hour: hour + rel, Kept: kept, Events: events}).Detail)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
			})
		}
	}
}
