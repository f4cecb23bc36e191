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

// Package sqlite is the embedded audit-event store (the default): one
// database file in WAL mode, written by one connection and read by a pool,
// through the pure-Go driver modernc.org/sqlite (CGO_ENABLED=0 builds).
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/auditops/auditops/internal/faultpoint"
	"github.com/auditops/auditops/internal/store"
	"github.com/auditops/auditops/internal/store/internal/migrate"
	"github.com/auditops/auditops/internal/store/internal/sqlstore"
	"github.com/auditops/auditops/internal/store/payload"
)

//go:embed migrations/*.sql
var migrations embed.FS

// opInsert names inserts in errors; only their constraint violations are
// the client's fault (ErrInvalidEvent).
const opInsert = "insert"

// WriterCheckpointPragma is when the writer copies the WAL back into the
// database file: every 16,000 frames (256 MiB at 16 KiB pages) instead of
// SQLite's 1,000. Each commit writes every page it touched to the WAL whole,
// and the random (namespace, id_hash) and per-user index pages are touched
// by nearly every group commit, ~30 KB of WAL per event at 300k events;
// a checkpoint copies each page once however many frames it has, so a
// longer WAL is copied with far fewer writes (writes per ingested event
// 36 -> 24 KB, webhook ingest +38%: bench/README.md). The cost is disk: the
// WAL file grows to ~256 MiB under load and keeps that size. Exported so
// that the benchmark's insert floor runs with the same pragmas.
const WriterCheckpointPragma = "wal_autocheckpoint(16000)"

// recentIDsMax is how many events' id entries ids_recent holds before the
// writer merges them (migrations 12 and 14). A group commit's inserts into
// ids_recent share its pages (~70 at this size). A merge moves them into
// ids in key order, so that it writes each page of ids it reaches once:
// past ~100k events nearly every page, so its cost per event grows with
// the store; against ~16 KB of WAL an event when every insert went to a
// random page of one large index.
const recentIDsMax = 1 << 15

// tiersFrom is the number of events (the next seq) from which merges go
// through ids_mid (migration 14): each moves ids_recent into ids_mid, and
// one of its midSlices slices into ids, so that it writes ids_mid's pages
// (~16 merges' entries, at most ~1,200 pages) and a midSlices-th of ids'
// pages. BenchmarkIDMerge, WAL written per event moved and time per merge,
// at one and four million events: straight into ids 1,596 and 4,311 bytes,
// 248 and 489 ms; through ids_mid 374 and 542 bytes, 172 and 194 ms. But
// below this size the third tier costs more than it saves: the probe's
// seek in ids_mid, and sorting and moving each entry twice (webhook ingest
// at a million events 15,222-15,848 events/s with it, 16,719-17,396
// without: bench/README.md).
const tiersFrom = 1 << 21

// midSlices is the number of slices of ids_mid (migration 14: an entry's
// slice is its id hash's high 4 bits, a range of ids' key in each
// namespace), how many merges of ids_recent an entry waits in ids_mid
// before it moves on into ids.
const midSlices = 16

// sliceOf is the SQL of the slice of the id hash h in ids_mid.
func sliceOf(h string) string { return "((" + h + ") >> 60) & 15" }

// readers is the size of the read pool.
const readers = 4

// cacheBytes is each connection's page cache. 16 MiB: at 32 MiB the
// store's memory outside the Go heap reached ~266 MiB in the fault suite
// (anonymous RSS 536 MiB under the chart's 512Mi, Go within its soft
// limit), and the caches hold little that the kernel's page cache would
// not serve anyway (bench/README.md).
const cacheBytes = 16 << 20

// PageCacheBytes is what the store's page caches hold at most once warm:
// one per connection (the writer, the readers, the loader).
const PageCacheBytes = (1 + readers + 1) * cacheBytes

// NativeMemoryBytes is what the store may hold outside the Go heap, where
// modernc's libc maps it and the Go runtime's soft memory limit does not
// see it (memtune leaves room for it): the page caches and the rest
// (temporary tables, temp_store=memory; the allocator's headers; statement
// and schema caches). The fault suite's outages, with 96 MiB of caches,
// saw 179-220 MiB outside the Go runtime (anonymous RSS less its memory).
const NativeMemoryBytes = PageCacheBytes + 144<<20

// deleteChunk is how many events one retention transaction deletes, so that
// retention never holds the write lock for long.
const deleteChunk = 10000

// Store is the SQLite store.
type Store struct {
	w      *sql.DB // one connection: the only writer
	r      *sql.DB // read-only pool
	wlock  chan struct{}
	opts   store.Options
	reader sqlstore.Reader
	// payload encodes events' JSON values for the payload column, with
	// dictionaries it loads through dictLoad.
	payload  *payload.Codec
	dictLoad *sql.DB
	insert   *sql.Stmt
	// reused is the reuse probe of ids_recent and ids; reusedTiered also
	// reads ids_mid.
	reused, reusedTiered *sql.Stmt
	// insertIDs, mergeIDs, mergeTiered and the two of a slice keep the
	// tiers of ids (migrations 12 and 14).
	insertIDs, mergeIDs, mergeTiered, mergeSlice, deleteSlice *sql.Stmt
	// countHours keeps category_hours (migration 13).
	countHours *sql.Stmt
	// insertLeaf writes an event's leaf (opts.Leaves set).
	insertLeaf *sql.Stmt
	// nextPlace reads a log's next place.
	nextPlace *sql.Stmt
	health    *store.WriteHealth
	// beforeInsert, when set, runs inside each insert transaction: tests
	// cause the faults they cannot cause otherwise (a panic) with it.
	beforeInsert func([]*insertReq)

	// recentIDs counts the entries of ids_recent, as the writer left them:
	// when to merge them into ids. Retention's deletes leave it high, so a
	// merge comes early; nothing else depends on it.
	recentIDs atomic.Int64
	// upTo is the schema version the store migrated to (0: the latest).
	upTo int64
	// schema fails ingest while the schema is changed (nil: an older
	// schema, a migration's test).
	schema *store.SchemaGate
	// expected is the schema its migrations make (SchemaChanges).
	expected struct {
		mu     sync.Mutex
		schema map[string]schemaObject
	}
	// recentIDsMax and tiersFrom are the constants but in tests, which
	// merge sooner and through ids_mid from the start or never.
	recentIDsMax, tiersFrom int64
	// tiered says that ids_mid is in use: the probe reads it, merges go
	// through it. It is set once the next seq reaches tiersFrom, or when
	// ids_mid holds entries at open or at a group's probe (another
	// process's merges), and never unset.
	tiered atomic.Bool
	// nextSlice is the slice of ids_mid the next merge moves into ids.
	nextSlice atomic.Int64

	// Group commit of concurrent inserts (see Insert).
	gmu     sync.Mutex
	pending []*insertReq
	// queued counts the events of pending, bounded by maxQueuedEvents.
	queued  int
	leading bool
}

var _ store.Store = (*Store)(nil)

// New opens the database file at path, creating it when absent, and
// applies pending schema migrations.
func New(ctx context.Context, path string, opts store.Options) (*Store, error) {
	return open(ctx, path, opts, 0)
}

// open is New, migrating only up to schema version upTo when it is above
// zero (tests of a migration start from the schema before it).
func open(ctx context.Context, path string, opts store.Options, upTo int64) (*Store, error) {
	opts = opts.WithDefaults()
	codec, err := store.NewTokenCodec(opts.TokenKey, opts.TokenMaxAge)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	if path == "" || strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlite: database path %q: want a file name without '?' or '#'", path)
	}
	busy := strconv.FormatInt(opts.BusyTimeout.Milliseconds(), 10)
	common := url.Values{}
	common.Set("_busy_timeout", busy)
	// The events table is WITHOUT ROWID, so its rows live in an index
	// B-tree, whose cells hold at most ~1/4 of a page: ~2 KB at 8 KiB pages,
	// where a 2-3 KB Kubernetes event spilled into overflow pages that a
	// report then read with one pread each. 16 KiB pages keep events up to
	// ~4 KB in their cell, and ingest is faster too (overflow pages cost on
	// insert as well; bench/README.md has the figures). Only new databases
	// take it.
	common.Add("_pragma", "page_size(16384)")
	common.Add("_pragma", fmt.Sprintf("cache_size(-%d)", cacheBytes>>10)) // in KiB
	common.Add("_pragma", "temp_store(memory)")

	wq := url.Values{}
	for k, v := range common {
		wq[k] = slices.Clone(v)
	}
	wq.Set("_journal_mode", "WAL")
	wq.Add("_pragma", WriterCheckpointPragma)
	// FULL: in WAL mode each commit syncs the WAL, so a batch acknowledged
	// to ingest survives a power loss or node crash too (spec/API.md 2:
	// "committed atomically and durably"). NORMAL would survive only a
	// process crash, for little insert throughput (bench/README.md).
	wq.Set("_synchronous", "FULL")
	wq.Set("_txlock", "immediate")
	w, err := sql.Open("sqlite", path+"?"+wq.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)
	s := &Store{
		w:     w,
		wlock: make(chan struct{}, 1),
		opts:  opts,
		reader: sqlstore.Reader{Dialect: sqlstore.SQLite, Codec: codec, SessionGap: opts.SessionGap, MaxPageBytes: opts.MaxPageBytes,
			HourCounts: upTo == 0 || upTo >= 13},
		health: &store.WriteHealth{Limit: opts.BusyTimeout, Window: 2 * opts.BusyTimeout},

		recentIDsMax: recentIDsMax,
		tiersFrom:    tiersFrom,
		upTo:         upTo,
	}
	if err := s.migrate(ctx, upTo); err != nil {
		s.Close()
		return nil, err
	}
	if upTo > 0 {
		// An older schema (a migration's test): no dictionaries, and
		// rows may hold their fields in the legacy columns.
		s.payload, _ = payload.NewCodec(ctx, nil, nil)
		s.reader.Payload = s.payload
		return s, nil
	}
	// Migration 15 keeps whether any row holds a field in a legacy column.
	s.reader.LegacyFlag = true
	s.schema = &store.SchemaGate{Check: s.SchemaChanges, Interval: opts.SchemaCheckInterval, Timeout: 2 * opts.BusyTimeout}

	rq := url.Values{}
	for k, v := range common {
		rq[k] = v
	}
	rq.Set("_query_only", "1")
	r, err := sql.Open("sqlite", path+"?"+rq.Encode())
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	r.SetMaxOpenConns(readers)
	r.SetMaxIdleConns(readers)
	r.SetConnMaxIdleTime(0)
	r.SetConnMaxLifetime(0)
	s.r = r
	load, err := sql.Open("sqlite", path+"?"+rq.Encode())
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	load.SetMaxOpenConns(1)
	s.dictLoad = load
	if s.payload, err = payload.NewCodec(ctx, &dicts{s: s, load: load}, opts.OnError); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	s.reader.Payload = s.payload
	// The writer's statements, prepared once.
	for _, st := range []struct {
		dst       **sql.Stmt
		what, sql string
	}{
		{&s.insert, "the event insert", "INSERT INTO events (seq, " + sqlstore.InsertColumns + ") VALUES (?" +
			strings.Repeat(", ?", strings.Count(sqlstore.InsertColumns, ",")+1) + ") ON CONFLICT (" + sqlstore.ContentKeyColumns + ") DO NOTHING"},
		{&s.insertLeaf, "the leaf insert", "INSERT INTO leaves (namespace, ts, seq, version, data, mac, place, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"},
		// A log's next place: after its last placed leaf, and never inside
		// what its newest checkpoint covers (should its last leaves be
		// gone, a new one must not take a sealed place).
		{&s.nextPlace, "the next place's read", "SELECT max(" +
			"coalesce((SELECT place + 1 FROM leaves INDEXED BY leaves_by_index WHERE namespace = ?1 AND place IS NOT NULL ORDER BY place DESC LIMIT 1), 0), " +
			sealedSizeOf("?1") + ")"},
		// Which of a group's stored events reuse the id of an older one:
		// one statement per group, over a JSON array of [namespace,
		// id_hash, id, seq], each a seek in each tier of ids that stops
		// at the first older event whose id matches (a probe per event
		// cost far more: bench/README.md).
		{&s.reused, "the reused-id probe", reusedProbe},
		{&s.reusedTiered, "the reused-id probe of three tiers", reusedProbeTiered},
		// The group's entries in ids_recent, from the same array [ns,
		// id_hash, id, seq, ts] (migration 12). An entry of the same key
		// planted before (seq is unique, so only by hand) is the same
		// entry: it must not fail the group. Only a key conflict is
		// ignored (not OR IGNORE, which also drops a row a constraint
		// refuses), here and in the merges, which then delete what they
		// moved.
		{&s.insertIDs, "the insert of ids", "INSERT INTO ids_recent (namespace, id_hash, ts, seq)" +
			" SELECT value ->> 0, value ->> 1, value ->> 4, value ->> 3 FROM json_each(?) WHERE true ON CONFLICT DO NOTHING"},
		// The group's counts of access and user events per namespace and
		// hour (migration 13), from a JSON array of [ns, category, hour].
		{&s.countHours, "the count of category hours", "INSERT INTO category_hours (namespace, category, hour, n)" +
			" SELECT value ->> 0, value ->> 1, value ->> 2, count(*) FROM json_each(?) WHERE true GROUP BY 1, 2, 3" +
			" ON CONFLICT (namespace, category, hour) DO UPDATE SET n = n + excluded.n"},
		{&s.mergeIDs, "the merge of ids_recent", "INSERT INTO ids (namespace, id_hash, ts, seq)" +
			" SELECT namespace, id_hash, ts, seq FROM ids_recent WHERE true ORDER BY namespace, id_hash, ts, seq ON CONFLICT DO NOTHING"},
		{&s.mergeTiered, "the merge of ids_recent into ids_mid", "INSERT INTO ids_mid (slice, namespace, id_hash, ts, seq)" +
			" SELECT " + sliceOf("id_hash") + ", namespace, id_hash, ts, seq FROM ids_recent WHERE true ORDER BY 1, 2, 3, 4, 5 ON CONFLICT DO NOTHING"},
		{&s.mergeSlice, "the merge of a slice of ids_mid", "INSERT INTO ids (namespace, id_hash, ts, seq)" +
			" SELECT namespace, id_hash, ts, seq FROM ids_mid WHERE slice = ? ORDER BY namespace, id_hash, ts, seq ON CONFLICT DO NOTHING"},
		{&s.deleteSlice, "the delete of a slice of ids_mid", "DELETE FROM ids_mid WHERE slice = ?"},
	} {
		if *st.dst, err = w.PrepareContext(ctx, st.sql); err != nil {
			s.Close()
			return nil, s.wrap("prepare "+st.what, err)
		}
	}
	var recent int64
	if err := w.QueryRowContext(ctx, "SELECT count(*) FROM ids_recent").Scan(&recent); err != nil {
		s.Close()
		return nil, s.wrap("count ids_recent", err)
	}
	s.recentIDs.Store(recent)
	// Which slice comes next follows the store's events, so that merges
	// go round the slices across restarts too.
	var next int64
	if err := w.QueryRowContext(ctx, "SELECT next FROM seq_counter WHERE id = 1").Scan(&next); err != nil {
		s.Close()
		return nil, s.wrap("read seq_counter", err)
	}
	s.nextSlice.Store(next / s.recentIDsMax % midSlices)
	var mid bool
	if err := w.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM ids_mid)").Scan(&mid); err != nil {
		s.Close()
		return nil, s.wrap("read ids_mid", err)
	}
	s.tiered.Store(mid || next >= s.tiersFrom)
	// The first check at start, not in the first request: on SQLite it
	// runs the migrations in memory once, ~1 MiB that a request waiting
	// for the store must not hold (TestHeldMemoryWithinReservation).
	_ = s.schema.Err(ctx)
	return s, nil
}

// reusedProbe is the reuse probe: the keys of the JSON array's items
// whose id an older event of their namespace has.
var reusedProbe = "SELECT j.key FROM json_each(?) AS j WHERE " + idProbe("ids_recent", "") + " OR " + idProbe("ids", "")

// reusedProbeTiered is reusedProbe that also reads ids_mid.
var reusedProbeTiered = "SELECT j.key FROM json_each(?) AS j WHERE " + idProbe("ids_recent", "") + " OR " +
	idProbe("ids_mid", "x.slice = "+sliceOf("j.value ->> 1")+" AND ") + " OR " + idProbe("ids", "")

// idProbe is the reuse probe's test in one tier of ids (migrations 12 and
// 14): an older event of the item's namespace and id hash whose id is the
// item's. slice is the test of ids_mid's slice.
func idProbe(table, slice string) string {
	return "EXISTS (SELECT 1 FROM " + table + " AS x JOIN events AS e ON e.namespace = x.namespace AND e.ts = x.ts AND e.seq = x.seq" +
		" WHERE " + slice + "x.namespace = j.value ->> 0 AND x.id_hash = j.value ->> 1 AND x.seq < j.value ->> 3 AND e.id = j.value ->> 2)"
}

// migrate applies the pending migrations, each in one transaction with its
// schema_migrations row.
func (s *Store) migrate(ctx context.Context, upTo int64) error {
	all, err := migrate.Load(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	if upTo > 0 {
		all = all[:upTo]
	}
	return s.write(ctx, "migrate", func(tx *sql.Tx) error { return applyMigrations(ctx, tx, all) })
}

// applyMigrations applies those of all that tx's database lacks.
func applyMigrations(ctx context.Context, tx *sql.Tx, all []migrate.Migration) error {
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT`); err != nil {
		return err
	}
	var current int64
	if err := tx.QueryRowContext(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&current); err != nil {
		return err
	}
	pending, err := migrate.Pending(all, current)
	if err != nil {
		return err
	}
	for _, m := range pending {
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
			m.Version, m.Name, time.Now().Unix()); err != nil {
			return err
		}
	}
	return nil
}

// errWriterBusy is write's error when the writer stayed taken for
// BusyTimeout (a long transaction: a spooled batch, a large retention
// delete): nothing about the request itself.
var errWriterBusy = errors.New("writer busy")

// write runs fn in a write transaction (BEGIN IMMEDIATE on the writer
// connection). Waiting for the writer is bounded by BusyTimeout: past it the
// store is saturated and the error wraps store.ErrUnavailable.
func (s *Store) write(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	t := time.NewTimer(s.opts.BusyTimeout)
	defer t.Stop()
	select {
	case s.wlock <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("sqlite: %s: %w", op, ctx.Err())
	case <-t.C:
		return fmt.Errorf("sqlite: %s: %w: %w for %s", op, store.ErrUnavailable, errWriterBusy, s.opts.BusyTimeout)
	}
	defer func() { <-s.wlock }()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap(op, err)
	}
	// Rolled back on every way out but a commit, a panic in fn included:
	// an open transaction would hold the only writer connection for good.
	done := false
	defer func() {
		if !done {
			_ = tx.Rollback()
		}
	}()
	if err := fn(tx); err != nil {
		return s.wrap(op, err)
	}
	done = true
	if err := tx.Commit(); err != nil {
		return s.wrap(op, err)
	}
	return nil
}

// read runs fn in a read transaction: one snapshot of the database.
func (s *Store) read(ctx context.Context, op string, fn func(q sqlstore.Queryer) error) error {
	return s.readTx(ctx, op, func(tx sqlQueryer) error { return fn(queryer{tx.(*sql.Tx)}) })
}

// sqlQueryer is what reads need of a *sql.Tx.
type sqlQueryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// readTx runs fn in a read transaction of the database/sql API.
func (s *Store) readTx(ctx context.Context, op string, fn func(tx sqlQueryer) error) error {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return s.wrap(op, err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only: nothing to undo
	if err := fn(tx); err != nil {
		return s.wrap(op, err)
	}
	return nil
}

type queryer struct{ tx *sql.Tx }

func (q queryer) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	rows, err := q.tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rows}, nil
}

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { _ = r.Rows.Close() }

// wrap adds context to err and maps a busy or locked database, a full disk
// and I/O errors to store.ErrUnavailable, constraint violations of inserts
// to store.ErrInvalidEvent.
func (s *Store) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR,
			sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_PROTOCOL:
			return fmt.Errorf("sqlite: %s: %w: %w", op, store.ErrUnavailable, err)
		case sqlite3.SQLITE_CONSTRAINT:
			if errors.Is(err, errLeafInTheWay) {
				break
			}
			if !errors.Is(err, store.ErrInvalidEvent) && op == opInsert {
				return fmt.Errorf("sqlite: %s: %w: %w", op, store.ErrInvalidEvent, err)
			}
		}
	}
	if errors.Is(err, sql.ErrConnDone) {
		return fmt.Errorf("sqlite: %s: %w: %w", op, store.ErrUnavailable, err)
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}

// errLeafInTheWay marks a failed leaf insert. The single writer gives each
// leaf a free place and a new seq, so a leaf in the way was written behind
// the manager's back: the batch is not at fault, and its constraint
// violation must not answer 400 (kube-apiserver would drop the batch).
var errLeafInTheWay = errors.New("the leaves table refused a leaf, which only a change made behind the manager's back can cause (run manager verify)")

// maxGroupEvents bounds how many events of concurrent Insert calls one
// group transaction takes.
const maxGroupEvents = 8000

// maxQueuedEvents bounds the events waiting for the writer. A slow disk
// must not turn into unbounded memory: past it, Insert answers
// ErrUnavailable at once (the sender gets 503 and retries later).
const maxQueuedEvents = 4 * maxGroupEvents

// eventKey is what keys an event in the store.
type eventKey struct {
	idHash  int64
	content [32]byte
	// payload is the event's JSON values, encoded (nil: none).
	payload []byte
}

// insertReq is one Insert call waiting for a group transaction.
type insertReq struct {
	// ctx is the caller's: a request whose caller has gone is not written.
	ctx    context.Context
	events []store.Event
	// keys are the events' keys and probes the start of their reuse-probe
	// items (without seq), both computed by the caller before it queues:
	// the single writer's time is the store's throughput.
	keys   []eventKey
	probes [][]byte
	// leaves are the events' leaves up to seq (opts.Leaves set), else nil.
	leaves []store.PreparedLeaf
	res    store.InsertResult
	err    error
	// written: the request's own transaction committed (insertGroup's
	// retry of a failed group, one request at a time).
	written bool
	done    chan struct{}
	// parts, when set, is a spooled batch (InsertParts), read part by
	// part into one transaction that the leader writes alone; events is
	// then nil.
	parts func() ([]store.Event, error)
}

// newInsertReq makes the request of a normalized batch, with its keys and,
// when the store makes leaves, their leaves up to seq.
func newInsertReq(ctx context.Context, events []store.Event, pc *payload.Codec, leaves store.LeafMaker) (*insertReq, error) {
	req := &insertReq{ctx: ctx, events: events, keys: make([]eventKey, len(events)), probes: make([][]byte, len(events)), done: make(chan struct{})}
	if leaves != nil {
		req.leaves = make([]store.PreparedLeaf, len(events))
	}
	for i := range events {
		e := &events[i]
		k := &req.keys[i]
		k.idHash, k.content = store.IDHash(e.ID), store.ContentHash(e)
		k.payload = pc.Encode(payload.ValuesOf(e))
		req.probes[i] = appendProbeStart(nil, e.Namespace, k.idHash, e.ID)
		if leaves != nil {
			l, err := leaves.Prepare(e)
			if err != nil {
				return nil, fmt.Errorf("event %d (id %q): %w: %w", i, e.ID, store.ErrInvalidEvent, err)
			}
			req.leaves[i] = l
		}
	}
	return req, nil
}

// Insert implements store.Store.
//
// Concurrent calls are committed together (group commit): SQLite has one
// writer and every commit syncs the WAL, so the batches that queued while a
// transaction ran are written by the next one. A batch that fails fails
// only its caller (see insertGroup); each caller gets its own exact
// InsertResult. The
// first waiting caller runs the group (leader); the others wait for it.
func (s *Store) Insert(ctx context.Context, events []store.Event) (store.InsertResult, error) {
	norm, err := store.NormalizeBatch(events)
	if err != nil {
		return store.InsertResult{}, fmt.Errorf("sqlite: insert: %w", err)
	}
	if len(norm) == 0 {
		return store.InsertResult{}, nil
	}
	if err := s.schemaErr(ctx); err != nil {
		return store.InsertResult{}, fmt.Errorf("sqlite: insert: %w", err)
	}
	req, err := newInsertReq(ctx, norm, s.payload, s.opts.Leaves)
	if err != nil {
		return store.InsertResult{}, fmt.Errorf("sqlite: insert: %w", err)
	}
	return s.submit(ctx, req)
}

// submit queues req for the writer and waits for its outcome: the first
// waiting caller runs the group (leader); the others wait for it.
func (s *Store) submit(ctx context.Context, req *insertReq) (store.InsertResult, error) {
	s.gmu.Lock()
	if len(s.pending) > 0 && s.queued+len(req.events) > maxQueuedEvents {
		queued := s.queued
		s.gmu.Unlock()
		return store.InsertResult{}, fmt.Errorf("sqlite: insert: %w: %d events are waiting for the writer", store.ErrUnavailable, queued)
	}
	s.pending = append(s.pending, req)
	s.queued += len(req.events)
	lead := !s.leading
	s.leading = true
	s.gmu.Unlock()
	if lead {
		s.lead(ctx)
	}
	select {
	case <-req.done:
		return req.res, req.err
	case <-ctx.Done():
		if s.dequeue(req) {
			return store.InsertResult{}, fmt.Errorf("sqlite: insert: not written, the caller has gone: %w", ctx.Err())
		}
		// The batch may still be committed by the group it is in; the
		// sender's retry is then a no-op, by idempotency.
		return store.InsertResult{}, fmt.Errorf("sqlite: insert: %w", ctx.Err())
	}
}

// dequeue takes req out of the queue if no leader has taken it yet, and
// says whether it did. A request whose caller has gone is not written
// anyway (lead); left queued behind a stuck writer, its events would stay
// in memory after the caller released its ingest budget, and a sender
// retrying every few seconds would fill memory up to maxQueuedEvents
// events of any size, not the budget.
func (s *Store) dequeue(req *insertReq) bool {
	s.gmu.Lock()
	defer s.gmu.Unlock()
	i := slices.Index(s.pending, req)
	if i < 0 {
		return false
	}
	s.pending = slices.Delete(s.pending, i, i+1)
	s.queued -= len(req.events)
	return true
}

// lead writes one group: the oldest pending requests, the leader's own
// first among them. Requests that queued meanwhile are handed to a new
// leader goroutine, so no caller waits for groups after its own.
func (s *Store) lead(ctx context.Context) {
	// The group outlives a caller that gives up: the others wait for it.
	ctx = context.WithoutCancel(ctx)
	s.gmu.Lock()
	n, take := 0, 0
	for take < len(s.pending) && (take == 0 || n+len(s.pending[take].events) <= maxGroupEvents) {
		// A spooled batch is a transaction of its own.
		if take > 0 && s.pending[take].parts != nil {
			break
		}
		n += len(s.pending[take].events)
		take++
		if s.pending[take-1].parts != nil {
			break
		}
	}
	// A copy, and the queue's slots cleared: the backing array must not
	// keep a written request's events reachable after its caller has
	// returned and released its ingest budget.
	taken := slices.Clone(s.pending[:take])
	clear(s.pending[:take])
	s.pending = s.pending[take:]
	s.queued -= n
	s.gmu.Unlock()

	// A request whose caller gave up (a timeout, a closed connection) is
	// not written: its sender retries it, and writing both would only
	// spend the writer's time on a copy.
	group := make([]*insertReq, 0, len(taken))
	for _, r := range taken {
		if err := r.ctx.Err(); err != nil {
			r.err = fmt.Errorf("sqlite: insert: not written, the caller has gone: %w", err)
			close(r.done)
			continue
		}
		group = append(group, r)
	}
	if len(group) > 0 {
		if group[0].parts != nil { // a spooled batch, alone
			s.insertPartsRecovering(group[0])
		} else {
			end := s.health.Begin()
			s.insertGroupRecovering(ctx, group)
			end(requestErrs(group)...)
		}
		// Before the answers: a test (and a sender) that sees its insert
		// done sees the tables as that insert left them.
		s.mergeRecentIDs(ctx)
	}
	for _, r := range group {
		close(r.done)
	}

	s.gmu.Lock()
	if len(s.pending) > 0 {
		go s.lead(ctx)
	} else {
		s.leading = false
	}
	s.gmu.Unlock()
}

// insertGroup writes group in one transaction. Events are validated before
// they queue, so a failing insert is rare (a fault, or a constraint the
// validation missed): the group is then rolled back and each request
// written alone, so that only a failing request fails. (A SAVEPOINT per
// request would give the same isolation in one pass, but SQLite copies
// every page a savepoint touches into its sub-journal first, which cost
// ingest more than the rare retry does: bench/README.md.)
func (s *Store) insertGroup(ctx context.Context, group []*insertReq) {
	err := s.insertTx(ctx, group)
	if err == nil {
		return
	}
	// A writer taken by another transaction would fail each request alone
	// as it failed them together, a BusyTimeout later each: the callers
	// get their 503 now.
	if len(group) == 1 || errors.Is(err, errWriterBusy) {
		for _, req := range group {
			req.res, req.err = store.InsertResult{}, err
		}
		return
	}
	for _, req := range group {
		if err := s.insertTx(ctx, []*insertReq{req}); err != nil {
			req.res, req.err = store.InsertResult{}, err
			continue
		}
		req.written = true
	}
}

// insertGroupRecovering is insertGroup, turning a panic into the error of
// every request of the group not yet answered: a leader that died there
// would leave s.leading set and no one to take the queue, wedging ingest
// for good. A request that a retry alone committed before the panic keeps
// its result, one that failed its own error: only the rest were not
// stored.
func (s *Store) insertGroupRecovering(ctx context.Context, group []*insertReq) {
	defer func() {
		if p := recover(); p != nil {
			err := fmt.Errorf("sqlite: insert: panic in the group commit, this batch was not stored: %v", p)
			for _, r := range group {
				if !r.written && r.err == nil {
					r.res, r.err = store.InsertResult{}, err
				}
			}
		}
	}()
	s.insertGroup(ctx, group)
}

// requestErrs are the outcomes of a written group's requests for
// WriteHealth, one each: on a nearly full disk a group can fail while one
// small request of it, written alone, still fits.
func requestErrs(group []*insertReq) []error {
	errs := make([]error, len(group))
	for i, r := range group {
		errs[i] = r.err
	}
	return errs
}

// insertTx writes the requests in one transaction, setting each one's
// InsertResult; on error nothing of them is stored.
func (s *Store) insertTx(ctx context.Context, reqs []*insertReq) error {
	var added int64 // entries the commit adds to ids_recent
	var last int64  // the next seq after the commit
	err := s.write(ctx, opInsert, func(tx *sql.Tx) (err error) {
		added, last, err = s.insertIn(ctx, tx, reqs)
		return err
	})
	if err == nil {
		s.committed(added, last)
	}
	return err
}

// committed notes a commit that added entries to ids_recent and left the
// next seq at last.
func (s *Store) committed(added, last int64) {
	s.recentIDs.Add(added)
	if last >= s.tiersFrom {
		s.tiered.Store(true)
	}
}

// InsertParts implements store.Store: the parts go through the writer in
// one transaction, each as a request of its own (its keys and leaves made
// when it is read, in the transaction). It queues for the writer as Insert
// does, and is written alone: batches that queue behind it wait for it in
// the queue, within their callers' time, rather than for the writer's
// lock, which would fail them after BusyTimeout.
func (s *Store) InsertParts(ctx context.Context, next func() ([]store.Event, error)) (store.InsertResult, error) {
	if err := s.schemaErr(ctx); err != nil {
		return store.InsertResult{}, fmt.Errorf("sqlite: insert: %w", err)
	}
	return s.submit(ctx, &insertReq{ctx: ctx, parts: next, done: make(chan struct{})})
}

// insertPartsRecovering writes a spooled batch (insertParts), turning a
// panic into its error, as insertGroupRecovering does for a group.
func (s *Store) insertPartsRecovering(req *insertReq) {
	defer func() {
		if p := recover(); p != nil {
			req.res, req.err = store.InsertResult{}, fmt.Errorf("sqlite: insert: panic writing a spooled batch, it was not stored: %v", p)
		}
	}()
	req.res, req.err = s.insertParts(req.ctx, req.parts)
}

// insertParts writes the parts next returns in one transaction. It runs
// with the caller's ctx: a caller that gives up ends it, and nothing of
// the batch is stored.
func (s *Store) insertParts(ctx context.Context, next func() ([]store.Event, error)) (_ store.InsertResult, err error) {
	var total store.InsertResult
	var added, last int64
	end := s.health.Begin()
	// Deferred: a panic in a part must not leave a write in flight for
	// good (readiness would fail until a restart).
	defer func() { end(err) }()
	err = s.write(ctx, opInsert, func(tx *sql.Tx) error {
		for {
			part, err := next()
			if err != nil {
				return err
			}
			if part == nil {
				return nil
			}
			norm, err := store.NormalizeBatch(part)
			if err != nil {
				return err
			}
			if len(norm) == 0 {
				continue
			}
			req, err := newInsertReq(ctx, norm, s.payload, s.opts.Leaves)
			if err != nil {
				return err
			}
			a, l, err := s.insertIn(ctx, tx, []*insertReq{req})
			if err != nil {
				return err
			}
			total.Add(req.res)
			added += a
			last = l
		}
	})
	if err != nil {
		return store.InsertResult{}, fmt.Errorf("sqlite: insert: %w", err)
	}
	s.committed(added, last)
	return total, nil
}

// insertIn writes the requests in tx, setting each one's InsertResult, and
// returns the entries it added to ids_recent and the next seq after them.
func (s *Store) insertIn(ctx context.Context, tx *sql.Tx, reqs []*insertReq) (added, last int64, err error) {
	err = func() error {
		var next int64
		created := time.Now().UnixNano()
		if err := tx.QueryRowContext(ctx, "SELECT next FROM seq_counter WHERE id = 1").Scan(&next); err != nil {
			return err
		}
		if s.beforeInsert != nil {
			s.beforeInsert(reqs)
		}
		stmt := tx.StmtContext(ctx, s.insert)
		defer stmt.Close()
		leafStmt := tx.StmtContext(ctx, s.insertLeaf)
		defer leafStmt.Close()
		args := make([]any, 0, 26)
		// The stored events, for ids and the reuse probe: JSON [ns,
		// id_hash, id, seq, ts] items, and whose each is.
		probe := make([]byte, 0, 64*len(reqs))
		probe = append(probe, '[')
		type owner struct {
			req *insertReq
			ref store.EventRef
		}
		var owners []owner
		// The stored access and user events, for category_hours: JSON
		// [ns, category, hour] items.
		var hours []byte
		// Each log's next place (spec/API.md 6: a leaf's index), for the
		// namespaces of this transaction: the single writer places each
		// leaf as it writes it, so the sealer only signs.
		var places map[string]int64
		for _, req := range reqs {
			req.res = store.InsertResult{}
			for i := range req.events {
				e := &req.events[i]
				k := &req.keys[i]
				args = append(append(args[:0], next), sqlstore.InsertValuesKeyed(e, k.payload, k.idHash, k.content[:])...)
				r, err := stmt.ExecContext(ctx, args...)
				if err != nil {
					return fmt.Errorf("event %d (id %q): %w", i, e.ID, err)
				}
				n, err := r.RowsAffected()
				if err != nil {
					return err
				}
				if n != 1 {
					// A re-send: a stored row has its content key. Else a
					// trigger of someone's dropped it (store.SchemaChecker),
					// and counting it a duplicate would acknowledge an event
					// the store lost. Rare: no cost to ingest.
					var resent bool
					if err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM events WHERE namespace = ? AND ts = ? AND content_hash = ?)",
						e.Namespace, e.Time.UnixNano(), k.content[:]).Scan(&resent); err != nil {
						return fmt.Errorf("event %d (id %q): checking it is a re-send: %w", i, e.ID, err)
					}
					if !resent {
						return fmt.Errorf("event %d (id %q) was neither stored nor a re-send of a stored one: the store's schema drops rows (a trigger?); run manager verify", i, e.ID)
					}
					req.res.Duplicates++
					continue
				}
				if req.leaves != nil {
					place, ok := places[e.Namespace]
					if !ok {
						if places == nil {
							places = map[string]int64{}
						}
						if err := tx.StmtContext(ctx, s.nextPlace).QueryRowContext(ctx, e.Namespace).Scan(&place); err != nil {
							return fmt.Errorf("the next place in the log of %s: %w", e.Namespace, err)
						}
					}
					v, data, mac := req.leaves[i].Leaf(next)
					r, err := leafStmt.ExecContext(ctx, e.Namespace, e.Time.UnixNano(), next, v, data, mac, place, created)
					if err != nil {
						return fmt.Errorf("the leaf of event %d (id %q): %w: %w", i, e.ID, errLeafInTheWay, err)
					}
					if n, err := r.RowsAffected(); err != nil || n != 1 {
						return fmt.Errorf("the leaf of event %d (id %q) was not stored (%d rows, %v): the store's schema drops rows (a trigger?); run manager verify", i, e.ID, n, err)
					}
					places[e.Namespace] = place + 1
				}
				if len(owners) > 0 {
					probe = append(probe, ',')
				}
				probe = append(probe, req.probes[i]...)
				probe = strconv.AppendInt(probe, next, 10)
				probe = append(probe, ',')
				probe = strconv.AppendInt(probe, e.Time.UnixNano(), 10)
				probe = append(probe, ']')
				if (e.Category == store.CategoryAccess || e.Category == store.CategoryUser) && e.Time.UnixNano() >= 0 {
					hours = append(hours, ",["...) // the first ',' becomes the array's '['
					hours = appendJSONString(hours, e.Namespace)
					hours = append(hours, ",\""...)
					hours = append(hours, e.Category...)
					hours = append(hours, "\","...)
					hours = strconv.AppendInt(hours, e.Time.UnixNano()/sqlstore.HourNanos, 10)
					hours = append(hours, ']')
				}
				owners = append(owners, owner{req, store.EventRef{Namespace: e.Namespace, ID: e.ID, Seq: next}})
				next++
				req.res.Inserted++
			}
		}
		if len(owners) > 0 {
			probe := string(append(probe, ']'))
			// First the entries, so that of two events of one id in
			// this group the later one counts.
			if _, err := tx.StmtContext(ctx, s.insertIDs).ExecContext(ctx, probe); err != nil {
				return fmt.Errorf("storing the events' ids: %w", err)
			}
			// Another writer of this file (manager import beside the
			// manager) may have put entries in ids_mid already.
			if !s.tiered.Load() {
				var mid bool
				if err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM ids_mid)").Scan(&mid); err != nil {
					return fmt.Errorf("finding reused ids: %w", err)
				}
				if mid {
					s.tiered.Store(true)
				}
			}
			reused := s.reused
			if s.tiered.Load() {
				reused = s.reusedTiered
			}
			rows, err := tx.StmtContext(ctx, reused).QueryContext(ctx, probe)
			if err != nil {
				return fmt.Errorf("finding reused ids: %w", err)
			}
			for rows.Next() {
				var k int
				if err := rows.Scan(&k); err != nil {
					rows.Close()
					return fmt.Errorf("finding reused ids: %w", err)
				}
				owners[k].req.res.AddReused(owners[k].ref)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return fmt.Errorf("finding reused ids: %w", err)
			}
		}
		if len(hours) > 0 {
			hours[0] = '['
			if _, err := tx.StmtContext(ctx, s.countHours).ExecContext(ctx, string(append(hours, ']'))); err != nil {
				return fmt.Errorf("counting the events' hours: %w", err)
			}
		}
		_, err := tx.ExecContext(ctx, "UPDATE seq_counter SET next = ? WHERE id = 1", next)
		added, last = int64(len(owners)), next
		return err
	}()
	return added, last, err
}

// mergeRecentIDs moves ids_recent's entries into ids (s.tiered: into
// ids_mid, after the entries of one slice of ids_mid into ids), each in key
// order, so that each page is written once (migrations 12 and 14), once
// ids_recent holds recentIDsMax. It is a transaction of its own, after a
// group's commit: the probe reads every tier, so nothing depends on it but
// the tiers' sizes, and a merge that fails (a full disk) must not fail
// ingest, least of all a request retried alone to fit in what space is
// left. The next group's leader tries again.
func (s *Store) mergeRecentIDs(ctx context.Context) {
	if s.recentIDs.Load() < s.recentIDsMax {
		return
	}
	tiered, slice := s.tiered.Load(), s.nextSlice.Load()
	err := s.write(ctx, "merge of ids_recent", func(tx *sql.Tx) error {
		if !tiered {
			if _, err := tx.StmtContext(ctx, s.mergeIDs).ExecContext(ctx); err != nil {
				return fmt.Errorf("merging ids_recent into ids: %w", err)
			}
			faultpoint.Hit("sqlite-in-merge") // ids_recent copied, not yet emptied
		} else {
			if _, err := tx.StmtContext(ctx, s.mergeSlice).ExecContext(ctx, slice); err != nil {
				return fmt.Errorf("merging slice %d of ids_mid into ids: %w", slice, err)
			}
			if _, err := tx.StmtContext(ctx, s.deleteSlice).ExecContext(ctx, slice); err != nil {
				return fmt.Errorf("deleting slice %d of ids_mid: %w", slice, err)
			}
			faultpoint.Hit("sqlite-in-merge") // a slice moved, ids_recent not yet
			if _, err := tx.StmtContext(ctx, s.mergeTiered).ExecContext(ctx); err != nil {
				return fmt.Errorf("merging ids_recent into ids_mid: %w", err)
			}
		}
		_, err := tx.ExecContext(ctx, "DELETE FROM ids_recent")
		return err
	})
	if err != nil {
		if s.opts.OnError != nil {
			s.opts.OnError(err)
		}
		return
	}
	s.recentIDs.Store(0)
	if tiered {
		s.nextSlice.Store((slice + 1) % midSlices)
	}
}

// appendProbeStart appends one item of the JSON array of ids and the reuse
// probe up to its seq (seq and ts follow): `[ns,id_hash,id,`.
func appendProbeStart(b []byte, ns string, idHash int64, id string) []byte {
	b = append(b, '[')
	b = appendJSONString(b, ns)
	b = append(b, ',')
	b = strconv.AppendInt(b, idHash, 10)
	b = append(b, ',')
	b = appendJSONString(b, id)
	return append(b, ',')
}

// appendJSONString appends s as a JSON string (s is valid UTF-8 without
// NUL: NormalizeEvent checked).
func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}

// Summary implements store.Store.
func (s *Store) Summary(ctx context.Context, q store.SummaryQuery) (page store.SummaryPage, err error) {
	err = s.read(ctx, "summary page", func(db sqlstore.Queryer) error {
		page, err = s.reader.Summary(ctx, db, q)
		return err
	})
	return page, err
}

// Events implements store.Store.
func (s *Store) Events(ctx context.Context, q store.EventQuery) (page store.EventPage, err error) {
	err = s.read(ctx, "events page", func(db sqlstore.Queryer) error {
		page, err = s.reader.Events(ctx, db, q)
		return err
	})
	return page, err
}

// UserLogs implements store.Store.
func (s *Store) UserLogs(ctx context.Context, q store.UserLogsQuery) (page store.UserLogsPage, err error) {
	err = s.read(ctx, "user logs", func(db sqlstore.Queryer) error {
		page, err = s.reader.UserLogs(ctx, db, q)
		return err
	})
	return page, err
}

// UserExists implements store.Store.
func (s *Store) UserExists(ctx context.Context, namespace, user string) (ok bool, err error) {
	err = s.read(ctx, "user exists", func(db sqlstore.Queryer) error {
		ok, err = s.reader.UserExists(ctx, db, namespace, user)
		return err
	})
	return ok, err
}

// DeleteBefore implements store.Store. It walks the namespaces and deletes
// each one's old events as ranges of the primary key, deleteChunk events
// per transaction, so ingest is never blocked for long.
func (s *Store) DeleteBefore(ctx context.Context, t time.Time, keep ...string) (int64, error) {
	cut, _ := sqlstore.Bounds(store.TimeRange{From: t})
	var total int64
	ns := ""
	for {
		var next string
		var ok bool
		err := s.read(ctx, "retention", func(db sqlstore.Queryer) (err error) {
			next, ok, err = s.reader.NextNamespace(ctx, db, ns)
			return err
		})
		if err != nil || !ok {
			return total, err
		}
		ns = next
		if slices.Contains(keep, ns) {
			continue
		}
		for {
			var n int64
			err := s.write(ctx, "retention", func(tx *sql.Tx) error {
				// The last event of this chunk, or none when fewer remain.
				var cts, cseq int64
				err := tx.QueryRowContext(ctx, "SELECT ts, seq FROM events WHERE namespace = ? AND ts < ? ORDER BY ts, seq LIMIT 1 OFFSET ?",
					ns, cut, deleteChunk-1).Scan(&cts, &cseq)
				var r sql.Result
				switch {
				case errors.Is(err, sql.ErrNoRows):
					r, err = tx.ExecContext(ctx, "DELETE FROM events WHERE namespace = ? AND ts < ?", ns, cut)
				case err == nil:
					r, err = tx.ExecContext(ctx, "DELETE FROM events WHERE namespace = ? AND (ts, seq) <= (?, ?)", ns, cts, cseq)
				}
				if err != nil {
					return err
				}
				n, err = r.RowsAffected()
				return err
			})
			if err != nil {
				return total, err
			}
			total += n
			if n < deleteChunk {
				break
			}
		}
	}
}

// Ping implements store.Store: the database answers a read, and writes
// are neither stuck nor failing (store.WriteHealth).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.health.Check(); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return s.read(ctx, "ping", func(db sqlstore.Queryer) error {
		rows, err := db.Query(ctx, "SELECT next FROM seq_counter WHERE id = 1")
		if err != nil {
			return err
		}
		rows.Close()
		return rows.Err()
	})
}

// Close implements store.Store.
func (s *Store) Close() error {
	if s.payload != nil {
		// First: it may be storing a dictionary through the writer.
		s.payload.Close()
	}
	var errs []error
	for _, st := range []*sql.Stmt{s.insert, s.reused, s.reusedTiered, s.insertLeaf, s.nextPlace} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	if s.dictLoad != nil {
		errs = append(errs, s.dictLoad.Close())
	}
	errs = append(errs, s.w.Close())
	return errors.Join(errs...)
}
