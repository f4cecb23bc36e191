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
