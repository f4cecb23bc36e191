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
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
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

// checkLog fails t unless ns's sealed log holds the events of want, in
// that order, at places 0, 1, 2...
func checkLog(t *testing.T, s *Store, ns string, want ...string) {
	t.Helper()
	leaves, err := s.Leaves(t.Context(), ns, 0, int64(len(want))+10)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i, l := range leaves {
		if l.Index != int64(i) {
			t.Fatalf("%s: leaf %d of the log is at %d", ns, i, l.Index)
		}
		ids = append(ids, l.ID)
	}
	if !slices.Equal(ids, want) {
		t.Fatalf("%s: the log holds %v, want %v", ns, ids, want)
	}
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
	rows, err := p.db.QueryContext(p.t.Context(), "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		p.t.Fatalf("explain %s: %v", query, err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			p.t.Fatal(err)
		}
		lines = append(lines, detail)
	}
	plan := strings.Join(lines, "\n")
	*p.seen = append(*p.seen, query)
	for _, l := range lines {
		if strings.HasPrefix(l, "SCAN events") {
			p.t.Errorf("full scan of events:\n%s\nplan:\n%s", query, plan)
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
	if !strings.Contains(plan, "SEARCH events") && !strings.Contains(plan, "SEARCH g") && !strings.Contains(plan, "SCAN g") {
		p.t.Errorf("no index search:\n%s\nplan:\n%s", query, plan)
	}
	p.t.Logf("%s\n  %s", query, strings.ReplaceAll(plan, "\n", "\n  "))
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
	if err := s.r.QueryRowContext(ctx, "SELECT count(*) FROM schema_migrations").Scan(&versions); err != nil || versions != 9 {
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
	at := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	// ingest stores one event per id, each a minute before the one
	// before it: places follow seq, not time.
	minute := 0
	ingest := func(s *Store, ns string, ids ...string) {
		t.Helper()
		for _, id := range ids {
			minute--
			e := store.Event{ID: id, Namespace: ns, User: "alice", Status: "success", Category: "data", Time: at.Add(time.Duration(minute) * time.Minute)}
			if res, err := s.Insert(ctx, []store.Event{e}); err != nil || res.Inserted != 1 {
				t.Fatalf("insert %s: %+v, %v", id, res, err)
			}
		}
	}
	ingest(s, "team-a", "a1", "a2")
	if _, err := sealerOf(s, kr).SealAll(ctx); err != nil {
		t.Fatal(err)
	}
	ingest(s, "team-a", "a3", "a4", "a5")
	ingest(s, "team-b", "b1", "b2")
	for _, q := range []string{
		"UPDATE leaves SET idx = NULL WHERE idx >= coalesce((SELECT max(size) FROM checkpoints AS c WHERE c.namespace = leaves.namespace), 0)",
		"DELETE FROM schema_migrations WHERE version >= 7",
	} {
		if _, err := s.w.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// Schema 6's column names and indexes: migrations 8 and 9 run again.
	for _, q := range strings.Split(strings.TrimSpace(undoTextInPayload+undoSummaryFromTable), "\n") {
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
	nss, err := s.UnsealedNamespaces(ctx)
	if err != nil || !slices.Equal(nss, []string{"team-a", "team-b"}) {
		t.Fatalf("unsealed namespaces after the migration: %v, %v", nss, err)
	}
	ingest(s, "team-a", "a6")
	res, err := sealerOf(s, kr).SealAll(ctx)
	if err != nil || res["team-a"].Sealed != 4 || res["team-b"].Sealed != 2 || len(res["team-a"].Refused)+len(res["team-b"].Refused) != 0 {
		t.Fatalf("sealing after the migration: %+v, %v", res, err)
	}
	checkLog(t, s, "team-a", "a1", "a2", "a3", "a4", "a5", "a6")
	checkLog(t, s, "team-b", "b1", "b2")
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
	ctx := t.Context()
	events := storetest.LegacyEvents()
	err := s.write(ctx, "legacy insert", func(tx *sql.Tx) error {
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
	storetest.CheckLegacyTimes(t, s)
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

// TestSealerRefusesRowsWrittenWithSQL does to a real database file what an
// intruder with write access but no seal key can: leaves inserted with SQL
// (the MAC made up, or copied from another event's leaf), with no place in
// the log or at the places ingest gives next, and ingested leaves' places
// swapped. The sealer never seals a forged leaf; every ingested one is
// sealed, at contiguous places, and ingest goes on after them.
func TestSealerRefusesRowsWrittenWithSQL(t *testing.T) {
	at := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		// placed: the forged leaves take the log's next places, between
		// ingested ones, as ingest would place them.
		placed bool
		// swap: the places of the second and third ingested leaves
		// are swapped, before anything is sealed.
		swap bool
		// gap: the second ingested leaf is moved past the log's end,
		// leaving a gap no refusal closes.
		gap bool
		// hide: the second ingested leaf's place is taken away, to keep
		// it from the sealer.
		hide bool
		// want: the log's events after the first seal, in order.
		want []string
	}{
		{name: "forged leaves without a place", want: []string{"r1", "r2", "r3"}},
		{name: "forged leaves at the next places", placed: true, want: []string{"r1", "r2", "r3"}},
		{name: "ingested leaves' places swapped", placed: true, swap: true, want: []string{"r1", "r3", "r2"}},
		{name: "ingested leaf moved past the log's end", gap: true, want: []string{"r1", "r3", "r2"}},
		{name: "ingested leaf's place taken away", hide: true, want: []string{"r1", "r3", "r2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			kr, err := seal.NewKeyring(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			s := newStoreWith(t, store.Options{TokenKey: testKey, Leaves: seal.LeafMaker{Keys: kr}})
			ingest := func(id string, sec int) {
				t.Helper()
				e := store.Event{ID: id, Namespace: "team-a", User: "alice", Status: "success", Category: "data", Time: at.Add(time.Duration(sec) * time.Second)}
				if res, err := s.Insert(ctx, []store.Event{e}); err != nil || res.Inserted != 1 {
					t.Fatalf("insert %s: %+v, %v", id, res, err)
				}
			}
			exec := func(q string, args ...any) {
				t.Helper()
				if _, err := s.w.ExecContext(ctx, q, args...); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			ingest("r1", 0)
			var realMAC []byte
			if err := s.r.QueryRowContext(ctx, "SELECT mac FROM leaves WHERE namespace = 'team-a'").Scan(&realMAC); err != nil {
				t.Fatal(err)
			}
			forged := store.Event{ID: "forged", Namespace: "team-a", User: "alice", Status: "success", Category: "data", Time: at.Add(time.Second), Seq: 100}
			d, err := seal.Digest(&forged, seal.EncodingV1)
			if err != nil {
				t.Fatal(err)
			}
			data := seal.LeafData(forged.Time, d)
			for _, f := range []struct {
				seq int64
				mac []byte
			}{{100, make([]byte, 32)}, {101, realMAC}} {
				place := "NULL"
				if tc.placed {
					place = "(SELECT max(idx) + 1 FROM leaves WHERE namespace = 'team-a')"
				}
				exec("INSERT INTO leaves (namespace, ts, seq, version, data, mac, idx, created) VALUES ('team-a', ?, ?, 1, ?, ?, "+place+", 0)",
					forged.Time.UnixNano(), f.seq, data[:], f.mac)
			}
			ingest("r2", 2)
			ingest("r3", 3)
			if tc.swap {
				exec("UPDATE leaves SET idx = -1 WHERE namespace = 'team-a' AND idx = 3")
				exec("UPDATE leaves SET idx = 3 WHERE namespace = 'team-a' AND idx = 4")
				exec("UPDATE leaves SET idx = 4 WHERE namespace = 'team-a' AND idx = -1")
			}
			if tc.gap {
				exec("UPDATE leaves SET idx = 9 WHERE namespace = 'team-a' AND idx = 1")
			}
			if tc.hide {
				exec("UPDATE leaves SET idx = NULL WHERE namespace = 'team-a' AND idx = 1")
			}
			sealer := sealerOf(s, kr)
			res, err := sealer.Seal(ctx, "team-a")
			if err != nil {
				t.Fatal(err)
			}
			// Placed or not, the sealer reads them and refuses them.
			refused := []int64{100, 101}
			if res.Sealed != 3 || !slices.Equal(res.Refused, refused) {
				t.Fatalf("sealed %d, refused %v: want the 3 ingested events sealed and %v refused", res.Sealed, res.Refused, refused)
			}
			checkLog(t, s, "team-a", tc.want...)
			for _, seq := range []int64{100, 101} {
				l, ok, err := s.LeafAt(ctx, "team-a", store.Position{Time: forged.Time.UnixNano(), Seq: seq})
				if err != nil || !ok || l.Index != -1 {
					t.Fatalf("forged leaf %d: %+v, %v, %v: want it there, unsealed", seq, l, ok, err)
				}
				var placed bool
				if err := s.r.QueryRowContext(ctx, "SELECT idx IS NOT NULL FROM leaves WHERE namespace = 'team-a' AND seq = ?", seq).Scan(&placed); err != nil || placed {
					t.Fatalf("forged leaf %d keeps a place in the log (%v)", seq, err)
				}
			}
			// Ingest goes on at the next place, and the next seal finds
			// nothing to mend; the forged leaves are refused again, as
			// on every run (a key added to the ring later would seal
			// them: TestRefusedLeafSealsOnceItsKeyIsKnown).
			ingest("r4", 4)
			res, err = sealer.Seal(ctx, "team-a")
			if err != nil || res.Sealed != 1 || !slices.Equal(res.Refused, refused) {
				t.Fatalf("second seal: %+v, %v", res, err)
			}
			checkLog(t, s, "team-a", append(slices.Clone(tc.want), "r4")...)
		})
	}
}

// TestRefusedLeafSealsOnceItsKeyIsKnown: leaves MACed with a key the
// sealer's ring lacks (written by a process that loaded a rotated ring
// first, such as manager import during a rotation) are refused and give
// their places up, but are read again each run: a sealer whose ring has
// the key seals them, after the leaves ingested meanwhile.
func TestRefusedLeafSealsOnceItsKeyIsKnown(t *testing.T) {
	ctx := t.Context()
	old, err := seal.NewKeyring(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := old.Rotate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "audit.db")
	at := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	ingest := func(kr *seal.Keyring, ids ...string) {
		t.Helper()
		s, err := New(ctx, path, store.Options{TokenKey: testKey, Leaves: seal.LeafMaker{Keys: kr}})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		for i, id := range ids {
			e := store.Event{ID: id, Namespace: "team-a", User: "alice", Status: "success", Category: "data", Time: at.Add(time.Duration(i) * time.Second)}
			if res, err := s.Insert(ctx, []store.Event{e}); err != nil || res.Inserted != 1 {
				t.Fatalf("insert %s: %+v, %v", id, res, err)
			}
		}
	}
	ingest(old, "a1")
	ingest(rotated, "new1", "new2")
	ingest(old, "a2")
	s := newStoreAt(t, path, old)
	res, err := sealerOf(s, old).Seal(ctx, "team-a")
	if err != nil || res.Sealed != 2 || len(res.Refused) != 2 {
		t.Fatalf("sealing with the old ring: %+v, %v: want a1 and a2 sealed, new1 and new2 refused", res, err)
	}
	// Refused again, run after run, without rewriting the log.
	res, err = sealerOf(s, old).Seal(ctx, "team-a")
	if err != nil || res.Sealed != 0 || len(res.Refused) != 2 {
		t.Fatalf("sealing again with the old ring: %+v, %v", res, err)
	}
	if nss, err := s.UnsealedNamespaces(ctx); err != nil || !slices.Equal(nss, []string{"team-a"}) {
		t.Fatalf("unsealed namespaces with refused leaves: %v, %v", nss, err)
	}
	res, err = sealerOf(s, rotated).Seal(ctx, "team-a")
	if err != nil || res.Sealed != 2 || len(res.Refused) != 0 {
		t.Fatalf("sealing with the rotated ring: %+v, %v: want new1 and new2 sealed", res, err)
	}
	checkLog(t, s, "team-a", "a1", "a2", "new1", "new2")
	if nss, err := s.UnsealedNamespaces(ctx); err != nil || len(nss) != 0 {
		t.Fatalf("unsealed namespaces after sealing all: %v, %v", nss, err)
	}
}

// TestSealerStopsAtACopiedLeaf: a copy of an unsealed leaf's row under
// another key (ts) keeps a MAC that checks; the sealer must not sign a
// log holding one event twice.
func TestSealerStopsAtACopiedLeaf(t *testing.T) {
	ctx := t.Context()
	kr, err := seal.NewKeyring(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s := newStoreWith(t, store.Options{TokenKey: testKey, Leaves: seal.LeafMaker{Keys: kr}})
	e := store.Event{ID: "r1", Namespace: "team-a", User: "alice", Status: "success", Category: "data", Time: time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)}
	if _, err := s.Insert(ctx, []store.Event{e}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, "INSERT INTO leaves (namespace, ts, seq, version, data, mac, idx, created)"+
		" SELECT namespace, ts + 1, seq, version, data, mac, idx + 1, created FROM leaves WHERE namespace = 'team-a'"); err != nil {
		t.Fatal(err)
	}
	_, err = sealerOf(s, kr).Seal(ctx, "team-a")
	if !errors.Is(err, seal.ErrLogAltered) {
		t.Fatalf("sealing a log with a copied leaf: %v, want ErrLogAltered", err)
	}
	if size, err := s.LogSize(ctx, "team-a"); err != nil || size != 0 {
		t.Fatalf("log size %d (%v): nothing may be signed", size, err)
	}
}

// TestPinnedReadBeyondTheLog: a read pinned to a checkpoint larger than the
// store's newest (a report pinned before the file was restored from an
// older copy) must not take the leaves placed since as sealed: ingest
// places leaves, checkpoints seal them.
func TestPinnedReadBeyondTheLog(t *testing.T) {
	ctx := t.Context()
	kr, err := seal.NewKeyring(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s := newStoreWith(t, store.Options{TokenKey: testKey, Leaves: seal.LeafMaker{Keys: kr}})
	at := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	ingest := func(ids ...string) {
		t.Helper()
		for i, id := range ids {
			e := store.Event{ID: id, Namespace: "team-a", User: "alice", Status: "success", Category: "data", Time: at.Add(time.Duration(len(id)+i) * time.Second)}
			if res, err := s.Insert(ctx, []store.Event{e}); err != nil || res.Inserted != 1 {
				t.Fatalf("insert %s: %+v, %v", id, res, err)
			}
		}
	}
	ingest("r1", "r2")
	if _, err := sealerOf(s, kr).Seal(ctx, "team-a"); err != nil {
		t.Fatal(err)
	}
	ingest("r3-unsealed")
	for _, n := range []int64{2, 3, 10} {
		page, err := s.Events(ctx, store.EventQuery{View: "v", Namespace: "team-a", Page: store.Page{Size: 10}, InLog: &n})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, e := range page.Events {
			ids = append(ids, e.ID)
		}
		if want := []string{"r1", "r2"}; !slices.Equal(ids, want) {
			t.Errorf("pinned to %d: %v, want %v (r3's leaf is placed, not sealed)", n, ids, want)
		}
	}
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
	})
}
