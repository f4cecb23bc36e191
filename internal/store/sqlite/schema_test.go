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
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/auditops/auditops/internal/store"
	"github.com/auditops/auditops/internal/store/internal/migrate"
)

// TestUpgradedSchemaIsNoChange: a store made at every schema version and
// upgraded, one version at a time after that, to the latest, has the
// schema a new store has (SchemaChanges
// finds nothing): the check must not name an upgrade a change, for the
// leader stops sealing on one. ANALYZE's statistics tables are no change.
func TestUpgradedSchemaIsNoChange(t *testing.T) {
	all, err := migrate.Load(migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	for from := int64(1); from <= int64(len(all)); from++ {
		t.Run(fmt.Sprintf("from %d", from), func(t *testing.T) {
			ctx := t.Context()
			path := filepath.Join(t.TempDir(), "audit.db")
			for v := from; v <= int64(len(all)); v++ {
				s, err := open(ctx, path, store.Options{TokenKey: testKey}, v)
				if err != nil {
					t.Fatalf("version %d: %v", v, err)
				}
				s.Close()
			}
			s, err := New(ctx, path, store.Options{TokenKey: testKey})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, err := s.w.ExecContext(ctx, "ANALYZE"); err != nil {
				t.Fatal(err)
			}
			if changes, err := s.SchemaChanges(ctx); err != nil || len(changes) > 0 {
				t.Fatalf("upgraded from %d: %q, %v", from, changes, err)
			}
		})
	}
}

func TestNormalSQL(t *testing.T) {
	for _, tc := range []struct{ a, b string }{
		{"CREATE TABLE t (\n    a INTEGER, -- why\n    b TEXT\n)", "CREATE TABLE t ( a INTEGER, b TEXT )"},
		{"SELECT 1 /* a\ncomment */ + 2", "SELECT 1 + 2"},
		{"SELECT '--  not a comment'", "SELECT '--  not a comment'"},
		{`SELECT "a  b" , [c  d]`, `SELECT "a  b" , [c  d]`},
	} {
		if got, want := normalSQL(tc.a), normalSQL(tc.b); got != want {
			t.Errorf("normalSQL(%q) = %q, normalSQL(%q) = %q; want equal", tc.a, got, tc.b, want)
		}
	}
	for _, tc := range []struct{ a, b string }{
		{"SELECT 'a -- b'", "SELECT 'a'"},
		{"SELECT 'x' -- y\n, 'z'", "SELECT 'x'"},
		{"SELECT 'a  b'", "SELECT 'a b'"},
	} {
		if normalSQL(tc.a) == normalSQL(tc.b) {
			t.Errorf("normalSQL(%q) = normalSQL(%q) = %q; want them apart", tc.a, tc.b, normalSQL(tc.a))
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

// TestWriterRunsTheCheckedSchema: a trigger the writer loaded with one
// of its writes, then taken out of sqlite_schema with PRAGMA
// writable_schema and the schema cookie set back (the writer sees no
// change to reload), fired on while the file showed none (a third
// review). The check has the writer reload its schema from the file
// first, so the writer runs what was checked.
func TestWriterRunsTheCheckedSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	ctx := t.Context()
	s, err := New(ctx, path, store.Options{TokenKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ev := func(id, user string, i int) store.Event {
		return store.Event{Namespace: "ns", ID: id, User: user, Time: time.Unix(1764583200+int64(i), 0), Category: store.CategoryAccess,
			API: "/pods", Method: "get", StatusCode: 200, Status: store.StatusSuccess}
	}
	if _, err := s.Insert(ctx, []store.Event{ev("a1", "alice", 1)}); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`CREATE TRIGGER x_gone AFTER INSERT ON events WHEN NEW.user_name = 'mallory' BEGIN DELETE FROM events WHERE seq = NEW.seq; END`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteBefore(ctx, time.Unix(0, 1)); err != nil { // a write: the writer loads the trigger
		t.Fatal(err)
	}
	var v int64
	if err := db.QueryRow("PRAGMA schema_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(fmt.Sprintf("PRAGMA writable_schema = ON; DELETE FROM sqlite_schema WHERE name = 'x_gone'; PRAGMA writable_schema = OFF; PRAGMA schema_version = %d", v)); err != nil {
		t.Fatal(err)
	}
	if changes, err := s.SchemaChanges(ctx); err != nil || len(changes) > 0 {
		t.Fatalf("schema changes %q, %v; want none (the file holds no trigger)", changes, err)
	}
	if res, err := s.Insert(ctx, []store.Event{ev("m1", "mallory", 2)}); err != nil || res.Inserted != 1 {
		t.Fatalf("insert: %+v, %v", res, err)
	}
	page, err := s.Events(ctx, store.EventQuery{View: "test", Namespace: "ns", Page: store.Page{Size: 10}})
	if err != nil || len(page.Events) != 2 {
		t.Fatalf("stored %d events (%v); want a1 and m1: the writer ran a trigger the file no longer holds", len(page.Events), err)
	}
}

// TestExpectedSchemaSurvivesACancelledCaller: the first check's caller
// gave up (a request timed out); the next check still runs.
func TestExpectedSchemaSurvivesACancelledCaller(t *testing.T) {
	s, err := New(t.Context(), filepath.Join(t.TempDir(), "audit.db"), store.Options{TokenKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.expected.schema = nil // as before the first check
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	_, _ = s.SchemaChanges(cancelled)
	if changes, err := s.SchemaChanges(t.Context()); err != nil || len(changes) > 0 {
		t.Fatalf("after a cancelled first check: %q, %v", changes, err)
	}
}
