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
	"math"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/auditops/auditops/internal/store"
	"github.com/auditops/auditops/internal/store/internal/sqlstore"
)

// Events are partitioned by UTC day (migration 0004). A day keeps a
// partition small enough to drop at once and few enough for the planner
// (90 days of default retention: ~100 partitions), and it is the unit
// users ask reports and retention in; an hour would make thousands of
// partitions, a month would keep up to a month past retention.
const dayNanos = int64(24 * time.Hour)

// DaysAhead is how many days after today Maintain keeps partitions for, so
// that a leader that cannot reach the database for a while still finds
// tomorrow's partition there.
const DaysAhead = 7

// partitionLockTimeout bounds how long making or dropping a partition waits
// for its lock: ATTACH takes the default partition exclusively, DROP the
// parent; a long report holding the parent should delay upkeep, not queue
// every reader and writer behind it.
const partitionLockTimeout = "5s"

// partition is one partition of events: [from, to) in Unix ns; from is
// math.MinInt64 for MINVALUE.
type partition struct {
	name      string
	from, to  int64
	isDefault bool
}

var boundRE = regexp.MustCompile(`^FOR VALUES FROM \((MINVALUE|'-?\d+')\) TO \((MAXVALUE|'-?\d+')\)$`)

// partitions lists events' partitions in time order, the default last.
func partitions(ctx context.Context, tx pgx.Tx) ([]partition, error) {
	rows, err := tx.Query(ctx, `SELECT c.relname, pg_get_expr(c.relpartbound, c.oid)
		FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'events'::regclass`)
	if err != nil {
		return nil, err
	}
	var out []partition
	for rows.Next() {
		var name, bound string
		if err := rows.Scan(&name, &bound); err != nil {
			return nil, err
		}
		p, err := parsePartition(name, bound)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b partition) int {
		switch {
		case a.isDefault != b.isDefault:
			if a.isDefault {
				return 1
			}
			return -1
		case a.from < b.from:
			return -1
		case a.from > b.from:
			return 1
		}
		return 0
	})
	return out, nil
}

// partitions lists events' partitions (see partitions).
func (s *Store) partitions(ctx context.Context) (parts []partition, err error) {
	err = s.tx(ctx, "partitions", pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		parts, err = partitions(ctx, tx)
		return err
	})
	return parts, err
}

func parsePartition(name, bound string) (partition, error) {
	if bound == "DEFAULT" {
		return partition{name: name, isDefault: true}, nil
	}
	m := boundRE.FindStringSubmatch(bound)
	if m == nil {
		return partition{}, fmt.Errorf("partition %s: unexpected bound %q", name, bound)
	}
	val := func(s string, inf int64) (int64, error) {
		if s == "MINVALUE" || s == "MAXVALUE" {
			return inf, nil
		}
		return strconv.ParseInt(s[1:len(s)-1], 10, 64)
	}
	from, err := val(m[1], math.MinInt64)
	if err != nil {
		return partition{}, fmt.Errorf("partition %s: %w", name, err)
	}
	to, err := val(m[2], math.MaxInt64)
	if err != nil {
		return partition{}, fmt.Errorf("partition %s: %w", name, err)
	}
	return partition{name: name, from: from, to: to}, nil
}

// dayPartitionName names the partition of the UTC day starting at from.
func dayPartitionName(from int64) string {
	return "events_p" + time.Unix(0, from).UTC().Format("20060102")
}

// DaysBack bounds how far before today Maintain makes the partition of a
// day the default partition holds events of (an import of old logs): an
// ingest client chooses event times, and should not choose how many tables
// the database holds.
const DaysBack = 400

// Maintain implements store.Maintainer: with Options.DayPartitions, it
// makes the missing partitions of today, of the DaysAhead days after it,
// and of the days from DaysBack days ago on that the default partition
// holds events of (moving them there), and compacts the indexes of past
// days (compactDays); without, nothing (events stay in
// the default partition, and DeleteBefore still drops any day partition
// made before). Run by the leader only (main's upkeep loop); a second
// writer would find them made.
func (s *Store) Maintain(ctx context.Context, now time.Time) error {
	if !s.opts.DayPartitions {
		return nil
	}
	today := sqlstore.DayStart(now.UnixNano())
	parts, err := s.partitions(ctx)
	if err != nil {
		return err
	}
	var days []int64
	for d := range int64(DaysAhead + 1) {
		days = append(days, today+d*dayNanos)
	}
	err = s.tx(ctx, "partitions", pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT DISTINCT ts - ts % $1 FROM events_default WHERE ts >= $2 AND ts < $3`,
			dayNanos, today-DaysBack*dayNanos, today)
		if err != nil {
			return err
		}
		past, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		days = append(days, past...)
		return err
	})
	if err != nil {
		return err
	}
	for _, from := range days {
		to := from + dayNanos
		if slices.ContainsFunc(parts, func(p partition) bool { return !p.isDefault && p.from < to && from < p.to }) {
			continue
		}
		if err := s.createDay(ctx, from, to); err != nil {
			return fmt.Errorf("postgres: making partition %s: %w", dayPartitionName(from), err)
		}
	}
	return s.compactDays(ctx, parts, today)
}

// Index compaction of past days. Each namespace's events go in at the end
// of its own key range, which is in the middle of every index (they all
// lead with the namespace): a full page there splits in halves, the lower
// one never gets another entry, and the indexes end up about half full. A
// REINDEX packs them: ~290 of ~1,340 bytes an event on make bench's data
// (bench/README.md). A day's partition gets few events once the day is
// over, so Maintain rebuilds its indexes once, CONCURRENTLY (reads and
// ingest go on), a day after the day ended, and marks it done in the
// table's comment.
const (
	compactedComment = "auditops: indexes compacted"
	// compactPerRun bounds the partitions one Maintain compacts: after an
	// upgrade, every day kept is due, and the hourly runs share them out.
	compactPerRun = 4
)

// leftoverIndexRE matches what an interrupted REINDEX CONCURRENTLY leaves
// behind: an index built beside the old one (_ccnew) or the old one on its
// way out (_ccold), both invalid, both still updated by every insert.
var leftoverIndexRE = regexp.MustCompile(`_cc(new|old)[0-9]*$`)

// compactDays rebuilds the indexes of the day partitions (of parts) that
// ended before yesterday and are not marked compacted, at most
// compactPerRun of them, oldest first.
func (s *Store) compactDays(ctx context.Context, parts []partition, today int64) error {
	var past []string
	for _, p := range parts {
		// Day partitions only: events_legacy holds everything from before
		// partitioning, whose rebuild is the operator's call, as the
		// default partition's is (README).
		if !p.isDefault && p.to-p.from == dayNanos && p.to <= today-dayNanos {
			past = append(past, pgx.Identifier{p.name}.Sanitize())
		}
	}
	if len(past) == 0 {
		return nil
	}
	var done []string
	err := s.tx(ctx, "partitions", pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT n FROM unnest($1::text[]) AS n
			WHERE coalesce(obj_description(n::regclass, 'pg_class'), '') LIKE $2`, past, compactedComment+"%")
		if err != nil {
			return err
		}
		done, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return err
	}
	var due []string
	for _, name := range past {
		if !slices.Contains(done, name) && len(due) < compactPerRun {
			due = append(due, name)
		}
	}
	for _, name := range due {
		if err := s.compactPartition(ctx, name); err != nil {
			return fmt.Errorf("postgres: compacting the indexes of %s: %w", name, err)
		}
	}
	return nil
}

// compactPartition drops what an earlier interrupted rebuild left of the
// indexes of table (a quoted identifier), rebuilds them, and marks it
// compacted.
func (s *Store) compactPartition(ctx context.Context, table string) error {
	rows, err := s.pool.Query(ctx, `SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		WHERE i.indrelid = $1::regclass AND NOT i.indisvalid`, table)
	if err != nil {
		return err
	}
	invalid, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, idx := range invalid {
		if !leftoverIndexRE.MatchString(idx) {
			continue // someone's CREATE INDEX CONCURRENTLY, in progress or failed: not ours
		}
		if _, err := s.pool.Exec(ctx, "DROP INDEX CONCURRENTLY IF EXISTS "+pgx.Identifier{idx}.Sanitize()); err != nil {
			return fmt.Errorf("dropping %s, left by an interrupted rebuild: %w", idx, err)
		}
	}
	// Not in a transaction (REINDEX CONCURRENTLY cannot be): one statement.
	if _, err := s.pool.Exec(ctx, "REINDEX TABLE CONCURRENTLY "+table); err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, "COMMENT ON TABLE "+table+" IS '"+compactedComment+" "+time.Now().UTC().Format(time.RFC3339)+"'")
	return err
}

// vacuumAfterInserts are the storage parameters of each partition of
// events (migration 11 has why): autovacuum visits it every 20,000
// inserts, so that index-only scans of recent events skip the table.
const vacuumAfterInserts = "autovacuum_vacuum_insert_threshold = 20000, autovacuum_vacuum_insert_scale_factor = 0"

// createDay makes the partition [from, to) as a table of its own, moves the
// default partition's rows of that day into it, and attaches it: ATTACH
// takes the parent in SHARE UPDATE EXCLUSIVE mode, so reads and ingest go
// on (CREATE TABLE ... PARTITION OF would take it exclusively).
func (s *Store) createDay(ctx context.Context, from, to int64) error {
	name := pgx.Identifier{dayPartitionName(from)}.Sanitize()
	return s.tx(ctx, "partitions", pgx.TxOptions{}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '"+partitionLockTimeout+"'"); err != nil {
			return err
		}
		// Taken first, so that no event of the day lands in the default
		// partition between the move and ATTACH's check of it (an insert
		// routed there waits instead).
		if _, err := tx.Exec(ctx, "LOCK TABLE events_default IN ACCESS EXCLUSIVE MODE"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "CREATE TABLE "+name+" (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE) WITH ("+vacuumAfterInserts+")"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `WITH moved AS (DELETE FROM events_default WHERE ts >= $1 AND ts < $2 RETURNING *)
			INSERT INTO `+name+` SELECT * FROM moved`, from, to); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, fmt.Sprintf("ALTER TABLE events ATTACH PARTITION %s FOR VALUES FROM (%d) TO (%d)", name, from, to))
		return err
	})
}

// DeleteBefore implements store.Store. Partitions wholly before t are
// counted and dropped, no row deleted one by one; what is left before t
// (the legacy partition of a migrated store, the default partition, the
// day t falls in) is deleted namespace by namespace, a range delete on the
// primary key each. Retention (main) cuts at a day's start, so only the
// legacy and default partitions take the second path, and a day partition
// that holds an event of a namespace in keep: it stays, its other events
// go row by row, and it is dropped at a later run that keeps none of its
// namespaces.
func (s *Store) DeleteBefore(ctx context.Context, t time.Time, keep ...string) (int64, error) {
	cut, _ := sqlstore.Bounds(store.TimeRange{From: t})
	parts, err := s.partitions(ctx)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, p := range parts {
		if p.isDefault || p.to > cut {
			continue
		}
		n, err := s.dropPartition(ctx, p.name, keep)
		if err != nil {
			return total, fmt.Errorf("postgres: dropping partition %s: %w", p.name, err)
		}
		total += n
	}
	n, err := s.deleteRowsBefore(ctx, cut, keep)
	if err != nil {
		return total + n, err
	}
	return total + n, s.dropEmptyHours(ctx, cut)
}

// dropEmptyHours deletes the rows of category_hours, wholly before cut,
// whose hour no event holds any longer. The triggers and dropPartition
// leave none; a replica of the version before that ran retention (a
// rolling update, a rollback) dropped partitions without taking their
// hours off. An event written late into such an hour keeps its row.
func (s *Store) dropEmptyHours(ctx context.Context, cut int64) error {
	return s.tx(ctx, "retention", pgx.TxOptions{}, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "DELETE FROM category_hours AS h WHERE h.hour < $1 AND NOT EXISTS (SELECT 1 FROM events AS e"+
			" WHERE e.namespace = h.namespace AND e.category = h.category AND e.ts >= h.hour * $2 AND e.ts < (h.hour + 1) * $2)",
			cut/sqlstore.HourNanos, sqlstore.HourNanos)
		if err != nil {
			return fmt.Errorf("postgres: deleting emptied hours of category_hours: %w", err)
		}
		return nil
	})
}

// dropPartition counts a partition's events and drops it, in one
// transaction: the partition is locked against writes first (only a late
// event of that old day waits), so the count is exact, and the parent is
// taken exclusively only for the DROP itself, not for the count, which
// reads the whole day. A partition holding an event of a namespace in keep
// is left as it is (0, nil).
func (s *Store) dropPartition(ctx context.Context, name string, keep []string) (n int64, err error) {
	id := pgx.Identifier{name}.Sanitize()
	err = s.tx(ctx, "retention", pgx.TxOptions{}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '"+partitionLockTimeout+"'"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "LOCK TABLE "+id+" IN SHARE MODE"); err != nil {
			return err
		}
		if len(keep) > 0 {
			var kept bool
			if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+id+" WHERE namespace = ANY($1))", keep).Scan(&kept); err != nil {
				return fmt.Errorf("looking for events to keep: %w", err)
			}
			if kept {
				n = 0
				return nil
			}
		}
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+id).Scan(&n); err != nil {
			return err
		}
		hours, err := countHours(ctx, tx, id)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "LOCK TABLE events IN ACCESS EXCLUSIVE MODE"); err != nil {
			return err
		}
		// A DROP fires no trigger: the partition's events come off
		// category_hours here (migration 12). No ingest runs meanwhile,
		// so the order rows are taken in does not matter.
		if _, err := tx.Exec(ctx, "UPDATE category_hours AS h SET n = h.n - g.n"+
			" FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[]) AS g (namespace, category, hour, n)"+
			" WHERE h.namespace = g.namespace AND h.category = g.category AND h.hour = g.hour",
			hours.ns, hours.category, hours.hour, hours.n); err != nil {
			return fmt.Errorf("taking the partition's events off category_hours: %w", err)
		}
		if _, err := tx.Exec(ctx, "DELETE FROM category_hours AS h USING unnest($1::text[], $2::text[], $3::bigint[]) AS g (namespace, category, hour)"+
			" WHERE h.namespace = g.namespace AND h.category = g.category AND h.hour = g.hour AND h.n <= 0",
			hours.ns, hours.category, hours.hour); err != nil {
			return fmt.Errorf("deleting emptied hours of category_hours: %w", err)
		}
		_, err = tx.Exec(ctx, "DROP TABLE "+id)
		return err
	})
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42P01" { // dropped meanwhile
		return 0, nil
	}
	return n, err
}

// hourCounts are the access and user events of a partition per namespace
// and hour, as columns.
type hourCounts struct {
	ns, category []string
	hour, n      []int64
}

// countHours counts the access and user events of partition id (quoted)
// per namespace and hour, as category_hours holds them.
func countHours(ctx context.Context, tx pgx.Tx, id string) (hourCounts, error) {
	var c hourCounts
	rows, err := tx.Query(ctx, "SELECT namespace, category, ts / "+strconv.FormatInt(sqlstore.HourNanos, 10)+", count(*) FROM "+id+
		" WHERE category IN ('access', 'user') AND ts >= 0 GROUP BY 1, 2, 3")
	if err != nil {
		return c, fmt.Errorf("counting the partition's hours: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var ns, cat string
		var hour, n int64
		if err := rows.Scan(&ns, &cat, &hour, &n); err != nil {
			return c, fmt.Errorf("counting the partition's hours: %w", err)
		}
		c.ns, c.category, c.hour, c.n = append(c.ns, ns), append(c.category, cat), append(c.hour, hour), append(c.n, n)
	}
	return c, rows.Err()
}

// deleteRowsBefore deletes the rows before cut that no dropped partition
// held, namespace by namespace (one index seek each).
func (s *Store) deleteRowsBefore(ctx context.Context, cut int64, keep []string) (int64, error) {
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
		var n int64
		err = s.tx(ctx, "retention", pgx.TxOptions{}, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, "DELETE FROM events WHERE namespace = $1 AND ts < $2", ns, cut)
			n = tag.RowsAffected()
			return err
		})
		if err != nil {
			return total, err
		}
		total += n
	}
}
