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

package seal

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"golang.org/x/mod/sumdb/tlog"
)

// MinStoredLevel is the lowest tree level whose hashes a store keeps. The
// hashes below it, 15 of every 16 that tlog.StoredHashes makes, are the
// hashes of at most 8 leaves each and are made again from the leaves when
// read: an inclusion proof reads at most 30 leaves for them (the leaf's
// block of 16 and the tree's right edge). Storing them cost the sealer's
// transaction about as much as updating the leaves did, and the store about
// 100 (SQLite) to 290 (PostgreSQL) bytes per event (bench/README.md).
const MinStoredLevel = 4

// ErrHashNotStored is a store's error for a kept tree hash it does not hold.
var ErrHashNotStored = errors.New("not stored")

// ErrHashMalformed is a store's error for a kept tree hash that is not 32
// bytes (its CHECK constraint dropped and the row written by hand).
var ErrHashMalformed = errors.New("malformed")

// ErrLeavesMissing is ReadTreeHashes' error for sealed leaves not in the log.
var ErrLeavesMissing = errors.New("sealed leaves are missing")

// Kept says whether a store keeps the tree hash at tlog stored index x.
func Kept(x int64) bool {
	level, _ := tlog.SplitStoredHashIndex(x)
	return level >= MinStoredLevel
}

// HashSource is what ReadTreeHashes reads of one namespace's log.
type HashSource struct {
	// Stored returns the kept hashes at the tlog indexes, in their order.
	Stored func(indexes []int64) ([]tlog.Hash, error)
	// LeafData returns the data of the sealed leaves with indexes in
	// [start, end), in index order.
	LeafData func(start, end int64) ([][]byte, error)
}

// ReadTreeHashes returns the tree hashes at the tlog stored indexes: the
// kept ones as stored, the others made from the leaves they cover. A leaf
// missing from that range is an error, as a missing stored hash is.
func ReadTreeHashes(src HashSource, indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	var kept []int64
	var keptAt []int
	type span struct {
		start, end int64
		at         int // index into out
		level      int
	}
	var made []span
	for i, x := range indexes {
		level, n := tlog.SplitStoredHashIndex(x)
		if level >= MinStoredLevel {
			kept, keptAt = append(kept, x), append(keptAt, i)
			continue
		}
		made = append(made, span{start: n << level, end: (n + 1) << level, at: i, level: level})
	}
	if len(kept) > 0 {
		got, err := src.Stored(kept)
		if err != nil {
			return nil, err
		}
		if len(got) != len(kept) {
			return nil, fmt.Errorf("read %d stored tree hashes, asked for %d", len(got), len(kept))
		}
		for j, i := range keptAt {
			out[i] = got[j]
		}
	}
	if len(made) == 0 {
		return out, nil
	}
	// One read per run of overlapping or adjacent leaf ranges: a proof's
	// low hashes all lie in one aligned block of 2^MinStoredLevel leaves.
	slices.SortFunc(made, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	for lo := 0; lo < len(made); {
		start, end := made[lo].start, made[lo].end
		hi := lo + 1
		for hi < len(made) && made[hi].start <= end {
			end = max(end, made[hi].end)
			hi++
		}
		data, err := src.LeafData(start, end)
		if err != nil {
			return nil, err
		}
		if int64(len(data)) != end-start {
			return nil, fmt.Errorf("tree hashes: %w: the log has %d of its leaves %d to %d", ErrLeavesMissing, len(data), start, end-1)
		}
		for _, s := range made[lo:hi] {
			out[s.at] = subtreeHash(data[s.start-start : s.end-start])
		}
		lo = hi
	}
	return out, nil
}

// subtreeHash is the hash of the complete subtree over leaves (a power of
// two of them).
func subtreeHash(leaves [][]byte) tlog.Hash {
	hs := make([]tlog.Hash, len(leaves))
	for i, d := range leaves {
		hs[i] = tlog.RecordHash(d)
	}
	for len(hs) > 1 {
		for i := range len(hs) / 2 {
			hs[i] = tlog.NodeHash(hs[2*i], hs[2*i+1])
		}
		hs = hs[:len(hs)/2]
	}
	return hs[0]
}
