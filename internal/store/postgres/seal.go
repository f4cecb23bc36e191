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
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/auditops/auditops/internal/seal"
	"github.com/auditops/auditops/internal/store"
	"github.com/auditops/auditops/internal/store/internal/sqlstore"
)

var _ seal.Log = (*Store)(nil)

var readOnly = pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}

// UnsealedNamespaces implements seal.LogStore.
func (s *Store) UnsealedNamespaces(ctx context.Context) ([]string, error) {
	var out []string
	err := s.tx(ctx, "unsealed namespaces", readOnly, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, "SELECT DISTINCT namespace FROM leaves WHERE idx IS NULL ORDER BY namespace")
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
		return tx.QueryRow(ctx, "SELECT coalesce(max(size), 0) FROM checkpoints WHERE namespace = $1", ns).Scan(&size)
	})
	return size, err
}

// Unsealed implements seal.LogStore.
func (s *Store) Unsealed(ctx context.Context, ns string, after int64, limit int) ([]seal.PendingLeaf, error) {
	var out []seal.PendingLeaf
	err := s.tx(ctx, "unsealed leaves", readOnly, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, "SELECT seq, version, data, mac, created FROM leaves WHERE namespace = $1 AND idx IS NULL AND seq > $2 ORDER BY seq LIMIT $3", ns, after, limit)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (seal.PendingLeaf, error) {
			var l seal.PendingLeaf
			var v int16
			var created int64
			err := r.Scan(&l.Seq, &v, &l.Data, &l.MAC, &created)
			l.Version, l.Created = int(v), time.Unix(0, created).UTC()
			return l, err
		})
		return err
	})
	return out, err
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
				rows, err := tx.Query(ctx, "SELECT data FROM leaves WHERE namespace = $1 AND idx >= $2 AND idx < $3 ORDER BY idx", ns, start, end)
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
		var size int64
		// Only the leader seals; should two run at once, the second's
		// UPDATE waits for the first's row locks and then finds the
		// leaves sealed, and the primary keys refuse a second checkpoint
		// of a size or a second hash of an index.
		if err := tx.QueryRow(ctx, "SELECT coalesce(max(size), 0) FROM checkpoints WHERE namespace = $1", ns).Scan(&size); err != nil {
			return err
		}
		from := cp.Size - int64(len(seqs))
		if size != from {
			return fmt.Errorf("the log of %s is at %d, not %d: another sealer ran", ns, size, from)
		}
		idx := make([]int64, len(seqs))
		for i := range seqs {
			idx[i] = from + int64(i)
		}
		tag, err := tx.Exec(ctx, `UPDATE leaves AS l SET idx = u.idx FROM unnest($2::bigint[], $3::bigint[]) AS u(seq, idx)
			WHERE l.namespace = $1 AND l.seq = u.seq AND l.idx IS NULL`, ns, seqs, idx)
		if err != nil {
			return err
		}
		if tag.RowsAffected() != int64(len(seqs)) {
			return fmt.Errorf("sealing %d leaves of %s changed %d: some are gone or sealed already", len(seqs), ns, tag.RowsAffected())
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
		_, err = tx.Exec(ctx, "INSERT INTO checkpoints (namespace, size, root, sealed_at, retention_cut, note) VALUES ($1, $2, $3, $4, $5, $6)",
			ns, cp.Size, cp.Root[:], cp.Time.UnixNano(), cut, string(note))
		return err
	})
}

// Leaves implements seal.LogReader.
func (s *Store) Leaves(ctx context.Context, ns string, start, end int64) ([]seal.Leaf, error) {
	var out []seal.Leaf
	err := s.tx(ctx, "leaves", readOnly, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT l.idx, l.seq, coalesce(e.id, ''), l.version, l.data FROM leaves AS l
			LEFT JOIN events AS e ON e.namespace = l.namespace AND e.ts = l.ts AND e.seq = l.seq
			WHERE l.namespace = $1 AND l.idx >= $2 AND l.idx < $3 ORDER BY l.idx`, ns, start, end)
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

// keyedLeafColumns are what scanKeyedLeaf reads.
const keyedLeafColumns = "ts, seq, coalesce(idx, -1), version, data, created"

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
