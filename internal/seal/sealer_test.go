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
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/tlog"
)

// memStore is a LogStore in memory: the contract the SQL stores implement.
type memStore struct {
	pending map[int64]PendingLeaf
	log     []int64 // seqs by index
	hashes  map[int64]tlog.Hash
	cps     []Checkpoint
	notes   [][]byte
	failAt  int // Append call that fails (1-based), 0: none
	appends int
}

func newMemStore() *memStore {
	return &memStore{pending: map[int64]PendingLeaf{}, hashes: map[int64]tlog.Hash{}}
}

func (m *memStore) UnsealedNamespaces(context.Context) ([]string, error) {
	if len(m.pending) == 0 {
		return nil, nil
	}
	return []string{"team-a"}, nil
}

// LogSize is the newest checkpoint's size, as the stores keep it.
func (m *memStore) LogSize(context.Context, string) (int64, error) {
	if len(m.cps) == 0 {
		return 0, nil
	}
	return m.cps[len(m.cps)-1].Size, nil
}

func (m *memStore) Unsealed(_ context.Context, _ string, after int64, limit int) ([]PendingLeaf, error) {
	var out []PendingLeaf
	for _, l := range m.pending {
		if l.Seq > after {
			out = append(out, l)
		}
	}
	slices.SortFunc(out, func(a, b PendingLeaf) int { return int(a.Seq - b.Seq) })
	return out[:min(limit, len(out))], nil
}

func (m *memStore) ReadHashes(_ context.Context, _ string, indexes []int64) ([]tlog.Hash, error) {
	return ReadTreeHashes(HashSource{
		Stored: func(indexes []int64) ([]tlog.Hash, error) {
			out := make([]tlog.Hash, len(indexes))
			for i, x := range indexes {
				h, ok := m.hashes[x]
				if !ok {
					return nil, fmt.Errorf("no stored hash %d", x)
				}
				out[i] = h
			}
			return out, nil
		},
		LeafData: func(start, end int64) ([][]byte, error) {
			var out [][]byte
			for _, seq := range m.log[start:min(end, int64(len(m.log)))] {
				out = append(out, leafOf(seq))
			}
			return out, nil
		},
	}, indexes)
}

func (m *memStore) Checkpoints(_ context.Context, _ string, before int64, limit int) ([]StoredCheckpoint, error) {
	var out []StoredCheckpoint
	for i := len(m.cps) - 1; i >= 0 && len(out) < limit; i-- {
		if before <= 0 || m.cps[i].Size < before {
			out = append(out, StoredCheckpoint{Size: m.cps[i].Size, Note: m.notes[i]})
		}
	}
	return out, nil
}

func (m *memStore) Append(_ context.Context, _ string, seqs []int64, hashes []StoredHash, cp Checkpoint, note []byte) error {
	m.appends++
	if m.appends == m.failAt {
		return errors.New("injected: the transaction failed")
	}
	if int64(len(m.log)+len(seqs)) != cp.Size {
		return fmt.Errorf("log at %d, append of %d to %d", len(m.log), len(seqs), cp.Size)
	}
	for _, s := range seqs {
		delete(m.pending, s)
	}
	m.log = append(m.log, seqs...)
	for _, h := range hashes {
		if !Kept(h.Index) {
			return fmt.Errorf("asked to keep tree hash %d, below level %d", h.Index, MinStoredLevel)
		}
		m.hashes[h.Index] = h.Hash
	}
	m.cps = append(m.cps, cp)
	m.notes = append(m.notes, note)
	return nil
}

func leafOf(seq int64) []byte {
	d := LeafData(time.Unix(0, seq*1000), [32]byte{byte(seq), byte(seq >> 8)})
	return d[:]
}

func (m *memStore) ingest(k *Key, ns string, seqs ...int64) {
	for _, s := range seqs {
		data := leafOf(s)
		m.pending[s] = PendingLeaf{Time: s * 1000, Seq: s, Version: EncodingV1, Data: data, MAC: k.LeafMAC(ns, s, EncodingV1, data)}
	}
}

// wantRoot is transparency-dev/merkle's root of the leaves of seqs.
func wantRoot(t *testing.T, seqs []int64) []byte {
	t.Helper()
	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	r := rf.NewEmptyRange(0)
	for _, s := range seqs {
		if err := r.Append(rfc6962.DefaultHasher.HashLeaf(leafOf(s)), nil); err != nil {
			t.Fatal(err)
		}
	}
	root, err := r.GetRootHash(nil)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func newSealer(t *testing.T, st LogStore, kr *Keyring) *Sealer {
	t.Helper()
	clock := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex // SealAll seals namespaces side by side
	return &Sealer{Store: st, Keys: kr, Origin: DefaultOriginPrefix, Batch: 7,
		Now: func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			clock = clock.Add(time.Second)
			return clock
		}}
}

// TestSealer: batches of leaves become signed checkpoints whose roots are
// the leaves' tree, each consistent with the one before; a leaf whose MAC
// no key made (a row written with SQL) is never sealed; a failed
// transaction changes nothing and the next run seals the same leaves.
func TestSealer(t *testing.T) {
	ctx := context.Background()
	kr, err := NewKeyring(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	intruder := newKey(t)
	st := newMemStore()
	st.failAt = 2
	st.ingest(kr.Current, "team-a", 1, 2, 3, 5, 8, 9, 10, 11, 12, 13)
	st.ingest(intruder, "team-a", 4)   // inserted with SQL, MAC made up
	st.ingest(kr.Current, "team-b", 6) // another namespace's MAC
	st.pending[7] = PendingLeaf{Time: 7000, Seq: 7, Version: EncodingV1, Data: leafOf(7), MAC: make([]byte, 32)}
	s := newSealer(t, st, kr)
	// The seal lag of each leaf a committed checkpoint covers, and of no
	// other (refused, or in the failed transaction).
	var lags []time.Duration
	s.ObserveLag = func(d time.Duration) { lags = append(lags, d) }
	if _, err := s.Seal(ctx, "team-a"); err == nil {
		t.Fatal("the injected failure of the second transaction was not reported")
	}
	if len(lags) != 4 {
		t.Fatalf("%d seal lags observed after the first checkpoint, want its 4 leaves", len(lags))
	}
	if len(st.cps) != 1 || st.cps[0].Size != 4 { // seqs 1-7 but the three refused
		t.Fatalf("after the failure: checkpoints %+v", st.cps)
	}
	// Leaves made under a key since rotated out still seal.
	rotated, err := kr.Rotate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s.Keys = rotated
	st.ingest(rotated.Current, "team-a", 20, 21)
	res, err := s.Seal(ctx, "team-a")
	if err != nil {
		t.Fatal(err)
	}
	want := []int64{1, 2, 3, 5, 8, 9, 10, 11, 12, 13, 20, 21}
	if !slices.Equal(st.log, want) {
		t.Fatalf("log %v, want %v", st.log, want)
	}
	if !slices.Equal(res.Refused, []int64{4, 6, 7}) {
		t.Fatalf("refused %v, want the three leaves ingest did not make", res.Refused)
	}
	if len(lags) != len(want) || slices.ContainsFunc(lags, func(d time.Duration) bool { return d < 0 }) {
		t.Fatalf("seal lags %v, want one per sealed leaf (%d)", lags, len(want))
	}
	if got := res.Checkpoint; got.Size != int64(len(want)) || !bytes.Equal(got.Root[:], wantRoot(t, want)) {
		t.Fatalf("last checkpoint %+v, want size %d and merkle's root", got, len(want))
	}
	vs, _ := Verifiers(rotated.VerifierKeys()...)
	for i, note := range st.notes {
		cp, err := Open(note, vs)
		if err != nil || cp != st.cps[i] {
			t.Fatalf("checkpoint %d: %v", i, err)
		}
		// No BindRetention ran: none is bound.
		if cp.Origin != "auditops/team-a" || !cp.RetentionCutoff.IsZero() {
			t.Fatalf("checkpoint %d: %+v", i, cp)
		}
		if i == 0 {
			continue
		}
		prev := st.cps[i-1]
		p, err := tlog.ProveTree(cp.Size, prev.Size, tlog.HashReaderFunc(func(x []int64) ([]tlog.Hash, error) { return st.ReadHashes(ctx, "", x) }))
		if err != nil {
			t.Fatal(err)
		}
		if err := tlog.CheckTree(p, cp.Size, cp.Root, prev.Size, prev.Root); err != nil {
			t.Fatalf("checkpoint %d does not extend %d: %v", cp.Size, prev.Size, err)
		}
	}
	// Nothing new: nothing written.
	n := len(st.cps)
	if res, err := s.Seal(ctx, "team-a"); err != nil || res.Sealed != 0 || len(st.cps) != n {
		t.Fatalf("a second run sealed %d (%v)", res.Sealed, err)
	}
}

// sealedLog is a memStore holding a log of 20 leaves of team-a (seqs 1-20),
// sealed by the sealer returned in checkpoints of 7, 14 and 20 (newSealer's
// batch), under a new keyring.
func sealedLog(t *testing.T) (*memStore, *Keyring, *Sealer) {
	t.Helper()
	kr, err := NewKeyring(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	st := newMemStore()
	for seq := range int64(20) {
		st.ingest(kr.Current, "team-a", seq+1)
	}
	s := newSealer(t, st, kr)
	if _, err := s.Seal(t.Context(), "team-a"); err != nil || len(st.log) != 20 || len(st.cps) != 3 {
		t.Fatalf("first seal: %v, log of %d in %d checkpoints", err, len(st.log), len(st.cps))
	}
	return st, kr, s
}

// TestSealRefusesAnAlteredLog: once a sealed leaf or a kept tree hash is
// changed behind the manager's back, the log no longer gives its newest
// checkpoint's root, and neither Seal nor SealNow builds on it: nothing is
// appended or signed, and the error is ErrLogAltered. A checkpoint signed by
// a key the ring no longer holds does not stop sealing.
func TestSealRefusesAnAlteredLog(t *testing.T) {
	for _, tt := range []struct {
		name  string
		alter func(m *memStore)
	}{
		// Leaf 17 now has leaf 99's data. (A leaf of the complete block
		// 0-15 is not read: the kept hash over it is; verify finds it.)
		{"sealed leaf edited", func(m *memStore) { m.log[17] = 99 }},
		{"kept tree hash edited", func(m *memStore) {
			x := tlog.StoredHashIndex(MinStoredLevel, 0)
			h := m.hashes[x]
			h[0] ^= 1
			m.hashes[x] = h
		}},
		{"sealed leaf deleted", func(m *memStore) { m.log = m.log[:len(m.log)-1] }},
		{"newest checkpoint's root edited", func(m *memStore) {
			last := len(m.notes) - 1
			root := base64.StdEncoding.EncodeToString(m.cps[last].Root[:])
			m.notes[last] = bytes.Replace(m.notes[last], []byte(root), []byte(base64.StdEncoding.EncodeToString(make([]byte, 32))), 1)
		}},
		// The intruder's full move: a leaf rewritten, then the newest
		// note's root set to what the leaves now give. Only the signature
		// tells.
		{"sealed leaf and the newest checkpoint's root edited to match", func(m *memStore) {
			m.log[17] = 99
			last := len(m.notes) - 1
			forged, err := tlog.TreeHash(m.cps[last].Size, tlog.HashReaderFunc(func(x []int64) ([]tlog.Hash, error) { return m.ReadHashes(context.Background(), "", x) }))
			if err != nil {
				panic(err)
			}
			root := base64.StdEncoding.EncodeToString(m.cps[last].Root[:])
			m.notes[last] = bytes.Replace(m.notes[last], []byte(root), []byte(base64.StdEncoding.EncodeToString(forged[:])), 1)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st, kr, s := sealedLog(t)
			tt.alter(st)
			n := len(st.cps)
			st.ingest(kr.Current, "team-a", 21)
			if _, err := s.Seal(t.Context(), "team-a"); !errors.Is(err, ErrLogAltered) || len(st.cps) != n {
				t.Fatalf("Seal of the altered log: %v, %d checkpoints (was %d)", err, len(st.cps), n)
			}
			if _, err := s.SealNow(t.Context(), "team-a"); !errors.Is(err, ErrLogAltered) || len(st.cps) != n {
				t.Fatalf("SealNow of the altered log: %v", err)
			}
		})
	}

	// Untouched, under a keyring that lost the key of its checkpoints: not
	// extended, since a root no key of the ring signed could be anyone's,
	// until AcceptUnverifiedHead (the way back from a lost key). A key
	// rotated out but kept in the ring is no such case.
	st, kr, s := sealedLog(t)
	rotated, err := kr.Rotate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s.Keys = rotated
	st.ingest(rotated.Current, "team-a", 21)
	if res, err := s.Seal(t.Context(), "team-a"); err != nil || res.Sealed != 1 {
		t.Fatalf("sealing after a rotation: %+v, %v", res, err)
	}
	lost, err := NewKeyring(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s.Keys = lost
	st.ingest(lost.Current, "team-a", 22)
	if _, err := s.Seal(t.Context(), "team-a"); !errors.Is(err, ErrLogAltered) || len(st.log) != 21 {
		t.Fatalf("sealing under a keyring that lost the checkpoints' key: %v, log of %d", err, len(st.log))
	}
	s.AcceptUnverifiedHead = true
	if res, err := s.Seal(t.Context(), "team-a"); err != nil || res.Sealed != 1 {
		t.Fatalf("sealing with AcceptUnverifiedHead: %+v, %v", res, err)
	}
	s.AcceptUnverifiedHead = false
	st.ingest(lost.Current, "team-a", 23)
	if res, err := s.Seal(t.Context(), "team-a"); err != nil || res.Sealed != 1 {
		t.Fatalf("sealing once the new key signed the head: %+v, %v", res, err)
	}
}

// TestSealRefusesALogCutBack: a log cut back to an older checkpoint, its
// newer checkpoints and leaves deleted with them, agrees with itself: only
// an outside record shows it, and a running sealer is one. It does not
// extend such a log, nor one that grew again from the cut (a fork), nor
// pin a report to it; a log another sealer extended meanwhile (a leader
// handover) is sealed on.
func TestSealRefusesALogCutBack(t *testing.T) {
	// cut leaves st's first n checkpoints and the leaves they cover.
	cut := func(st *memStore, n int) {
		size := int64(0)
		if n > 0 {
			size = st.cps[n-1].Size
		}
		st.cps, st.notes, st.log = st.cps[:n], st.notes[:n], st.log[:size]
	}
	for _, tt := range []struct {
		name   string
		change func(t *testing.T, st *memStore, kr *Keyring)
		want   error // nil: sealed on
	}{
		{"untouched", func(*testing.T, *memStore, *Keyring) {}, nil},
		{"extended by another sealer", func(t *testing.T, st *memStore, kr *Keyring) {
			st.ingest(kr.Current, "team-a", 30, 31, 32)
			if res, err := newSealer(t, st, kr).Seal(t.Context(), "team-a"); err != nil || res.Sealed != 3 {
				t.Fatalf("the other sealer: %+v, %v", res, err)
			}
		}, nil},
		{"newest checkpoint and its leaves deleted", func(_ *testing.T, st *memStore, _ *Keyring) { cut(st, 2) }, ErrLogAltered},
		{"every checkpoint and leaf deleted", func(_ *testing.T, st *memStore, _ *Keyring) {
			cut(st, 0)
			clear(st.hashes)
		}, ErrLogAltered},
		// Cut back, then sealed past where it was by a sealer that never
		// saw it (a replica started since): every checkpoint is signed
		// and each extends the one before.
		{"cut back and sealed past by another sealer", func(t *testing.T, st *memStore, kr *Keyring) {
			cut(st, 2)
			st.ingest(kr.Current, "team-a", 40, 41, 42, 43, 44, 45, 46, 47)
			if res, err := newSealer(t, st, kr).Seal(t.Context(), "team-a"); err != nil || res.Sealed != 8 {
				t.Fatalf("the other sealer: %+v, %v", res, err)
			}
		}, ErrLogAltered},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st, kr, s := sealedLog(t)
			signed := st.cps[2]
			tt.change(t, st, kr)
			n := len(st.cps)
			if _, err := s.SealNow(t.Context(), "team-a"); !errors.Is(err, tt.want) {
				t.Fatalf("SealNow: %v, want %v", err, tt.want)
			}
			st.ingest(kr.Current, "team-a", 99)
			res, err := s.Seal(t.Context(), "team-a")
			if !errors.Is(err, tt.want) {
				t.Fatalf("Seal: %v, want %v", err, tt.want)
			}
			if sealed := len(st.cps) - n; (tt.want == nil) != (sealed == 1 && res.Sealed == 1) {
				t.Fatalf("Seal signed %d checkpoints over %d leaves (error %v)", sealed, res.Sealed, err)
			}
			if tt.want != nil {
				// A sealer that never saw the log (the manager restarted)
				// holds it to what it is told of: a report's checkpoint.
				told := newSealer(t, st, kr)
				told.Witness(Checkpoint{Origin: "elsewhere/team-a", Size: 1 << 40}) // not its log
				told.Witness(signed)
				if _, err := told.Seal(t.Context(), "team-a"); !errors.Is(err, ErrLogAltered) {
					t.Fatalf("a new sealer told of the checkpoint of size %d: %v", signed.Size, err)
				}
				if heads := told.Heads(); len(heads) != 1 || heads[0] != signed {
					t.Fatalf("heads %+v, want the checkpoint of size %d", heads, signed.Size)
				}
				// Untold, it has nothing to hold the log to; manager
				// verify with a trusted checkpoint or
				// --trusted-from-reports does.
				if _, err := newSealer(t, st, kr).Seal(t.Context(), "team-a"); err != nil {
					t.Fatalf("a new sealer: %v", err)
				}
			}
		})
	}
}

// failingHashes is a memStore whose hashes cannot be read for a while.
type failingHashes struct{ *memStore }

func (f failingHashes) ReadHashes(context.Context, string, []int64) ([]tlog.Hash, error) {
	return nil, errors.New("read tcp 10.0.0.7:5432: connection reset by peer")
}

// TestSealReadErrorIsNotAlteration: a store that cannot be read is an
// error, not ErrLogAltered: a network blip must not fire AuditopsLogAltered.
func TestSealReadErrorIsNotAlteration(t *testing.T) {
	st, kr, _ := sealedLog(t)
	st.ingest(kr.Current, "team-a", 21)
	_, err := newSealer(t, failingHashes{st}, kr).Seal(t.Context(), "team-a")
	if err == nil || errors.Is(err, ErrLogAltered) {
		t.Fatalf("sealing while the hashes cannot be read: %v, want an error that is not ErrLogAltered", err)
	}
}

// busyStore is a memStore under ingest that never pauses: every read of
// the unsealed leaves finds a full batch more, written by then.
type busyStore struct {
	*memStore
	key  *Key
	next int64
	now  func() time.Time
}

func (b *busyStore) Unsealed(ctx context.Context, ns string, after int64, limit int) ([]PendingLeaf, error) {
	out, err := b.memStore.Unsealed(ctx, ns, after, limit)
	for range limit {
		b.next++
		b.memStore.ingest(b.key, "team-a", b.next)
		l := b.pending[b.next]
		l.Created = b.now()
		b.pending[b.next] = l
	}
	return out, err
}

// TestSealEndsUnderIngest: a seal run seals what was written before it
// began and ends, however fast leaves keep coming; a report waiting on it
// (SealNow) gets its checkpoint. (Found by TestReplicasFailover: the
// rolling restart's reports waited for ever.)
func TestSealEndsUnderIngest(t *testing.T) {
	kr, err := NewKeyring(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s := newSealer(t, nil, kr)
	st := &busyStore{memStore: newMemStore(), key: kr.Current, now: s.Now}
	for range 20 { // a backlog written before the run
		st.next++
		st.ingest(kr.Current, "team-a", st.next)
	}
	s.Store = st
	done := make(chan Checkpoint, 1)
	go func() {
		cp, err := s.SealNow(context.Background(), "team-a")
		if err != nil {
			t.Error(err)
		}
		done <- cp
	}()
	select {
	case cp := <-done:
		if cp.Size < 20 {
			t.Fatalf("the run sealed %d leaves, not the 20 written before it", cp.Size)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a seal under ingest that never pauses did not end")
	}
}

// namespacesStore has one leaf in each of six namespaces; its Append
// takes a while and counts how many run at once.
type namespacesStore struct {
	key          *Key
	singleWriter bool
	mu           sync.Mutex
	sealed       map[string]bool
	running, max int
}

func (n *namespacesStore) SingleWriter() bool { return n.singleWriter }

func (n *namespacesStore) UnsealedNamespaces(context.Context) ([]string, error) {
	return []string{"a", "b", "c", "d", "e", "f"}, nil
}

func (n *namespacesStore) LogSize(_ context.Context, ns string) (int64, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.sealed[ns] {
		return 1, nil
	}
	return 0, nil
}

func (n *namespacesStore) Unsealed(_ context.Context, ns string, after int64, _ int) ([]PendingLeaf, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.sealed[ns] || after >= 1 {
		return nil, nil
	}
	data := leafOf(1)
	return []PendingLeaf{{Time: 1000, Seq: 1, Version: EncodingV1, Data: data, MAC: n.key.LeafMAC(ns, 1, EncodingV1, data)}}, nil
}

func (n *namespacesStore) ReadHashes(context.Context, string, []int64) ([]tlog.Hash, error) {
	return nil, errors.New("no hashes stored")
}

func (n *namespacesStore) Checkpoints(context.Context, string, int64, int) ([]StoredCheckpoint, error) {
	return nil, errors.New("no checkpoints stored")
}

func (n *namespacesStore) Append(_ context.Context, ns string, _ []int64, _ []StoredHash, _ Checkpoint, _ []byte) error {
	n.mu.Lock()
	n.running++
	n.max = max(n.max, n.running)
	n.mu.Unlock()
	time.Sleep(20 * time.Millisecond)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.running--
	n.sealed[ns] = true
	return nil
}

// TestSealAllSideBySide: SealAll seals two namespaces at a time, one at a
// time on a store with a single writer; every namespace is sealed.
func TestSealAllSideBySide(t *testing.T) {
	for _, tt := range []struct {
		singleWriter bool
		want         int
	}{{false, sealAllParallel}, {true, 1}} {
		kr, err := NewKeyring(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		st := &namespacesStore{key: kr.Current, singleWriter: tt.singleWriter, sealed: map[string]bool{}}
		res, err := newSealer(t, st, kr).SealAll(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != 6 || len(st.sealed) != 6 {
			t.Fatalf("single writer %v: sealed %d namespaces (results for %d), want 6", tt.singleWriter, len(st.sealed), len(res))
		}
		if st.max != tt.want {
			t.Errorf("single writer %v: %d seals ran at once, want %d", tt.singleWriter, st.max, tt.want)
		}
	}
}
