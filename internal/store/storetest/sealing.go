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
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/auditops/auditops/internal/seal"
	"github.com/auditops/auditops/internal/store"
)

// SealingStore is a store that keeps the tamper-evident logs.
type SealingStore interface {
	store.Store
	seal.Log
}

// RunSealing checks a store's side of spec/API.md section 6: newStore
// returns a new, empty store that makes leaves with leaves.
func RunSealing(t *testing.T, newStore func(t *testing.T, leaves store.LeafMaker) SealingStore) {
	t.Run("LeavesSealedAndVerified", func(t *testing.T) {
		kr, err := seal.NewKeyring(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		s := newStore(t, seal.LeafMaker{Keys: kr})
		payload := func(e *store.Event) {
			e.Request = json.RawMessage(`{"n": 12345678901234567890123, "s":"é\n"}`)
			e.Error = nil
		}
		batch := []store.Event{
			ev("team-a", "a1", t0, payload), ev("team-a", "a2", t0.Add(time.Second), failed),
			ev("team-a", "a3", t0.Add(2*time.Second)), ev("team-b", "b1", t0),
			ev("team-a", "a4", t0.Add(3*time.Second), user("bob")), ev("team-a", "a5", t0.Add(4*time.Second)),
		}
		mustInsert(t, s, batch...)
		if res := mustInsert(t, s, batch...); res.Duplicates != len(batch) {
			t.Fatalf("a re-sent batch: %+v", res)
		}
		// A reused id with other content is an event of its own, with a leaf.
		mustInsert(t, s, ev("team-a", "a1", t0.Add(5*time.Second), user("mallory")))

		sealer := &seal.Sealer{Store: s, Keys: kr, Origin: seal.DefaultOriginPrefix, Batch: 4, Now: time.Now}
		res, err := sealer.SealAll(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if res["team-a"].Sealed != 6 || res["team-b"].Sealed != 1 || len(res["team-a"].Refused) != 0 {
			t.Fatalf("sealed %+v", res)
		}
		if again, err := sealer.SealAll(t.Context()); err != nil || len(again) != 0 {
			t.Fatalf("a second run: %+v, %v", again, err)
		}

		events := map[int64]store.Event{}
		for _, e := range walk(t, s, all("team-a")) {
			events[e.Seq] = e
		}
		leaves, err := s.Leaves(t.Context(), "team-a", 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(leaves) != 6 {
			t.Fatalf("%d leaves of team-a, want 6", len(leaves))
		}
		rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
		cr := rf.NewEmptyRange(0)
		for i, l := range leaves {
			e, ok := events[l.Seq]
			if l.Index != int64(i) || !ok || l.ID != e.ID {
				t.Fatalf("leaf %d: %+v (event %v)", i, l, ok)
			}
			// The event as read back gives the digest ingest sealed.
			d, err := seal.Digest(&e, l.Version)
			if err != nil {
				t.Fatal(err)
			}
			if want := seal.LeafData(e.Time, d); !bytes.Equal(l.Data, want[:]) {
				t.Fatalf("leaf %d (seq %d): data %x, the event read back gives %x", i, l.Seq, l.Data, want)
			}
			if err := cr.Append(rfc6962.DefaultHasher.HashLeaf(l.Data), nil); err != nil {
				t.Fatal(err)
			}
		}
		root, _ := cr.GetRootHash(nil)
		cps, err := s.Checkpoints(t.Context(), "team-a", 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(cps) != 2 || cps[0].Size != 6 || cps[1].Size != 4 {
			t.Fatalf("checkpoints of team-a: %+v, want sizes 6 and 4 (batches of 4)", cps)
		}
		vs, _ := seal.Verifiers(kr.VerifierKeys()...)
		cp, err := seal.Open(cps[0].Note, vs)
		if err != nil {
			t.Fatal(err)
		}
		stored, err := tlog.TreeHash(6, tlog.HashReaderFunc(func(x []int64) ([]tlog.Hash, error) { return s.ReadHashes(t.Context(), "team-a", x) }))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(cp.Root[:], root) || stored != cp.Root || cp.Origin != "auditops/team-a" {
			t.Fatalf("checkpoint %+v: root %x; the leaves give %x, the stored hashes %x", cp, cp.Root[:], root, stored[:])
		}
		if older, err := s.Checkpoints(t.Context(), "team-a", 6, 10); err != nil || len(older) != 1 || older[0].Size != 4 {
			t.Fatalf("checkpoints before 6: %+v, %v", older, err)
		}

		// Retention deletes events, never leaves.
		if _, err := s.DeleteBefore(t.Context(), t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		leaves, err = s.Leaves(t.Context(), "team-a", 0, 100)
		if err != nil || len(leaves) != 6 || leaves[0].ID != "" {
			t.Fatalf("after retention: %d leaves, %v: %+v", len(leaves), err, leaves)
		}
	})
	t.Run("NamespacesSealedSideBySide", func(t *testing.T) {
		// SealAll seals namespaces side by side while a report seals
		// some of them (SealNow): every leaf is sealed once, and each
		// log's last checkpoint covers all of its leaves.
		kr, err := seal.NewKeyring(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		s := newStore(t, seal.LeafMaker{Keys: kr})
		const namespaces, perNS = 6, 30
		var batch []store.Event
		for n := range namespaces {
			for i := range perNS {
				batch = append(batch, ev(fmt.Sprintf("ns-%d", n), fmt.Sprintf("e%d", i), t0.Add(time.Duration(i)*time.Second)))
			}
		}
		mustInsert(t, s, batch...)
		sealer := &seal.Sealer{Store: s, Keys: kr, Origin: seal.DefaultOriginPrefix, Batch: 7, Now: time.Now}
		var wg sync.WaitGroup
		nowErrs := make([]error, namespaces)
		for n := range namespaces {
			wg.Go(func() { _, nowErrs[n] = sealer.SealNow(t.Context(), fmt.Sprintf("ns-%d", n)) })
		}
		res, err := sealer.SealAll(t.Context())
		wg.Wait()
		if err := errors.Join(append(nowErrs, err)...); err != nil {
			t.Fatalf("sealing side by side: %v", err)
		}
		sealed := 0
		for _, r := range res {
			sealed += r.Sealed
		}
		verifiers, err := seal.Verifiers(kr.VerifierKeys()...)
		if err != nil {
			t.Fatal(err)
		}
		for n := range namespaces {
			ns := fmt.Sprintf("ns-%d", n)
			cps, err := s.Checkpoints(t.Context(), ns, 0, 1)
			if err != nil || len(cps) != 1 {
				t.Fatalf("%s: checkpoints %v, %v", ns, cps, err)
			}
			cp, err := seal.Open(cps[0].Note, verifiers)
			if err != nil || cp.Size != perNS {
				t.Fatalf("%s: newest checkpoint %+v, %v; want size %d", ns, cp, err, perNS)
			}
		}
		if again, err := sealer.SealAll(t.Context()); err != nil || len(again) != 0 {
			t.Fatalf("a second run: %+v, %v", again, err)
		}
		if sealed > namespaces*perNS {
			t.Fatalf("SealAll sealed %d leaves beside SealNow, of %d", sealed, namespaces*perNS)
		}
	})
	t.Run("TreeHashesOfALongerLog", func(t *testing.T) {
		// A log past the lowest kept level (seal.MinStoredLevel), sealed
		// in runs that start in the middle of a block of 16: each
		// checkpoint is transparency-dev/merkle's root of its leaves, and
		// every leaf's inclusion proof in every checkpoint checks, read
		// from the kept hashes and the leaves.
		kr, err := seal.NewKeyring(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		s := newStore(t, seal.LeafMaker{Keys: kr})
		sealer := &seal.Sealer{Store: s, Keys: kr, Origin: seal.DefaultOriginPrefix, Batch: 9, Now: time.Now}
		const n = 70
		for i := 0; i < n; i += 23 {
			var batch []store.Event
			for j := i; j < min(i+23, n); j++ {
				batch = append(batch, ev("team-a", fmt.Sprintf("e%d", j), t0.Add(time.Duration(j)*time.Second)))
			}
			mustInsert(t, s, batch...)
			if _, err := sealer.Seal(t.Context(), "team-a"); err != nil {
				t.Fatal(err)
			}
		}
		leaves, err := s.Leaves(t.Context(), "team-a", 0, n)
		if err != nil || len(leaves) != n {
			t.Fatalf("leaves: %d, %v", len(leaves), err)
		}
		roots := map[int64][]byte{}
		rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
		cr := rf.NewEmptyRange(0)
		for i, l := range leaves {
			if err := cr.Append(rfc6962.DefaultHasher.HashLeaf(l.Data), nil); err != nil {
				t.Fatal(err)
			}
			roots[int64(i+1)], _ = cr.GetRootHash(nil)
		}
		cps, err := s.Checkpoints(t.Context(), "team-a", 0, 100)
		if err != nil || len(cps) != 10 { // runs of 23, 23, 23, 1 in batches of 9
			t.Fatalf("checkpoints: %d, %v", len(cps), err)
		}
		vs, _ := seal.Verifiers(kr.VerifierKeys()...)
		reader := tlog.HashReaderFunc(func(x []int64) ([]tlog.Hash, error) { return s.ReadHashes(t.Context(), "team-a", x) })
		for _, c := range cps {
			cp, err := seal.Open(c.Note, vs)
			if err != nil {
				t.Fatal(err)
			}
			root, err := tlog.TreeHash(cp.Size, reader)
			if err != nil || root != cp.Root || !bytes.Equal(root[:], roots[cp.Size]) {
				t.Fatalf("size %d: signed root %x, the store's %x (%v), the leaves' %x", cp.Size, cp.Root[:], root[:], err, roots[cp.Size])
			}
			for i := range cp.Size {
				p, err := tlog.ProveRecord(cp.Size, i, reader)
				if err == nil {
					err = tlog.CheckRecord(p, cp.Size, cp.Root, i, seal.LeafHash(leaves[i].Data))
				}
				if err != nil {
					t.Fatalf("leaf %d in the tree of %d: %v", i, cp.Size, err)
				}
			}
		}
	})
	t.Run("PinnedReads", func(t *testing.T) {
		kr, err := seal.NewKeyring(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		s := newStore(t, seal.LeafMaker{Keys: kr})
		mustInsert(t, s, ev("team-a", "a1", t0), ev("team-a", "a2", t0.Add(2*time.Second)), ev("team-a", "a3", t0.Add(4*time.Second), device("d1")))
		sealer := &seal.Sealer{Store: s, Keys: kr, Origin: seal.DefaultOriginPrefix, Now: time.Now}
		if _, err := sealer.Seal(t.Context(), "team-a"); err != nil {
			t.Fatal(err)
		}
		// Stored after the checkpoint of size 3, inside its window: one
		// between a1 and a2, a run of them longer than a read's chunk
		// between a2 and a3, one after.
		later := []store.Event{ev("team-a", "late", t0.Add(time.Second), device("d1")), ev("team-a", "a5", t0.Add(5*time.Second))}
		for i := range 5 {
			later = append(later, ev("team-a", fmt.Sprintf("late%d", i+2), t0.Add(3*time.Second+time.Duration(i)*time.Millisecond)))
		}
		mustInsert(t, s, later...)
		ids := func(q store.EventQuery) []string {
			var out []string
			for _, e := range walk(t, s, q) {
				out = append(out, e.ID)
			}
			return out
		}
		pin := func(n int64) *int64 { return &n }
		q := all("team-a")
		q.Page.Size = 1
		counts := func(n *int64) (events int, summary int64, logs int) {
			q := q
			q.InLog = n
			events = len(ids(q))
			page, err := s.Summary(t.Context(), store.SummaryQuery{Namespace: "team-a", Range: store.TimeRange{From: t0, To: t0.Add(time.Hour)}, Page: store.Page{Size: 100}, InLog: n})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range page.Rows {
				summary += r.Count
			}
			lp, err := s.UserLogs(t.Context(), store.UserLogsQuery{Namespace: "team-a", User: "alice", Limit: 100, InLog: n})
			if err != nil {
				t.Fatal(err)
			}
			return events, summary, len(lp.Events)
		}
		for _, tc := range []struct {
			name string
			pin  *int64
			want int
		}{{"unpinned", nil, 10}, {"size 3", pin(3), 3}, {"size 0", pin(0), 0}} {
			e, sum, logs := counts(tc.pin)
			if e != tc.want || sum != int64(tc.want) || logs != tc.want {
				t.Errorf("%s: %d events, summary counts %d, %d user logs; want %d of each", tc.name, e, sum, logs, tc.want)
			}
		}
		q.InLog = pin(3)
		if got := ids(q); !slices.Equal(got, []string{"a1", "a2", "a3"}) {
			t.Errorf("pinned to 3: %v", got)
		}
		for _, size := range []int{2, 3, 500} {
			q := q
			q.Page.Size = size
			if got := ids(q); !slices.Equal(got, []string{"a1", "a2", "a3"}) {
				t.Errorf("pinned to 3, pages of %d: %v", size, got)
			}
		}
		// Sealing on does not change what a pin of 3 reads; a pin of 10 reads all.
		if _, err := sealer.Seal(t.Context(), "team-a"); err != nil {
			t.Fatal(err)
		}
		if got := ids(q); !slices.Equal(got, []string{"a1", "a2", "a3"}) {
			t.Errorf("pinned to 3 after the next seal: %v", got)
		}
		if e, sum, logs := counts(pin(10)); e != 10 || sum != 10 || logs != 10 {
			t.Errorf("pinned to 10: %d events, summary %d, %d user logs", e, sum, logs)
		}
		// A page token is bound to its pin.
		page, err := s.Events(t.Context(), q)
		if err != nil || page.NextToken == "" {
			t.Fatalf("first pinned page: %v, %+v", err, page)
		}
		q2 := q
		q2.InLog, q2.Page.Token = nil, page.NextToken
		if _, err := s.Events(t.Context(), q2); !errors.Is(err, store.ErrInvalidToken) {
			t.Errorf("a pinned page's token read unpinned: %v, want ErrInvalidToken", err)
		}
	})
	t.Run("NoLeavesWithoutKey", func(t *testing.T) {
		s := newStore(t, nil)
		mustInsert(t, s, ev("team-a", "a1", t0))
		if nss, err := s.UnsealedNamespaces(t.Context()); err != nil || len(nss) != 0 {
			t.Fatalf("unsealed namespaces %v, %v", nss, err)
		}
	})
}
