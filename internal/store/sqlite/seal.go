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
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

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

// SingleWriter says that the store writes through one connection: its
// sealer seals one namespace at a time (seal.Sealer.SealAll).
func (s *Store) SingleWriter() bool { return true }

// UnsealedNamespaces implements seal.LogStore: the logs whose last placed
// leaf is past their newest checkpoint, found with one index seek per
// namespace (a recursive walk of leaves_by_index, where a DISTINCT would
// read every leaf), and those with leaves without a place.
func (s *Store) UnsealedNamespaces(ctx context.Context) ([]string, error) {
	var out []string
	err := s.readTx(ctx, "unsealed namespaces", func(db sqlQueryer) error {
		rows, err := db.QueryContext(ctx, "WITH RECURSIVE logs(ns) AS ("+
			"SELECT (SELECT min(namespace) FROM leaves INDEXED BY leaves_by_index WHERE place IS NOT NULL)"+
			" UNION ALL SELECT (SELECT min(namespace) FROM leaves INDEXED BY leaves_by_index WHERE place IS NOT NULL AND namespace > logs.ns)"+
			" FROM logs WHERE logs.ns IS NOT NULL)"+
			" SELECT ns FROM logs WHERE ns IS NOT NULL"+
			" AND (SELECT place FROM leaves INDEXED BY leaves_by_index WHERE namespace = logs.ns AND place IS NOT NULL ORDER BY place DESC LIMIT 1)"+
			" >= "+sealedSizeOf("logs.ns")+
			" UNION SELECT DISTINCT namespace FROM leaves INDEXED BY leaves_unsealed WHERE place IS NULL ORDER BY 1")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var ns string
			if err := rows.Scan(&ns); err != nil {
				return err
			}
			out = append(out, ns)
		}
		return rows.Err()
	})
	return out, err
}

// sealedSize is a log's size, its newest checkpoint's, as a scalar
// subquery on the namespace parameter: a leaf is sealed when its place is
// below it (ingest places every leaf as it writes it; migration 0007).
const sealedSize = "(SELECT coalesce(max(size), 0) FROM checkpoints WHERE namespace = ?)"

// sealedSizeOf is sealedSize on the namespace parameter param ("?1").
func sealedSizeOf(param string) string {
	return strings.Replace(sealedSize, "?", param, 1)
}

// LogSize implements seal.LogStore.
func (s *Store) LogSize(ctx context.Context, ns string) (int64, error) {
	var size int64
	err := s.readTx(ctx, "log size", func(db sqlQueryer) error {
		return logSize(ctx, db, ns, &size)
	})
	return size, err
}

func logSize(ctx context.Context, db sqlQueryer, ns string, size *int64) error {
	return db.QueryRowContext(ctx, "SELECT "+sealedSize, ns).Scan(size)
}

// Unsealed implements seal.LogStore: the placed leaves past the newest
// checkpoint, in place order (seal.Unplacer: after is no bound).
func (s *Store) Unsealed(ctx context.Context, ns string, _ int64, limit int) ([]seal.PendingLeaf, error) {
	return s.pendingLeaves(ctx, "unsealed leaves", "SELECT ts, seq, version, data, mac, created FROM leaves INDEXED BY leaves_by_index"+
		" WHERE namespace = ?1 AND place >= "+sealedSizeOf("?1")+" ORDER BY place LIMIT ?2", ns, limit)
}

// Unplaced implements seal.Unplacer.
func (s *Store) Unplaced(ctx context.Context, ns string, after int64, limit int) ([]seal.PendingLeaf, error) {
	return s.pendingLeaves(ctx, "leaves without a place", "SELECT ts, seq, version, data, mac, created FROM leaves INDEXED BY leaves_unsealed"+
		" WHERE namespace = ? AND place IS NULL AND seq > ? ORDER BY seq LIMIT ?", ns, after, limit)
}

// pendingLeaves reads the leaves query q selects.
func (s *Store) pendingLeaves(ctx context.Context, op, q string, args ...any) ([]seal.PendingLeaf, error) {
	var out []seal.PendingLeaf
	err := s.readTx(ctx, op, func(db sqlQueryer) error {
		rows, err := db.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var l seal.PendingLeaf
			var created int64
			if err := rows.Scan(&l.Time, &l.Seq, &l.Version, &l.Data, &l.MAC, &created); err != nil {
				return err
			}
			l.Created = time.Unix(0, created).UTC()
			out = append(out, l)
		}
		return rows.Err()
	})
	return out, err
}

// Place implements seal.Unplacer.
func (s *Store) Place(ctx context.Context, ns string, seqs []int64) error {
	return s.write(ctx, "place", func(tx *sql.Tx) error {
		var next int64
		if err := tx.StmtContext(ctx, s.nextPlace).QueryRowContext(ctx, ns).Scan(&next); err != nil {
			return fmt.Errorf("the next place in the log of %s: %w", ns, err)
		}
		for i, seq := range seqs {
			r, err := tx.ExecContext(ctx, "UPDATE leaves SET place = ? WHERE namespace = ? AND seq = ? AND place IS NULL", next+int64(i), ns, seq)
			if err != nil {
				return fmt.Errorf("placing leaf %d of %s: %w", seq, ns, err)
			}
			if n, err := r.RowsAffected(); err != nil || n != 1 {
				return fmt.Errorf("leaf %d of %s to place: %d without a place (%v)", seq, ns, n, err)
			}
		}
		return nil
	})
}

// ReadHashes implements seal.LogStore: the kept hashes from tree_hashes,
// the others from the leaves, in one read transaction.
func (s *Store) ReadHashes(ctx context.Context, ns string, indexes []int64) (out []tlog.Hash, err error) {
	err = s.readTx(ctx, "tree hashes", func(db sqlQueryer) error {
		out, err = seal.ReadTreeHashes(seal.HashSource{
			Stored: func(indexes []int64) ([]tlog.Hash, error) {
				out := make([]tlog.Hash, len(indexes))
				return out, readHashes(ctx, db, ns, indexes, out)
			},
			LeafData: func(start, end int64) ([][]byte, error) {
				return leafData(ctx, db, ns, start, end)
			},
		}, indexes)
		return err
	})
	return out, err
}

// leafData returns the data of ns's sealed leaves [start, end), in order.
func leafData(ctx context.Context, db sqlQueryer, ns string, start, end int64) ([][]byte, error) {
	rows, err := db.QueryContext(ctx, "SELECT data FROM leaves INDEXED BY leaves_by_index WHERE namespace = ? AND place >= ? AND place < min(?, "+sealedSize+") ORDER BY place",
		ns, start, end, ns)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([][]byte, 0, end-start)
	for rows.Next() {
		var d []byte
		if err := rows.Scan(&d); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

func readHashes(ctx context.Context, db sqlQueryer, ns string, indexes []int64, out []tlog.Hash) error {
	if len(indexes) == 0 {
		return nil
	}
	args := make([]any, 0, len(indexes)+1)
	args = append(args, ns)
	for _, x := range indexes {
		args = append(args, x)
	}
	rows, err := db.QueryContext(ctx, "SELECT id, hash FROM tree_hashes WHERE namespace = ? AND id IN (?"+
		strings.Repeat(", ?", len(indexes)-1)+")", args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	return sqlstore.ScanTreeHashes(rows, ns, indexes, out)
}

// Append implements seal.LogStore.
func (s *Store) Append(ctx context.Context, ns string, seqs []int64, hashes []seal.StoredHash, cp seal.Checkpoint, note []byte) error {
	return s.write(ctx, "seal", func(tx *sql.Tx) error {
		var size int64
		if err := logSize(ctx, tx, ns, &size); err != nil {
			return err
		}
		from := cp.Size - int64(len(seqs))
		if size != from {
			return fmt.Errorf("the log of %s is at %d, not %d: another sealer ran", ns, size, from)
		}
		// Ingest placed the leaves: the batch is normally exactly the
		// leaves at [from, cp.Size), and sealing writes none of them.
		placed, err := placedAt(ctx, tx, ns, from, seqs)
		if err != nil {
			return err
		}
		if !placed {
			if err := replace(ctx, tx, ns, from, seqs); err != nil {
				return err
			}
		}
		var list []byte
		// The hashes in one statement too: [[id, "hex"], ...].
		if len(hashes) > 0 {
			list = append(list[:0], '[')
			for i, h := range hashes {
				if i > 0 {
					list = append(list, ',')
				}
				list = append(list, '[')
				list = strconv.AppendInt(list, h.Index, 10)
				list = append(list, ',', '"')
				list = hex.AppendEncode(list, h.Hash[:])
				list = append(list, '"', ']')
			}
			list = append(list, ']')
			if _, err := tx.ExecContext(ctx, "INSERT INTO tree_hashes (namespace, id, hash)"+
				" SELECT ?, value ->> 0, unhex(value ->> 1) FROM json_each(?)", ns, string(list)); err != nil {
				return err
			}
		}
		var cut int64
		if !cp.RetentionCutoff.IsZero() {
			cut = cp.RetentionCutoff.UnixNano()
		}
		_, err = tx.ExecContext(ctx, "INSERT INTO checkpoints (namespace, size, root, sealed_at, retention_cut, note) VALUES (?, ?, ?, ?, ?, ?)",
			ns, cp.Size, cp.Root[:], cp.Time.UnixNano(), cut, string(note))
		return err
	})
}

// Resign implements seal.Resigner.
func (s *Store) Resign(ctx context.Context, ns string, old []byte, cp seal.Checkpoint, note []byte) error {
	return s.write(ctx, "seal", func(tx *sql.Tx) error {
		var cut int64
		if !cp.RetentionCutoff.IsZero() {
			cut = cp.RetentionCutoff.UnixNano()
		}
		// The note binds the root: the root column (which nothing reads
		// back) is written from it, not matched.
		r, err := tx.ExecContext(ctx, "UPDATE checkpoints SET root = ?, sealed_at = ?, retention_cut = ?, note = ?"+
			" WHERE namespace = ? AND size = ? AND note = ? AND size = (SELECT max(size) FROM checkpoints WHERE namespace = ?)",
			cp.Root[:], cp.Time.UnixNano(), cut, string(note), ns, cp.Size, string(old), ns)
		if err != nil {
			return err
		}
		if n, err := r.RowsAffected(); err != nil {
			return err
		} else if n != 1 {
			return fmt.Errorf("the newest checkpoint of %s is no longer the one of size %d read: another sealer ran", ns, cp.Size)
		}
		return nil
	})
}

// placedAt says whether the leaves at places [from, from+len(seqs)) of ns
// are those of seqs, in that order.
func placedAt(ctx context.Context, tx *sql.Tx, ns string, from int64, seqs []int64) (bool, error) {
	rows, err := tx.QueryContext(ctx, "SELECT seq FROM leaves INDEXED BY leaves_by_index WHERE namespace = ? AND place >= ? AND place < ? ORDER BY place",
		ns, from, from+int64(len(seqs)))
	if err != nil {
		return false, err
	}
	defer rows.Close()
	i := 0
	for rows.Next() {
		var seq int64
		if err := rows.Scan(&seq); err != nil {
			return false, err
		}
		if i >= len(seqs) || seqs[i] != seq {
			return false, nil
		}
		i++
	}
	return i == len(seqs), rows.Err()
}

// replace places the leaves of seqs at [from, from+len(seqs)) when the
// places ingest gave were not theirs: changed behind the manager's back
// (refused leaves give theirs up first: Unplace). The other leaves from
// from on follow the batch, in their order. Rare, so plain statements.
func replace(ctx context.Context, tx *sql.Tx, ns string, from int64, seqs []int64) error {
	if err := moveAside(ctx, tx, ns, from); err != nil {
		return err
	}
	// The batch's places through a temporary table keyed by seq:
	// json_each directly in the UPDATE scans the list once per leaf.
	list, err := json.Marshal(seqs)
	if err != nil {
		return err
	}
	for _, q := range []string{
		"CREATE TEMP TABLE IF NOT EXISTS seal_batch (seq INTEGER PRIMARY KEY, place INTEGER NOT NULL)",
		"DELETE FROM temp.seal_batch",
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO temp.seal_batch (seq, place) SELECT value, ? + key FROM json_each(?)", from, string(list)); err != nil {
		return err
	}
	// The batch's leaves are moved aside now, or have no place (refused
	// before, their MAC checks now).
	r, err := tx.ExecContext(ctx, "UPDATE leaves SET place = (SELECT b.place FROM temp.seal_batch AS b WHERE b.seq = leaves.seq)"+
		" WHERE namespace = ? AND (place < 0 OR place IS NULL) AND seq IN (SELECT seq FROM temp.seal_batch)", ns)
	if err != nil {
		return fmt.Errorf("placing the leaves of %s from %d: %w", ns, from, err)
	}
	// With the unique index leaves_by_index, n == len(seqs) means each
	// leaf of the batch got its own place, once.
	if n, err := r.RowsAffected(); err != nil || n != int64(len(seqs)) {
		return fmt.Errorf("%d of the %d leaves of %s to seal are gone or sealed already (%v)", int64(len(seqs))-n, len(seqs), ns, err)
	}
	return placeAside(ctx, tx, ns, from+int64(len(seqs)))
}

// Unplace implements seal.Unplacer.
func (s *Store) Unplace(ctx context.Context, ns string, seqs []int64) error {
	list, err := json.Marshal(seqs)
	if err != nil {
		return err
	}
	return s.write(ctx, "unplace", func(tx *sql.Tx) error {
		var size int64
		if err := logSize(ctx, tx, ns, &size); err != nil {
			return err
		}
		// Only unsealed leaves: a sealed one keeps its place whatever
		// the caller says. Leaves refused again, without a place
		// already, change nothing.
		r, err := tx.ExecContext(ctx, "UPDATE leaves SET place = NULL WHERE namespace = ? AND place >= ? AND seq IN (SELECT value FROM json_each(?))",
			ns, size, string(list))
		if err != nil {
			return fmt.Errorf("unplacing leaves of %s: %w", ns, err)
		}
		if n, err := r.RowsAffected(); err != nil || n == 0 {
			return err
		}
		if err := moveAside(ctx, tx, ns, size); err != nil {
			return err
		}
		return placeAside(ctx, tx, ns, size)
	})
}

// moveAside takes the leaves of ns placed at from and after out of the
// way of new places: place p becomes -1-p, which keeps them apart (the
// unique index holds after each statement) and in their order, reversed.
func moveAside(ctx context.Context, tx *sql.Tx, ns string, from int64) error {
	if _, err := tx.ExecContext(ctx, "UPDATE leaves SET place = -1 - place WHERE namespace = ? AND place >= ?", ns, from); err != nil {
		return fmt.Errorf("moving the leaves of %s from %d aside: %w", ns, from, err)
	}
	return nil
}

// placeAside gives the leaves moveAside moved the places from at on, in
// their order.
func placeAside(ctx context.Context, tx *sql.Tx, ns string, at int64) error {
	if _, err := tx.ExecContext(ctx, "UPDATE leaves SET place = p.place FROM ("+
		"SELECT ts, seq, ? + row_number() OVER (ORDER BY place DESC) - 1 AS place FROM leaves WHERE namespace = ? AND place < 0) AS p"+
		" WHERE leaves.namespace = ? AND leaves.ts = p.ts AND leaves.seq = p.seq", at, ns, ns); err != nil {
		return fmt.Errorf("placing the leaves of %s from %d: %w", ns, at, err)
	}
	return nil
}

// Leaves implements seal.LogReader.
func (s *Store) Leaves(ctx context.Context, ns string, start, end int64) ([]seal.Leaf, error) {
	var out []seal.Leaf
	err := s.readTx(ctx, "leaves", func(db sqlQueryer) error {
		rows, err := db.QueryContext(ctx, "SELECT l.place, l.seq, coalesce(e.id, ''), l.version, l.data FROM leaves AS l INDEXED BY leaves_by_index"+
			" LEFT JOIN events AS e ON e.namespace = l.namespace AND e.ts = l.ts AND e.seq = l.seq"+
			" WHERE l.namespace = ? AND l.place >= ? AND l.place < min(?, "+sealedSize+") ORDER BY l.place", ns, start, end, ns)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var l seal.Leaf
			if err := rows.Scan(&l.Index, &l.Seq, &l.ID, &l.Version, &l.Data); err != nil {
				return err
			}
			out = append(out, l)
		}
		return rows.Err()
	})
	return out, err
}

// Checkpoints implements seal.LogReader.
func (s *Store) Checkpoints(ctx context.Context, ns string, before int64, limit int) ([]seal.StoredCheckpoint, error) {
	if before <= 0 {
		before = 1<<63 - 1
	}
	var out []seal.StoredCheckpoint
	err := s.readTx(ctx, "checkpoints", func(db sqlQueryer) error {
		rows, err := db.QueryContext(ctx, "SELECT size, note FROM checkpoints WHERE namespace = ? AND size < ? ORDER BY size DESC LIMIT ?", ns, before, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c seal.StoredCheckpoint
			var note string
			if err := rows.Scan(&c.Size, &note); err != nil {
				return err
			}
			c.Note = []byte(note)
			out = append(out, c)
		}
		return rows.Err()
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

// keyedLeafColumns are what scanKeyedLeaf reads.
// Its first parameter is the namespace: a leaf no checkpoint covers
// has index -1, as the interface says, whether or not ingest placed it,
// and one with a negative place seal.IndexNegative.
var keyedLeafColumns = "ts, seq, CASE WHEN place < 0 THEN " + strconv.Itoa(seal.IndexNegative) + " WHEN place < " + sealedSize + " THEN place ELSE -1 END, version, data, created"

func scanKeyedLeaf(rows interface{ Scan(...any) error }) (seal.KeyedLeaf, error) {
	var l seal.KeyedLeaf
	var created int64
	err := rows.Scan(&l.Time, &l.Seq, &l.Index, &l.Version, &l.Data, &created)
	l.Created = time.Unix(0, created).UTC()
	return l, err
}

// LeavesByKey implements seal.LogReader.
func (s *Store) LeavesByKey(ctx context.Context, ns string, after, through store.Position, limit int) ([]seal.KeyedLeaf, error) {
	var out []seal.KeyedLeaf
	err := s.readTx(ctx, "leaves by key", func(db sqlQueryer) error {
		rows, err := db.QueryContext(ctx, "SELECT "+keyedLeafColumns+" FROM leaves WHERE namespace = ? AND (ts, seq) > (?, ?) AND (ts, seq) <= (?, ?) ORDER BY ts, seq LIMIT ?",
			ns, ns, after.Time, after.Seq, through.Time, through.Seq, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			l, err := scanKeyedLeaf(rows)
			if err != nil {
				return err
			}
			out = append(out, l)
		}
		return rows.Err()
	})
	return out, err
}

// LeafAt implements seal.LogReader.
func (s *Store) LeafAt(ctx context.Context, ns string, key store.Position) (l seal.KeyedLeaf, ok bool, err error) {
	err = s.readTx(ctx, "leaf", func(db sqlQueryer) error {
		rows, err := db.QueryContext(ctx, "SELECT "+keyedLeafColumns+" FROM leaves WHERE namespace = ? AND ts = ? AND seq = ?", ns, ns, key.Time, key.Seq)
		if err != nil {
			return err
		}
		defer rows.Close()
		if rows.Next() {
			l, err = scanKeyedLeaf(rows)
			ok = err == nil
			return err
		}
		return rows.Err()
	})
	return l, ok, err
}

// EventAt implements seal.LogReader.
func (s *Store) EventAt(ctx context.Context, ns string, key store.Position) (ok bool, err error) {
	err = s.readTx(ctx, "event", func(db sqlQueryer) error {
		rows, err := db.QueryContext(ctx, "SELECT 1 FROM events WHERE namespace = ? AND ts = ? AND seq = ?", ns, key.Time, key.Seq)
		if err != nil {
			return err
		}
		defer rows.Close()
		ok = rows.Next()
		return rows.Err()
	})
	return ok, err
}

// HourCountMismatches implements store.HourCountChecker.
func (s *Store) HourCountMismatches(ctx context.Context, ns string, f func(store.HourCount)) error {
	return s.read(ctx, "hour counts", func(db sqlstore.Queryer) error {
		return s.reader.HourCountMismatches(ctx, db, ns, f)
	})
}
