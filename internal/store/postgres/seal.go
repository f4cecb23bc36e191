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
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/auditops/auditops/internal/seal"
	"github.com/auditops/auditops/internal/store"
	"github.com/auditops/auditops/internal/store/internal/sqlstore"
)

var (
	_ seal.Log      = (*Store)(nil)
	_ seal.Resigner = (*Store)(nil)
	_ seal.Unplacer = (*Store)(nil)
)

var readOnly = pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}

// sealedSize is a log's size, its newest checkpoint's, as a scalar
// subquery on the namespace expression: a leaf is sealed when its place is
// below it (ingest places every leaf as it writes it; migration 0009).
func sealedSize(ns string) string {
	return "(SELECT coalesce(max(size), 0) FROM checkpoints WHERE namespace = " + ns + ")"
}

// UnsealedNamespaces implements seal.LogStore: the logs whose last placed
// leaf is past their newest checkpoint, found with one index seek per
// namespace (a recursive walk of leaves_by_index, where a DISTINCT would
// read every leaf), and those with leaves without a place.
func (s *Store) UnsealedNamespaces(ctx context.Context) ([]string, error) {
	var out []string
	err := s.tx(ctx, "unsealed namespaces", readOnly, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, "WITH RECURSIVE logs(ns) AS ("+
			"SELECT (SELECT min(namespace) FROM leaves WHERE place IS NOT NULL)"+
			" UNION ALL SELECT (SELECT min(l.namespace) FROM leaves AS l WHERE l.place IS NOT NULL AND l.namespace > logs.ns)"+
			" FROM logs WHERE logs.ns IS NOT NULL)"+
			" SELECT ns FROM logs WHERE ns IS NOT NULL"+
			" AND (SELECT l.place FROM leaves AS l WHERE l.namespace = logs.ns AND l.place IS NOT NULL ORDER BY l.place DESC LIMIT 1) >= "+sealedSize("logs.ns")+
			" UNION SELECT DISTINCT namespace FROM leaves WHERE place IS NULL ORDER BY 1")
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	return out, err
}

// LogSize implements seal.LogStore.
func (s *Store) LogSize(ctx context.Context, ns string) (int64, error) {
	var size int64
	err := s.tx(ctx, "log size", readOnly, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, "SELECT "+sealedSize("$1"), ns).Scan(&size)
	})
	return size, err
}

// Unsealed implements seal.LogStore: the placed leaves past the newest
// checkpoint, in place order. Places follow commit order, which is not seq
// order here (a batch takes its seqs before it waits for writersLock), so
// after is no bound (seal.Unplacer).
func (s *Store) Unsealed(ctx context.Context, ns string, _ int64, limit int) ([]seal.PendingLeaf, error) {
	return s.pendingLeaves(ctx, "unsealed leaves", "SELECT ts, seq, version, data, mac, created FROM leaves"+
		" WHERE namespace = $1 AND place >= "+sealedSize("$1")+" ORDER BY place LIMIT $2", ns, limit)
}

// Unplaced implements seal.Unplacer.
func (s *Store) Unplaced(ctx context.Context, ns string, after int64, limit int) ([]seal.PendingLeaf, error) {
	return s.pendingLeaves(ctx, "leaves without a place", "SELECT ts, seq, version, data, mac, created FROM leaves"+
		" WHERE namespace = $1 AND place IS NULL AND seq > $2 ORDER BY seq LIMIT $3", ns, after, limit)
}

// pendingLeaves reads the leaves query q selects.
func (s *Store) pendingLeaves(ctx context.Context, op, q string, args ...any) ([]seal.PendingLeaf, error) {
	var out []seal.PendingLeaf
	err := s.tx(ctx, op, readOnly, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (seal.PendingLeaf, error) {
			var l seal.PendingLeaf
			var v int16
			var created int64
			err := r.Scan(&l.Time, &l.Seq, &v, &l.Data, &l.MAC, &created)
			l.Version, l.Created = int(v), time.Unix(0, created).UTC()
			return l, err
		})
		return err
	})
	return out, err
}

// Place implements seal.Unplacer, under writersLock: the places are
// ingest's next ones.
func (s *Store) Place(ctx context.Context, ns string, seqs []int64) error {
	return s.tx(ctx, "place", pgx.TxOptions{}, func(tx pgx.Tx) error {
		if err := lockLog(ctx, tx, ns); err != nil {
			return err
		}
		if err := lockWriters(ctx, tx); err != nil {
			return err
		}
		places, err := nextPlaces(ctx, tx, []string{ns})
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, "UPDATE leaves AS l SET place = $3 + u.k - 1 FROM unnest($2::bigint[]) WITH ORDINALITY AS u(seq, k)"+
			" WHERE l.namespace = $1 AND l.seq = u.seq AND l.place IS NULL", ns, seqs, places[ns])
		if err != nil {
			return fmt.Errorf("placing leaves of %s: %w", ns, err)
		}
		if n := tag.RowsAffected(); n != int64(len(seqs)) {
			return fmt.Errorf("%d of the %d leaves of %s to place have a place already or are gone", int64(len(seqs))-n, len(seqs), ns)
		}
		return nil
	})
}

// ReadHashes implements seal.LogStore and seal.LogReader: the kept hashes
// from tree_hashes, the others from the leaves, in one read transaction.
func (s *Store) ReadHashes(ctx context.Context, ns string, indexes []int64) (out []tlog.Hash, err error) {
	if len(indexes) == 0 {
		return []tlog.Hash{}, nil
	}
	err = s.tx(ctx, "tree hashes", readOnly, func(tx pgx.Tx) error {
		out, err = seal.ReadTreeHashes(seal.HashSource{
			Stored: func(indexes []int64) ([]tlog.Hash, error) {
				rows, err := tx.Query(ctx, "SELECT id, hash FROM tree_hashes WHERE namespace = $1 AND id = ANY($2)", ns, indexes)
				if err != nil {
					return nil, err
				}
				defer rows.Close()
				out := make([]tlog.Hash, len(indexes))
				return out, sqlstore.ScanTreeHashes(rows, ns, indexes, out)
			},
			LeafData: func(start, end int64) ([][]byte, error) {
				rows, err := tx.Query(ctx, "SELECT data FROM leaves WHERE namespace = $1 AND place >= $2 AND place < least($3, "+sealedSize("$1")+") ORDER BY place", ns, start, end)
				if err != nil {
					return nil, err
				}
				return pgx.CollectRows(rows, pgx.RowTo[[]byte])
			},
		}, indexes)
		return err
	})
	return out, err
}

// Append implements seal.LogStore.
func (s *Store) Append(ctx context.Context, ns string, seqs []int64, hashes []seal.StoredHash, cp seal.Checkpoint, note []byte) error {
	return s.tx(ctx, "seal", pgx.TxOptions{}, func(tx pgx.Tx) error {
		// Only the leader seals; should two run at once (a handover),
		// the second finds the log past where it read it.
		if err := lockLog(ctx, tx, ns); err != nil {
			return err
		}
		var size int64
		if err := tx.QueryRow(ctx, "SELECT "+sealedSize("$1"), ns).Scan(&size); err != nil {
			return err
		}
		from := cp.Size - int64(len(seqs))
		if size != from {
			return fmt.Errorf("the log of %s is at %d, not %d: another sealer ran", ns, size, from)
		}
		// Ingest placed the leaves: the batch is normally exactly the
		// leaves at [from, cp.Size), and sealing writes none of them.
		var placed bool
		if err := tx.QueryRow(ctx, "SELECT coalesce(array_agg(seq ORDER BY place), '{}') = $3::bigint[] FROM leaves"+
			" WHERE namespace = $1 AND place >= $2 AND place < $2 + cardinality($3::bigint[])", ns, from, seqs).Scan(&placed); err != nil {
			return err
		}
		if !placed {
			if err := replace(ctx, tx, ns, from, seqs); err != nil {
				return err
			}
		}
		ids, hs := make([]int64, len(hashes)), make([][]byte, len(hashes))
		for i, h := range hashes {
			ids[i], hs[i] = h.Index, h.Hash[:]
		}
		if _, err := tx.Exec(ctx, "INSERT INTO tree_hashes (namespace, id, hash) SELECT $1, id, hash FROM unnest($2::bigint[], $3::bytea[]) AS u(id, hash)", ns, ids, hs); err != nil {
			return err
		}
		var cut int64
		if !cp.RetentionCutoff.IsZero() {
			cut = cp.RetentionCutoff.UnixNano()
		}
		// The primary key refuses a second checkpoint of one size.
		_, err := tx.Exec(ctx, "INSERT INTO checkpoints (namespace, size, root, sealed_at, retention_cut, note) VALUES ($1, $2, $3, $4, $5, $6)",
			ns, cp.Size, cp.Root[:], cp.Time.UnixNano(), cut, string(note))
		return err
	})
}

// Resign implements seal.Resigner.
func (s *Store) Resign(ctx context.Context, ns string, old []byte, cp seal.Checkpoint, note []byte) error {
	return s.tx(ctx, "seal", pgx.TxOptions{}, func(tx pgx.Tx) error {
		if err := lockLog(ctx, tx, ns); err != nil {
			return err
		}
		var cut int64
		if !cp.RetentionCutoff.IsZero() {
			cut = cp.RetentionCutoff.UnixNano()
		}
		// The note binds the root: the root column (which nothing reads
		// back) is written from it, not matched.
		r, err := tx.Exec(ctx, "UPDATE checkpoints SET root = $6, sealed_at = $1, retention_cut = $2, note = $3"+
			" WHERE namespace = $4 AND size = $5 AND note = $7 AND size = (SELECT max(size) FROM checkpoints WHERE namespace = $4)",
			cp.Time.UnixNano(), cut, string(note), ns, cp.Size, cp.Root[:], string(old))
		if err != nil {
			return err
		}
		if r.RowsAffected() != 1 {
			return fmt.Errorf("the newest checkpoint of %s is no longer the one of size %d read: another sealer ran", ns, cp.Size)
		}
		return nil
	})
}

// lockLog takes the transaction-level advisory lock of ns's log, which
// serializes what sealers write to it (Append, Unplace): a statement of its
// own, so that the statements after it see what the sealer before wrote.
// It is taken before writersLock wherever both are.
func lockLog(ctx context.Context, tx pgx.Tx, ns string) error {
	// The two-key form: its keys are apart from writersLock's bigint one.
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, hashtext($2))", logLockClass, ns); err != nil {
		return fmt.Errorf("waiting for the lock of the log of %s: %w", ns, err)
	}
	return nil
}

// logLockClass is the first key of lockLog's locks ("audi").
const logLockClass int32 = 0x61756469

// replace places the leaves of seqs at [from, from+len(seqs)) when the
// places ingest gave were not theirs: changed behind the manager's back
// (refused leaves give theirs up first: Unplace), or written by a manager
// of the version before. The other leaves from from on follow the batch,
// in their order. It takes writersLock, so that no batch is placed
// meanwhile. Rare, so plain statements.
func replace(ctx context.Context, tx pgx.Tx, ns string, from int64, seqs []int64) error {
	if err := lockWriters(ctx, tx); err != nil {
		return err
	}
	if err := moveAside(ctx, tx, ns, from); err != nil {
		return err
	}
	// The batch's leaves are moved aside now, or have no place (refused
	// before, their MAC checks now).
	tag, err := tx.Exec(ctx, "UPDATE leaves AS l SET place = $3 + u.k - 1 FROM unnest($2::bigint[]) WITH ORDINALITY AS u(seq, k)"+
		" WHERE l.namespace = $1 AND l.seq = u.seq AND (l.place < 0 OR l.place IS NULL)", ns, seqs, from)
	if err != nil {
		return fmt.Errorf("placing the leaves of %s from %d: %w", ns, from, err)
	}
	// With the unique index leaves_by_index, n == len(seqs) means each
	// leaf of the batch got its own place, once.
	if n := tag.RowsAffected(); n != int64(len(seqs)) {
		return fmt.Errorf("%d of the %d leaves of %s to seal are gone or sealed already", int64(len(seqs))-n, len(seqs), ns)
	}
	return placeAside(ctx, tx, ns, from+int64(len(seqs)))
}

// Unplace implements seal.Unplacer.
func (s *Store) Unplace(ctx context.Context, ns string, seqs []int64) error {
	return s.tx(ctx, "unplace", pgx.TxOptions{}, func(tx pgx.Tx) error {
		if err := lockLog(ctx, tx, ns); err != nil {
			return err
		}
		if err := lockWriters(ctx, tx); err != nil {
			return err
		}
		var size int64
		if err := tx.QueryRow(ctx, "SELECT "+sealedSize("$1"), ns).Scan(&size); err != nil {
			return err
		}
		// Only unsealed leaves: a sealed one keeps its place whatever
		// the caller says. Leaves refused again, without a place
		// already, change nothing.
		tag, err := tx.Exec(ctx, "UPDATE leaves SET place = NULL WHERE namespace = $1 AND place >= $2 AND seq = ANY($3::bigint[])", ns, size, seqs)
		if err != nil {
			return fmt.Errorf("unplacing leaves of %s: %w", ns, err)
		}
		if tag.RowsAffected() == 0 {
			return nil
		}
		if err := moveAside(ctx, tx, ns, size); err != nil {
			return err
		}
		return placeAside(ctx, tx, ns, size)
	})
}

// moveAside takes the leaves of ns placed at from and after out of the
// way of new places: place p becomes -1-p, which keeps them apart (the
// unique index holds after each row) and in their order, reversed.
func moveAside(ctx context.Context, tx pgx.Tx, ns string, from int64) error {
	if _, err := tx.Exec(ctx, "UPDATE leaves SET place = -1 - place WHERE namespace = $1 AND place >= $2", ns, from); err != nil {
		return fmt.Errorf("moving the leaves of %s from %d aside: %w", ns, from, err)
	}
	return nil
}

// placeAside gives the leaves moveAside moved the places from at on, in
// their order.
func placeAside(ctx context.Context, tx pgx.Tx, ns string, at int64) error {
	if _, err := tx.Exec(ctx, "UPDATE leaves SET place = p.place FROM ("+
		"SELECT ts, seq, $1 + row_number() OVER (ORDER BY place DESC) - 1 AS place FROM leaves WHERE namespace = $2 AND place < 0) AS p"+
		" WHERE leaves.namespace = $2 AND leaves.ts = p.ts AND leaves.seq = p.seq", at, ns); err != nil {
		return fmt.Errorf("placing the leaves of %s from %d: %w", ns, at, err)
	}
	return nil
}

// Leaves implements seal.LogReader.
func (s *Store) Leaves(ctx context.Context, ns string, start, end int64) ([]seal.Leaf, error) {
	var out []seal.Leaf
	err := s.tx(ctx, "leaves", readOnly, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT l.place, l.seq, coalesce(e.id, ''), l.version, l.data FROM leaves AS l
			LEFT JOIN events AS e ON e.namespace = l.namespace AND e.ts = l.ts AND e.seq = l.seq
			WHERE l.namespace = $1 AND l.place >= $2 AND l.place < least($3, `+sealedSize("$1")+`) ORDER BY l.place`, ns, start, end)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (seal.Leaf, error) {
			var l seal.Leaf
			var v int16
			err := r.Scan(&l.Index, &l.Seq, &l.ID, &v, &l.Data)
			l.Version = int(v)
			return l, err
		})
		return err
	})
	return out, err
}

// Checkpoints implements seal.LogReader.
func (s *Store) Checkpoints(ctx context.Context, ns string, before int64, limit int) ([]seal.StoredCheckpoint, error) {
	if before <= 0 {
		before = 1<<63 - 1
	}
	var out []seal.StoredCheckpoint
	err := s.tx(ctx, "checkpoints", readOnly, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, "SELECT size, note FROM checkpoints WHERE namespace = $1 AND size < $2 ORDER BY size DESC LIMIT $3", ns, before, limit)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (seal.StoredCheckpoint, error) {
			var c seal.StoredCheckpoint
			var note string
			err := r.Scan(&c.Size, &note)
			c.Note = []byte(note)
			return c, err
		})
		return err
	})
	return out, err
}

// LogNamespaces implements seal.LogReader.
func (s *Store) LogNamespaces(ctx context.Context) (nss []string, err error) {
	err = s.read(ctx, "log namespaces", func(db sqlstore.Queryer) error {
		nss, err = sqlstore.LogNamespaces(ctx, db)
		return err
	})
	return nss, err
}

// keyedLeafColumns are what scanKeyedLeaf reads, in a query whose first
// parameter is the namespace: a leaf no checkpoint covers has index -1, as
// the interface says, whether or not ingest placed it, and one with a
// negative place seal.IndexNegative.
var keyedLeafColumns = "ts, seq, CASE WHEN place < 0 THEN " + strconv.Itoa(seal.IndexNegative) + " WHEN place < " + sealedSize("$1") + " THEN place ELSE -1 END, version, data, created"

func scanKeyedLeaf(r pgx.Row) (seal.KeyedLeaf, error) {
	var l seal.KeyedLeaf
	var v int16
	var created int64
	err := r.Scan(&l.Time, &l.Seq, &l.Index, &v, &l.Data, &created)
	l.Version, l.Created = int(v), time.Unix(0, created).UTC()
	return l, err
}

// LeavesByKey implements seal.LogReader.
func (s *Store) LeavesByKey(ctx context.Context, ns string, after, through store.Position, limit int) ([]seal.KeyedLeaf, error) {
	var out []seal.KeyedLeaf
	err := s.tx(ctx, "leaves by key", readOnly, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, "SELECT "+keyedLeafColumns+" FROM leaves WHERE namespace = $1 AND (ts, seq) > ($2, $3) AND (ts, seq) <= ($4, $5) ORDER BY ts, seq LIMIT $6",
			ns, after.Time, after.Seq, through.Time, through.Seq, limit)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (seal.KeyedLeaf, error) { return scanKeyedLeaf(r) })
		return err
	})
	return out, err
}

// LeafAt implements seal.LogReader.
func (s *Store) LeafAt(ctx context.Context, ns string, key store.Position) (l seal.KeyedLeaf, ok bool, err error) {
	err = s.tx(ctx, "leaf", readOnly, func(tx pgx.Tx) error {
		l, err = scanKeyedLeaf(tx.QueryRow(ctx, "SELECT "+keyedLeafColumns+" FROM leaves WHERE namespace = $1 AND ts = $2 AND seq = $3", ns, key.Time, key.Seq))
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		ok = err == nil
		return err
	})
	return l, ok, err
}

// EventAt implements seal.LogReader.
func (s *Store) EventAt(ctx context.Context, ns string, key store.Position) (ok bool, err error) {
	err = s.tx(ctx, "event", readOnly, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM events WHERE namespace = $1 AND ts = $2 AND seq = $3)", ns, key.Time, key.Seq).Scan(&ok)
	})
	return ok, err
}

// HourCountMismatches implements store.HourCountChecker.
func (s *Store) HourCountMismatches(ctx context.Context, ns string, f func(store.HourCount)) error {
	return s.read(ctx, "hour counts", func(db sqlstore.Queryer) error {
		return s.reader.HourCountMismatches(ctx, db, ns, f)
	})
}
