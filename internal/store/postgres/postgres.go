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

// Package postgres is the PostgreSQL audit-event store (for several manager
// replicas sharing one database), through pgx.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/auditops/auditops/internal/store"
	"github.com/auditops/auditops/internal/store/internal/migrate"
	"github.com/auditops/auditops/internal/store/internal/sqlstore"
	"github.com/auditops/auditops/internal/store/payload"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrationLock is the advisory lock key that serializes migrations of
// replicas starting together ("auditops" in ASCII).
const migrationLock = 0x6175646974_6f7073

// opInsert names inserts in errors; only their constraint and data errors
// are the client's fault (ErrInvalidEvent).
const opInsert = "insert"

// Store is the PostgreSQL store.
type Store struct {
	pool   *pgxpool.Pool
	opts   store.Options
	reader sqlstore.Reader
	// payload encodes events' JSON values for the payload column.
	payload *payload.Codec
	health  *store.WriteHealth
	// replayWait bounds how long a read waits for a standby to replay the
	// WAL it needs (readAfter); set on the standby of a Replicated.
	replayWait time.Duration
	// schema fails ingest while the schema is changed (nil: an older
	// schema, a migration's test).
	schema *store.SchemaGate
	// code is what SchemaChanges compares our triggers with.
	code ourCode
}

var _ store.Store = (*Store)(nil)

// storeSchemaSQL is the quoted name of the schema the store is in: the
// first made of those that hold events, leaves and schema_migrations, so
// that a schema made since (one named as the role, first in the default
// path) cannot take the store's place with an empty one of its own: the
// schema check names any second one.
const storeSchemaSQL = "SELECT quote_ident(n.nspname) FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace" +
	" WHERE c.relname = 'events' AND c.relkind IN ('r', 'p')" +
	" AND EXISTS (SELECT 1 FROM pg_class AS l WHERE l.relnamespace = c.relnamespace AND l.relname = 'leaves')" +
	" AND EXISTS (SELECT 1 FROM pg_class AS m WHERE m.relnamespace = c.relnamespace AND m.relname = 'schema_migrations')" +
	" ORDER BY c.oid LIMIT 1"

// pinConnections has each new connection of cfg's pool run sets first.
func pinConnections(cfg *pgxpool.Config, sets []string) {
	if len(sets) == 0 {
		return
	}
	after := cfg.AfterConnect
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		if after != nil {
			if err := after(ctx, c); err != nil {
				return err
			}
		}
		for _, set := range sets {
			if _, err := c.Exec(ctx, set); err != nil {
				return fmt.Errorf("%s: %w", set, err)
			}
		}
		return nil
	}
}

// urlSets says whether the URL sets PostgreSQL's parameter param, as a
// parameter of its own or in its options.
func urlSets(cfg *pgxpool.Config, param string) bool {
	_, ok := cfg.ConnConfig.RuntimeParams[param]
	return ok || strings.Contains(cfg.ConnConfig.RuntimeParams["options"], param)
}

// idleInTxParam is the PostgreSQL setting that ends a session idle in a
// transaction for longer than its value (ms).
const idleInTxParam = "idle_in_transaction_session_timeout"

// idleInTxTimeout is the store's idleInTxParam for a busy timeout: twice
// it, at least a second.
func idleInTxTimeout(busy time.Duration) time.Duration {
	return max(2*busy, time.Second)
}

// New connects to the database at url (postgres://...), a pool of
// connections, and applies pending schema migrations.
func New(ctx context.Context, url string, opts store.Options) (*Store, error) {
	return open(ctx, url, opts, 0)
}

// open is New, migrating only up to schema version upTo when it is above
// zero (tests of a migration start from the schema before it).
func open(ctx context.Context, url string, opts store.Options, upTo int64) (*Store, error) {
	return openWith(ctx, url, opts, upTo, nil)
}

// openWith is open with configure, when set, given the pool's
// configuration last (tests: a connection whose writes they hold).
func openWith(ctx context.Context, url string, opts store.Options, upTo int64, configure func(*pgxpool.Config)) (*Store, error) {
	opts = opts.WithDefaults()
	codec, err := store.NewTokenCodec(opts.TokenKey, opts.TokenMaxAge)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse url: %w", err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 || cfg.ConnConfig.ConnectTimeout > opts.BusyTimeout {
		cfg.ConnConfig.ConnectTimeout = opts.BusyTimeout
	}
	// A manager paused inside a transaction (SIGSTOP, a frozen VM, a
	// stalled node) keeps its locks, writersLock among them, which every
	// replica's ingest takes: all ingest stopped until its connection
	// died, and the kernel of a stopped process keeps a connection alive.
	// No transaction of ours waits long between its statements (the
	// longest gap, a spooled batch decoding its next 16 MiB part, is under
	// a second here), so PostgreSQL ends a session idle in one for twice
	// the busy timeout; its batch fails unacknowledged (25P03: unavailable)
	// and is sent again. A URL that sets the parameter (or its options)
	// keeps its own. A SET after connecting rather than a startup
	// parameter, which a pooler such as PgBouncer refuses unless
	// configured to ignore it.
	var sets []string
	if !urlSets(cfg, idleInTxParam) {
		sets = append(sets, "SET "+idleInTxParam+" = "+strconv.FormatInt(idleInTxTimeout(opts.BusyTimeout).Milliseconds(), 10))
	}
	// The search path comes from the role's or the database's settings
	// too, which whoever holds the manager's credentials can change (ALTER
	// ROLE … SET search_path): listing pg_catalog after a schema of theirs
	// made "user_name = $1" call an = operator of theirs, false for one
	// user, and hid that user's events from every filtered read and
	// report while verify found nothing (an attacker review). The path is
	// cut to one schema, so pg_catalog, searched first whenever the path
	// leaves it out, resolves every operator and function: the schema the
	// store is in (storeSchemaSQL), else, for a new store, the one tables
	// are made in. A URL that sets search_path keeps its own.
	if !urlSets(cfg, "search_path") {
		sets = append(sets, "SELECT set_config('search_path', coalesce(("+storeSchemaSQL+"), quote_ident(current_schema()), ''), false)")
	}
	pinConnections(cfg, sets)
	if configure != nil {
		configure(cfg)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s := &Store{
		pool: pool,
		opts: opts,
		reader: sqlstore.Reader{Dialect: sqlstore.Postgres, Codec: codec, SessionGap: opts.SessionGap, MaxPageBytes: opts.MaxPageBytes,
			HourCounts: upTo == 0 || upTo >= 12},
		health: &store.WriteHealth{Limit: opts.BusyTimeout, Window: 2 * opts.BusyTimeout},
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
	// Migration 13 keeps whether any row holds a field in a legacy column.
	s.reader.LegacyFlag = true
	if s.code, err = loadOurCode(); err != nil {
		s.Close()
		return nil, fmt.Errorf("postgres: the code its migrations make: %w", err)
	}
	s.schema = &store.SchemaGate{Check: s.SchemaChanges, Interval: opts.SchemaCheckInterval, Timeout: 2 * opts.BusyTimeout}
	if s.payload, err = payload.NewCodec(ctx, dicts{s}, opts.OnError); err != nil {
		s.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s.reader.Payload = s.payload
	// The first check at start, not in the first request (as SQLite's).
	_ = s.schema.Err(ctx)
	return s, nil
}

// Pool returns the connection pool (for tests and diagnostics).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

func (s *Store) migrate(ctx context.Context, upTo int64) error {
	all, err := migrate.Load(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	if upTo > 0 {
		all = all[:upTo]
	}
	return s.tx(ctx, "migrate", pgx.TxOptions{}, func(tx pgx.Tx) error {
		// Replicas starting together: one migrates, the others wait here
		// and then find nothing pending.
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(migrationLock)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version bigint PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return err
		}
		var current int64
		if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&current); err != nil {
			return err
		}
		pending, err := migrate.Pending(all, current)
		if err != nil {
			return err
		}
		for _, m := range pending {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("migration %s: %w", m.Name, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.Version, m.Name); err != nil {
				return err
			}
		}
		return nil
	})
}

// acquire takes a connection from the pool, waiting at most BusyTimeout:
// past it the store is saturated or down (ErrUnavailable).
func (s *Store) acquire(ctx context.Context, op string) (*pgxpool.Conn, error) {
	actx, cancel := context.WithTimeout(ctx, s.opts.BusyTimeout)
	defer cancel()
	c, err := s.pool.Acquire(actx)
	if err != nil {
		if ctx.Err() == nil && actx.Err() != nil {
			return nil, fmt.Errorf("postgres: %s: %w: no connection within %s: %w", op, store.ErrUnavailable, s.opts.BusyTimeout, err)
		}
		return nil, s.wrap(op, err)
	}
	return c, nil
}

// tx runs fn in one transaction.
func (s *Store) tx(ctx context.Context, op string, opts pgx.TxOptions, fn func(tx pgx.Tx) error) error {
	c, err := s.acquire(ctx, op)
	if err != nil {
		return err
	}
	defer c.Release()
	return s.txOn(ctx, c, op, opts, fn)
}

// txOn is tx on the connection c.
func (s *Store) txOn(ctx context.Context, c *pgxpool.Conn, op string, opts pgx.TxOptions, fn func(tx pgx.Tx) error) error {
	tx, err := c.BeginTx(ctx, opts)
	if err != nil {
		return s.wrap(op, err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return s.wrap(op, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return s.wrap(op, err)
	}
	return nil
}

// read runs fn in a read-only repeatable-read transaction: one snapshot.
func (s *Store) read(ctx context.Context, op string, fn func(q sqlstore.Queryer) error) error {
	return s.readAfter(ctx, op, "", false, fn)
}

// readInIndexOrder is read for the pages of every view (summary, events,
// user logs): each reads an index range in the index's order. Without
// statistics (a young table, or one autovacuum has not analyzed since a
// burst of ingest) the planner estimates ~100 matching rows, and picks a bitmap scan of every
// remaining row of the tenant plus a sort for each page, growing with the
// tenant, where the index scan it takes with bitmap scans and sorts
// disabled for the transaction reads one page's rows (bench/README.md has
// the figures). PostgreSQL has no index hints; this is the documented way.
func (s *Store) readInIndexOrder(ctx context.Context, op string, fn func(q sqlstore.Queryer) error) error {
	return s.readAfter(ctx, op, "", true, fn)
}

// readTx is the transaction of read (indexOrder false) and
// readInIndexOrder (true) on the connection c.
func (s *Store) readTx(ctx context.Context, c *pgxpool.Conn, op string, indexOrder bool, fn func(q sqlstore.Queryer) error) error {
	return s.txOn(ctx, c, op, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if indexOrder {
			if _, err := tx.Exec(ctx, "SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off"); err != nil {
				return err
			}
		}
		return fn(queryer{tx})
	})
}

type queryer struct{ tx pgx.Tx }

func (q queryer) Query(ctx context.Context, sql string, args ...any) (sqlstore.Rows, error) {
	return q.tx.Query(ctx, sql, args...)
}

// wrap adds context to err and maps connection failures and resource
// exhaustion to store.ErrUnavailable, constraint and data errors of inserts
// to store.ErrInvalidEvent.
func (s *Store) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if unavailable(err) {
		return fmt.Errorf("postgres: %s: %w: %w", op, store.ErrUnavailable, err)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.TableName == "leaves" && strings.HasPrefix(pe.Code, "23") {
		// Ingest gives each leaf a free place under writersLock: a leaf
		// in the way was written behind the manager's back, and the
		// batch is not at fault (400 would make kube-apiserver drop it).
		return fmt.Errorf("postgres: %s: the leaves table refused a leaf, which only a change made behind the manager's back can cause (run manager verify): %w", op, err)
	}
	if op == opInsert && errors.As(err, &pe) && (strings.HasPrefix(pe.Code, "23") || strings.HasPrefix(pe.Code, "22")) && !errors.Is(err, store.ErrInvalidEvent) {
		return fmt.Errorf("postgres: %s: %w: %w", op, store.ErrInvalidEvent, err)
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

func unavailable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			strings.HasPrefix(pe.Code, "53"),       // insufficient resources
			strings.HasPrefix(pe.Code, "57P"),      // shutdown, cannot connect now
			pe.Code == "40001", pe.Code == "40P01", // serialization failure, deadlock: retry
			pe.Code == "25P03": // idle_in_transaction_session_timeout (a stalled process): retry
			return true
		}
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || pgconn.SafeToRetry(err)
}

// The _v1 columns stay empty: the payload holds those fields
// (sqlstore.InsertColumns).
const insertSQL = `INSERT INTO events (` + sqlstore.InsertColumns + `)
SELECT namespace, ts, id, user_name, api, status, category, method, status_code,
       '', '', device_id, '', '', '', false, '', NULL, payload, id_hash, content_hash
FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
            $9::bigint[], $10::text[], $11::bytea[], $12::bigint[], $13::bytea[])
     WITH ORDINALITY AS u(namespace, ts, id, user_name, api, status, category, method, status_code,
       device_id, payload, id_hash, content_hash, ord)
ORDER BY ord
ON CONFLICT (` + sqlstore.ContentKeyColumns + `) DO NOTHING
RETURNING namespace, id, id_hash, seq, ts, content_hash`

// reusedSQL finds, among the (namespace, id) of the events a batch stored,
// those that more events hold than the batch stored: each of the batch's
// is then a reuse. An id the batch alone holds k times is reused k-1 times.
// The probe reads at most k+1 rows of an id, so an id reused a million
// times costs no more than one reused once.
const reusedSQL = `SELECT b.ns, b.id, b.k, c.n
FROM (SELECT ns, idh, id, count(*) AS k FROM unnest($1::text[], $2::bigint[], $3::text[]) AS u(ns, idh, id)
      GROUP BY ns, idh, id) AS b,
LATERAL (SELECT count(*) AS n FROM (SELECT 1 FROM events e
         WHERE e.namespace = b.ns AND e.id_hash = b.idh AND e.id = b.id LIMIT b.k + 1) AS x) AS c
WHERE c.n > 1`

// copyColumns are the columns the COPY fast path of Insert fills.
var copyColumns = strings.Split(strings.ReplaceAll(sqlstore.InsertColumns, " ", ""), ",")

// Insert implements store.Store, in one transaction; seq values come from
// the identity in batch order.
//
// Almost every batch holds only new events, so it is first written with
// COPY, PostgreSQL's fastest way in (bench/README.md).
// COPY has no ON CONFLICT: a batch holding a stored event, or one event
// twice, fails it with a unique violation, and that batch (a sender's
// retry, typically) is then written again by insertSkippingDuplicates.
// Concurrent writers (replicas) are serialized by the unique key itself.
func (s *Store) Insert(ctx context.Context, events []store.Event) (res store.InsertResult, err error) {
	norm, err := store.NormalizeBatch(events)
	if err != nil {
		return store.InsertResult{}, fmt.Errorf("postgres: insert: %w", err)
	}
	if len(norm) == 0 {
		return store.InsertResult{}, nil
	}
	if err := s.schemaErr(ctx); err != nil {
		return store.InsertResult{}, fmt.Errorf("postgres: insert: %w", err)
	}
	leaves, err := prepareLeaves(s.opts.Leaves, norm)
	if err != nil {
		return store.InsertResult{}, fmt.Errorf("postgres: insert: %w", err)
	}
	end := s.health.Begin()
	defer func() { end(err) }()
	err = s.tx(ctx, opInsert, pgx.TxOptions{}, func(tx pgx.Tx) error {
		r, w, err := s.copyRows(ctx, tx, norm, leaves)
		if err != nil {
			return err
		}
		res = r
		return w.finish(ctx, tx, &res)
	})
	switch {
	case err == nil:
		return res, nil
	case resent(err):
		return s.insertSkippingDuplicates(ctx, norm, leaves)
	default:
		return store.InsertResult{}, err
	}
}

// copyRows writes the events of a normalized batch with COPY in tx
// (Insert's fast path) and returns what finish writes after them. A stored
// event, or one repeated in the batch, fails it with a unique violation of
// the content key.
func (s *Store) copyRows(ctx context.Context, tx pgx.Tx, norm []store.Event, leaves []store.PreparedLeaf) (res store.InsertResult, w written, err error) {
	err = func() error {
		cols := copyColumns
		var seqs []int64
		if leaves != nil {
			// A leaf's digest covers seq: the batch takes its seqs first.
			if seqs, err = reserveSeqs(ctx, tx, len(norm)); err != nil {
				return err
			}
			cols = append([]string{"seq"}, copyColumns...)
		}
		next := 0
		copied, err := tx.CopyFrom(ctx, pgx.Identifier{"events"}, cols, pgx.CopyFromFunc(func() ([]any, error) {
			if next == len(norm) {
				return nil, nil
			}
			next++
			if seqs != nil {
				return append([]any{seqs[next-1]}, sqlstore.InsertValues(s.payload, &norm[next-1])...), nil
			}
			return sqlstore.InsertValues(s.payload, &norm[next-1]), nil
		}))
		if err != nil {
			return err
		}
		// COPY stores every row or fails (a re-send is a unique
		// violation); fewer is a trigger dropping rows (store.SchemaChecker).
		if int(copied) != len(norm) {
			return fmt.Errorf("%w: COPY stored %d of the batch's %d events: the store's schema drops rows (a trigger?); run manager verify", errRowsDropped, copied, len(norm))
		}
		res = store.InsertResult{Inserted: int(copied)}
		w.refs = make([]stored, len(norm))
		for i := range norm {
			w.refs[i] = stored{ns: norm[i].Namespace, id: norm[i].ID, idh: store.IDHash(norm[i].ID)}
			if leaves != nil {
				w.addLeaf(&norm[i], leaves[i], seqs[i])
			}
		}
		return nil
	}()
	return res, w, err
}

// written is what a batch's transaction writes once its events are in,
// under writersLock: their leaves, placed in the batch's order, and the
// reuse probe of their ids. It keeps what those need of each event (about
// 150 bytes of the leaf and the id), not the event.
type written struct {
	leaves []leafRow
	refs   []stored
}

// leafRow is a leaf to write but for its place.
type leafRow struct {
	ns        string
	ts, seq   int64
	version   int16
	data, mac []byte
}

func (w *written) addLeaf(e *store.Event, l store.PreparedLeaf, seq int64) {
	v, data, mac := l.Leaf(seq)
	w.leaves = append(w.leaves, leafRow{ns: e.Namespace, ts: e.Time.UnixNano(), seq: seq, version: int16(v), data: data, mac: mac})
}

// add appends o's rows, another part of the batch.
func (w *written) add(o written) {
	w.leaves = append(w.leaves, o.leaves...)
	w.refs = append(w.refs, o.refs...)
}

// finish takes writersLock, writes the leaves and adds the reused ids to
// res. Nothing stored, nothing to do.
func (w written) finish(ctx context.Context, tx pgx.Tx, res *store.InsertResult) error {
	if len(w.refs) == 0 {
		return nil
	}
	if err := lockWriters(ctx, tx); err != nil {
		return err
	}
	if len(w.leaves) > 0 {
		if err := writeLeaves(ctx, tx, w.leaves); err != nil {
			return err
		}
	}
	return countReused(ctx, tx, w.refs, res)
}

// InsertParts implements store.Store: every part in one transaction, each
// by COPY under a savepoint, and where that meets a stored event (a unique
// violation) again by the insert that skips them, as Insert does in a
// transaction of its own. As in Insert, writersLock is taken only once
// every part's events are in, for the leaves and the reuse probe of them
// all: other batches, and the sealer, wait for the end of the batch, not
// for the whole of it, and no part's COPY waits on another batch's rows
// while holding the lock that batch waits for.
func (s *Store) InsertParts(ctx context.Context, next func() ([]store.Event, error)) (total store.InsertResult, err error) {
	if err := s.schemaErr(ctx); err != nil {
		return store.InsertResult{}, fmt.Errorf("postgres: insert: %w", err)
	}
	end := s.health.Begin()
	defer func() { end(err) }()
	err = s.tx(ctx, opInsert, pgx.TxOptions{}, func(tx pgx.Tx) error {
		var all written
		for {
			part, err := next()
			if err != nil {
				return err
			}
			if part == nil {
				return all.finish(ctx, tx, &total)
			}
			norm, err := store.NormalizeBatch(part)
			if err != nil {
				return err
			}
			if len(norm) == 0 {
				continue
			}
			leaves, err := prepareLeaves(s.opts.Leaves, norm)
			if err != nil {
				return err
			}
			sp, err := tx.Begin(ctx)
			if err != nil {
				return err
			}
			res, w, err := s.copyRows(ctx, sp, norm, leaves)
			switch {
			case err == nil:
				err = sp.Commit(ctx)
			case resent(err):
				if err = sp.Rollback(ctx); err == nil {
					res, w, err = s.skipRows(ctx, tx, norm, leaves)
				}
			}
			if err != nil {
				return err
			}
			total.Add(res)
			all.add(w)
		}
	})
	if err != nil {
		return store.InsertResult{}, fmt.Errorf("postgres: insert: %w", err)
	}
	return total, nil
}

// resent says whether err is COPY's unique violation of the events' content
// key: the batch holds a stored event, or one event twice (a leaf's place
// taken twice is no re-send).
func resent(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" && pe.TableName != "leaves"
}

// stored is an event a batch stored.
type stored struct {
	ns, id string
	idh    int64
}

// writersLock is the transaction-level advisory lock that serializes the
// end of every ingest transaction, from the leaves' places to the commit,
// across transactions and replicas (lockWriters). Two things need that:
//   - The reuse probe. Under READ COMMITTED two batches storing one id at
//     the same moment each saw only their own event, and neither counted
//     the reuse (the conformance test "ReusedIDConcurrent" caught it at
//     once); holding the lock from the probe to the commit, a batch's probe
//     sees every batch probed before it, so of two the later counts.
//   - The leaves' places (spec/API.md 6: a leaf's index). A batch gives its
//     leaves the next places of their logs, which the batches that held the
//     lock before it have committed: places follow commit order, without a
//     gap or a place taken twice, and the sealer only signs.
//
// What waits is the leaves' COPY, the probe and the commit; the events'
// COPY, the batch's largest part, runs before.
const writersLock int64 = 0x61756469746f7073 // "auditops"

// lockWriters takes writersLock until the transaction ends. It is a
// statement of its own: a statement's snapshot is taken before any lock it
// takes, so a query that locked itself would not see the batch it waited
// for.
func lockWriters(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", writersLock); err != nil {
		return fmt.Errorf("waiting for the writers' lock: %w", err)
	}
	return nil
}

// countReused adds to res the events of refs (all stored by this
// transaction) that reuse the id of another stored event. The transaction
// holds writersLock (lockWriters).
func countReused(ctx context.Context, tx pgx.Tx, refs []stored, res *store.InsertResult) error {
	if len(refs) == 0 {
		return nil
	}
	ns, idh, id := make([]string, len(refs)), make([]int64, len(refs)), make([]string, len(refs))
	for i, r := range refs {
		ns[i], idh[i], id[i] = r.ns, r.idh, r.id
	}
	rows, err := tx.Query(ctx, reusedSQL, ns, idh, id)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var rns, rid string
		var k, n int64
		if err := rows.Scan(&rns, &rid, &k, &n); err != nil {
			return err
		}
		reused := k
		if n <= k {
			reused = k - 1 // the batch holds every event of the id
		}
		for range reused {
			res.AddReused(store.EventRef{Namespace: rns, ID: rid})
		}
	}
	return rows.Err()
}

// insertSkippingDuplicates writes a normalized batch as one INSERT ...
// SELECT FROM unnest(arrays) ON CONFLICT DO NOTHING: events whose content
// is stored, or repeated in the batch, are skipped.
func (s *Store) insertSkippingDuplicates(ctx context.Context, events []store.Event, leaves []store.PreparedLeaf) (store.InsertResult, error) {
	var res store.InsertResult
	err := s.tx(ctx, opInsert, pgx.TxOptions{}, func(tx pgx.Tx) error {
		r, w, err := s.skipRows(ctx, tx, events, leaves)
		if err != nil {
			return err
		}
		res = r
		return w.finish(ctx, tx, &res)
	})
	if err != nil {
		return store.InsertResult{}, err
	}
	return res, nil
}

// skipRows is insertSkippingDuplicates' insert in tx; it returns what
// finish writes after it.
func (s *Store) skipRows(ctx context.Context, tx pgx.Tx, events []store.Event, leaves []store.PreparedLeaf) (res store.InsertResult, w written, err error) {
	n := len(events)
	var (
		ns, id, usr, api, status, cat, method, dev = make([]string, n), make([]string, n), make([]string, n),
			make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		ts, code, idh     = make([]int64, n), make([]int64, n), make([]int64, n)
		payloads, content = make([][]byte, n), make([][]byte, n)
	)
	for i, e := range events {
		ns[i], ts[i], id[i], usr[i], api[i], status[i], cat[i], method[i] = e.Namespace, e.Time.UnixNano(), e.ID, e.User, e.API, e.Status, e.Category, e.Method
		code[i], dev[i] = int64(e.StatusCode), e.DeviceID
		payloads[i] = s.payload.Encode(payload.ValuesOf(&events[i]))
		h := store.ContentHash(&events[i])
		idh[i], content[i] = store.IDHash(e.ID), h[:]
	}
	err = func() error {
		rows, err := tx.Query(ctx, insertSQL, ns, ts, id, usr, api, status, cat, method, code, dev, payloads, idh, content)
		if err != nil {
			return err
		}
		// Which event of the batch each stored row is, by its content key
		// (a batch that holds one event twice stores the first).
		var which map[contentKey]int
		if leaves != nil {
			which = make(map[contentKey]int, n)
			for i := n - 1; i >= 0; i-- {
				which[contentKey{ns[i], ts[i], string(content[i])}] = i
			}
		}
		returned := make(map[contentKey]bool, n)
		for rows.Next() {
			var r stored
			var seq, rts int64
			var ch []byte
			if err := rows.Scan(&r.ns, &r.id, &r.idh, &seq, &rts, &ch); err != nil {
				rows.Close()
				return err
			}
			returned[contentKey{r.ns, rts, string(ch)}] = true
			w.refs = append(w.refs, r)
			if leaves != nil {
				i, ok := which[contentKey{r.ns, rts, string(ch)}]
				if !ok {
					rows.Close()
					return fmt.Errorf("a stored row (%s, %q) is not of the batch", r.ns, r.id)
				}
				w.addLeaf(&events[i], leaves[i], seq)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(w.refs) < n {
			if err := checkResent(ctx, tx, ns, ts, content, returned); err != nil {
				return err
			}
		}
		res = store.InsertResult{Inserted: len(w.refs), Duplicates: n - len(w.refs)}
		return nil
	}()
	return res, w, err
}

// checkResent checks that each event of a batch the insert did not store
// (not in stored) is a re-send: a stored row has its content key. One that
// is not was dropped by a trigger of someone's (store.SchemaChecker), and
// counting it a duplicate would acknowledge an event the store lost.
func checkResent(ctx context.Context, tx pgx.Tx, ns []string, ts []int64, content [][]byte, stored map[contentKey]bool) error {
	var qns []string
	var qts []int64
	var qch [][]byte
	for i := range ns {
		if !stored[contentKey{ns[i], ts[i], string(content[i])}] {
			qns, qts, qch = append(qns, ns[i]), append(qts, ts[i]), append(qch, content[i])
		}
	}
	var lost int64
	if err := tx.QueryRow(ctx, "SELECT count(*) FROM unnest($1::text[], $2::bigint[], $3::bytea[]) AS u (ns, ts, ch)"+
		" WHERE NOT EXISTS (SELECT 1 FROM events AS e WHERE e.namespace = u.ns AND e.ts = u.ts AND e.content_hash = u.ch)", qns, qts, qch).Scan(&lost); err != nil {
		return fmt.Errorf("checking the batch's re-sends: %w", err)
	}
	if lost > 0 {
		return fmt.Errorf("%w: %d events of the batch were neither stored nor re-sends of stored ones: the store's schema drops rows (a trigger?); run manager verify", errRowsDropped, lost)
	}
	return nil
}

// contentKey is the unique key of a stored event.
type contentKey struct {
	ns      string
	ts      int64
	content string
}

// prepareLeaves prepares the leaves of a normalized batch, off the
// transaction; nil when the store makes none.
func prepareLeaves(m store.LeafMaker, events []store.Event) ([]store.PreparedLeaf, error) {
	if m == nil {
		return nil, nil
	}
	out := make([]store.PreparedLeaf, len(events))
	for i := range events {
		l, err := m.Prepare(&events[i])
		if err != nil {
			return nil, fmt.Errorf("event %d (id %q): %w: %w", i, events[i].ID, store.ErrInvalidEvent, err)
		}
		out[i] = l
	}
	return out, nil
}

// reserveSeqs takes n seqs from the events identity's sequence, in order.
// The sequence is looked up once per call: pg_get_serial_sequence in
// nextval's argument was evaluated per row, 2.5 µs of catalog lookup per
// seq against 0.3 µs for nextval itself (psql, 400,000 seqs: 1.0 s vs 0.12 s).
func reserveSeqs(ctx context.Context, tx pgx.Tx, n int) ([]int64, error) {
	var seqs []int64
	if err := tx.QueryRow(ctx, "WITH q AS MATERIALIZED (SELECT pg_get_serial_sequence('events', 'seq')::regclass AS sq)"+
		" SELECT array_agg(v ORDER BY v) FROM (SELECT nextval(q.sq) AS v FROM q, generate_series(1, $1)) AS s", n).Scan(&seqs); err != nil {
		return nil, fmt.Errorf("reserving %d seqs: %w", n, err)
	}
	return seqs, nil
}

// writeLeaves inserts the leaves of the stored events, in the batch's
// order, each at the next place of its log. The transaction holds
// writersLock, so those places are free, and no other batch takes them
// before this one commits.
//
// One INSERT of arrays, not COPY: a replica paused while it sends the
// statement (SIGSTOP, a frozen VM) leaves its session idle in the
// transaction, which idle_in_transaction_session_timeout ends, releasing
// the lock; one paused in the middle of a COPY's data leaves a session
// PostgreSQL counts active, which neither that timeout nor
// statement_timeout ends (it waits for the client's data with interrupts
// held off), and every replica's ingest waited on the lock until the
// paused one's connection died (TestPausedWriterLetsIngestOn).
func writeLeaves(ctx context.Context, tx pgx.Tx, leaves []leafRow) error {
	var nss []string
	seen := map[string]bool{}
	for _, l := range leaves {
		if !seen[l.ns] {
			seen[l.ns] = true
			nss = append(nss, l.ns)
		}
	}
	places, err := nextPlaces(ctx, tx, nss)
	if err != nil {
		return err
	}
	n := len(leaves)
	ns, ts, seq, version, place := make([]string, n), make([]int64, n), make([]int64, n), make([]int16, n), make([]int64, n)
	data, mac := make([][]byte, n), make([][]byte, n)
	for i := range leaves {
		l := &leaves[i]
		ns[i], ts[i], seq[i], version[i], data[i], mac[i] = l.ns, l.ts, l.seq, l.version, l.data, l.mac
		place[i] = places[l.ns]
		places[l.ns]++
	}
	tag, err := tx.Exec(ctx, "INSERT INTO leaves (namespace, ts, seq, version, data, mac, place, created)"+
		" SELECT u.ns, u.ts, u.seq, u.version, u.data, u.mac, u.place, $8"+
		" FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::smallint[], $5::bytea[], $6::bytea[], $7::bigint[]) AS u (ns, ts, seq, version, data, mac, place)",
		ns, ts, seq, version, data, mac, place, time.Now().UnixNano())
	if err != nil {
		return fmt.Errorf("writing leaves: %w", err)
	}
	if int(tag.RowsAffected()) != n {
		return fmt.Errorf("writing leaves: %w: %d of %d stored: the store's schema drops rows (a trigger?); run manager verify", errRowsDropped, tag.RowsAffected(), n)
	}
	return nil
}

// errRowsDropped is ingest's error when the database stored fewer rows
// than it was given without an error: a trigger of someone's returned
// NULL. The batch is not acknowledged.
var errRowsDropped = errors.New("rows dropped")

// nextPlacesSQL is each namespace's next place in its log: after its last
// placed leaf, and never inside what its newest checkpoint covers (should
// its last leaves be gone, a new one must not take a sealed place).
const nextPlacesSQL = `SELECT u.ns, greatest(
    coalesce((SELECT l.place + 1 FROM leaves AS l WHERE l.namespace = u.ns AND l.place IS NOT NULL ORDER BY l.place DESC LIMIT 1), 0),
    coalesce((SELECT max(c.size) FROM checkpoints AS c WHERE c.namespace = u.ns), 0))
FROM unnest($1::text[]) AS u(ns)`

// nextPlaces returns the next place of each log of nss; the transaction
// holds writersLock.
func nextPlaces(ctx context.Context, tx pgx.Tx, nss []string) (map[string]int64, error) {
	rows, err := tx.Query(ctx, nextPlacesSQL, nss)
	if err != nil {
		return nil, fmt.Errorf("the next places in the logs of %v: %w", nss, err)
	}
	defer rows.Close()
	out := make(map[string]int64, len(nss))
	for rows.Next() {
		var ns string
		var place int64
		if err := rows.Scan(&ns, &place); err != nil {
			return nil, err
		}
		out[ns] = place
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("the next places in the logs of %v: %w", nss, err)
	}
	return out, nil
}

// Summary implements store.Store.
func (s *Store) Summary(ctx context.Context, q store.SummaryQuery) (store.SummaryPage, error) {
	return s.summaryAfter(ctx, q, "")
}

// summaryAfter is Summary on a snapshot that holds the WAL up to lsn ("": any).
func (s *Store) summaryAfter(ctx context.Context, q store.SummaryQuery, lsn string) (page store.SummaryPage, err error) {
	err = s.readAfter(ctx, "summary page", lsn, true, func(db sqlstore.Queryer) error {
		page, err = s.reader.Summary(ctx, db, q)
		return err
	})
	return page, err
}

// Events implements store.Store.
func (s *Store) Events(ctx context.Context, q store.EventQuery) (store.EventPage, error) {
	return s.eventsAfter(ctx, q, "")
}

// eventsAfter is Events on a snapshot that holds the WAL up to lsn ("": any).
func (s *Store) eventsAfter(ctx context.Context, q store.EventQuery, lsn string) (page store.EventPage, err error) {
	err = s.readAfter(ctx, "events page", lsn, true, func(db sqlstore.Queryer) error {
		page, err = s.reader.Events(ctx, db, q)
		return err
	})
	return page, err
}

// UserLogs implements store.Store.
func (s *Store) UserLogs(ctx context.Context, q store.UserLogsQuery) (store.UserLogsPage, error) {
	return s.userLogsAfter(ctx, q, "")
}

// userLogsAfter is UserLogs on a snapshot that holds the WAL up to lsn ("": any).
func (s *Store) userLogsAfter(ctx context.Context, q store.UserLogsQuery, lsn string) (page store.UserLogsPage, err error) {
	err = s.readAfter(ctx, "user logs", lsn, true, func(db sqlstore.Queryer) error {
		page, err = s.reader.UserLogs(ctx, db, q)
		return err
	})
	return page, err
}

// UserExists implements store.Store.
func (s *Store) UserExists(ctx context.Context, namespace, user string) (bool, error) {
	return s.userExistsAfter(ctx, namespace, user, "")
}

// userExistsAfter is UserExists on a snapshot that holds the WAL up to lsn ("": any).
func (s *Store) userExistsAfter(ctx context.Context, namespace, user, lsn string) (ok bool, err error) {
	err = s.readAfter(ctx, "user exists", lsn, false, func(db sqlstore.Queryer) error {
		ok, err = s.reader.UserExists(ctx, db, namespace, user)
		return err
	})
	return ok, err
}

// Ping implements store.Store.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.health.Check(); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	c, err := s.acquire(ctx, "ping")
	if err != nil {
		return err
	}
	defer c.Release()
	var one int
	if err := c.QueryRow(ctx, "SELECT 1 FROM schema_migrations LIMIT 1").Scan(&one); err != nil {
		return s.wrap("ping", err)
	}
	return nil
}

// Close implements store.Store.
func (s *Store) Close() error {
	if s.payload != nil {
		// First: it may be storing a dictionary.
		s.payload.Close()
	}
	s.pool.Close()
	return nil
}
