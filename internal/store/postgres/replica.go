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
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/auditops/auditops/internal/store"
	"github.com/auditops/auditops/internal/store/internal/sqlstore"
)

// DefaultReplayWait is how long a report's read waits for the standby to
// replay the primary's WAL before it fails with store.ErrUnavailable (and
// the report retries): the store timeout of ingest's answers.
const DefaultReplayWait = 10 * time.Second

// ErrNotStandby is wrapped by NewReplicated's errors about a read server
// that is not a hot standby of the primary's database.
var ErrNotStandby = errors.New("not a hot standby of the primary's database")

// Replicated is a store that writes to a PostgreSQL primary and reads from
// one of its streaming hot standbys (--store-read-url): ingest, retention
// and migrations on the primary, the audit API's pages on the standby,
// which may lag the primary (README "Read replicas"). Reports read through
// ForReports, which waits for the standby to catch up.
//
// Nothing is written to the standby: it is opened without migrations, its
// sessions are read-only (default_transaction_read_only), and a hot
// standby refuses writes itself.
type Replicated struct {
	primary, standby *Store
}

var (
	_ store.Store      = (*Replicated)(nil)
	_ store.Maintainer = (*Replicated)(nil)
)

// NewReplicated opens the standby at standbyURL beside primary, with
// primary's options. It refuses a server that is not in recovery, or whose
// cluster (system identifier) or database differs from the primary's, and
// waits at most replayWait (0: DefaultReplayWait) for the standby to
// replay the primary's schema. Close closes both stores.
func NewReplicated(ctx context.Context, primary *Store, standbyURL string, replayWait time.Duration) (*Replicated, error) {
	if replayWait <= 0 {
		replayWait = DefaultReplayWait
	}
	cfg, err := pgxpool.ParseConfig(standbyURL)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse read url: %w", err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 || cfg.ConnConfig.ConnectTimeout > primary.opts.BusyTimeout {
		cfg.ConnConfig.ConnectTimeout = primary.opts.BusyTimeout
	}
	// A second guard besides the standby's own refusal: were the URL to
	// reach a writable server some day (a promoted standby), nothing of
	// this store writes there.
	cfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	// The primary's schema, as its connections pin it (open): the
	// standby's role and database settings are the primary's, replayed.
	if !urlSets(cfg, "search_path") {
		var schema string
		if err := primary.pool.QueryRow(ctx, "SELECT quote_ident(current_schema())").Scan(&schema); err != nil {
			return nil, fmt.Errorf("postgres: the primary's schema: %w", err)
		}
		pinConnections(cfg, []string{"SELECT set_config('search_path', '" + strings.ReplaceAll(schema, "'", "''") + "', false)"})
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: read store: %w", err)
	}
	r := &Replicated{primary: primary, standby: &Store{
		pool:       pool,
		opts:       primary.opts,
		reader:     primary.reader,
		health:     &store.WriteHealth{Limit: primary.opts.BusyTimeout, Window: 2 * primary.opts.BusyTimeout},
		replayWait: replayWait,
	}}
	if err := r.check(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return r, nil
}

// server is what check compares of two servers.
type server struct {
	system     int64
	database   string
	inRecovery bool
}

func (s *Store) server(ctx context.Context) (sv server, err error) {
	c, err := s.acquire(ctx, "identify")
	if err != nil {
		return sv, err
	}
	defer c.Release()
	err = c.QueryRow(ctx, "SELECT system_identifier, current_database(), pg_is_in_recovery() FROM pg_control_system()").
		Scan(&sv.system, &sv.database, &sv.inRecovery)
	return sv, s.wrap("identify", err)
}

// check refuses a standby of another cluster or database, a read server
// that is no standby, and a primary that is one; then waits for the
// standby to hold the primary's schema (the migrations New just applied).
func (r *Replicated) check(ctx context.Context) error {
	p, err := r.primary.server(ctx)
	if err != nil {
		return err
	}
	s, err := r.standby.server(ctx)
	if err != nil {
		return fmt.Errorf("postgres: read store: %w", err)
	}
	switch {
	case p.inRecovery:
		return fmt.Errorf("postgres: the primary is in recovery: writes need the primary itself, not a standby")
	case s.system != p.system:
		return fmt.Errorf("postgres: read store: %w: its cluster's system identifier is %d, the primary's %d (a standby made by pg_basebackup of the primary has the primary's)", ErrNotStandby, s.system, p.system)
	case s.database != p.database:
		return fmt.Errorf("postgres: read store: %w: it names database %q, the primary %q", ErrNotStandby, s.database, p.database)
	case !s.inRecovery:
		return fmt.Errorf("postgres: read store: %w: the server of the primary's cluster is not in recovery (the primary itself, or a promoted standby)", ErrNotStandby)
	}
	lsn, err := r.primary.insertLSN(ctx)
	if err != nil {
		return err
	}
	if err := r.standby.readAfter(ctx, "read store schema", lsn, false, func(q sqlstore.Queryer) error {
		rows, err := q.Query(ctx, "SELECT 1 FROM schema_migrations LIMIT 1")
		if err != nil {
			return err
		}
		rows.Close()
		return rows.Err()
	}); err != nil {
		return fmt.Errorf("postgres: the read store has not replayed the primary's schema: %w", err)
	}
	return nil
}

// insertLSN is the primary's WAL insert position, which every transaction
// it has committed, and so acknowledged, ends at or before (the write
// position can be behind a commit record when synchronous_commit is off),
// once everything before it is flushed: a record a background process
// inserts after the last commit (a standby snapshot) otherwise waits
// unflushed, and so unsent to the standby, until the next commit, and a
// reader waiting for the standby waits for it (TestReplicatedConformance
// waited out its 10 s for 24 such bytes once). The position is read in a
// transaction that takes an xid and commits synchronously: its commit
// record comes after the position, and flushing it flushes all before.
func (s *Store) insertLSN(ctx context.Context) (lsn string, err error) {
	c, err := s.acquire(ctx, "wal position")
	if err != nil {
		return "", err
	}
	defer c.Release()
	err = pgx.BeginTxFunc(ctx, c, pgx.TxOptions{}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL synchronous_commit = on"); err != nil {
			return err
		}
		var xid int64
		return tx.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text, txid_current()").Scan(&lsn, &xid)
	})
	return lsn, s.wrap("wal position", err)
}

// errBehind is the answer of a standby that has not replayed an LSN yet.
type errBehind struct{ replayed string }

func (e *errBehind) Error() string { return "replayed up to " + e.replayed }

// replayed checks on c that its server, a standby, has replayed lsn.
func replayed(ctx context.Context, c *pgxpool.Conn, lsn string) error {
	var inRecovery, ok bool
	var at string
	err := c.QueryRow(ctx, `SELECT pg_is_in_recovery(), coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false),
		coalesce(pg_last_wal_replay_lsn()::text, '')`, lsn).Scan(&inRecovery, &ok, &at)
	switch {
	case err != nil:
		return err
	case !inRecovery:
		// Promoted, or a primary: nobody can say whether it holds what the
		// primary acknowledged. Failing keeps a report from missing rows.
		return fmt.Errorf("%w: the read server is no longer in recovery", store.ErrUnavailable)
	case !ok:
		return &errBehind{replayed: at}
	}
	return nil
}

// readAfter runs fn in a read-only repeatable-read transaction (with
// bitmap scans and sorts off when indexOrder, as readInIndexOrder) whose
// snapshot holds the WAL up to lsn ("": any snapshot). The replay position
// is read on the connection before the transaction starts: its snapshot,
// taken by its first statement, is then at least as recent, even when the
// URL spreads connections over several standbys. A standby behind lsn is
// polled for at most replayWait; past it the read fails with
// store.ErrUnavailable, which a report retries.
func (s *Store) readAfter(ctx context.Context, op, lsn string, indexOrder bool, fn func(q sqlstore.Queryer) error) error {
	var deadline time.Time
	delay := 2 * time.Millisecond
	for {
		c, err := s.acquire(ctx, op)
		if err != nil {
			return err
		}
		if lsn == "" {
			err = s.readTx(ctx, c, op, indexOrder, fn)
			c.Release()
			return err
		}
		err = replayed(ctx, c, lsn)
		var behind *errBehind
		if !errors.As(err, &behind) {
			if err == nil {
				err = s.readTx(ctx, c, op, indexOrder, fn)
			} else {
				err = s.wrap(op, err)
			}
			c.Release()
			return err
		}
		c.Release()
		if deadline.IsZero() {
			deadline = time.Now().Add(s.replayWait)
		} else if time.Now().After(deadline) {
			return fmt.Errorf("postgres: %s: %w: the read replica has replayed the primary's WAL up to %s, not yet %s, within %s",
				op, store.ErrUnavailable, behind.replayed, lsn, s.replayWait)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("postgres: %s: waiting for the read replica to replay %s: %w", op, lsn, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 100*time.Millisecond)
	}
}

// Insert implements store.Store on the primary.
func (r *Replicated) Insert(ctx context.Context, events []store.Event) (store.InsertResult, error) {
	return r.primary.Insert(ctx, events)
}

// InsertParts implements store.Store on the primary.
func (r *Replicated) InsertParts(ctx context.Context, next func() ([]store.Event, error)) (store.InsertResult, error) {
	return r.primary.InsertParts(ctx, next)
}

// DeleteBefore implements store.Store on the primary.
func (r *Replicated) DeleteBefore(ctx context.Context, t time.Time, keep ...string) (int64, error) {
	return r.primary.DeleteBefore(ctx, t, keep...)
}

// Maintain implements store.Maintainer on the primary.
func (r *Replicated) Maintain(ctx context.Context, now time.Time) error {
	return r.primary.Maintain(ctx, now)
}

// Summary implements store.Store on the standby, as far as it has replayed.
func (r *Replicated) Summary(ctx context.Context, q store.SummaryQuery) (store.SummaryPage, error) {
	return r.standby.Summary(ctx, q)
}

// Events implements store.Store on the standby, as far as it has replayed.
func (r *Replicated) Events(ctx context.Context, q store.EventQuery) (store.EventPage, error) {
	return r.standby.Events(ctx, q)
}

// UserLogs implements store.Store on the standby, as far as it has replayed.
func (r *Replicated) UserLogs(ctx context.Context, q store.UserLogsQuery) (store.UserLogsPage, error) {
	return r.standby.UserLogs(ctx, q)
}

// UserExists implements store.Store on the standby, as far as it has replayed.
func (r *Replicated) UserExists(ctx context.Context, namespace, user string) (bool, error) {
	return r.standby.UserExists(ctx, namespace, user)
}

// Ping implements store.Store on the primary alone: readiness is ingest's
// (README "Durability"), and a standby that is down must not take every
// replica out of its Service, stopping ingest, for the sake of reads; those
// answer 503 meanwhile and reports retry.
func (r *Replicated) Ping(ctx context.Context) error {
	return r.primary.Ping(ctx)
}

// Close implements store.Store, closing both.
func (r *Replicated) Close() error {
	r.standby.pool.Close()
	return r.primary.Close()
}

// Primary is the store written to: the leader seals its logs there.
func (r *Replicated) Primary() *Store { return r.primary }

// ForReports returns the view of r that reports read: it writes as r does,
// and each read waits until the standby has replayed the primary's WAL up
// to a position taken on the primary after the read's window ended
// (Range.To; an unbounded window ends now). So a report misses no event
// the primary acknowledged before its window's end, and reads the same
// rows as from the primary. One position serves every read whose window
// ended before it was taken, so a report waits at most once, on its first
// page.
func (r *Replicated) ForReports() store.Store {
	return &reportView{Replicated: r}
}

// reportView is ForReports' view.
type reportView struct {
	*Replicated
	mu sync.Mutex
	// lsn is the primary's insert position taken at at.
	lsn string
	at  time.Time
	// pinned are the positions of pinned reads (store.EventQuery.InLog),
	// by namespace and log size: taken at the first such read, after the
	// report sealed the log, so the standby has replayed the seal (a leaf
	// it has not seen sealed would hide its event).
	pinned map[string]string
}

// pinnedKey names a pinned read's position; "" for an unpinned read.
func pinnedKey(ns string, inLog *int64) string {
	if inLog == nil {
		return ""
	}
	return ns + "\x00" + strconv.FormatInt(*inLog, 10)
}

// target is the LSN a read of a window ending at to needs; pin, when set,
// names a pinned read (pinnedKey).
func (v *reportView) target(ctx context.Context, to time.Time, pin string) (string, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if pin != "" {
		if lsn, ok := v.pinned[pin]; ok {
			return lsn, nil
		}
		lsn, err := v.primary.insertLSN(ctx)
		if err != nil {
			return "", err
		}
		if v.pinned == nil || len(v.pinned) > 1000 {
			v.pinned = map[string]string{}
		}
		v.pinned[pin] = lsn
		return lsn, nil
	}
	if v.lsn != "" && !to.IsZero() && !to.After(v.at) {
		return v.lsn, nil
	}
	// The time first: what was acknowledged before it is below the LSN.
	now := time.Now()
	lsn, err := v.primary.insertLSN(ctx)
	if err != nil {
		return "", err
	}
	v.lsn, v.at = lsn, now
	return lsn, nil
}

// Summary implements store.Store, after the standby caught up.
func (v *reportView) Summary(ctx context.Context, q store.SummaryQuery) (store.SummaryPage, error) {
	lsn, err := v.target(ctx, q.Range.To, pinnedKey(q.Namespace, q.InLog))
	if err != nil {
		return store.SummaryPage{}, err
	}
	return v.standby.summaryAfter(ctx, q, lsn)
}

// Events implements store.Store, after the standby caught up.
func (v *reportView) Events(ctx context.Context, q store.EventQuery) (store.EventPage, error) {
	lsn, err := v.target(ctx, q.Range.To, pinnedKey(q.Namespace, q.InLog))
	if err != nil {
		return store.EventPage{}, err
	}
	return v.standby.eventsAfter(ctx, q, lsn)
}

// UserLogs implements store.Store, after the standby caught up.
func (v *reportView) UserLogs(ctx context.Context, q store.UserLogsQuery) (store.UserLogsPage, error) {
	lsn, err := v.target(ctx, q.Range.To, pinnedKey(q.Namespace, q.InLog))
	if err != nil {
		return store.UserLogsPage{}, err
	}
	return v.standby.userLogsAfter(ctx, q, lsn)
}

// UserExists implements store.Store, after the standby caught up with now.
func (v *reportView) UserExists(ctx context.Context, namespace, user string) (bool, error) {
	lsn, err := v.target(ctx, time.Time{}, "")
	if err != nil {
		return false, err
	}
	return v.standby.userExistsAfter(ctx, namespace, user, lsn)
}
