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
	"path/filepath"
	"testing"
	"time"

	"github.com/auditops/auditops/internal/store"
	"github.com/auditops/auditops/internal/store/internal/sqlstore"
)

// TestCategoryHours checks the totals of the network CSV views, which add
// whole hours from category_hours (migration 13), against a count of the
// events themselves: for ranges that start and end on and between hours,
// open ones, and ones from before 1970; after re-sends and after
// retention.
func TestCategoryHours(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var batch []store.Event
	add := func(ns, cat string, at time.Time) {
		batch = append(batch, store.Event{ID: fmt.Sprintf("e%d", len(batch)), Namespace: ns, User: "u", Status: store.StatusSuccess,
			Category: cat, Time: at})
	}
	cats := []string{store.CategoryAccess, store.CategoryUser, store.CategoryData}
	for i := range 600 {
		add([]string{"a", "b"}[i%2], cats[i%3], base.Add(time.Duration(i)*7*time.Minute))
	}
	for _, at := range []time.Time{base.Add(5 * time.Hour), base.Add(5*time.Hour - 1), base.Add(5*time.Hour + 1), time.Unix(0, 0), time.Unix(0, 1)} {
		add("a", store.CategoryAccess, at)
		add("a", store.CategoryUser, at)
	}
	for len(batch) > 0 {
		n := min(len(batch), 97)
		if _, err := s.Insert(ctx, batch[:n]); err != nil {
			t.Fatal(err)
		}
		// A re-send stores nothing, and counts nothing again.
		if res, err := s.Insert(ctx, batch[:n]); err != nil || res.Duplicates != n {
			t.Fatalf("re-send: %+v, %v", res, err)
		}
		batch = batch[n:]
	}

	ranges := totalRanges(base)
	checkTotals(t, s, "after ingest", ranges)
	if n, err := s.DeleteBefore(ctx, base.Add(6*time.Hour+30*time.Minute)); err != nil || n == 0 {
		t.Fatalf("retention: %d, %v", n, err)
	}
	checkTotals(t, s, "after retention", ranges)
}

// totalRanges are ranges around base that start and end on and between
// hours, open ones, and ones from before 1970.
func totalRanges(base time.Time) []store.TimeRange {
	at := func(h float64) time.Time { return base.Add(time.Duration(h * float64(time.Hour))) }
	return []store.TimeRange{
		{},
		{From: base, To: at(24)},
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
}

// checkTotals compares the network CSV views' totals of namespaces a, b
// and c in each range with a count of the events themselves.
func checkTotals(t *testing.T, s *Store, when string, ranges []store.TimeRange) {
	t.Helper()
	ctx := t.Context()
	for _, ns := range []string{"a", "b", "c"} {
		for _, cat := range []string{store.CategoryAccess, store.CategoryUser} {
			for _, r := range ranges {
				page, err := s.Events(ctx, store.EventQuery{View: "v", Namespace: ns, Category: cat, Range: r, Page: store.Page{Size: 1}, WithTotal: true})
				if err != nil {
					t.Fatal(err)
				}
				from, to := sqlstore.Bounds(r)
				var want int64
				if err := s.r.QueryRowContext(ctx, "SELECT count(*) FROM events WHERE namespace = ? AND category = ? AND ts >= ? AND ts < ?",
					ns, cat, from, to).Scan(&want); err != nil {
					t.Fatal(err)
				}
				if page.Total != want {
					t.Errorf("%s: %s %s in [%v, %v): total %d, want %d", when, ns, cat, r.From, r.To, page.Total, want)
				}
			}
		}
	}
	var negative int
	if err := s.r.QueryRowContext(ctx, "SELECT count(*) FROM category_hours WHERE n < 0").Scan(&negative); err != nil || negative != 0 {
		t.Fatalf("%s: %d hours counted below zero, %v", when, negative, err)
	}
}

// TestCategoryHoursMigration: migration 13 counts the events stored before
// it.
func TestCategoryHoursMigration(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "audit.db")
	s, err := open(ctx, path, store.Options{TokenKey: testKey}, 12)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	cats := []string{store.CategoryAccess, store.CategoryUser, store.CategoryData}
	// Rows from before 1970 (stored before times were checked, or by
	// hand): the table never counts them, the index does.
	var events []store.Event
	for i := range 300 {
		events = append(events, store.Event{ID: fmt.Sprintf("e%d", i), Namespace: []string{"a", "b"}[i%2], User: "u", Status: store.StatusSuccess,
			Category: cats[i%3], Time: base.Add(time.Duration(i) * 11 * time.Minute)})
	}
	for i, at := range []time.Time{time.Unix(-3600, 0), time.Unix(0, -1), time.Unix(-1800, 0), time.Unix(0, 0), time.Unix(-1, 0), time.Unix(-7000, 0)} {
		events = append(events, store.Event{ID: fmt.Sprintf("old%d", i), Namespace: "a", User: "u", Status: store.StatusSuccess,
			Category: cats[i%2], Time: at})
	}
	insertBySQL(t, s, events)
	s.Close()
	s = openStore(t, path, store.Options{TokenKey: testKey})
	checkTotals(t, s, "after the migration", totalRanges(base))
	// Retention empties hours, and they go.
	if _, err := s.DeleteBefore(ctx, base.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	checkTotals(t, s, "after retention", totalRanges(base))
	var stale int
	if err := s.r.QueryRowContext(ctx, "SELECT count(*) FROM category_hours WHERE hour < ?", base.Add(3*time.Hour).UnixNano()/sqlstore.HourNanos).Scan(&stale); err != nil || stale != 0 {
		t.Fatalf("%d hours before retention's cut still in category_hours (%v)", stale, err)
	}
}
