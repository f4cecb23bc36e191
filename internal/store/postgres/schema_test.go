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

package postgres

import (
	"fmt"
	"testing"
	"time"

	"github.com/auditops/auditops/internal/store"
	"github.com/auditops/auditops/internal/store/internal/migrate"
	"github.com/auditops/auditops/internal/store/storetest"
)

// TestUpgradedSchemaIsNoChange: a store made at every schema version and
// upgraded, one version at a time, to the latest, then kept in day
// partitions (the legacy partition of its events of version 3 among
// them) and compacted, has no schema change (SchemaChanges): the check
// must not name an upgrade or the store's own upkeep a change, for the
// leader stops sealing on one.
func TestUpgradedSchemaIsNoChange(t *testing.T) {
	all, err := migrate.Load(migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	for _, from := range []int64{1, 3, 4, 8, int64(len(all))} {
		t.Run(fmt.Sprintf("from %d", from), func(t *testing.T) {
			ctx := t.Context()
			url := storetest.PostgresDatabase(t)
			for v := from; v <= int64(len(all)); v++ {
				s, err := open(ctx, url, store.Options{TokenKey: testKey}, v)
				if err != nil {
					t.Fatalf("version %d: %v", v, err)
				}
				if v == 3 {
					insertV3(t, s, []store.Event{partitionEvent("a", 1, time.Now().Add(-48*time.Hour))})
				}
				s.Close()
			}
			s, err := New(ctx, url, store.Options{TokenKey: testKey, DayPartitions: true})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			now := time.Now()
			for d := range 3 {
				if err := s.Maintain(ctx, now.Add(time.Duration(d)*24*time.Hour)); err != nil {
					t.Fatal(err)
				}
			}
			if changes, err := s.SchemaChanges(ctx); err != nil || len(changes) > 0 {
				t.Fatalf("upgraded from %d: %q, %v", from, changes, err)
			}
		})
	}
}
