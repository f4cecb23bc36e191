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
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/metrics"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/auditops/auditops/internal/seal"
	"github.com/auditops/auditops/internal/store"
	"github.com/auditops/auditops/internal/store/internal/sqlstore"
	"github.com/auditops/auditops/internal/store/storetest"
)

var testKey = bytes.Repeat([]byte("k"), 32)

func newStore(t testing.TB) *Store {
	t.Helper()
	return newStoreWith(t, store.Options{TokenKey: testKey})
}

// sealerOf is a sealer of s's logs with keys kr.
func sealerOf(s *Store, kr *seal.Keyring) *seal.Sealer {
	return &seal.Sealer{Store: s, Keys: kr, Origin: seal.DefaultOriginPrefix, Now: time.Now}
}

// newStoreAt opens the SQLite file at path, its leaves made with kr.
func newStoreAt(t testing.TB, path string, kr *seal.Keyring) *Store {
	t.Helper()
	return openStore(t, path, store.Options{TokenKey: testKey, Leaves: seal.LeafMaker{Keys: kr}})
}

func newStoreWith(t testing.TB, opts store.Options) *Store {
	t.Helper()
	return openStore(t, filepath.Join(t.TempDir(), "audit.db"), opts)
}

// openStore opens the SQLite file at path and closes it when t ends.
func openStore(t testing.TB, path string, opts store.Options) *Store {
	t.Helper()
	s, err := New(context.Background(), path, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestSealing(t *testing.T) {
	storetest.RunSealing(t, func(t *testing.T, leaves store.LeafMaker) storetest.SealingStore {
		return newStoreWith(t, store.Options{TokenKey: testKey, Leaves: leaves})
	})
}

func TestConformance(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store { return newStore(t) })
	})
	t.Run("sqlite with leaves", func(t *testing.T) {
		kr, err := seal.NewKeyring(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		storetest.Run(t, func(t *testing.T) store.Store {
			return newStoreWith(t, store.Options{TokenKey: testKey, Leaves: seal.LeafMaker{Keys: kr}})
		})
	})
}

func BenchmarkInsert(b *testing.B) {
	storetest.BenchInsert(b, newStore(b))
}

// BenchmarkInsertLeaves is BenchmarkInsert with tamper-evidence leaves: the
// store's share of sealing's cost to ingest (no sealer runs).
func BenchmarkInsertLeaves(b *testing.B) {
	kr, err := seal.NewKeyring(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	storetest.BenchInsert(b, newStoreWith(b, store.Options{TokenKey: testKey, Leaves: seal.LeafMaker{Keys: kr}}))
}

func BenchmarkPages(b *testing.B) {
	storetest.BenchPages(b, newStore(b))
}

// TestQueryPlans checks that every view's page is an index range scan: no
// full scan of the table, no sort of the events for the keyset views.
func TestQueryPlans(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	// Give the planner something to plan on.
	var batch []store.Event
	for i := range 200 {
		batch = append(batch, store.Event{ID: string(rune('a'+i%26)) + strings.Repeat("x", i), Namespace: []string{"a", "b"}[i%2],
			User: []string{"u", "v", "w"}[i%3], Status: store.StatusSuccess, Category: []string{"access", "user", "data"}[i%3],
			Time: time.Unix(int64(i)*60, 0)})
	}
	if _, err := s.Insert(ctx, batch); err != nil {
		t.Fatal(err)
	}
	var seen []string
	capture := &planQueryer{t: t, db: s.r, seen: &seen}
	r := s.reader
	tok := func(q store.EventQuery) string {
		p, err := r.Events(ctx, capture, q)
		if err != nil {
			t.Fatal(err)
		}
		return p.NextToken
	}
	for _, q := range []store.EventQuery{
		{View: "v", Namespace: "a", Page: store.Page{Size: 2}, WithTotal: true},
		{View: "v", Namespace: "a", Category: "access", Page: store.Page{Size: 2}, WithTotal: true},
		{View: "v", Namespace: "a", Category: "user", Page: store.Page{Size: 2}, WithTotal: true},
		{View: "v", Namespace: "a", Category: "data", Page: store.Page{Size: 2}, WithTotal: true},
		{View: "v", Namespace: "a", User: "u", Page: store.Page{Size: 2}, WithTotal: true},
		{View: "v", Namespace: "a", User: "u", Category: "access", Page: store.Page{Size: 2}, WithTotal: true},
		{View: "v", Namespace: "a", Range: store.TimeRange{From: time.Unix(600, 0), To: time.Unix(6000, 0)}, Page: store.Page{Size: 2}},
	} {
		q.Page.Token = tok(q)
		tok(q)
	}
	sq := store.SummaryQuery{Namespace: "a", Page: store.Page{Size: 1}}
	p, err := r.Summary(ctx, capture, sq)
	if err != nil {
		t.Fatal(err)
	}
	sq.Page.Token = p.NextToken
	if _, err := r.Summary(ctx, capture, sq); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Summary(ctx, capture, store.SummaryQuery{Namespace: "a", User: "u", Page: store.Page{Size: 1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.UserLogs(ctx, capture, store.UserLogsQuery{Namespace: "a", User: "u", DeviceID: "d", Limit: 5, Offset: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.UserExists(ctx, capture, "a", "u"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.NextNamespace(ctx, capture, "a"); err != nil {
		t.Fatal(err)
	}
	// The retention statements.
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{"SELECT ts, seq FROM events WHERE namespace = ? AND ts < ? ORDER BY ts, seq LIMIT 1 OFFSET ?", []any{"a", 5, 9}},
		{"DELETE FROM events WHERE namespace = ? AND ts < ?", []any{"a", 5}},
		{"DELETE FROM events WHERE namespace = ? AND (ts, seq) <= (?, ?)", []any{"a", 5, 3}},
	} {
		capture.check(q.sql, q.args)
	}
	if len(seen) < 20 {
		t.Fatalf("only %d queries checked", len(seen))
	}
}

type planQueryer struct {
	t    *testing.T
	db   *sql.DB
	seen *[]string
}

func (p *planQueryer) check(query string, args []any) {
	p.t.Helper()
	// The one-row flag each read takes first (sqlstore.Reader.legacy).
	if strings.HasPrefix(query, "SELECT coalesce((SELECT in_use FROM legacy_columns") {
		return
	}
	lines := explainPlan(p.t, p.db, query, args)
	plan := strings.Join(lines, "\n")
	*p.seen = append(*p.seen, query)
	for _, l := range lines {
		if strings.HasPrefix(l, "SCAN events") || strings.HasPrefix(l, "SCAN category_hours") {
			p.t.Errorf("full scan:\n%s\nplan:\n%s", query, plan)
		}
		// Keyset views read rows in index order; only the summary's
		// per-date aggregation may sort (its groups, not pages of events).
		if strings.Contains(l, "TEMP B-TREE FOR ORDER BY") && strings.Contains(query, "ORDER BY ts") && !strings.Contains(query, "GROUP BY") {
			p.t.Errorf("sort of events:\n%s\nplan:\n%s", query, plan)
		}
	}
	if strings.Contains(query, "(ts, seq) >") && !strings.Contains(plan, "(ts,seq)>(?,?)") {
		p.t.Errorf("keyset cursor is not the start of the index range:\n%s\nplan:\n%s", query, plan)
	}
	// The content key serves a time range too, but holds none of the
	// columns read: a table lookup per row.
	if strings.Contains(plan, "USING INDEX events_content_key") {
		p.t.Errorf("events read through the content key:\n%s\nplan:\n%s", query, plan)
	}
	// A category read alone has a partial index of its own.
	for _, c := range []string{"access", "user"} {
		if strings.Contains(query, "category = '"+c+"'") && !strings.Contains(query, "user_name =") &&
			!strings.Contains(plan, " INDEX events_category_"+c+" (") {
			p.t.Errorf("category %s read without its index:\n%s\nplan:\n%s", c, query, plan)
		}
	}
	if !strings.Contains(plan, "SEARCH events") && !strings.Contains(plan, "SEARCH g") && !strings.Contains(plan, "SCAN g") {
		p.t.Errorf("no index search:\n%s\nplan:\n%s", query, plan)
	}
	p.t.Logf("%s\n  %s", query, strings.ReplaceAll(plan, "\n", "\n  "))
}

// explainPlan is the detail lines of EXPLAIN QUERY PLAN of query.
func explainPlan(t *testing.T, db *sql.DB, query string, args []any) []string {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatalf("explain %s: %v", query, err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

func (p *planQueryer) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	p.check(query, args)
	rows, err := p.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rows}, nil
}

// TestCheckConstraints checks the schema itself refuses what NormalizeEvent
// refuses, for writers that bypass it, and that such a failure maps to
// ErrInvalidEvent.
func TestCheckConstraints(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	good := store.Event{ID: "1", Namespace: "ns", User: "u", Status: store.StatusSuccess, Category: store.CategoryData, Time: time.Unix(1, 0)}
	cases := map[string]func(v []any){
		"status":     func(v []any) { v[5] = "ok" },
		"category":   func(v []any) { v[6] = "admin" },
		"empty id":   func(v []any) { v[2] = "" },
		"no user":    func(v []any) { v[3] = "" },
		"archived":   func(v []any) { v[15] = 2 },
		"ts as text": func(v []any) { v[1] = "yesterday" },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			err := s.write(ctx, opInsert, func(tx *sql.Tx) error {
				v := sqlstore.InsertValues(s.payload, &good)
				mutate(v)
				_, err := tx.ExecContext(ctx, "INSERT INTO events (seq, "+sqlstore.InsertColumns+") VALUES (1"+
					strings.Repeat(", ?", len(v))+")", v...)
				return err
			})
			if !errors.Is(err, store.ErrInvalidEvent) {
				t.Fatalf("raw insert = %v, want a constraint error wrapping ErrInvalidEvent", err)
			}
		})
	}
}

func TestMigrationsIdempotentAndVersioned(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	ctx := t.Context()
	s, err := New(ctx, path, store.Options{TokenKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Insert(ctx, []store.Event{{ID: "1", Namespace: "ns", User: "u", Status: "success", Time: time.Unix(1, 0)}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Reopening applies nothing twice and keeps the data.
	s, err = New(ctx, path, store.Options{TokenKey: testKey})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	var versions int
	if err := s.r.QueryRowContext(ctx, "SELECT count(*) FROM schema_migrations").Scan(&versions); err != nil || versions != 15 {
		t.Fatalf("schema_migrations rows = %d, %v", versions, err)
	}
	var mode string
	if err := s.r.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v; want wal", mode, err)
	}
	var pageSize, sync int
	if err := s.r.QueryRowContext(ctx, "PRAGMA page_size").Scan(&pageSize); err != nil || pageSize != 16384 {
		t.Fatalf("page_size = %d, %v; want 16384", pageSize, err)
	}
	if err := s.w.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil || sync != 2 {
		t.Fatalf("writer synchronous = %d, %v; want 2 (FULL)", sync, err)
	}
	if ok, err := s.UserExists(ctx, "ns", "u"); !ok || err != nil {
		t.Fatalf("data lost on reopen: %v, %v", ok, err)
	}
	// A database from a newer auditops is refused.
	if err := s.write(ctx, "bump", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations VALUES (99, '0099_future', 0)")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := New(ctx, path, store.Options{TokenKey: testKey}); err == nil {
		s.Close()
		t.Fatal("a database at a newer schema version was opened")
	} else if !strings.Contains(err.Error(), "newer") {
		t.Fatalf("error %v does not say the schema is newer", err)
	}
}

// TestBusyIsUnavailable holds the database's write lock from another
// connection (as another process would) and checks Insert gives up after
// the busy timeout with ErrUnavailable.
func TestBusyIsUnavailable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	ctx := t.Context()
	s, err := New(ctx, path, store.Options{TokenKey: testKey, BusyTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	other, err := sql.Open("sqlite", path+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tx, err := other.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	start := time.Now()
	_, err = s.Insert(ctx, []store.Event{{ID: "1", Namespace: "ns", User: "u", Status: "success", Time: time.Unix(1, 0)}})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Insert while locked = %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Insert waited %v", d)
	}
	// Reads go on meanwhile (WAL), but readiness reports the writes failing.
	if _, err := s.UserExists(ctx, "ns", "u"); err != nil {
		t.Fatalf("a read while locked: %v", err)
	}
	if err := s.Ping(ctx); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Ping while writes fail = %v, want ErrUnavailable", err)
	}
	tx.Rollback()
	if _, err := s.Insert(ctx, []store.Event{{ID: "1", Namespace: "ns", User: "u", Status: "success", Time: time.Unix(1, 0)}}); err != nil {
		t.Fatalf("Insert after unlock: %v", err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping after a write went through: %v", err)
	}
}

func TestNewRejects(t *testing.T) {
	ctx := t.Context()
	if _, err := New(ctx, filepath.Join(t.TempDir(), "a.db"), store.Options{}); err == nil {
		t.Fatal("no token key: no error")
	}
	for _, p := range []string{"", "a.db?mode=ro", "file:a.db"} {
		if _, err := New(ctx, p, store.Options{TokenKey: testKey}); err == nil {
			t.Fatalf("path %q: no error", p)
		}
	}
	if _, err := New(ctx, filepath.Join(t.TempDir(), "missing", "dir", "a.db"), store.Options{TokenKey: testKey}); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("unopenable file: %v, want ErrUnavailable", err)
	}
}

// TestGroupFailureFailsOnlyItsRequest: when one request of a group commit
// fails in the database (an event the validation let through), the others
// are stored with their own exact results and only its caller gets the
// error; nothing of it is stored, and seq stays gapless.
func TestGroupFailureFailsOnlyItsRequest(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	at := func(sec int64) time.Time { return time.Unix(sec, 0).UTC() }
	ev := func(id string, sec int64) store.Event {
		return store.Event{ID: id, Namespace: "ns", User: "u", Status: store.StatusSuccess, Category: store.CategoryData, Time: at(sec)}
	}
	mustInsert := func(events ...store.Event) {
		if _, err := s.Insert(ctx, events); err != nil {
			t.Fatal(err)
		}
	}
	mustInsert(ev("stored", 1))
	bad := ev("bad", 3)
	bad.Status = "neither" // not normalized: the CHECK constraint refuses it
	var reqs []*insertReq
	for _, batch := range [][]store.Event{{ev("a", 2), ev("stored", 1)}, {ev("b", 3), bad}, {ev("c", 4), ev("c", 4)}} {
		req, err := newInsertReq(t.Context(), batch, s.payload, nil)
		if err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, req)
	}
	s.insertGroup(ctx, reqs)
	want := []struct {
		res store.InsertResult
		bad bool
	}{{store.InsertResult{Inserted: 1, Duplicates: 1}, false}, {store.InsertResult{}, true}, {store.InsertResult{Inserted: 1, Duplicates: 1}, false}}
	for i, w := range want {
		if !reflect.DeepEqual(reqs[i].res, w.res) || (reqs[i].err != nil) != w.bad {
			t.Errorf("request %d: %+v, %v; want %+v, error %v", i, reqs[i].res, reqs[i].err, w.res, w.bad)
		}
	}
	if !errors.Is(reqs[1].err, store.ErrInvalidEvent) {
		t.Errorf("failed request's error %v does not wrap ErrInvalidEvent", reqs[1].err)
	}
	page, err := s.Events(ctx, store.EventQuery{View: "test", Namespace: "ns", Page: store.Page{Size: 10}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i, e := range page.Events {
		got = append(got, e.ID)
		if e.Seq != int64(i+1) {
			t.Errorf("%s has seq %d, want %d (gapless)", e.ID, e.Seq, i+1)
		}
	}
	if strings.Join(got, ",") != "stored,a,c" {
		t.Errorf("stored %v, want stored,a,c (nothing of the failed request)", got)
	}

	// A panic in the retry of a later request: the requests written alone
	// before it keep their results (their callers get 200, not a false
	// "not stored"), only the rest fail.
	reqs = reqs[:0]
	for _, batch := range [][]store.Event{{ev("d", 5)}, {ev("e", 6), bad}, {ev("f", 7)}} {
		req, err := newInsertReq(t.Context(), batch, s.payload, nil)
		if err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, req)
	}
	s.beforeInsert = func(rs []*insertReq) {
		if len(rs) == 1 && rs[0].events[0].ID == "f" {
			panic("injected")
		}
	}
	s.insertGroupRecovering(ctx, reqs)
	s.beforeInsert = nil
	if r := reqs[0]; r.err != nil || r.res.Inserted != 1 {
		t.Errorf("the request written before the panic: %+v, %v; want it stored", r.res, r.err)
	}
	if r := reqs[1]; !errors.Is(r.err, store.ErrInvalidEvent) {
		t.Errorf("the failed request: %v, want its own error", r.err)
	}
	if r := reqs[2]; r.err == nil || !strings.Contains(r.err.Error(), "panic") {
		t.Errorf("the request whose retry panicked: %+v, %v; want the panic as its error", r.res, r.err)
	}
}

// TestContentHashMigration builds a database at schema version 1, stores
// events in it as that version did, and migrates it: the rows are all
// kept, keyed by the same content hash Go computes (a re-send of each is a
// duplicate).
func TestContentHashMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	ctx := t.Context()
	v1, err := open(ctx, path, store.Options{TokenKey: testKey}, 1)
	if err != nil {
		t.Fatal(err)
	}
	events := storetest.MigrationEvents()
	err = v1.write(ctx, "seed", func(tx *sql.Tx) error {
		for i := range events {
			args := append([]any{int64(i + 1)}, storetest.V1Values(&events[i])...)
			if _, err := tx.ExecContext(ctx, "INSERT INTO events (seq, "+storetest.V1Columns+") VALUES (?"+
				strings.Repeat(", ?", len(args)-1)+")", args...); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, "UPDATE seq_counter SET next = ?", len(events)+1)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	v1.Close()
	s, err := New(ctx, path, store.Options{TokenKey: testKey})
	if err != nil {
		t.Fatalf("migrate: %v", err)
	}
	defer s.Close()
	storetest.CheckMigratedKeys(t, s, events)
	var bad string
	if err := s.r.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&bad); err != nil || bad != "ok" {
		t.Fatalf("integrity_check = %q, %v", bad, err)
	}
}

// TestLegacyColumnsMigration: storetest.RunLegacyColumnsMigration across
// migration 15.
func TestLegacyColumnsMigration(t *testing.T) {
	storetest.RunLegacyColumnsMigration(t, func(t *testing.T, columns string, values []any) (store.Store, bool) {
		ctx := t.Context()
		path := filepath.Join(t.TempDir(), "audit.db")
		before, err := open(ctx, path, store.Options{TokenKey: testKey}, 14)
		if err != nil {
			t.Fatal(err)
		}
		if err := before.write(ctx, "legacy insert", func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, "INSERT INTO events (seq, "+columns+") VALUES (1"+strings.Repeat(", ?", len(values))+")", values...)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		before.Close()
		s, err := New(ctx, path, store.Options{TokenKey: testKey})
		if err != nil {
			t.Fatal(err)
		}
		var legacy bool
		if err := s.r.QueryRowContext(ctx, "SELECT in_use FROM legacy_columns").Scan(&legacy); err != nil {
			t.Fatal(err)
		}
		return s, legacy
	})
}

// TestLeafPlaceMigration turns a store into what schema version 6 left
// (unsealed leaves without a place) and
// reopens it: migration 0007 places those leaves after each log's newest
// checkpoint, in seq order, and the sealer seals them as ingest's own.
func TestLeafPlaceMigration(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "audit.db")
	kr, err := seal.NewKeyring(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	opts := store.Options{TokenKey: testKey, Leaves: seal.LeafMaker{Keys: kr}}
	s, err := New(ctx, path, opts)
	if err != nil {
		t.Fatal(err)
	}
	var earlier storetest.EarlierEvents
	earlier.Insert(t, s, "team-a", "a1", "a2")
	if _, err := sealerOf(s, kr).SealAll(ctx); err != nil {
		t.Fatal(err)
	}
	earlier.Insert(t, s, "team-a", "a3", "a4", "a5")
	earlier.Insert(t, s, "team-b", "b1", "b2")
	for _, q := range []string{
		"UPDATE leaves SET place = NULL WHERE place >= coalesce((SELECT max(size) FROM checkpoints AS c WHERE c.namespace = leaves.namespace), 0)",
		"DELETE FROM schema_migrations WHERE version >= 7",
	} {
		if _, err := s.w.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// Schema 6's column names and indexes: migrations 8 to 15 run again.
	for _, q := range strings.Split(strings.TrimSpace(undoTextInPayload+undoSummaryFromTable+undoPlaceColumn+undoCategoryIndexes+undoIDTiers+undoCategoryHours+undoIDMiddleTier+undoLegacyColumns), "\n") {
		if q == "" {
			continue
		}
		if _, err := s.w.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s.Close()

	s, err = New(ctx, path, opts)
	if err != nil {
		t.Fatalf("migrate: %v", err)
	}
	defer s.Close()
	// Migration 12 gave every stored event its entry in ids
	// (TestCategoryHoursMigration checks 13).
	checkIDTiers(t, s)
	nss, err := s.UnsealedNamespaces(ctx)
	if err != nil || !slices.Equal(nss, []string{"team-a", "team-b"}) {
		t.Fatalf("unsealed namespaces after the migration: %v, %v", nss, err)
	}
	earlier.Insert(t, s, "team-a", "a6")
	res, err := sealerOf(s, kr).SealAll(ctx)
	if err != nil || res["team-a"].Sealed != 4 || res["team-b"].Sealed != 2 || len(res["team-a"].Refused)+len(res["team-b"].Refused) != 0 {
		t.Fatalf("sealing after the migration: %+v, %v", res, err)
	}
	storetest.CheckLog(t, s, "team-a", "a1", "a2", "a3", "a4", "a5", "a6")
	storetest.CheckLog(t, s, "team-b", "b1", "b2")
	// An id stored before the migration is found.
	reuse := store.Event{ID: "a1", Namespace: "team-a", User: "mallory", Status: store.StatusSuccess, Category: store.CategoryData, Time: time.Unix(1, 0)}
	if res, err := s.Insert(ctx, []store.Event{reuse}); err != nil || res.Inserted != 1 || res.Reused != 1 {
		t.Fatalf("an id stored before the migration, reused: %+v, %v; want 1 inserted, 1 reused", res, err)
	}
	var bad string
	if err := s.r.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&bad); err != nil || bad != "ok" {
		t.Fatalf("integrity_check = %q, %v", bad, err)
	}
}

// undoTextInPayload takes migration 8 (0008_text_in_payload.sql) back.
const undoTextInPayload = `
ALTER TABLE events RENAME COLUMN entity_kind_v1 TO entity_kind
ALTER TABLE events RENAME COLUMN entity_id_v1 TO entity_id
ALTER TABLE events RENAME COLUMN certificate_serial_number_v1 TO certificate_serial_number
ALTER TABLE events RENAME COLUMN issuer_dn_v1 TO issuer_dn
ALTER TABLE events RENAME COLUMN details_v1 TO details
ALTER TABLE events RENAME COLUMN archived_v1 TO archived
ALTER TABLE events RENAME COLUMN message_v1 TO message
ALTER TABLE events RENAME COLUMN error_v1 TO error
`

// undoPlaceColumn takes migration 10 (0010_leaf_place_column.sql) back.
const undoPlaceColumn = `
ALTER TABLE leaves RENAME COLUMN place TO idx
`

// undoCategoryIndexes takes migration 11
// (0011_category_partial_indexes.sql) back.
const undoCategoryIndexes = `
DROP INDEX events_category_access
DROP INDEX events_category_user
CREATE INDEX events_namespace_category ON events (namespace, category, ts, seq)
`

// undoIDTiers takes migration 12 (0012_id_tiers.sql) back.
const undoIDTiers = `
DROP TRIGGER events_ids_delete
DROP TABLE ids
DROP TABLE ids_recent
CREATE INDEX events_namespace_id ON events (namespace, id_hash)
`

// undoCategoryHours takes migration 13 (0013_category_hours.sql) back.
const undoCategoryHours = `
DROP TRIGGER events_category_hours_delete
DROP TABLE category_hours
`

// undoIDMiddleTier takes migration 14 (0014_id_middle_tier.sql) back, after
// undoIDTiers dropped its trigger.
const undoIDMiddleTier = `
DROP TABLE ids_mid
`

// undoLegacyColumns takes migration 15 (0015_legacy_columns.sql) back.
const undoLegacyColumns = `
DROP TABLE legacy_columns
`

// undoSummaryFromTable takes migration 9 (0009_summary_from_table.sql)
// back.
const undoSummaryFromTable = `
CREATE INDEX events_namespace_summary ON events (namespace, ts, user_name, api, status)
`

// TestStuckWriterQueue holds the writer, as a disk that takes 20 s per sync
// does, and checks what waits for it: a request whose caller has gone is
// not written, the queue refuses what would pass its bound (503, not
// memory), and Ping reports the stuck writer.
func TestStuckWriterQueue(t *testing.T) {
	ctx := t.Context()
	s, err := New(ctx, filepath.Join(t.TempDir(), "audit.db"), store.Options{TokenKey: testKey, BusyTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ev := func(id string) store.Event {
		return store.Event{ID: id, Namespace: "ns", User: "u", Status: store.StatusSuccess, Category: store.CategoryData, Time: time.Unix(1, 0)}
	}
	// The writer lock, taken as a long transaction would hold it. The
	// leader's wait for it is in flight for WriteHealth.
	s.wlock <- struct{}{}
	leader := make(chan error, 1)
	go func() { _, err := s.Insert(ctx, []store.Event{ev("first")}); leader <- err }()
	waitFor(t, func() bool { s.gmu.Lock(); defer s.gmu.Unlock(); return s.leading && len(s.pending) == 0 })

	gone, cancel := context.WithCancel(ctx)
	queued := make(chan error, 1)
	go func() { _, err := s.Insert(gone, []store.Event{ev("gone")}); queued <- err }()
	waitFor(t, func() bool { s.gmu.Lock(); defer s.gmu.Unlock(); return len(s.pending) == 1 })
	cancel()
	if err := <-queued; !errors.Is(err, context.Canceled) {
		t.Fatalf("the gone caller's Insert = %v, want context.Canceled", err)
	}
	// Its events left the queue with it: the ingest budget it released
	// bounds memory, not maxQueuedEvents.
	s.gmu.Lock()
	left, leftEvents := len(s.pending), s.queued
	s.gmu.Unlock()
	if left != 0 || leftEvents != 0 {
		t.Fatalf("%d requests (%d events) still queued after their caller has gone, want none", left, leftEvents)
	}
	live := make(chan error, 1)
	go func() { _, err := s.Insert(ctx, []store.Event{ev("live")}); live <- err }()
	waitFor(t, func() bool { s.gmu.Lock(); defer s.gmu.Unlock(); return len(s.pending) == 1 })

	big := make([]store.Event, maxQueuedEvents)
	for i := range big {
		big[i] = ev(fmt.Sprintf("big-%d", i))
	}
	// Refused at once, not after waiting for the writer like the leader.
	if _, err := s.Insert(ctx, big); !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "waiting for the writer") {
		t.Fatalf("an Insert past the queue's bound = %v, want ErrUnavailable: events are waiting for the writer", err)
	}
	// Past WriteHealth's limit (BusyTimeout) the stuck writer shows.
	waitFor(t, func() bool { return errors.Is(s.Ping(ctx), store.ErrUnavailable) })

	<-s.wlock // the disk answers again
	if err := <-leader; err != nil && !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("the leader: %v, want success or ErrUnavailable", err)
	}
	if err := <-live; err != nil && !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("the live queued caller: %v, want success or ErrUnavailable", err)
	}
	if _, err := s.Insert(ctx, []store.Event{ev("after")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { s.gmu.Lock(); defer s.gmu.Unlock(); return !s.leading })
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping after a write went through: %v", err)
	}
	page, err := s.Events(ctx, store.EventQuery{View: "test", Namespace: "ns", Page: store.Page{Size: 10}})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range page.Events {
		ids = append(ids, e.ID)
	}
	if slices.Contains(ids, "gone") || !slices.Contains(ids, "after") {
		t.Fatalf("stored %v, want [after] (and [first] if the leader got the writer in time): the gone caller's batch must not be written", ids)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for range 500 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition not met within 5 s")
}

// TestPanicInGroupCommit panics inside the leader's transaction: that
// group's callers get an error, nothing of it is stored, and the next
// Insert goes through (the writer connection and the leader role are free).
func TestPanicInGroupCommit(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	ev := func(id string) store.Event {
		return store.Event{ID: id, Namespace: "ns", User: "u", Status: store.StatusSuccess, Category: store.CategoryData, Time: time.Unix(1, 0)}
	}
	s.beforeInsert = func(reqs []*insertReq) {
		if reqs[0].events[0].ID == "boom" {
			panic("injected")
		}
	}
	if _, err := s.Insert(ctx, []store.Event{ev("boom"), ev("with-boom")}); err == nil || !strings.Contains(err.Error(), "panic") {
		t.Fatalf("Insert of a panicking group = %v, want the panic as an error", err)
	}
	done := make(chan error, 1)
	go func() { _, err := s.Insert(ctx, []store.Event{ev("after")}); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ingest is wedged after a panic in the group commit")
	}
	page, err := s.Events(ctx, store.EventQuery{View: "test", Namespace: "ns", Page: store.Page{Size: 10}})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 1 || page.Events[0].ID != "after" {
		t.Fatalf("stored %+v, want only the event after the panic", page.Events)
	}
}

// TestLegacyTimes: events before the Unix epoch, which earlier versions
// stored and Insert now refuses, are still read by every view
// (storetest.CheckLegacyTimes).
func TestLegacyTimes(t *testing.T) {
	s := newStore(t)
	insertBySQL(t, s, storetest.LegacyEvents())
	storetest.CheckLegacyTimes(t, s)
}

// insertBySQL stores events with plain INSERTs, seqs 1 and on, past every
// check of Insert (and past ids and category_hours): rows of an older
// version, or written by hand.
func insertBySQL(t *testing.T, s *Store, events []store.Event) {
	t.Helper()
	ctx := t.Context()
	err := s.write(ctx, "insert by SQL", func(tx *sql.Tx) error {
		for i := range events {
			v := append([]any{int64(i + 1)}, sqlstore.InsertValues(s.payload, &events[i])...)
			if _, err := tx.ExecContext(ctx, "INSERT INTO events (seq, "+sqlstore.InsertColumns+") VALUES (?"+
				strings.Repeat(", ?", len(v)-1)+")", v...); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, "UPDATE seq_counter SET next = ? WHERE id = 1", len(events)+1)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestPageBytes(t *testing.T) {
	storetest.RunPageBytes(t, func(t *testing.T, maxBytes int) store.Store {
		s, err := New(t.Context(), filepath.Join(t.TempDir(), "audit.db"), store.Options{TokenKey: testKey, MaxPageBytes: maxBytes})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

// TestPlacement: storetest.RunPlacement on SQLite files, written with SQL
// through a connection of their own.
func TestPlacement(t *testing.T) {
	storetest.RunPlacement(t, func(t *testing.T) storetest.PlacementDB {
		path := filepath.Join(t.TempDir(), "audit.db")
		var raw *sql.DB
		// Opened once the store made the file, as the store makes it.
		rawDB := func(t *testing.T) *sql.DB {
			t.Helper()
			if raw == nil {
				db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = db.Close() })
				raw = db
			}
			return raw
		}
		return storetest.PlacementDB{
			Open: func(t *testing.T, kr *seal.Keyring) storetest.PlacingStore { return newStoreAt(t, path, kr) },
			Exec: func(t *testing.T, q string, args ...any) {
				t.Helper()
				if _, err := rawDB(t).ExecContext(t.Context(), q, args...); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			},
			Value: func(t *testing.T, q string, args []any, dst ...any) {
				t.Helper()
				if err := rawDB(t).QueryRowContext(t.Context(), q, args...).Scan(dst...); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			},
		}
	})
}

// TestPayloads: storetest.CheckPayloads on a SQLite file.
func TestPayloads(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "audit.db")
	opts := store.Options{TokenKey: testKey, OnError: func(err error) { t.Errorf("store: %v", err) }}
	s, err := New(ctx, path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	// A manager of the version before, reading beside this one, fails
	// instead of reading events without their values.
	if err := s.r.QueryRowContext(ctx, "SELECT principal FROM events LIMIT 1").Scan(new([]byte)); err == nil || !strings.Contains(err.Error(), "principal") {
		t.Fatalf("reading the JSON column by its old name: %v; want an error naming it", err)
	}
	if err := s.r.QueryRowContext(ctx, "SELECT message FROM events LIMIT 1").Scan(new(string)); err == nil || !strings.Contains(err.Error(), "message") {
		t.Fatalf("reading the message column by its old name: %v; want an error naming it", err)
	}
	legacySeq := int64(1000)
	storetest.CheckPayloads(t, s, storetest.PayloadRaw{
		Dicts: func(t *testing.T) int {
			var n int
			if err := s.r.QueryRowContext(ctx, "SELECT count(*) FROM payload_dicts").Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		},
		Reopen: func(t *testing.T) store.Store {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if s, err = New(ctx, path, opts); err != nil {
				t.Fatal(err)
			}
			return s
		},
		Stored: func(t *testing.T, id string) (int, bool) {
			var n sql.NullInt64
			var legacyNull bool
			if err := s.r.QueryRowContext(ctx, "SELECT length(payload), "+storetest.LegacyEmpty+" FROM events WHERE id = ?", id).Scan(&n, &legacyNull); err != nil {
				t.Fatal(err)
			}
			if !n.Valid {
				return -1, legacyNull
			}
			return int(n.Int64), legacyNull
		},
		Insert: func(t *testing.T, columns string, values []any) {
			legacySeq++
			v := append([]any{legacySeq}, values...)
			if err := s.write(ctx, "legacy insert", func(tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, "INSERT INTO events (seq, "+columns+") VALUES (?"+
					strings.Repeat(", ?", len(v)-1)+")", v...)
				return err
			}); err != nil {
				t.Fatal(err)
			}
		},
		Corrupt: func(t *testing.T, id string) {
			if err := s.write(ctx, "corrupt", func(tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, "UPDATE events SET payload = X'0100deadbeef' WHERE id = ?", id)
				return err
			}); err != nil {
				t.Fatal(err)
			}
		},
		SetLegacy: func(t *testing.T) {
			if _, err := s.w.ExecContext(ctx, "UPDATE legacy_columns SET in_use = 1"); err != nil {
				t.Fatal(err)
			}
		},
	})
}

// TestGroupWaitsForABusyWriterOnce: a group that could not get the writer
// (another transaction held it for BusyTimeout) fails every request with
// that 503 at once, instead of retrying each alone, a BusyTimeout later
// each, while the writer is still taken.
func TestGroupWaitsForABusyWriterOnce(t *testing.T) {
	const busy = 300 * time.Millisecond
	s := newStoreWith(t, store.Options{TokenKey: testKey, BusyTimeout: busy})
	var reqs []*insertReq
	for i := range 4 {
		req, err := newInsertReq(t.Context(), []store.Event{{ID: fmt.Sprint(i), Namespace: "ns", User: "u", Status: store.StatusSuccess,
			Category: store.CategoryData, Time: time.Unix(int64(i+1), 0)}}, s.payload, nil)
		if err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, req)
	}
	s.wlock <- struct{}{} // a long transaction holds the writer
	start := time.Now()
	s.insertGroup(t.Context(), reqs)
	waited := time.Since(start)
	<-s.wlock
	for i, r := range reqs {
		if !errors.Is(r.err, store.ErrUnavailable) || !errors.Is(r.err, errWriterBusy) {
			t.Errorf("request %d: %v, want the writer's busy error (503)", i, r.err)
		}
	}
	// One wait, not five (the group's, then each request's): the bound
	// leaves room for a slow machine and none for a second wait.
	if waited >= 2*busy {
		t.Errorf("the group waited %s for a writer busy past %s: it retried", waited, busy)
	}
}

// TestSpooledBatchQueuesOthers: a spooled batch (InsertParts) longer than
// BusyTimeout does not fail the batches sent meanwhile: they wait for it in
// the writer's queue, within their own time, and are stored after it. It
// took the writer's lock beside the queue, and a group waiting for that
// lock failed with 503 after BusyTimeout.
func TestSpooledBatchQueuesOthers(t *testing.T) {
	const busy = 200 * time.Millisecond
	s := newStoreWith(t, store.Options{TokenKey: testKey, BusyTimeout: busy})
	ctx := t.Context()
	ev := func(id string, sec int64) store.Event {
		return store.Event{ID: id, Namespace: "ns", User: "u", Status: store.StatusSuccess, Category: store.CategoryData, Time: time.Unix(sec, 0)}
	}
	started := make(chan struct{})
	part := 0
	// Three parts, 4 x BusyTimeout in all.
	slowParts := func() ([]store.Event, error) {
		if part == 0 {
			close(started)
		}
		if part == 3 {
			return nil, nil
		}
		time.Sleep(busy * 4 / 3)
		part++
		return []store.Event{ev(fmt.Sprint("spooled-", part), int64(part))}, nil
	}
	spooled := make(chan error, 1)
	go func() {
		res, err := s.InsertParts(ctx, slowParts)
		if err == nil && res.Inserted != 3 {
			err = fmt.Errorf("stored %d of 3", res.Inserted)
		}
		spooled <- err
	}()
	<-started
	start := time.Now()
	if _, err := s.Insert(ctx, []store.Event{ev("meanwhile", 10)}); err != nil {
		t.Fatalf("a batch sent while a spooled batch was written: %v, want it stored after it", err)
	}
	t.Logf("the batch sent meanwhile waited %s", time.Since(start).Round(time.Millisecond))
	if err := <-spooled; err != nil {
		t.Fatal(err)
	}
	page, err := s.Events(ctx, store.EventQuery{View: "test", Namespace: "ns", Page: store.Page{Size: 10}})
	if err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	for _, e := range page.Events {
		seqs = append(seqs, e.Seq)
	}
	if len(page.Events) != 4 || page.Events[3].ID != "meanwhile" || !slices.IsSorted(seqs) {
		t.Fatalf("stored %+v, want the three spooled events, then the one sent meanwhile", page.Events)
	}
}

// TestWrittenBatchNotRetained: once Insert returns, nothing of its batch
// stays reachable from the writer's queue (its backing array kept the
// taken requests, events, payloads and leaves, after the caller had
// released its ingest budget).
func TestWrittenBatchNotRetained(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	ev := func(id string, req []byte) store.Event {
		return store.Event{ID: id, Namespace: "ns", User: "u", Status: store.StatusSuccess, Category: store.CategoryData, Time: time.Unix(1, 0), Request: req}
	}
	if _, err := s.Insert(ctx, []store.Event{ev("warm", nil)}); err != nil {
		t.Fatal(err)
	}
	liveHeap := func() uint64 {
		runtime.GC()
		runtime.GC() // and sync.Pool's victim cache
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	base := liveHeap()
	func() {
		raw := make([]byte, 6<<20)
		_, _ = rand.Read(raw) // incompressible: the payload is a copy
		req := []byte(`{"b":"` + base64.StdEncoding.EncodeToString(raw) + `"}`)
		if _, err := s.Insert(ctx, []store.Event{ev("big", req)}); err != nil {
			t.Fatal(err)
		}
	}()
	now := liveHeap()
	if held := now - min(base, now); held > 4<<20 {
		t.Errorf("%.1f MiB of a written 8 MiB batch stay reachable after Insert returned", float64(held)/(1<<20))
	}
}
