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

package storetest

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/auditops/auditops/internal/seal"
	"github.com/auditops/auditops/internal/store"
)

// PlacingStore is a store whose ingest places each leaf in its log
// (seal.Unplacer): both stores.
type PlacingStore interface {
	SealingStore
	seal.Unplacer
}

// PlacementDB is one database of a RunPlacement test, reached both as the
// manager does (Open) and as an intruder with SQL does (Exec, Value).
type PlacementDB struct {
	// Open opens a store on the database that makes leaves with kr,
	// closed when t ends. Stores opened one after the other share it.
	Open func(t *testing.T, kr *seal.Keyring) PlacingStore
	// Exec runs q, with ? placeholders, on the database.
	Exec func(t *testing.T, q string, args ...any)
	// Value scans the one row q returns into dst.
	Value func(t *testing.T, q string, args []any, dst ...any)
}

// RunPlacement checks how a store places leaves in their logs at ingest
// (spec/API.md 6), against what an intruder with write access to the
// database but no seal key can do to them; newDB returns a new, empty
// database.
func RunPlacement(t *testing.T, newDB func(t *testing.T) PlacementDB) {
	t.Run("RefusesRowsWrittenWithSQL", func(t *testing.T) { testRefusesRowsWrittenWithSQL(t, newDB) })
	t.Run("RefusedLeafSealsOnceItsKeyIsKnown", func(t *testing.T) { testRefusedLeafSealsOnceItsKeyIsKnown(t, newDB(t)) })
	t.Run("StopsAtACopiedLeaf", func(t *testing.T) { testStopsAtACopiedLeaf(t, newDB) })
	t.Run("PinnedReadBeyondTheLog", func(t *testing.T) { testPinnedReadBeyondTheLog(t, newDB(t)) })
	t.Run("ConcurrentIngestPlacesEachLeafOnce", func(t *testing.T) { testConcurrentIngestPlacesEachLeafOnce(t, newDB(t)) })
	t.Run("LeafInTheWayIsNoClientError", func(t *testing.T) { testLeafInTheWayIsNoClientError(t, newDB(t)) })
	t.Run("LeafWithoutAPlaceSealsUnderLoad", func(t *testing.T) { testLeafWithoutAPlaceSealsUnderLoad(t, newDB(t)) })
}

// placementAt is when the placement tests' events happen.
var placementAt = time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)

// teamEvent is event id of namespace team-a, d after placementAt.
func teamEvent(id string, d time.Duration) store.Event {
	return store.Event{ID: id, Namespace: "team-a", User: "alice", Status: "success", Category: "data", Time: placementAt.Add(d)}
}

// newKeyring is a new seal keyring.
func newKeyring(t *testing.T) *seal.Keyring {
	t.Helper()
	kr, err := seal.NewKeyring(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// EarlierEvents stores one event of ns per id, alone, each a minute before
// the one stored before it (the first a minute before placementAt): a
// log's places then follow seq, not time. A migration test's ingest.
type EarlierEvents struct{ minutes int }

// Insert stores the events of ids in ns.
func (e *EarlierEvents) Insert(t *testing.T, s store.Store, ns string, ids ...string) {
	t.Helper()
	for _, id := range ids {
		e.minutes--
		ev := teamEvent(id, time.Duration(e.minutes)*time.Minute)
		ev.Namespace = ns
		mustInsert(t, s, ev)
	}
}

// sealerOf is a sealer of s's logs with keys kr.
func sealerOf(s seal.LogStore, kr *seal.Keyring) *seal.Sealer {
	return &seal.Sealer{Store: s, Keys: kr, Origin: seal.DefaultOriginPrefix, Now: time.Now}
}

// CheckLog fails t unless ns's sealed log holds the events of want, in
// that order, at places 0, 1, 2...
func CheckLog(t *testing.T, s seal.LogReader, ns string, want ...string) {
	t.Helper()
	leaves, err := s.Leaves(t.Context(), ns, 0, int64(len(want))+10)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i, l := range leaves {
		if l.Index != int64(i) {
			t.Fatalf("%s: leaf %d of the log is at %d", ns, i, l.Index)
		}
		ids = append(ids, l.ID)
	}
	if !slices.Equal(ids, want) {
		t.Fatalf("%s: the log holds %v, want %v", ns, ids, want)
	}
}

// testRefusesRowsWrittenWithSQL does to a real database what an
// intruder with write access but no seal key can: leaves inserted with SQL
// (the MAC made up, or copied from another event's leaf), with no place in
// the log or at the places ingest gives next, and ingested leaves' places
// swapped. The sealer never seals a forged leaf; every ingested one is
// sealed, at contiguous places, and ingest goes on after them.
func testRefusesRowsWrittenWithSQL(t *testing.T, newDB func(t *testing.T) PlacementDB) {
	for _, tc := range []struct {
		name string
		// placed: the forged leaves take the log's next places, between
		// ingested ones, as ingest would place them.
		placed bool
		// swap: the places of the second and third ingested leaves
		// are swapped, before anything is sealed.
		swap bool
		// gap: the second ingested leaf is moved past the log's end,
		// leaving a gap no refusal closes.
		gap bool
		// hide: the second ingested leaf's place is taken away, to keep
		// it from the sealer.
		hide bool
		// want: the log's events after the first seal, in order.
		want []string
	}{
		{name: "forged leaves without a place", want: []string{"r1", "r2", "r3"}},
		{name: "forged leaves at the next places", placed: true, want: []string{"r1", "r2", "r3"}},
		{name: "ingested leaves' places swapped", placed: true, swap: true, want: []string{"r1", "r3", "r2"}},
		{name: "ingested leaf moved past the log's end", gap: true, want: []string{"r1", "r3", "r2"}},
		{name: "ingested leaf's place taken away", hide: true, want: []string{"r1", "r3", "r2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			kr := newKeyring(t)
			db := newDB(t)
			s := db.Open(t, kr)
			ingest := func(id string, sec int) {
				t.Helper()
				e := teamEvent(id, time.Duration(sec)*time.Second)
				if res, err := s.Insert(ctx, []store.Event{e}); err != nil || res.Inserted != 1 {
					t.Fatalf("insert %s: %+v, %v", id, res, err)
				}
			}
			exec := func(q string, args ...any) {
				t.Helper()
				db.Exec(t, q, args...)
			}
			ingest("r1", 0)
			var realMAC []byte
			db.Value(t, "SELECT mac FROM leaves WHERE namespace = 'team-a'", nil, &realMAC)
			forged := teamEvent("forged", time.Second)
			forged.Seq = 100
			d, err := seal.Digest(&forged, seal.EncodingV1)
			if err != nil {
				t.Fatal(err)
			}
			data := seal.LeafData(forged.Time, d)
			for _, f := range []struct {
				seq int64
				mac []byte
			}{{100, make([]byte, 32)}, {101, realMAC}} {
				place := "NULL"
				if tc.placed {
					place = "(SELECT max(place) + 1 FROM leaves WHERE namespace = 'team-a')"
				}
				exec("INSERT INTO leaves (namespace, ts, seq, version, data, mac, place, created) VALUES ('team-a', ?, ?, 1, ?, ?, "+place+", 0)",
					forged.Time.UnixNano(), f.seq, data[:], f.mac)
			}
			ingest("r2", 2)
			ingest("r3", 3)
			if tc.swap {
				exec("UPDATE leaves SET place = -1 WHERE namespace = 'team-a' AND place = 3")
				exec("UPDATE leaves SET place = 3 WHERE namespace = 'team-a' AND place = 4")
				exec("UPDATE leaves SET place = 4 WHERE namespace = 'team-a' AND place = -1")
			}
			if tc.gap {
				exec("UPDATE leaves SET place = 9 WHERE namespace = 'team-a' AND place = 1")
			}
			if tc.hide {
				exec("UPDATE leaves SET place = NULL WHERE namespace = 'team-a' AND place = 1")
			}
			sealer := sealerOf(s, kr)
			res, err := sealer.Seal(ctx, "team-a")
			if err != nil {
				t.Fatal(err)
			}
			// Placed or not, the sealer reads them and refuses them.
			refused := []int64{100, 101}
			if res.Sealed != 3 || !slices.Equal(res.Refused, refused) {
				t.Fatalf("sealed %d, refused %v: want the 3 ingested events sealed and %v refused", res.Sealed, res.Refused, refused)
			}
			CheckLog(t, s, "team-a", tc.want...)
			for _, seq := range []int64{100, 101} {
				l, ok, err := s.LeafAt(ctx, "team-a", store.Position{Time: forged.Time.UnixNano(), Seq: seq})
				if err != nil || !ok || l.Index != -1 {
					t.Fatalf("forged leaf %d: %+v, %v, %v: want it there, unsealed", seq, l, ok, err)
				}
				var placed bool
				db.Value(t, "SELECT place IS NOT NULL FROM leaves WHERE namespace = 'team-a' AND seq = ?", []any{seq}, &placed)
				if placed {
					t.Fatalf("forged leaf %d keeps a place in the log", seq)
				}
			}
			// Ingest goes on at the next place, and the next seal finds
			// nothing to mend; the forged leaves are refused again, as
			// on every run (a key added to the ring later would seal
			// them: testRefusedLeafSealsOnceItsKeyIsKnown).
			ingest("r4", 4)
			res, err = sealer.Seal(ctx, "team-a")
			if err != nil || res.Sealed != 1 || !slices.Equal(res.Refused, refused) {
				t.Fatalf("second seal: %+v, %v", res, err)
			}
			CheckLog(t, s, "team-a", append(slices.Clone(tc.want), "r4")...)
		})
	}
}

// testRefusedLeafSealsOnceItsKeyIsKnown: leaves MACed with a key the
// sealer's ring lacks (written by a process that loaded a rotated ring
// first, such as manager import during a rotation) are refused and give
// their places up, but are read again each run: a sealer whose ring has
// the key seals them, after the leaves ingested meanwhile.
func testRefusedLeafSealsOnceItsKeyIsKnown(t *testing.T, db PlacementDB) {
	ctx := t.Context()
	old := newKeyring(t)
	rotated, err := old.Rotate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ingest := func(kr *seal.Keyring, ids ...string) {
		t.Helper()
		s := db.Open(t, kr)
		for i, id := range ids {
			e := teamEvent(id, time.Duration(i)*time.Second)
			if res, err := s.Insert(ctx, []store.Event{e}); err != nil || res.Inserted != 1 {
				t.Fatalf("insert %s: %+v, %v", id, res, err)
			}
		}
	}
	ingest(old, "a1")
	ingest(rotated, "new1", "new2")
	ingest(old, "a2")
	s := db.Open(t, old)
	res, err := sealerOf(s, old).Seal(ctx, "team-a")
	if err != nil || res.Sealed != 2 || len(res.Refused) != 2 {
		t.Fatalf("sealing with the old ring: %+v, %v: want a1 and a2 sealed, new1 and new2 refused", res, err)
	}
	// Refused again, run after run, without rewriting the log.
	res, err = sealerOf(s, old).Seal(ctx, "team-a")
	if err != nil || res.Sealed != 0 || len(res.Refused) != 2 {
		t.Fatalf("sealing again with the old ring: %+v, %v", res, err)
	}
	if nss, err := s.UnsealedNamespaces(ctx); err != nil || !slices.Equal(nss, []string{"team-a"}) {
		t.Fatalf("unsealed namespaces with refused leaves: %v, %v", nss, err)
	}
	res, err = sealerOf(s, rotated).Seal(ctx, "team-a")
	if err != nil || res.Sealed != 2 || len(res.Refused) != 0 {
		t.Fatalf("sealing with the rotated ring: %+v, %v: want new1 and new2 sealed", res, err)
	}
	CheckLog(t, s, "team-a", "a1", "a2", "new1", "new2")
	if nss, err := s.UnsealedNamespaces(ctx); err != nil || len(nss) != 0 {
		t.Fatalf("unsealed namespaces after sealing all: %v, %v", nss, err)
	}
}

// testStopsAtACopiedLeaf: a copy of a leaf's row under another key (ts)
// keeps a MAC that checks; the sealer must not sign a log holding one event
// twice, wherever the copy is. Before, only a copy in the same page of
// unsealed leaves as the row it copied stopped it: a copy of a sealed leaf,
// or one a page away, was sealed a second time (seen: log size 2, and 4).
func testStopsAtACopiedLeaf(t *testing.T, newDB func(t *testing.T) PlacementDB) {
	for _, c := range []struct {
		name string
		// sealFirst seals this many events before the copy is made.
		events, sealFirst int
		// copyOf is the place of the leaf copied; place the copy's
		// ("NULL": none).
		copyOf int
		place  string
		batch  int
	}{
		{name: "an unsealed leaf, placed next", events: 1, copyOf: 0, place: "1"},
		{name: "a sealed leaf, without a place", events: 1, sealFirst: 1, copyOf: 0, place: "NULL"},
		{name: "a sealed leaf, placed next", events: 2, sealFirst: 2, copyOf: 0, place: "2"},
		{name: "an unsealed leaf, a page of leaves away", events: 3, copyOf: 0, place: "3", batch: 2},
		{name: "an unsealed leaf, without a place", events: 3, copyOf: 1, place: "NULL", batch: 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := t.Context()
			db := newDB(t)
			kr := newKeyring(t)
			s := db.Open(t, kr)
			sealer := sealerOf(s, kr)
			sealer.Batch = c.batch
			for i := range c.events {
				mustInsert(t, s, teamEvent(fmt.Sprintf("r%d", i), time.Duration(i)*time.Minute))
				if i+1 == c.sealFirst {
					if _, err := sealer.Seal(ctx, "team-a"); err != nil {
						t.Fatal(err)
					}
				}
			}
			db.Exec(t, "INSERT INTO leaves (namespace, ts, seq, version, data, mac, place, created)"+
				" SELECT namespace, ts + 1, seq, version, data, mac, "+c.place+", created FROM leaves WHERE namespace = 'team-a' AND place = "+strconv.Itoa(c.copyOf))
			_, err := sealer.Seal(ctx, "team-a")
			if !errors.Is(err, seal.ErrLogAltered) {
				t.Fatalf("sealing a log with a copied leaf: %v, want ErrLogAltered", err)
			}
			// What was sealed before the copy, and pages before the one
			// that holds it, stay sealed; no checkpoint covers the copy.
			size, err := s.LogSize(ctx, "team-a")
			if err != nil {
				t.Fatal(err)
			}
			if most := int64(max(c.sealFirst, c.events-1)); size > most || size < int64(c.sealFirst) {
				t.Fatalf("log size %d: want %d..%d, the copy in no checkpoint", size, c.sealFirst, most)
			}
			if c.batch == 0 && size != int64(c.sealFirst) {
				t.Fatalf("log size %d, want %d: nothing more may be signed", size, c.sealFirst)
			}
		})
	}
}

// testPinnedReadBeyondTheLog: a read pinned to a checkpoint larger than the
// store's newest (a report pinned before the database was restored from an
// older copy) must not take the leaves placed since as sealed: ingest
// places leaves, checkpoints seal them.
func testPinnedReadBeyondTheLog(t *testing.T, db PlacementDB) {
	ctx := t.Context()
	kr := newKeyring(t)
	s := db.Open(t, kr)
	ingest := func(ids ...string) {
		t.Helper()
		for i, id := range ids {
			e := teamEvent(id, time.Duration(len(id)+i)*time.Second)
			if res, err := s.Insert(ctx, []store.Event{e}); err != nil || res.Inserted != 1 {
				t.Fatalf("insert %s: %+v, %v", id, res, err)
			}
		}
	}
	ingest("r1", "r2")
	if _, err := sealerOf(s, kr).Seal(ctx, "team-a"); err != nil {
		t.Fatal(err)
	}
	ingest("r3-unsealed")
	for _, n := range []int64{2, 3, 10} {
		page, err := s.Events(ctx, store.EventQuery{View: "v", Namespace: "team-a", Page: store.Page{Size: 10}, InLog: &n})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, e := range page.Events {
			ids = append(ids, e.ID)
		}
		if want := []string{"r1", "r2"}; !slices.Equal(ids, want) {
			t.Errorf("pinned to %d: %v, want %v (r3's leaf is placed, not sealed)", n, ids, want)
		}
	}
}

// testConcurrentIngestPlacesEachLeafOnce: batches of several namespaces
// stored at once, through two stores on the database (two managers), with
// a sealer beside each (a leader handover that overlaps). Every stored
// event's leaf is placed once, the places of each log are 0, 1, 2...
// without a gap, every leaf is sealed, and every checkpoint's root is the
// root of the log's leaves up to its size.
func testConcurrentIngestPlacesEachLeafOnce(t *testing.T, db PlacementDB) {
	ctx := t.Context()
	kr := newKeyring(t)
	stores := []PlacingStore{db.Open(t, kr), db.Open(t, kr)}
	nss := []string{"team-a", "team-b", "team-c"}
	const writers, batches, perBatch = 6, 15, 20
	var wg sync.WaitGroup
	errs := make(chan error, writers+len(stores))
	stop := make(chan struct{})
	var sealers sync.WaitGroup
	for _, st := range stores {
		sealers.Go(func() {
			sealer := sealerOf(st, kr)
			for {
				// Of two sealers, one may find the log extended by the
				// other since it read it: that run fails, the next goes on.
				if _, err := sealer.SealAll(ctx); err != nil && !strings.Contains(err.Error(), "another sealer ran") {
					errs <- fmt.Errorf("sealing beside ingest: %w", err)
					return
				}
				select {
				case <-stop:
					return
				case <-time.After(5 * time.Millisecond):
				}
			}
		})
	}
	for w := range writers {
		wg.Go(func() {
			for b := range batches {
				var batch []store.Event
				for i := range perBatch {
					// Each batch holds every namespace, so that batches
					// stored at once compete for every log's next place.
					batch = append(batch, store.Event{
						ID: fmt.Sprintf("w%d-b%d-%d", w, b, i), Namespace: nss[(w+b+i)%len(nss)], User: "alice",
						Status: "success", Category: "data", Time: placementAt.Add(time.Duration(i) * time.Millisecond),
					})
				}
				res, err := stores[w%len(stores)].Insert(ctx, batch)
				if err == nil && res.Inserted != len(batch) {
					err = fmt.Errorf("stored %d of %d", res.Inserted, len(batch))
				}
				if err != nil {
					errs <- fmt.Errorf("writer %d, batch %d: %w", w, b, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	sealers.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if _, err := sealerOf(stores[0], kr).SealAll(ctx); err != nil {
		t.Fatal(err)
	}
	verifiers, err := seal.Verifiers(kr.VerifierKeys()...)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, ns := range nss {
		events := walk(t, stores[1], all(ns))
		total += len(events)
		size, err := stores[1].LogSize(ctx, ns)
		if err != nil || size != int64(len(events)) {
			t.Fatalf("%s: log size %d (%v), want its %d events", ns, size, err, len(events))
		}
		leaves, err := stores[1].Leaves(ctx, ns, 0, size)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[int64]bool{}
		rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
		cr := rf.NewEmptyRange(0)
		roots := map[int64][]byte{}
		for i, l := range leaves {
			if l.Index != int64(i) || seen[l.Seq] {
				t.Fatalf("%s: leaf %d of the log is at %d, seq %d (seen before: %v)", ns, i, l.Index, l.Seq, seen[l.Seq])
			}
			seen[l.Seq] = true
			if err := cr.Append(rfc6962.DefaultHasher.HashLeaf(l.Data), nil); err != nil {
				t.Fatal(err)
			}
			if roots[int64(cr.End())], err = cr.GetRootHash(nil); err != nil {
				t.Fatal(err)
			}
		}
		cps, err := stores[1].Checkpoints(ctx, ns, 0, 10000)
		if err != nil || len(cps) == 0 {
			t.Fatalf("%s: %d checkpoints (%v)", ns, len(cps), err)
		}
		for _, c := range cps {
			cp, err := seal.Open(c.Note, verifiers)
			if err != nil || !bytes.Equal(cp.Root[:], roots[c.Size]) {
				t.Fatalf("%s: the checkpoint of size %d (%v) has root %x, the log's first %d leaves give %x", ns, c.Size, err, cp.Root[:], c.Size, roots[c.Size])
			}
		}
		for _, e := range events {
			if !seen[e.Seq] {
				t.Fatalf("%s: event %s (seq %d) has no leaf in the log", ns, e.ID, e.Seq)
			}
		}
	}
	if total != writers*batches*perBatch {
		t.Fatalf("%d events stored, want %d", total, writers*batches*perBatch)
	}
}

// testLeafInTheWayIsNoClientError: a unique index an intruder added to the
// leaves makes every batch of a namespace fail; that must be a fault of
// the store, not of the batch: an invalid event is answered 400, which
// kube-apiserver does not retry, and the intruder could have an action's
// batch dropped that way. Once the index is gone, ingest goes on.
func testLeafInTheWayIsNoClientError(t *testing.T, db PlacementDB) {
	ctx := t.Context()
	kr := newKeyring(t)
	s := db.Open(t, kr)
	event := func(id string, sec int) store.Event {
		return teamEvent(id, time.Duration(sec)*time.Second)
	}
	mustInsert(t, s, event("r1", 0))
	// Every leaf is of version 1: the index refuses every next one.
	db.Exec(t, "CREATE UNIQUE INDEX intruder ON leaves (namespace, version)")
	res, err := s.Insert(ctx, []store.Event{event("r2", 1), event("r3", 2)})
	if err == nil || errors.Is(err, store.ErrInvalidEvent) {
		t.Fatalf("a batch whose leaves a unique index refuses: %+v, %v; want an error of the store, not ErrInvalidEvent", res, err)
	}
	if got := walk(t, s, all("team-a")); len(got) != 1 {
		t.Fatalf("%d events stored after the failed batch, want r1 alone", len(got))
	}
	db.Exec(t, "DROP INDEX intruder")
	mustInsert(t, s, event("r2", 1), event("r3", 2))
	if _, err := sealerOf(s, kr).Seal(ctx, "team-a"); err != nil {
		t.Fatal(err)
	}
	CheckLog(t, s, "team-a", "r1", "r2", "r3")
}

// testLeafWithoutAPlaceSealsUnderLoad: a valid leaf without a place (one a
// manager of the version before wrote, or whose place was taken away) is
// sealed within a few runs although ingest writes more between runs than
// one run seals: a run ends at the first full batch written after it
// began, so a sealer that read such leaves after the placed ones would
// never reach it.
func testLeafWithoutAPlaceSealsUnderLoad(t *testing.T, db PlacementDB) {
	ctx := t.Context()
	kr := newKeyring(t)
	s := db.Open(t, kr)
	n := 0
	ingest := func(k int) {
		t.Helper()
		var batch []store.Event
		for range k {
			n++
			batch = append(batch, teamEvent(fmt.Sprintf("e%03d", n), time.Duration(n)*time.Second))
		}
		mustInsert(t, s, batch...)
	}
	ingest(1)
	db.Exec(t, "UPDATE leaves SET place = NULL WHERE namespace = 'team-a'")
	ingest(30)
	// Every leaf is written after the run began: each run seals one
	// batch of 10, the load of a sealer that ingest outpaces.
	sealer := &seal.Sealer{Store: s, Keys: kr, Origin: seal.DefaultOriginPrefix, Batch: 10, Now: func() time.Time { return time.Unix(0, 0) }}
	for range 8 {
		if _, err := sealer.Seal(ctx, "team-a"); err != nil {
			t.Fatal(err)
		}
		var e001 store.Event
		for _, e := range walk(t, s, all("team-a")) {
			if e.ID == "e001" {
				e001 = e
			}
		}
		l, ok, err := s.LeafAt(ctx, "team-a", store.Position{Time: e001.Time.UnixNano(), Seq: e001.Seq})
		if err != nil || !ok {
			t.Fatalf("the leaf of e001: %v, %v", ok, err)
		}
		if l.Index >= 0 {
			return // sealed
		}
		ingest(12)
	}
	t.Fatal("the leaf without a place is still unsealed after 8 runs, each behind ingest")
}
