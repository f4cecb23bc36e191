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
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/auditops/auditops/internal/faultpoint"
	"github.com/auditops/auditops/internal/store"
)

// PendingLeaf is a leaf ingest wrote that no checkpoint covers yet.
type PendingLeaf struct {
	// Time is the time (Unix ns) in the row's key; ingest writes the
	// same time into Data.
	Time    int64
	Seq     int64
	Version int
	Data    []byte
	MAC     []byte
	// Created is when ingest wrote it.
	Created time.Time
}

// StoredHash is one of a log's interior hashes, by its tlog index.
type StoredHash struct {
	Index int64
	Hash  tlog.Hash
}

// LogStore is what sealing needs of the store, for one namespace's log.
type LogStore interface {
	// UnsealedNamespaces returns the namespaces that have leaves no
	// checkpoint covers.
	UnsealedNamespaces(ctx context.Context) ([]string, error)
	// LogSize returns the size of ns's newest checkpoint (0 before the first).
	LogSize(ctx context.Context, ns string) (int64, error)
	// Unsealed returns up to limit leaves of ns that no checkpoint covers,
	// in the order the log is to hold them: in seq order those of seqs
	// past after, or an Unplacer's placed leaves in place order (after is
	// then no bound: the sealer appends each batch before it asks for the
	// next, and places need not follow seqs).
	Unsealed(ctx context.Context, ns string, after int64, limit int) ([]PendingLeaf, error)
	// ReadHashes returns the tree hashes of ns at the tlog indexes:
	// ReadTreeHashes over the kept ones and the sealed leaves.
	ReadHashes(ctx context.Context, ns string, indexes []int64) ([]tlog.Hash, error)
	// Checkpoints returns up to limit checkpoints of ns, newest first,
	// those of size below before only when before > 0.
	Checkpoints(ctx context.Context, ns string, before int64, limit int) ([]StoredCheckpoint, error)
	// Append records, in one transaction, that the leaves of seqs are the
	// log's entries from cp.Size-len(seqs) on, the tree hashes to keep
	// (those Kept), and the signed checkpoint note of cp. It fails,
	// changing nothing, when the log is no longer at cp.Size-len(seqs)
	// (another sealer ran).
	Append(ctx context.Context, ns string, seqs []int64, hashes []StoredHash, cp Checkpoint, note []byte) error
}

// Resigner is a LogStore that can sign a log's newest checkpoint again
// (BindRetention).
type Resigner interface {
	// LogNamespaces returns every namespace with events or leaves.
	LogNamespaces(ctx context.Context) ([]string, error)
	// Resign replaces the note old of ns's newest checkpoint by note, of
	// cp: the same size and root, signed again. It fails, changing
	// nothing, when old is no longer ns's newest checkpoint.
	Resign(ctx context.Context, ns string, old []byte, cp Checkpoint, note []byte) error
}

// Unplacer is a LogStore whose ingest gives each leaf its place in the log
// as it writes it (both stores), so that sealing only has to sign. Its
// Unsealed returns placed leaves only.
type Unplacer interface {
	// Unplace takes the places of the leaves of seqs (none of them
	// sealed), and moves the unsealed leaves after them up, in their
	// order: a leaf the sealer refuses gives its place up.
	Unplace(ctx context.Context, ns string, seqs []int64) error
	// Unplaced returns up to limit leaves of ns without a place (refused
	// before, written with SQL or by a manager of a version before), in
	// seq order, those of seqs past after.
	Unplaced(ctx context.Context, ns string, after int64, limit int) ([]PendingLeaf, error)
	// Place gives the leaves of seqs, without a place, the next places of
	// ns's log, in that order, as ingest would have.
	Place(ctx context.Context, ns string, seqs []int64) error
}

// Sealer extends namespaces' logs by the leaves ingest wrote and signs
// their checkpoints. Only the leader runs one.
type Sealer struct {
	Store  LogStore
	Keys   *Keyring
	Origin string // the --seal-origin prefix
	Now    func() time.Time
	// Batch bounds the leaves one transaction appends (default 10,000).
	Batch int
	// ObserveLag, when set, is told each sealed leaf's seal lag: from
	// ingest writing it to the commit of the checkpoint covering it.
	ObserveLag func(time.Duration)
	// AcceptUnverifiedHead extends a log whose newest checkpoint no key of
	// Keys signed, when its root still matches the leaves: the way back
	// after the seal key was lost (--seal-accept-unverified-checkpoints).
	// Off, such a log is not extended (ErrLogAltered): its root could be
	// anyone's.
	AcceptUnverifiedHead bool

	// logs holds a mutex per namespace (*sync.Mutex): this process's
	// seals of one log take turns (the seal loop and a report starting
	// may seal at once, and the second Append would fail as another
	// sealer's); different logs are sealed side by side.
	logs sync.Map
	// heads holds, per namespace, the newest checkpoint (head) this
	// process signed or saw its log give, or was told of (Witness). Only an outside record shows a
	// log cut back to an older checkpoint, its newer checkpoints and
	// leaves deleted with them (a report's status, a trusted checkpoint):
	// the store then agrees with itself. A running manager is such a
	// record, and does not build on a log that went back or forked.
	heads sync.Map
	// applied is the latest cutoff BindRetention bound, which retention
	// then applied store-wide: a log with no checkpoint yet (its leaves
	// unsealed when the upkeep ran) carries it too.
	appliedMu sync.Mutex
	applied   time.Time
}

// appliedCutoff returns the latest cutoff BindRetention bound.
func (s *Sealer) appliedCutoff() time.Time {
	s.appliedMu.Lock()
	defer s.appliedMu.Unlock()
	return s.applied
}

// head is a checkpoint a log must never fall below nor fork from, with
// its signed note when this process read or wrote one.
type head struct {
	cp   Checkpoint
	note []byte
}

// head returns the newest checkpoint of ns this process signed or checked.
func (s *Sealer) head(ns string) (Checkpoint, bool) {
	v, ok := s.heads.Load(ns)
	if !ok {
		return Checkpoint{}, false
	}
	return v.(head).cp, true
}

// SignedHeads returns, per namespace, the signed note of the newest
// checkpoint this process signed or checked (not those it was only told
// of): what the leader publishes outside the store
// (sealkey.Heads), for the next leader to hold the logs to.
func (s *Sealer) SignedHeads() map[string][]byte {
	out := map[string][]byte{}
	s.heads.Range(func(k, v any) bool {
		if h := v.(head); h.note != nil {
			out[k.(string)] = h.note
		}
		return true
	})
	return out
}

// Heads returns the newest checkpoint of each log this process signed or
// checked, or was told of (Witness): witnesses for the leader's own verify
// runs (sealverify.Options.Witnesses).
func (s *Sealer) Heads() []Checkpoint {
	var out []Checkpoint
	s.heads.Range(func(_, v any) bool {
		out = append(out, v.(head).cp)
		return true
	})
	return out
}

// Witness tells the sealer of a checkpoint of one of its logs kept outside
// the store (a report's status.seal), which that log must never fall below
// nor fork from: a leader that starts after a log was cut back below a
// report's checkpoint does not extend it. A checkpoint of another origin
// prefix, or older than what the sealer holds, changes nothing.
func (s *Sealer) Witness(cp Checkpoint) {
	ns, ok := strings.CutPrefix(cp.Origin, s.Origin+"/")
	if !ok || ns == "" || cp.Size <= 0 {
		return
	}
	defer s.lock(ns)()
	if h, ok := s.head(ns); ok && h.Size >= cp.Size {
		return
	}
	s.heads.Store(ns, head{cp: cp})
}

// checkBelowHead fails with ErrLogAltered when ns's log, at size, is
// shorter than a checkpoint this process signed or checked.
func (s *Sealer) checkBelowHead(ns string, size int64) error {
	if h, ok := s.head(ns); ok && size < h.Size {
		return fmt.Errorf("sealing %s: %w: its newest checkpoint is of size %d, below the one of size %d this manager signed or checked (%s);"+
			" newer checkpoints and leaves were deleted, or the store went back (a restored backup, a failover that lost commits: restart the manager once understood); run manager verify",
			ns, ErrLogAltered, size, h.Size, h.Time.Format(time.RFC3339))
	}
	return nil
}

// lock takes ns's turn; the returned func gives it back.
func (s *Sealer) lock(ns string) func() {
	m, _ := s.logs.LoadOrStore(ns, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// SealResult says what one Seal did.
type SealResult struct {
	// Checkpoint is the last one Seal signed (zero: none).
	Checkpoint Checkpoint
	// Checkpoints counts the checkpoints Seal signed and stored.
	Checkpoints int
	Sealed      int
	// Refused are seqs of leaves whose MAC no key of the ring made: a row
	// that did not come through ingest. They stay unsealed.
	Refused []int64
}

// Seal appends every leaf of ns that ingest wrote so far and signs a
// checkpoint of each batch. Leaves whose MAC fails are left out.
func (s *Sealer) Seal(ctx context.Context, ns string) (SealResult, error) {
	defer s.lock(ns)()
	return s.seal(ctx, ns)
}

// SealNow seals ns's log and returns its newest checkpoint: the one Seal
// signed, else the one it stood at, once its leaves and tree hashes are
// seen to give that checkpoint's root (ErrLogAltered; an empty log: Size 0). A report reads exactly that checkpoint's events.
func (s *Sealer) SealNow(ctx context.Context, ns string) (Checkpoint, error) {
	if err := s.checkSchema(ctx); err != nil {
		return Checkpoint{}, fmt.Errorf("sealing %s: %w", ns, err)
	}
	defer s.lock(ns)()
	res, err := s.seal(ctx, ns)
	if err != nil {
		return Checkpoint{}, err
	}
	if res.Checkpoints > 0 {
		return res.Checkpoint, nil
	}
	cp := Checkpoint{Origin: Origin(s.Origin, ns)}
	if cp.Size, err = s.Store.LogSize(ctx, ns); err != nil {
		return Checkpoint{}, err
	}
	if err := s.checkBelowHead(ns, cp.Size); err != nil {
		return Checkpoint{}, err
	}
	if cp.Size == 0 {
		return cp, nil
	}
	cp.Root, err = s.checkHead(ctx, ns, cp.Size, tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		return s.Store.ReadHashes(ctx, ns, indexes)
	}))
	if err != nil {
		return Checkpoint{}, err
	}
	return cp, nil
}

func (s *Sealer) seal(ctx context.Context, ns string) (SealResult, error) {
	batch := s.Batch
	if batch <= 0 {
		batch = 10000
	}
	size, err := s.Store.LogSize(ctx, ns)
	if err != nil {
		return SealResult{}, fmt.Errorf("sealing %s: reading its log's size: %w", ns, err)
	}
	if err := s.checkBelowHead(ns, size); err != nil {
		return SealResult{}, err
	}
	var res SealResult
	if u, ok := s.Store.(Unplacer); ok {
		// Before the placed ones are read: a run ends at the first full
		// batch written after it began, so under ingest that never
		// pauses, leaves read after the placed ones would wait for ever.
		refused, err := s.placeUnplaced(ctx, u, ns, batch)
		res.Refused = refused
		if err != nil {
			return res, err
		}
	}
	var after int64 = -1 << 63
	began := s.Now()
	// known holds the hashes this run wrote or read: laying out leaf n
	// reads the roots of the complete subtrees to its left, the same few
	// (at most log2 n) for every leaf of a run, so each is read once.
	known := map[int64]tlog.Hash{}
	checked := false
	reader := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		var need []int64
		for _, x := range indexes {
			if _, ok := known[x]; !ok {
				need = append(need, x)
			}
		}
		var got []tlog.Hash
		if len(need) > 0 {
			var err error
			if got, err = s.Store.ReadHashes(ctx, ns, need); err != nil {
				return nil, err
			}
			if len(got) != len(need) {
				return nil, fmt.Errorf("read %d stored hashes, asked for %d", len(got), len(need))
			}
		}
		for i, x := range need {
			known[x] = got[i]
		}
		for i, x := range indexes {
			out[i] = known[x]
		}
		return out, nil
	})
	for {
		leaves, err := s.Store.Unsealed(ctx, ns, after, batch)
		if err != nil {
			return res, fmt.Errorf("sealing %s: reading unsealed leaves: %w", ns, err)
		}
		if len(leaves) == 0 {
			return res, nil
		}
		if !checked && size > 0 {
			if _, err := s.checkHead(ctx, ns, size, reader); err != nil {
				return res, err
			}
		}
		checked = true
		// A run seals what was written before it began: under ingest
		// that never pauses, and faster than sealing for a while, "until
		// none is left" never comes, and a report waiting for this seal
		// would wait for ever. What is written meanwhile is the next
		// run's (a short batch, or one reaching past the start).
		last := len(leaves) < batch || !leaves[len(leaves)-1].Created.Before(began)
		after = leaves[len(leaves)-1].Seq
		var seqs, refused []int64
		var hashes []StoredHash
		for _, l := range leaves {
			if !s.Keys.CheckLeafMAC(ns, l.Seq, l.Version, l.Data, l.MAC) {
				refused = append(refused, l.Seq)
				continue
			}
			if err := checkCopied(ns, l); err != nil {
				return res, err
			}
			n := size + int64(len(seqs))
			hs, err := tlog.StoredHashes(n, l.Data, reader)
			if err != nil {
				return res, fmt.Errorf("sealing %s: hashing leaf %d: %w", ns, n, err)
			}
			first := tlog.StoredHashCount(n)
			for i, h := range hs {
				x := first + int64(i)
				known[x] = h
				if Kept(x) {
					hashes = append(hashes, StoredHash{Index: x, Hash: h})
				}
			}
			seqs = append(seqs, l.Seq)
		}
		res.Refused = append(res.Refused, refused...)
		if u, ok := s.Store.(Unplacer); ok && len(refused) > 0 {
			if err := u.Unplace(ctx, ns, refused); err != nil {
				return res, fmt.Errorf("sealing %s: taking the places of %d refused leaves: %w", ns, len(refused), err)
			}
		}
		if len(seqs) == 0 {
			if last {
				return res, nil
			}
			continue
		}
		newSize := size + int64(len(seqs))
		root, err := tlog.TreeHash(newSize, reader)
		if err != nil {
			return res, fmt.Errorf("sealing %s: the root at %d: %w", ns, newSize, err)
		}
		now := s.Now().UTC()
		cp := Checkpoint{Origin: Origin(s.Origin, ns), Size: newSize, Root: root, Time: now}
		// The retention cutoff in force is the one retention last applied:
		// the upkeep binds it (BindRetention) right before it deletes, and
		// each checkpoint after carries it from the log's newest, which
		// checkHead put in heads (its cutoff only when a key of the ring
		// signed it), or from applied. Never one computed here: a cutoff
		// nothing applied (a clock stepped ahead for a moment) would
		// excuse deletions by hand, and one below what was applied
		// (--retention raised, a clock behind) would name retention's own
		// deletions. One later than now was bound under a clock that
		// stepped ahead: not carried (verify does not count it either).
		if h, ok := s.head(ns); ok && !h.RetentionCutoff.After(now) {
			cp.RetentionCutoff = h.RetentionCutoff
		}
		if a := s.appliedCutoff(); a.After(cp.RetentionCutoff) && !a.After(now) {
			cp.RetentionCutoff = a
		}
		note, err := s.Keys.Current.Sign(cp)
		if err != nil {
			return res, err
		}
		faultpoint.Hit("seal-before-append")
		if err := s.Store.Append(ctx, ns, seqs, hashes, cp, note); err != nil {
			return res, fmt.Errorf("sealing %s at %d: %w", ns, newSize, err)
		}
		faultpoint.Hit("seal-after-append")
		if s.ObserveLag != nil {
			// seqs are the sealed leaves' seqs, in the leaves' order.
			committed, j := s.Now(), 0
			for _, l := range leaves {
				if j < len(seqs) && seqs[j] == l.Seq {
					s.ObserveLag(committed.Sub(l.Created))
					j++
				}
			}
		}
		s.heads.Store(ns, head{cp: cp, note: note})
		size, res.Checkpoint = newSize, cp
		res.Checkpoints++
		res.Sealed += len(seqs)
		if last {
			return res, nil
		}
	}
}

// placeUnplaced gives the leaves of ns without a place whose MAC checks
// the next places of its log, in seq order, and returns the seqs of those
// it refused: they stay without a place, and are read again each run (a
// key added to the ring later seals them).
func (s *Sealer) placeUnplaced(ctx context.Context, u Unplacer, ns string, batch int) ([]int64, error) {
	var refused []int64
	var after int64 = -1 << 63
	for {
		leaves, err := u.Unplaced(ctx, ns, after, batch)
		if err != nil {
			return refused, fmt.Errorf("sealing %s: reading leaves without a place: %w", ns, err)
		}
		var valid []int64
		for _, l := range leaves {
			if !s.Keys.CheckLeafMAC(ns, l.Seq, l.Version, l.Data, l.MAC) {
				refused = append(refused, l.Seq)
				continue
			}
			if err := checkCopied(ns, l); err != nil {
				return refused, err
			}
			valid = append(valid, l.Seq)
		}
		if len(valid) > 0 {
			if err := u.Place(ctx, ns, valid); err != nil {
				return refused, fmt.Errorf("sealing %s: placing %d leaves that had no place: %w", ns, len(valid), err)
			}
		}
		if len(leaves) < batch {
			return refused, nil
		}
		after = leaves[len(leaves)-1].Seq
	}
}

// checkCopied returns ErrLogAltered for a leaf whose MAC checks but whose
// row is keyed at another time than its data holds: a copy of a leaf's row
// made behind the manager's back. The MAC covers the namespace, seq and
// data, not the row's key (namespace, time, seq), so a copy with a MAC that
// checks needs another time in its key, and the time in its data gives it
// away, wherever it is: in another page of leaves than the row it copies,
// or a copy of a leaf sealed long ago given no place or the next one. (A
// check of seqs seen within one page of leaves missed those: the copy was
// sealed a second time.)
func checkCopied(ns string, l PendingLeaf) error {
	if t, ok := DataTime(l.Data); !ok || t != l.Time {
		return fmt.Errorf("sealing %s: %w: the leaf of seq %d is keyed at %d, its data holds another time (a row copied behind the manager's back); run manager verify", ns, ErrLogAltered, l.Seq, l.Time)
	}
	return nil
}

// ErrLogAltered is Seal's error for a log whose leaves or tree hashes no
// longer give the root of its newest checkpoint, or whose newest checkpoint
// no key of the ring signed: someone changed the store behind the manager's
// back. Sealing on would sign a tree built on what they wrote, so the log is
// not extended; manager verify says what changed.
var ErrLogAltered = errors.New("the log no longer gives the root of its newest checkpoint")

// ErrSchemaChanged is the sealer's error when the store's schema is not
// the one its migrations made (store.SchemaChecker): a trigger may be
// dropping events with their leaves as ingest writes them, a policy
// hiding them from the manager's reads, and no row or leaf would tell.
// Nothing is signed on such a store: no checkpoint, no retention cutoff,
// no report's pin. manager verify names each change.
var ErrSchemaChanged = errors.New("the store's schema was changed behind the manager's back")

// checkSchema returns ErrSchemaChanged, with the changes, when the store
// can tell its schema changed.
func (s *Sealer) checkSchema(ctx context.Context) error {
	sc, ok := s.Store.(store.SchemaChecker)
	if !ok {
		return nil
	}
	changes, err := sc.SchemaChanges(ctx)
	if err != nil {
		return fmt.Errorf("checking the store's schema: %w", err)
	}
	if len(changes) == 0 {
		return nil
	}
	more := ""
	if len(changes) > 3 {
		more = fmt.Sprintf("; and %d more", len(changes)-3)
	}
	return fmt.Errorf("%w: %s%s (nothing is sealed until it is restored; manager verify names each change)",
		ErrSchemaChanged, strings.Join(changes[:min(len(changes), 3)], "; "), more)
}

// checkHead checks that ns's newest checkpoint, of size, is signed by a key
// of the ring and that the leaves and kept tree hashes still give its root,
// and returns that root: before the log is extended, and before a report is
// pinned to it. Both halves matter: an intruder can rewrite a leaf (a digest
// needs no key) and then the root in the note's text, but not its
// signature.
func (s *Sealer) checkHead(ctx context.Context, ns string, size int64, reader tlog.HashReader) (tlog.Hash, error) {
	cps, err := s.Store.Checkpoints(ctx, ns, 0, 1)
	if err != nil {
		return tlog.Hash{}, fmt.Errorf("sealing %s: reading its newest checkpoint: %w", ns, err)
	}
	if len(cps) != 1 || cps[0].Size != size {
		return tlog.Hash{}, fmt.Errorf("sealing %s: its log moved from size %d while it was read (another sealer ran)", ns, size)
	}
	cp, err := s.openHead(cps[0].Note)
	if err != nil {
		return tlog.Hash{}, fmt.Errorf("sealing %s: %w: its checkpoint of size %d: %w", ns, ErrLogAltered, size, err)
	}
	root, err := tlog.TreeHash(size, reader)
	if errors.Is(err, ErrHashNotStored) || errors.Is(err, ErrHashMalformed) || errors.Is(err, ErrLeavesMissing) {
		return tlog.Hash{}, fmt.Errorf("sealing %s: %w: %w", ns, ErrLogAltered, err)
	}
	if err != nil {
		return tlog.Hash{}, fmt.Errorf("sealing %s: the root at %d: %w", ns, size, err)
	}
	if root != cp.Root || cp.Size != size {
		return tlog.Hash{}, fmt.Errorf("sealing %s: %w: at size %d its leaves and tree hashes give %x, the checkpoint says %x; run manager verify", ns, ErrLogAltered, size, root[:], cp.Root[:])
	}
	// The log this process last saw must be where it was, under what
	// came since (another replica sealed meanwhile, or this one did).
	if h, ok := s.head(ns); ok {
		if err := s.checkBelowHead(ns, size); err != nil {
			return tlog.Hash{}, err
		}
		was := root
		if h.Size < size {
			was, err = tlog.TreeHash(h.Size, reader)
			if errors.Is(err, ErrHashNotStored) || errors.Is(err, ErrHashMalformed) || errors.Is(err, ErrLeavesMissing) {
				return tlog.Hash{}, fmt.Errorf("sealing %s: %w: the root at %d: %w", ns, ErrLogAltered, h.Size, err)
			}
			if err != nil {
				return tlog.Hash{}, fmt.Errorf("sealing %s: the root at %d: %w", ns, h.Size, err)
			}
		}
		if was != h.Root {
			return tlog.Hash{}, fmt.Errorf("sealing %s: %w: at size %d its leaves give %x, not the root %x of the checkpoint this manager signed or checked (%s): the log forked; run manager verify",
				ns, ErrLogAltered, h.Size, was[:], h.Root[:], h.Time.Format(time.RFC3339))
		}
	}
	s.heads.Store(ns, head{cp: cp, note: cps[0].Note})
	return root, nil
}

// openHead reads a log's newest checkpoint note: signed by a key of the
// ring, or with AcceptUnverifiedHead any note in checkpoint form.
//
// An unverified note's retention cutoff is dropped: nothing says the
// manager bound it, and the sealer carries a head's cutoff forward.
func (s *Sealer) openHead(msg []byte) (Checkpoint, error) {
	vs, err := Verifiers(s.Keys.VerifierKeys()...)
	if err != nil {
		return Checkpoint{}, err
	}
	cp, err := Open(msg, vs)
	if err == nil || !s.AcceptUnverifiedHead || !errors.Is(err, ErrBadSignature) {
		return cp, err
	}
	text, _, ok := bytes.Cut(msg, []byte("\n\n"))
	if !ok {
		return Checkpoint{}, errors.New("not a signed note")
	}
	cp, err = Parse(string(text) + "\n")
	cp.RetentionCutoff = time.Time{}
	return cp, err
}

// BindRetention makes every log's newest checkpoint bind a retention
// cutoff of at least cut, signing again at its size each that binds an
// earlier one (or none); retention deletes the events before cut only
// after it succeeded. Verify tells a deletion by retention from one by
// hand by the cutoff the newest checkpoint binds (spec/API.md 6), and a
// log seals only when it grows: without this, the expired events of a
// namespace that went quiet would read as deleted by hand.
//
// It signs only what the sealer would build on (checkHead): a newest
// checkpoint signed by a key of the ring, of this log, whose root its
// leaves still give and which does not fall below nor fork from what this
// process saw. A log that fails that is left as it is and returned in
// unbound (verify names it; signing it again would vouch for a change made
// behind the manager's back); an error is the store's.
func (s *Sealer) BindRetention(ctx context.Context, cut time.Time) (unbound []string, err error) {
	r, ok := s.Store.(Resigner)
	if !ok {
		return nil, fmt.Errorf("binding the retention cutoff: the store cannot sign a checkpoint again")
	}
	if err := s.checkSchema(ctx); err != nil {
		return nil, fmt.Errorf("binding the retention cutoff: %w", err)
	}
	nss, err := r.LogNamespaces(ctx)
	if err != nil {
		return nil, fmt.Errorf("binding the retention cutoff: listing the logs: %w", err)
	}
	vs, err := Verifiers(s.Keys.VerifierKeys()...)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, ns := range nss {
		bound, err := s.bindRetention(ctx, r, vs, ns, cut)
		if err != nil {
			errs = append(errs, err)
		} else if !bound {
			unbound = append(unbound, ns)
		}
	}
	if len(errs) == 0 {
		// Retention deletes next, store-wide.
		s.appliedMu.Lock()
		if cut.After(s.applied) {
			s.applied = cut.UTC()
		}
		s.appliedMu.Unlock()
	}
	return unbound, errors.Join(errs...)
}

func (s *Sealer) bindRetention(ctx context.Context, r Resigner, vs note.Verifiers, ns string, cut time.Time) (bool, error) {
	defer s.lock(ns)()
	cps, err := s.Store.Checkpoints(ctx, ns, 0, 1)
	if err != nil {
		return false, fmt.Errorf("binding the retention cutoff of %s: reading its newest checkpoint: %w", ns, err)
	}
	if len(cps) == 0 {
		return true, nil // nothing sealed: its first checkpoint will carry cut (applied)
	}
	cp, err := Open(cps[0].Note, vs)
	if err != nil || cp.Size != cps[0].Size || !strings.HasSuffix(cp.Origin, "/"+ns) {
		return false, nil
	}
	if !cp.RetentionCutoff.Before(cut) {
		return true, nil
	}
	root, err := s.checkHead(ctx, ns, cp.Size, tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		return s.Store.ReadHashes(ctx, ns, indexes)
	}))
	switch {
	case errors.Is(err, ErrLogAltered):
		return false, nil
	case err != nil:
		return false, err
	case root != cp.Root:
		return false, nil
	}
	cp.Time = s.Now().UTC()
	cp.RetentionCutoff = cut.UTC()
	n, err := s.Keys.Current.Sign(cp)
	if err != nil {
		return false, err
	}
	if err := r.Resign(ctx, ns, cps[0].Note, cp, n); err != nil {
		return false, fmt.Errorf("binding the retention cutoff of %s at %d: %w", ns, cp.Size, err)
	}
	s.heads.Store(ns, head{cp: cp, note: n})
	return true, nil
}

// sealAllParallel is how many namespaces SealAll seals at once: a seal
// alternates between hashing in Go and its store's transaction, so two
// keep both busy (a backlog of PostgreSQL leaves sealed 1.3-1.4x faster
// than one at a time: bench/README.md). A store with a single writer
// (SQLite, which says so with SingleWriter) seals one at a time: its
// writer took the transactions in turn anyway, and ingest waits for it.
const sealAllParallel = 2

// SealAll seals every namespace with unsealed leaves; it goes on past a
// namespace that fails and returns the errors together, in namespace order.
func (s *Sealer) SealAll(ctx context.Context) (map[string]SealResult, error) {
	if err := s.checkSchema(ctx); err != nil {
		return nil, fmt.Errorf("sealing: %w", err)
	}
	nss, err := s.Store.UnsealedNamespaces(ctx)
	if err != nil {
		return nil, fmt.Errorf("sealing: listing namespaces with unsealed leaves: %w", err)
	}
	parallel := sealAllParallel
	if sw, ok := s.Store.(interface{ SingleWriter() bool }); ok && sw.SingleWriter() {
		parallel = 1
	}
	out := make(map[string]SealResult, len(nss))
	errs := make([]error, len(nss))
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(parallel, len(nss)) {
		wg.Go(func() {
			for i := range next {
				res, err := s.Seal(ctx, nss[i])
				mu.Lock()
				out[nss[i]] = res
				mu.Unlock()
				errs[i] = err
			}
		})
	}
	for i := range nss {
		next <- i
	}
	close(next)
	wg.Wait()
	return out, errors.Join(errs...)
}

// Leaf is a sealed leaf of a namespace's log.
type Leaf struct {
	Index, Seq int64
	// ID is the event's id; empty when retention deleted the event.
	ID      string
	Version int
	Data    []byte
}

// KeyedLeaf is a leaf found by its event's key (time, seq): sealed or not.
type KeyedLeaf struct {
	Time, Seq int64 // the event's time (Unix ns) and seq
	// Index is the leaf's place in the log; -1 while unsealed;
	// IndexNegative when its place is negative, which no log has (only
	// SQL can write one).
	Index   int64
	Version int
	Data    []byte
	// Created is when ingest wrote it.
	Created time.Time
}

// IndexNegative is KeyedLeaf.Index of a leaf whose place is negative.
const IndexNegative = -2

// StoredCheckpoint is a signed checkpoint note as the store keeps it.
type StoredCheckpoint struct {
	Size int64
	Note []byte
}

// LogReader is what the API, reports and verify read of the logs.
type LogReader interface {
	// Leaves returns the sealed leaves of ns with indexes in [start, end).
	Leaves(ctx context.Context, ns string, start, end int64) ([]Leaf, error)
	// Checkpoints returns up to limit checkpoints of ns, newest first,
	// those of size below before only when before > 0.
	Checkpoints(ctx context.Context, ns string, before int64, limit int) ([]StoredCheckpoint, error)
	// ReadHashes returns the tree hashes of ns at the tlog indexes.
	ReadHashes(ctx context.Context, ns string, indexes []int64) ([]tlog.Hash, error)
	// LogNamespaces returns every namespace with events or leaves.
	LogNamespaces(ctx context.Context) ([]string, error)
	// LeavesByKey returns up to limit leaves of ns, sealed or not, with
	// keys (time, seq) after after and at most through, in key order:
	// the events' order, so verify walks both side by side.
	LeavesByKey(ctx context.Context, ns string, after, through store.Position, limit int) ([]KeyedLeaf, error)
	// LeafAt returns the leaf of ns's event at key, if there is one.
	LeafAt(ctx context.Context, ns string, key store.Position) (KeyedLeaf, bool, error)
	// EventAt says whether ns holds an event at key.
	EventAt(ctx context.Context, ns string, key store.Position) (bool, error)
}

// Log is a store's side of the logs: what the sealer writes and what the
// API, reports and verify read.
type Log interface {
	LogStore
	LogReader
}
