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
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

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

// TestStandbySearchPathPinned: the role's search path, set behind the
// manager's back to list pg_catalog after a schema with an = of its own
// (false for mallory), reaches the hot standby too; its connections keep
// the primary's schema alone, so reads there find mallory's events (a
// second review: through the standby they found none).
func TestStandbySearchPathPinned(t *testing.T) {
	primaryURL, standbyURL := replicaDatabase(t)
	ctx := t.Context()
	p, err := New(ctx, primaryURL, store.Options{TokenKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	evs := replicaEvents("ns", 0, 2)
	evs[1].User = "mallory"
	if _, err := p.Insert(ctx, evs); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"CREATE SCHEMA x_evil",
		"CREATE FUNCTION x_evil.texteq(a text, b text) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$ SELECT pg_catalog.texteq(a, b) AND NOT pg_catalog.texteq(a, 'mallory') $$",
		"CREATE OPERATOR x_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = x_evil.texteq)",
		"DO $$ BEGIN EXECUTE format('ALTER ROLE %I IN DATABASE %I SET search_path = public, x_evil, pg_catalog', current_user, current_database()); END $$",
	} {
		if _, err := p.pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	p.Close()
	if p, err = New(ctx, primaryURL, store.Options{TokenKey: testKey}); err != nil {
		t.Fatal(err)
	}
	r, err := NewReplicated(ctx, p, standbyURL, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// The standby replays the role's setting; a session started since
	// reads it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := pgx.Connect(ctx, standbyURL)
		if err != nil {
			t.Fatal(err)
		}
		var path string
		err = c.QueryRow(ctx, "SHOW search_path").Scan(&path)
		c.Close(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(path, "x_evil") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the standby's sessions' search_path %q: the role's setting not replayed", path)
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.standby.pool.Reset()
	for _, tc := range []struct {
		name string
		s    store.Store
	}{{"primary", p}, {"replicated", r}, {"for reports", r.ForReports()}} {
		page, err := tc.s.Events(ctx, store.EventQuery{View: "test", Namespace: "ns", User: "mallory", Page: store.Page{Size: 10}})
		if err != nil || len(page.Events) != 1 {
			t.Errorf("%s: mallory's events %v, %v; want one", tc.name, page.Events, err)
		}
	}
}

// TestMigrationsUnchanged: no migration changes once written (a new one
// adds a line to testdata/migrations.sha256). A store that applied one
// keeps what it made, and the schema check compares that with what the
// migrations make now: an edit, even to a comment inside a statement,
// would stop every such store's sealing and ingest.
func TestMigrationsUnchanged(t *testing.T) {
	all, err := migrate.Load(migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join("testdata", "migrations.sha256"))
	if err != nil {
		t.Fatal(err)
	}
	if got := migrate.Sums(all); got != string(want) {
		t.Fatalf("migrations differ from testdata/migrations.sha256 (never edit one a store may have applied; add a new one):\n%s\nwant:\n%s", got, want)
	}
}
