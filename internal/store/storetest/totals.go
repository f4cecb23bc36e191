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

package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/auditops/auditops/internal/store"
)

// testCategoryTotals checks the totals of one category (the network CSV
// views' totalRecords, which both stores add from counts per hour) against
// the events stored: ranges that start and end on and between hours, open
// ones, ones from before 1970; after re-sends, after retention (row
// deletes: postgres' TestPartitionsByDay covers dropped partitions), and
// for every namespace and category a view reads.
func testCategoryTotals(t *testing.T, s store.Store) {
	all := CategoryTotalsEvents()
	for rest := all; len(rest) > 0; {
		n := min(len(rest), 97)
		mustInsert(t, s, rest[:n]...)
		// A re-send stores nothing, and counts nothing again.
		if res := mustInsert(t, s, rest[:n]...); res.Duplicates != n {
			t.Fatalf("re-send: %+v", res)
		}
		rest = rest[n:]
	}
	CheckCategoryTotals(t, s, all, "after ingest")
}

// totalsBase is when CategoryTotalsEvents begin.
var totalsBase = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// CategoryTotalsEvents are testCategoryTotals' events: two namespaces'
// events of every category seven minutes apart from 2026-11-01 for 70
// hours, and access and user events on and either side of an hour and at
// the epoch.
func CategoryTotalsEvents() []store.Event {
	var all []store.Event
	cats := []string{store.CategoryAccess, store.CategoryUser, store.CategoryData}
	for i := range 600 {
		all = append(all, ev([]string{"a", "b"}[i%2], fmt.Sprintf("e%d", i), totalsBase.Add(time.Duration(i)*7*time.Minute),
			func(e *store.Event) { e.Category = cats[i%3] }))
	}
	for i, at := range []time.Time{totalsBase.Add(5 * time.Hour), totalsBase.Add(5*time.Hour - 1), totalsBase.Add(5*time.Hour + 1), time.Unix(0, 0), time.Unix(0, 1)} {
		for _, c := range cats[:2] {
			all = append(all, ev("a", fmt.Sprintf("edge%d%s", i, c), at, func(e *store.Event) { e.Category = c }))
		}
	}
	return all
}

// CheckCategoryTotals compares the totals of each category a network CSV
// view reads, in namespaces a, b and c, over ranges that start and end on
// and between hours, open ones and ones from before 1970, with a count of
// the events of all s stores; then runs retention to 06:30 of the first
// day and compares again.
func CheckCategoryTotals(t *testing.T, s store.Store, all []store.Event, when string) {
	t.Helper()
	ctx := t.Context()
	at := func(h float64) time.Time { return totalsBase.Add(time.Duration(h * float64(time.Hour))) }
	ranges := []store.TimeRange{
		{},
		{From: totalsBase, To: at(24)},
		{From: at(1), To: at(5)},
		{From: at(1.5), To: at(5)},
		{From: at(1), To: at(5.25)},
		{From: at(0.1), To: at(0.9)},
		{From: at(2.2), To: at(3.1)},
		{From: at(5).Add(-1), To: at(5).Add(2)},
		{From: at(3)},
		{To: at(10)},
		{From: time.Unix(-7200, 0), To: time.Unix(3600, 0)},
		{From: time.Unix(-1800, 0), To: at(12)},
		{From: at(100), To: at(200)},
	}
	check := func(when string, cut time.Time) {
		t.Helper()
		for _, ns := range []string{"a", "b", "c"} {
			for _, cat := range []string{store.CategoryAccess, store.CategoryUser} {
				for _, r := range ranges {
					page, err := s.Events(ctx, store.EventQuery{View: "v", Namespace: ns, Category: cat, Range: r, Page: store.Page{Size: 1}, WithTotal: true})
					if err != nil {
						t.Fatal(err)
					}
					var want int64
					for _, e := range all {
						if e.Namespace == ns && e.Category == cat && !e.Time.Before(cut) &&
							(r.From.IsZero() || !e.Time.Before(r.From)) && (r.To.IsZero() || e.Time.Before(r.To)) {
							want++
						}
					}
					if page.Total != want {
						t.Errorf("%s: %s %s in [%v, %v): total %d, want %d", when, ns, cat, r.From, r.To, page.Total, want)
					}
				}
			}
		}
	}
	check(when, time.Time{})
	cut := at(6.5)
	if n, err := s.DeleteBefore(ctx, cut); err != nil || n == 0 {
		t.Fatalf("retention: %d, %v", n, err)
	}
	check(when+", then retention", cut)
}
