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
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/auditops/auditops/internal/seal"
	"github.com/auditops/auditops/internal/store"
	"github.com/auditops/auditops/internal/store/internal/migrate"
	"github.com/auditops/auditops/internal/store/internal/sqlstore"
	"github.com/auditops/auditops/internal/store/storetest"
)

var testKey = bytes.Repeat([]byte("k"), 32)

func newStore(t testing.TB) *Store {
	t.Helper()
	return newStoreWith(t, store.Options{TokenKey: testKey})
}

func newStoreWith(t testing.TB, opts store.Options) *Store {
	t.Helper()
	s, err := New(context.Background(), storetest.PostgresDatabase(t), opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.RequirePostgres(t)
	t.Run("postgres", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store { return newStore(t) })
	})
	// Making leaves changes the insert paths (seqs reserved for COPY, the
	// stored rows of a batch with duplicates matched to their events).
	t.Run("postgres with leaves", func(t *testing.T) {
		kr, err := seal.NewKeyring(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		storetest.Run(t, func(t *testing.T) store.Store {
			return newStoreWith(t, store.Options{TokenKey: testKey, Leaves: seal.LeafMaker{Keys: kr}})
		})
	})
}

func TestSealing(t *testing.T) {
	storetest.RequirePostgres(t)
	storetest.RunSealing(t, func(t *testing.T, leaves store.LeafMaker) storetest.SealingStore {
		return newStoreWith(t, store.Options{TokenKey: testKey, Leaves: leaves})
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

// TestCheckConstraints checks the schema itself refuses what NormalizeEvent
// refuses, for writers that bypass it, mapped to ErrInvalidEvent.
func TestCheckConstraints(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	good := store.Event{ID: "1", Namespace: "ns", User: "u", Status: store.StatusSuccess, Category: store.CategoryData, Time: time.Unix(1, 0)}
	cases := map[string]func(v []any){
		"status":   func(v []any) { v[5] = "ok" },
		"category": func(v []any) { v[6] = "admin" },
		"empty id": func(v []any) { v[2] = "" },
		"no user":  func(v []any) { v[3] = "" },
		"nul":      func(v []any) { v[4] = "/a\x00b" },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			err := s.tx(ctx, opInsert, pgx.TxOptions{}, func(tx pgx.Tx) error {
				v := sqlstore.InsertValues(s.payload, &good)
				mutate(v)
				ph := make([]string, len(v))
				for i := range v {
					ph[i] = "$" + strconv.Itoa(i+1)
				}
				_, err := tx.Exec(ctx, "INSERT INTO events ("+sqlstore.InsertColumns+") VALUES ("+strings.Join(ph, ", ")+")", v...)
				return err
			})
			if !errors.Is(err, store.ErrInvalidEvent) {
				t.Fatalf("raw insert = %v, want a constraint error wrapping ErrInvalidEvent", err)
			}
		})
	}
}

// TestMigrationsConcurrentReplicas starts several stores on one empty
// database at once, as replicas would: one migrates, all work.
func TestMigrationsConcurrentReplicas(t *testing.T) {
	url := storetest.PostgresDatabase(t)
	ctx := t.Context()
	var wg sync.WaitGroup
	stores := make([]*Store, 4)
	for i := range stores {
		wg.Go(func() {
			s, err := New(ctx, url, store.Options{TokenKey: testKey})
			if err != nil {
				t.Errorf("replica %d: %v", i, err)
				return
			}
			stores[i] = s
		})
	}
	wg.Wait()
	for _, s := range stores {
		if s != nil {
			defer s.Close()
		}
	}
	if t.Failed() {
		return
	}
	all, err := migrate.Load(migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := stores[0].pool.QueryRow(ctx, "SELECT count(*) FROM schema_migrations").Scan(&n); err != nil || n != len(all) {
		t.Fatalf("schema_migrations rows = %d, %v; want %d, one per migration", n, err, len(all))
	}
	// Inserts through every replica share one seq.
	for i, s := range stores {
		if _, err := s.Insert(ctx, []store.Event{{ID: string(rune('a' + i)), Namespace: "ns", User: "u", Status: "success", Time: time.Unix(1, 0)}}); err != nil {
			t.Fatal(err)
		}
	}
	p, err := stores[0].Events(ctx, store.EventQuery{View: "v", Namespace: "ns", Page: store.Page{Size: 10}})
	if err != nil || len(p.Events) != 4 {
		t.Fatalf("Events = %+v, %v", p, err)
	}
	for i := 1; i < 4; i++ {
		if p.Events[i].Seq <= p.Events[i-1].Seq {
			t.Fatalf("seqs %d, %d not increasing", p.Events[i-1].Seq, p.Events[i].Seq)
		}
	}
	// A database from a newer auditops is refused.
	if _, err := stores[0].pool.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES (99, '0099_future')"); err != nil {
		t.Fatal(err)
	}
	if s, err := New(ctx, url, store.Options{TokenKey: testKey}); err == nil {
		s.Close()
		t.Fatal("a database at a newer schema version was opened")
	} else if !strings.Contains(err.Error(), "newer") {
		t.Fatalf("error %v does not say the schema is newer", err)
	}
}

// TestUnavailable checks a server that is not there, and a pool that
// stays exhausted past the busy timeout, give ErrUnavailable.
func TestUnavailable(t *testing.T) {
	ctx := t.Context()
	_, err := New(ctx, "postgres://postgres@127.0.0.1:1/none?sslmode=disable", store.Options{TokenKey: testKey, BusyTimeout: time.Second})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("New against a closed port = %v, want ErrUnavailable", err)
	}

	url := storetest.PostgresDatabase(t)
	s, err := New(ctx, url+"&pool_max_conns=1", store.Options{TokenKey: testKey, BusyTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	held, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Insert(ctx, []store.Event{{ID: "1", Namespace: "ns", User: "u", Status: "success", Time: time.Unix(1, 0)}})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Insert with the pool exhausted = %v, want ErrUnavailable", err)
	}
	if err := s.Ping(ctx); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Ping with the pool exhausted = %v, want ErrUnavailable", err)
	}
	held.Release()
	if _, err := s.Insert(ctx, []store.Event{{ID: "1", Namespace: "ns", User: "u", Status: "success", Time: time.Unix(1, 0)}}); err != nil {
		t.Fatalf("Insert after the pool has a connection again: %v", err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping after a write went through: %v", err)
	}
}

// TestQueryPlans checks that an index serves every view's page as a range
// scan: with sequential scans, bitmap scans and sorts made prohibitively
// expensive, no plan may scan the table, and the keyset views must read
// rows in index order (no Sort). (On a table this small the planner would
// otherwise rightly prefer a sequential scan.)
func TestQueryPlans(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	var batch []store.Event
	for i := range 5000 {
		batch = append(batch, store.Event{ID: strconv.Itoa(i), Namespace: []string{"a", "b", "c", "d", "e"}[i%5],
			User: []string{"u", "v", "w"}[i%3] + strconv.Itoa(i%31), Status: store.StatusSuccess, Category: []string{"access", "user", "data"}[i%3],
			Time: time.Unix(int64(i)*60, 0)})
	}
	if _, err := s.Insert(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, "VACUUM ANALYZE events"); err != nil {
		t.Fatal(err)
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	for _, set := range []string{"enable_seqscan", "enable_bitmapscan"} {
		if _, err := tx.Exec(ctx, "SET LOCAL "+set+" = off"); err != nil {
			t.Fatal(err)
		}
	}
	capture := &planQueryer{t: t, tx: tx}
	r := s.reader
	tok := func(q store.EventQuery) string {
		p, err := r.Events(ctx, capture, q)
		if err != nil {
			t.Fatal(err)
		}
		return p.NextToken
	}
	rng := store.TimeRange{From: time.Unix(6000, 0), To: time.Unix(60000, 0)}
	for _, q := range []store.EventQuery{
		{View: "v", Namespace: "a", Range: rng, Page: store.Page{Size: 2}, WithTotal: true},
		{View: "v", Namespace: "a", Range: rng, Category: "access", Page: store.Page{Size: 2}, WithTotal: true},
		{View: "v", Namespace: "a", Range: rng, Category: "user", Page: store.Page{Size: 2}, WithTotal: true},
		{View: "v", Namespace: "a", Range: rng, User: "u0", Page: store.Page{Size: 2}, WithTotal: true},
		{View: "v", Namespace: "a", Range: rng, User: "u0", Category: "access", Page: store.Page{Size: 2}, WithTotal: true},
		{View: "v", Namespace: "a", Page: store.Page{Size: 2}},
	} {
		q.Page.Token = tok(q)
		tok(q)
	}
	sq := store.SummaryQuery{Namespace: "a", Range: rng, Page: store.Page{Size: 1}}
	p, err := r.Summary(ctx, capture, sq)
	if err != nil {
		t.Fatal(err)
	}
	sq.Page.Token = p.NextToken
	if _, err := r.Summary(ctx, capture, sq); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Summary(ctx, capture, store.SummaryQuery{Namespace: "a", Range: rng, User: "u0", Page: store.Page{Size: 1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.UserLogs(ctx, capture, store.UserLogsQuery{Namespace: "a", User: "u0", DeviceID: "d", Limit: 5, Offset: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.UserExists(ctx, capture, "a", "u0"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.NextNamespace(ctx, capture, "a"); err != nil {
		t.Fatal(err)
	}
	capture.check("DELETE FROM events WHERE namespace = $1 AND ts < $2", []any{"a", int64(5)})
	if capture.n < 20 {
		t.Fatalf("only %d queries checked", capture.n)
	}
}

type planQueryer struct {
	t  *testing.T
	tx pgx.Tx
	n  int
}

func (p *planQueryer) check(query string, args []any) {
	p.t.Helper()
	// The one-row flag each read takes first (sqlstore.Reader.legacy).
	if strings.HasPrefix(query, "SELECT coalesce((SELECT in_use FROM legacy_columns") {
		return
	}
	// Keyset views must not sort: make sorting prohibitively expensive, so
	// a Sort in their plan means no index gives their order.
	sort := "off"
	if strings.Contains(query, "GROUP BY") {
		sort = "on"
	}
	if _, err := p.tx.Exec(p.t.Context(), "SET LOCAL enable_sort = "+sort); err != nil {
		p.t.Fatal(err)
	}
	rows, err := p.tx.Query(p.t.Context(), "EXPLAIN "+query, args...)
	if err != nil {
		p.t.Fatalf("explain %s: %v", query, err)
	}
	var lines []string
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			p.t.Fatal(err)
		}
		lines = append(lines, l)
	}
	rows.Close()
	p.n++
	plan := strings.Join(lines, "\n")
	if strings.Contains(plan, "Seq Scan") || strings.Contains(plan, "Bitmap") {
		p.t.Errorf("not an index range scan:\n%s\nplan:\n%s", query, plan)
	}
	for _, l := range lines {
		// Index conditions do the selecting; a filter may only drop rows of
		// another category or device (user logs, user+category pages) or
		// users before the summary cursor's.
		if f := strings.TrimSpace(l); strings.HasPrefix(f, "Filter:") &&
			!strings.HasPrefix(f, "Filter: (category =") && !strings.HasPrefix(f, "Filter: (device_id =") &&
			!strings.HasPrefix(f, "Filter: (user_name >=") {
			p.t.Errorf("rows selected by a filter, not the index:\n%s\nplan:\n%s", query, plan)
		}
	}
	// A category read alone has a partial index of its own: no filter.
	if strings.Contains(query, "category = 'access'") || strings.Contains(query, "category = 'user'") {
		if !strings.Contains(query, "user_name =") && strings.Contains(plan, "Filter: (category =") {
			p.t.Errorf("category read without its partial index:\n%s\nplan:\n%s", query, plan)
		}
	}
	if strings.Contains(plan, "Sort") && !strings.Contains(query, "GROUP BY") {
		p.t.Errorf("sort of events:\n%s\nplan:\n%s", query, plan)
	}
	if strings.Contains(query, "(ts, seq) >") && !strings.Contains(plan, "ROW(ts, seq) >") {
		p.t.Errorf("keyset cursor is not an index condition:\n%s\nplan:\n%s", query, plan)
	}
	p.t.Logf("%s\n  %s", query, strings.ReplaceAll(plan, "\n", "\n  "))
}

func (p *planQueryer) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	p.check(query, args)
	return p.tx.Query(ctx, query, args...)
}

// TestContentHashMigration builds a database at schema version 1, stores
// events in it as that version did, and migrates it: the rows are all
// kept, keyed by the content hash the migration computes in SQL, which
// must equal Go's (a re-send of each is a duplicate).
func TestContentHashMigration(t *testing.T) {
	url := storetest.PostgresDatabase(t)
	ctx := t.Context()
	v1, err := open(ctx, url, store.Options{TokenKey: testKey}, 1)
	if err != nil {
		t.Fatal(err)
	}
	events := storetest.MigrationEvents()
	n := strings.Count(storetest.V1Columns, ",") + 1
	ph := make([]string, n)
	for i := range ph {
		ph[i] = "$" + strconv.Itoa(i+1)
	}
	for i := range events {
		if _, err := v1.pool.Exec(ctx, "INSERT INTO events ("+storetest.V1Columns+") VALUES ("+strings.Join(ph, ", ")+")",
			storetest.V1Values(&events[i])...); err != nil {
			t.Fatal(err)
		}
	}
	v1.Close()
	s, err := New(ctx, url, store.Options{TokenKey: testKey})
	if err != nil {
		t.Fatalf("migrate: %v", err)
	}
	defer s.Close()
	storetest.CheckMigratedKeys(t, s, events)
}

// TestLegacyColumnsMigration: storetest.RunLegacyColumnsMigration across
// migration 13.
func TestLegacyColumnsMigration(t *testing.T) {
	storetest.RunLegacyColumnsMigration(t, func(t *testing.T, columns string, values []any) (store.Store, bool) {
		ctx := t.Context()
		url := storetest.PostgresDatabase(t)
		before, err := open(ctx, url, store.Options{TokenKey: testKey}, 12)
		if err != nil {
			t.Fatal(err)
		}
		ph := make([]string, len(values))
		for i := range ph {
			ph[i] = "$" + strconv.Itoa(i+1)
		}
		if _, err := before.pool.Exec(ctx, "INSERT INTO events ("+columns+") VALUES ("+strings.Join(ph, ", ")+")", values...); err != nil {
			t.Fatal(err)
		}
		before.Close()
		s, err := New(ctx, url, store.Options{TokenKey: testKey})
		if err != nil {
			t.Fatal(err)
		}
		var legacy bool
		if err := s.pool.QueryRow(ctx, "SELECT in_use FROM legacy_columns").Scan(&legacy); err != nil {
			t.Fatal(err)
		}
		return s, legacy
	})
}

// TestLegacyTimes: events before the Unix epoch, which earlier versions
// stored and Insert now refuses, are still read by every view
// (storetest.CheckLegacyTimes).
func TestLegacyTimes(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	events := storetest.LegacyEvents()
	for i := range events {
		v := sqlstore.InsertValues(s.payload, &events[i])
		ph := make([]string, len(v))
		for j := range v {
			ph[j] = "$" + strconv.Itoa(j+1)
		}
		if _, err := s.pool.Exec(ctx, "INSERT INTO events ("+sqlstore.InsertColumns+") VALUES ("+strings.Join(ph, ", ")+")", v...); err != nil {
			t.Fatal(err)
		}
	}
	storetest.CheckLegacyTimes(t, s)
}

func TestPageBytes(t *testing.T) {
	storetest.RunPageBytes(t, func(t *testing.T, maxBytes int) store.Store {
		s, err := New(t.Context(), storetest.PostgresDatabase(t), store.Options{TokenKey: testKey, MaxPageBytes: maxBytes})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

// TestCappedPageSendsLittle: a page that the byte cap ends after a few rows
// makes PostgreSQL send little more than those rows. Closing a query's rows
// early does not stop it: the server sends every row the query selected,
// so one query for a whole page would read and send them all.
func TestCappedPageSendsLittle(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	big := []byte(`{"p":"` + strings.Repeat("x", 256<<10) + `"}`)
	var batch []store.Event
	for i := range 100 {
		batch = append(batch, store.Event{ID: strconv.Itoa(i), Namespace: "big", User: "u", Status: store.StatusSuccess,
			Time: time.Unix(int64(i), 0), Request: big})
	}
	if _, err := s.Insert(ctx, batch); err != nil {
		t.Fatal(err)
	}
	r := s.reader
	r.MaxPageBytes = 1 << 20 // three of these rows
	err := s.readInIndexOrder(ctx, "test", func(db sqlstore.Queryer) error {
		for _, view := range []string{"events", "user logs"} {
			cq := &countingQueryer{db: db}
			var kept int
			switch view {
			case "events":
				p, err := r.Events(ctx, cq, store.EventQuery{View: "v", Namespace: "big", Page: store.Page{Size: 1000}})
				if err != nil {
					return err
				}
				kept = len(p.Events)
			default:
				p, err := r.UserLogs(ctx, cq, store.UserLogsQuery{Namespace: "big", User: "u", Limit: 1000})
				if err != nil {
					return err
				}
				kept = len(p.Events)
			}
			if kept != 3 || cq.sent > sqlstore.PostgresFirstChunkRows {
				t.Errorf("%s: a page of %d rows made PostgreSQL send %d; want 3 rows and at most %d sent", view, kept, cq.sent, sqlstore.PostgresFirstChunkRows)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// countingQueryer counts the rows PostgreSQL sent for its queries.
type countingQueryer struct {
	db   sqlstore.Queryer
	sent int64
}

func (c *countingQueryer) Query(ctx context.Context, sql string, args ...any) (sqlstore.Rows, error) {
	rows, err := c.db.Query(ctx, sql, args...)
	if err != nil || strings.Contains(sql, "FROM legacy_columns") {
		// The flag each read takes first is not a row of events.
		return rows, err
	}
	return &countedRows{Rows: rows, c: c}, nil
}

type countedRows struct {
	sqlstore.Rows
	c *countingQueryer
}

func (r *countedRows) Close() {
	r.Rows.Close()
	if pr, ok := r.Rows.(pgx.Rows); ok {
		r.c.sent += pr.CommandTag().RowsAffected()
	}
}

// TestPayloads: storetest.CheckPayloads on PostgreSQL.
func TestPayloads(t *testing.T) {
	ctx := t.Context()
	url := storetest.PostgresDatabase(t)
	opts := store.Options{TokenKey: testKey, OnError: func(err error) { t.Errorf("store: %v", err) }}
	s, err := New(ctx, url, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	// A manager of the version before, reading beside this one, fails
	// instead of reading events without their values.
	if err := s.pool.QueryRow(ctx, "SELECT principal FROM events LIMIT 1").Scan(new([]byte)); err == nil || !strings.Contains(err.Error(), "principal") {
		t.Fatalf("reading the JSON column by its old name: %v; want an error naming it", err)
	}
	if err := s.pool.QueryRow(ctx, "SELECT message FROM events LIMIT 1").Scan(new(string)); err == nil || !strings.Contains(err.Error(), "message") {
		t.Fatalf("reading the message column by its old name: %v; want an error naming it", err)
	}
	storetest.CheckPayloads(t, s, storetest.PayloadRaw{
		Dicts: func(t *testing.T) int {
			var n int
			if err := s.pool.QueryRow(ctx, "SELECT count(*) FROM payload_dicts").Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		},
		Reopen: func(t *testing.T) store.Store {
			s.Close()
			if s, err = New(ctx, url, opts); err != nil {
				t.Fatal(err)
			}
			return s
		},
		Stored: func(t *testing.T, id string) (int, bool) {
			var n *int64
			var legacyNull bool
			if err := s.pool.QueryRow(ctx, "SELECT length(payload), "+storetest.LegacyEmpty+" FROM events WHERE id = $1", id).Scan(&n, &legacyNull); err != nil {
				t.Fatal(err)
			}
			if n == nil {
				return -1, legacyNull
			}
			return int(*n), legacyNull
		},
		Insert: func(t *testing.T, columns string, values []any) {
			ph := make([]string, len(values))
			for i := range ph {
				ph[i] = "$" + strconv.Itoa(i+1)
			}
			if _, err := s.pool.Exec(ctx, "INSERT INTO events ("+columns+") VALUES ("+strings.Join(ph, ", ")+")", values...); err != nil {
				t.Fatal(err)
			}
		},
		Corrupt: func(t *testing.T, id string) {
			if _, err := s.pool.Exec(ctx, `UPDATE events SET payload = '\x0100deadbeef'::bytea WHERE id = $1`, id); err != nil {
				t.Fatal(err)
			}
		},
		SetLegacy: func(t *testing.T) {
			if _, err := s.pool.Exec(ctx, "UPDATE legacy_columns SET in_use = true"); err != nil {
				t.Fatal(err)
			}
		},
	})
}

// TestPlacement: storetest.RunPlacement on PostgreSQL databases, written
// with SQL through connections of their own.
func TestPlacement(t *testing.T) {
	storetest.RequirePostgres(t)
	storetest.RunPlacement(t, func(t *testing.T) storetest.PlacementDB {
		url := storetest.PostgresDatabase(t)
		conn := func(t *testing.T) *pgx.Conn {
			t.Helper()
			c, err := pgx.Connect(t.Context(), url)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Close(context.Background()) })
			return c
		}
		return storetest.PlacementDB{
			Open: func(t *testing.T, kr *seal.Keyring) storetest.PlacingStore {
				s, err := New(t.Context(), url, store.Options{TokenKey: testKey, Leaves: seal.LeafMaker{Keys: kr}})
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			},
			Exec: func(t *testing.T, q string, args ...any) {
				t.Helper()
				if _, err := conn(t).Exec(t.Context(), numbered(q), args...); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			},
			Value: func(t *testing.T, q string, args []any, dst ...any) {
				t.Helper()
				if err := conn(t).QueryRow(t.Context(), numbered(q), args...).Scan(dst...); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			},
		}
	})
}

// numbered turns the ? placeholders of q into PostgreSQL's $1, $2...
func numbered(q string) string {
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// TestLeafPlaceMigration: leaves that a manager of the version before wrote
// without a place, sealed or not, take theirs at migration 9, after the
// placed ones and in seq order, and seal there.
func TestLeafPlaceMigration(t *testing.T) {
	url := storetest.PostgresDatabase(t)
	ctx := t.Context()
	kr, err := seal.NewKeyring(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	opts := store.Options{TokenKey: testKey, Leaves: seal.LeafMaker{Keys: kr}}
	s, err := New(ctx, url, opts)
	if err != nil {
		t.Fatal(err)
	}
	var earlier storetest.EarlierEvents
	sealer := &seal.Sealer{Store: s, Keys: kr, Origin: seal.DefaultOriginPrefix, Now: time.Now}
	earlier.Insert(t, s, "team-a", "a1", "a2")
	if _, err := sealer.SealAll(ctx); err != nil {
		t.Fatal(err)
	}
	earlier.Insert(t, s, "team-a", "a3", "a4", "a5")
	earlier.Insert(t, s, "team-b", "b1", "b2")
	// As the version before left them: unsealed leaves without a place,
	// in column idx, at schema version 8 (migrations 10 to 13 run again too).
	for _, q := range []string{
		"UPDATE leaves SET place = NULL WHERE place >= coalesce((SELECT max(size) FROM checkpoints AS c WHERE c.namespace = leaves.namespace), 0)",
		"ALTER TABLE leaves RENAME COLUMN place TO idx",
		// Migration 10's indexes, as before it.
		"DROP INDEX events_category_access",
		"DROP INDEX events_category_user",
		"CREATE INDEX events_namespace_category ON events (namespace, category, ts, seq)",
		// Migration 12's table, triggers and functions.
		"DROP TABLE category_hours",
		"DROP TRIGGER events_count_hours ON events",
		"DROP TRIGGER events_uncount_hours ON events",
		"DROP FUNCTION auditops_count_hours()",
		"DROP FUNCTION auditops_uncount_hours()",
		// Migration 13's table.
		"DROP TABLE legacy_columns",
		"DELETE FROM schema_migrations WHERE version >= 9",
	} {
		if _, err := s.pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s.Close()

	s2, err := New(ctx, url, opts)
	if err != nil {
		t.Fatalf("migrate: %v", err)
	}
	defer s2.Close()
	var unplaced int
	if err := s2.pool.QueryRow(ctx, "SELECT count(*) FROM leaves WHERE place IS NULL").Scan(&unplaced); err != nil || unplaced != 0 {
		t.Fatalf("%d leaves without a place after the migration (%v)", unplaced, err)
	}
	nss, err := s2.UnsealedNamespaces(ctx)
	if err != nil || !slices.Equal(nss, []string{"team-a", "team-b"}) {
		t.Fatalf("unsealed namespaces after the migration: %v, %v", nss, err)
	}
	earlier.Insert(t, s2, "team-a", "a6")
	res, err := (&seal.Sealer{Store: s2, Keys: kr, Origin: seal.DefaultOriginPrefix, Now: time.Now}).SealAll(ctx)
	if err != nil || res["team-a"].Sealed != 4 || res["team-b"].Sealed != 2 || len(res["team-a"].Refused)+len(res["team-b"].Refused) != 0 {
		t.Fatalf("sealing after the migration: %+v, %v", res, err)
	}
	storetest.CheckLog(t, s2, "team-a", "a1", "a2", "a3", "a4", "a5", "a6")
	storetest.CheckLog(t, s2, "team-b", "b1", "b2")
}

// TestInsertPartsLeavesOthersWriting: while a batch stored in parts waits
// for its next part (a spool being read), another batch commits: the
// parts' transaction takes writersLock only once all its events are in,
// for their leaves and reuse probe, as Insert does. Both logs then hold
// every leaf once, in commit order.
func TestInsertPartsLeavesOthersWriting(t *testing.T) {
	kr, err := seal.NewKeyring(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s := newStoreWith(t, store.Options{TokenKey: testKey, Leaves: seal.LeafMaker{Keys: kr}})
	ctx := t.Context()
	at := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	ev := func(id string, i int) store.Event {
		return store.Event{ID: id, Namespace: "ns", User: "u", Status: store.StatusSuccess, Category: store.CategoryData, Time: at.Add(time.Duration(i) * time.Second)}
	}
	gate, waiting := make(chan struct{}), make(chan struct{})
	parts := [][]store.Event{{ev("p1", 1), ev("p2", 2)}, {ev("p3", 3)}}
	calls := 0
	done := make(chan error, 1)
	go func() {
		res, err := s.InsertParts(ctx, func() ([]store.Event, error) {
			calls++
			switch calls {
			case 1:
				return parts[0], nil
			case 2:
				close(waiting) // the first part is in
				<-gate         // the next one is slow to come
				return parts[1], nil
			}
			return nil, nil
		})
		if err == nil && res.Inserted != 3 {
			err = errors.New("stored " + strconv.Itoa(res.Inserted) + " of 3")
		}
		done <- err
	}()
	// The other batch commits while the first waits for its second part.
	<-waiting
	other, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := s.Insert(other, []store.Event{ev("o1", 4)}); err != nil {
		close(gate)
		<-done
		t.Fatalf("a batch beside one stored in parts: %v", err)
	}
	close(gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := (&seal.Sealer{Store: s, Keys: kr, Origin: seal.DefaultOriginPrefix, Now: time.Now}).SealAll(ctx); err != nil {
		t.Fatal(err)
	}
	storetest.CheckLog(t, s, "ns", "o1", "p1", "p2", "p3")
}

// TestPausedWriterLetsIngestOn: a replica paused inside an ingest
// transaction, holding writersLock (the lock every replica's ingest takes
// at its end), stops the others' ingest for about twice the busy timeout,
// not until its connection dies: PostgreSQL ends its session
// (idle_in_transaction_session_timeout), and its transaction commits
// nothing. A URL that sets the parameter keeps its own: 0 turns it off,
// and ingest stays stopped.
func TestPausedWriterLetsIngestOn(t *testing.T) {
	const busy = 500 * time.Millisecond
	for _, tc := range []struct {
		name, params string
		resumes      bool
	}{
		{"the store's own timeout", "", true},
		{"turned off by the URL", "idle_in_transaction_session_timeout=0", false},
		{"turned off by the URL's options", "options=-c%20idle_in_transaction_session_timeout%3D0", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			url := storetest.PostgresDatabase(t)
			if tc.params != "" {
				sep := "?"
				if strings.Contains(url, "?") {
					sep = "&"
				}
				url += sep + tc.params
			}
			opts := store.Options{TokenKey: testKey, BusyTimeout: busy}
			paused, err := New(ctx, url, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer paused.Close()
			other, err := New(ctx, url, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			c, err := paused.pool.Acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Release()
			tx, err := c.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := lockWriters(ctx, tx); err != nil {
				t.Fatal(err)
			}
			// The paused replica does nothing more; the other ingests.
			start := time.Now()
			deadline := start.Add(4 * idleInTxTimeout(busy))
			var stored bool
			for !stored && time.Now().Before(deadline) {
				// As a sender does: each attempt bounded, then again.
				actx, cancel := context.WithTimeout(ctx, 2*busy)
				res, err := other.Insert(actx, []store.Event{{ID: "e1", Namespace: "team-a", Time: time.Unix(1700000000, 0), User: "alice",
					API: "/pods", Method: "get", Status: store.StatusSuccess, Category: store.CategoryData}})
				cancel()
				switch {
				case err == nil && res.Inserted == 1:
					stored = true
				case err != nil && !errors.Is(err, store.ErrUnavailable) && !errors.Is(err, context.DeadlineExceeded):
					t.Fatalf("ingest beside the paused replica: %v; want stored, or unavailable meanwhile", err)
				}
			}
			took := time.Since(start)
			if stored != tc.resumes {
				t.Fatalf("ingest beside a replica paused holding the writers' lock: stored %v after %s; want %v", stored, took.Round(time.Millisecond), tc.resumes)
			}
			if !tc.resumes {
				_ = tx.Rollback(ctx)
				return
			}
			t.Logf("stored after %s", took.Round(time.Millisecond))
			// What the paused replica meets when it resumes: an error that
			// says retry (its sender gets a 503), and nothing committed.
			_, err = tx.Exec(ctx, "SELECT 1")
			if err == nil || !unavailable(err) {
				t.Fatalf("the paused replica's next statement: %v; want an error that says unavailable", err)
			}
		})
	}
}
