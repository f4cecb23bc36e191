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

package sealverify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/auditops/auditops/internal/seal"
)

// defaultMaxAhead bounds the leaf hashes a rootWalk holds for later (32
// bytes and a map entry each: about 20 MB at the bound).
const defaultMaxAhead = 1 << 18

// rootWalk recomputes one log's roots from its leaves in index order, in
// O(log n) memory (a compact range), and checks every checkpoint against
// the root at its size.
//
// Verify's key walk (events beside their leaves, by time and seq) reads
// every leaf anyway, so the roots are fed from it instead of reading the
// log a second time by index (that read looked each leaf up again by its
// key, and cost verify a third of its time). Ingest time and index order
// mostly agree; a leaf met before its turn waits in a bounded map. What
// the key walk could not give in order (more out of order than the bound,
// a leaf read before it was sealed, a leaf deleted by hand) is read by
// index at the end, from the first index the range lacks: the log is
// append-only, so that read sees a prefix-consistent tail.
type rootWalk struct {
	ns      string
	cr      *compact.Range
	check   []seal.Checkpoint // the checkpoints to check, by size
	next    int               // the first of check not yet reached
	trusted []seal.Checkpoint
	emit    func(Finding)
	ahead   map[int64][]byte
	// seen marks every index the walk met (a bit each: 12.5 MB per 100M
	// leaves). The key walk reads each leaf once, so an index met twice is
	// two leaves claiming one place in the log: with the unique index on
	// it dropped, a forged leaf could otherwise take a sealed leaf's index
	// and make a forged event look sealed.
	seen []uint64
	far  map[int64]bool // indexes met past denseAhead
	dups map[int64]bool // the indexes named twice-claimed
	// maxAhead bounds ahead; 0: nothing is held (every leaf out of order
	// is read by index).
	maxAhead int
	// made are the tree hashes the store keeps (seal.Kept) that the range
	// made, not yet compared with the store's: proofs and roots are served
	// from those, and the sealer builds on them. readKept reads them.
	made     []madeHash
	readKept func(indexes []int64) ([]tlog.Hash, error)
}

// madeHash is a tree hash the walk made from the leaves: x its tlog index.
type madeHash struct {
	x    int64
	hash tlog.Hash
}

// keptBatch is how many made hashes are compared with the store's at once
// (one read of tree_hashes per 8,192 leaves).
const keptBatch = 1024

// newRootWalk returns the walk of ns's log; readKept reads the tree hashes
// the store keeps (nil: they are not checked).
func newRootWalk(ns string, check, trusted []seal.Checkpoint, emit func(Finding), maxAhead int, readKept func([]int64) ([]tlog.Hash, error)) *rootWalk {
	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	return &rootWalk{ns: ns, cr: rf.NewEmptyRange(0), check: check, trusted: trusted, emit: emit, ahead: map[int64][]byte{}, maxAhead: maxAhead, readKept: readKept}
}

// size is the number of leaves the range holds.
func (w *rootWalk) size() int64 { return int64(w.cr.End()) }

// add takes a sealed leaf met in any order; seq is its event's.
func (w *rootWalk) add(index, seq int64, data []byte) error {
	if w.met(index) {
		if w.dups == nil {
			w.dups = map[int64]bool{}
		}
		w.dups[index] = true
		w.emit(Finding{Namespace: w.ns, Problem: Inconsistent, Index: ptr(index), Seq: ptr(seq),
			Detail: fmt.Sprintf("two leaves claim index %d: this one and one earlier in time order", index)})
		return nil
	}
	// Every index below size was met (fed in order or from ahead), so
	// index >= size here.
	if index > w.size() {
		if len(w.ahead) < w.maxAhead {
			w.ahead[index] = rfc6962.DefaultHasher.HashLeaf(data)
		}
		return nil
	}
	if err := w.append(rfc6962.DefaultHasher.HashLeaf(data)); err != nil {
		return err
	}
	for {
		h, ok := w.ahead[w.size()]
		if !ok {
			return nil
		}
		delete(w.ahead, w.size())
		if err := w.append(h); err != nil {
			return err
		}
	}
}

// denseAhead bounds how far past the range an index met is marked in the
// bitmap (8 MiB of it at most); one further out, which only a place
// written with SQL gives, goes to a map: a leaf placed at 2^57 must not
// size the walk's memory.
const denseAhead = 1 << 26

// met marks index as met, and says whether it was already.
func (w *rootWalk) met(index int64) bool {
	was := w.wasMet(index)
	if index >= w.size()+denseAhead {
		if w.far == nil {
			w.far = map[int64]bool{}
		}
		w.far[index] = true
		return was
	}
	word, bit := index/64, uint64(1)<<(index%64)
	if word >= int64(len(w.seen)) {
		w.seen = append(w.seen, make([]uint64, word+1-int64(len(w.seen)))...)
	}
	w.seen[word] |= bit
	return was
}

// wasMet says whether the walk met index.
func (w *rootWalk) wasMet(index int64) bool {
	word := index / 64
	return index >= 0 && (word < int64(len(w.seen)) && w.seen[word]&(uint64(1)<<(index%64)) != 0 || w.far[index])
}

func (w *rootWalk) append(leafHash []byte) error {
	if err := w.cr.Append(leafHash, w.visit); err != nil {
		return err
	}
	w.checkRoots()
	if len(w.made) >= keptBatch {
		return w.checkKept()
	}
	return nil
}

// visit keeps each node the range completes at a level the store keeps.
func (w *rootWalk) visit(id compact.NodeID, hash []byte) {
	if w.readKept != nil && id.Level >= seal.MinStoredLevel && len(hash) == len(tlog.Hash{}) {
		w.made = append(w.made, madeHash{x: tlog.StoredHashIndex(int(id.Level), int64(id.Index)), hash: tlog.Hash(hash)})
	}
}

// checkKept compares the made hashes with those the store keeps, naming
// each that differs or is not there: a proof served through it would not
// check, and the sealer would refuse to extend the log.
func (w *rootWalk) checkKept() error {
	made := w.made
	w.made = w.made[:0]
	if len(made) == 0 {
		return nil
	}
	xs := make([]int64, len(made))
	for i, m := range made {
		xs[i] = m.x
	}
	stored, err := w.readKept(xs)
	if errors.Is(err, seal.ErrHashNotStored) || errors.Is(err, seal.ErrHashMalformed) {
		// Which: one at a time (a store that lost its hashes is rare).
		stored = make([]tlog.Hash, len(xs))
		for i, x := range xs {
			h, err := w.readKept([]int64{x})
			switch {
			case errors.Is(err, seal.ErrHashNotStored):
				w.keptFinding(x, "no tree hash over leaves %d to %d is stored")
				stored[i] = made[i].hash
			case errors.Is(err, seal.ErrHashMalformed):
				w.keptFinding(x, "the stored tree hash over leaves %d to %d is not 32 bytes")
				stored[i] = made[i].hash
			case err != nil:
				return err
			default:
				stored[i] = h[0]
			}
		}
	} else if err != nil {
		return err
	}
	for i, m := range made {
		if stored[i] != m.hash {
			w.keptFinding(m.x, "the stored tree hash over leaves %d to %d is not the one they give: an inclusion proof through it would not check")
		}
	}
	return nil
}

// keptFinding names the kept tree hash x; format has the first and last
// leaf it covers.
func (w *rootWalk) keptFinding(x int64, format string) {
	level, n := tlog.SplitStoredHashIndex(x)
	first := n << level
	w.emit(Finding{Namespace: w.ns, Problem: Inconsistent, Index: ptr(first), Detail: fmt.Sprintf(format, first, first+1<<level-1)})
}

// problemOf names a checkpoint the log does not match: a rollback when it
// was trusted (kept outside the store), else an inconsistency.
func (w *rootWalk) problemOf(c seal.Checkpoint) string {
	if slices.ContainsFunc(w.trusted, func(t seal.Checkpoint) bool { return t == c }) {
		return Rollback
	}
	return Inconsistent
}

// checkRoots checks the checkpoints the range has just reached.
func (w *rootWalk) checkRoots() {
	for w.next < len(w.check) && w.check[w.next].Size <= w.size() {
		c := w.check[w.next]
		w.next++
		if c.Size != w.size() {
			continue // a size the walk skipped: reported by finish
		}
		root, err := w.cr.GetRootHash(nil)
		if err != nil || !bytes.Equal(root, c.Root[:]) {
			w.emit(Finding{Namespace: w.ns, Problem: w.problemOf(c), Index: ptr(c.Size), Detail: fmt.Sprintf("the checkpoint of size %d has root %x, the log's first %d leaves give %x", c.Size, c.Root[:], c.Size, root)})
		}
	}
}

// finish reads by index what the range still lacks, names a gap in the
// indexes and every checkpoint larger than the log, and returns the log's
// size. Every leaf below sealed (the size of the newest checkpoint, which
// the key walk read its leaves under) was sealed when the key walk read
// it, so a leaf read here that the walk never met lies outside it: its key
// was edited to where no event time is read, and its event went unchecked.
func (w *rootWalk) finish(ctx context.Context, st Store, sealed int64) (int64, error) {
	w.ahead = nil
walk:
	for {
		start := w.size()
		leaves, err := st.Leaves(ctx, w.ns, start, start+pageSize)
		if err != nil {
			return 0, err
		}
		for _, l := range leaves {
			if l.Index < w.size() {
				if w.dups[l.Index] {
					continue // named by the walk already
				}
				w.emit(Finding{Namespace: w.ns, Problem: Inconsistent, Index: ptr(l.Index), Seq: ptr(l.Seq),
					Detail: fmt.Sprintf("two leaves claim index %d", l.Index)})
				continue
			}
			if l.Index != w.size() {
				// Indexes are dense from 0: a gap is a leaf deleted by
				// hand, and no root past it can be recomputed.
				w.emit(Finding{Namespace: w.ns, Problem: Missing, Index: ptr(w.size()), Detail: fmt.Sprintf("leaves %d to %d are not in the log", w.size(), l.Index-1)})
				break walk
			}
			if l.Index < sealed && !w.wasMet(l.Index) {
				w.emit(Finding{Namespace: w.ns, Problem: Missing, Index: ptr(l.Index), Seq: ptr(l.Seq),
					Detail: "its leaf is not keyed at any time verify reads events at: the key was edited, the event is not in the store there"})
			}
			if err := w.append(rfc6962.DefaultHasher.HashLeaf(l.Data)); err != nil {
				return 0, err
			}
		}
		if len(leaves) < pageSize {
			break
		}
	}
	for _, c := range w.check[w.next:] {
		w.emit(Finding{Namespace: w.ns, Problem: w.problemOf(c), Index: ptr(c.Size), Detail: fmt.Sprintf("the log holds %d leaves, fewer than the checkpoint of size %d", w.size(), c.Size)})
	}
	if err := w.checkKept(); err != nil {
		return 0, err
	}
	return w.size(), nil
}
