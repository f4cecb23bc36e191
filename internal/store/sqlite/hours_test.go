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
	"github.com/auditops/auditops/internal/store/storetest"
)

// TestCategoryHoursMigration: migration 13 counts the events stored before
// it, rows from before 1970 among them (stored before times were checked,
// or by hand), which it never counts and the totals then count in the
// index; retention leaves no emptied hour behind. (storetest's
// CategoryTotals checks the totals of events stored after it.)
func TestCategoryHoursMigration(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "audit.db")
	s, err := open(ctx, path, store.Options{TokenKey: testKey}, 12)
	if err != nil {
		t.Fatal(err)
	}
	all := storetest.CategoryTotalsEvents()
	cats := []string{store.CategoryAccess, store.CategoryUser}
	for i, at := range []time.Time{time.Unix(-3600, 0), time.Unix(0, -1), time.Unix(-1800, 0), time.Unix(-1, 0), time.Unix(-7000, 0)} {
		all = append(all, store.Event{ID: fmt.Sprintf("old%d", i), Namespace: "a", User: "u", Status: store.StatusSuccess,
			Category: cats[i%2], Time: at})
	}
	insertBySQL(t, s, all)
	s.Close()
	s = openStore(t, path, store.Options{TokenKey: testKey})
	storetest.CheckCategoryTotals(t, s, all, "after the migration")
	var stale, negative int
	if err := s.r.QueryRowContext(ctx, "SELECT (SELECT count(*) FROM category_hours WHERE n <= 0),"+
		" (SELECT count(*) FROM category_hours AS h WHERE NOT EXISTS (SELECT 1 FROM events AS e WHERE e.namespace = h.namespace"+
		" AND e.category = h.category AND e.ts >= h.hour * ?1 AND e.ts < (h.hour + 1) * ?1))", sqlstore.HourNanos).Scan(&negative, &stale); err != nil {
		t.Fatal(err)
	}
	if stale+negative != 0 {
		t.Fatalf("after retention: %d hours of category_hours hold no event, %d count none or fewer", stale, negative)
	}
}
