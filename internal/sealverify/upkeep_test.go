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
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/auditops/auditops/internal/seal"
	"github.com/auditops/auditops/internal/store"
)

// TestBindRetentionLeavesAnAlteredLogUnbound: an intruder with write
// access to the store (no seal key) deletes one sealed leaf of a quiet
// log, one that the root at the log's newest size no longer reads (it is
// under a kept tree hash) but the root at an older checkpoint a report
// read does. A leader that started since holds the log to that report's
// checkpoint (Witness). BindRetention names the log unbound, without an
// error: an error would stop retention store-wide (an earlier review of
// BindRetention), and the upkeep keeps an unbound log's expired events.
func TestBindRetentionLeavesAnAlteredLogUnbound(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			kr := newKeyring(t)
			st, exec := b.open(t, seal.LeafMaker{Keys: kr})
			cut := func(now time.Time) time.Time { return now.Add(-90 * 24 * time.Hour).UTC().Truncate(24 * time.Hour) }
			now := t0.Add(time.Hour)
			s1 := &seal.Sealer{Store: st, Keys: kr, Origin: seal.DefaultOriginPrefix, Now: func() time.Time { return now }}
			var batch []store.Event
			for i := range 20 {
				batch = append(batch, event("team-a", fmt.Sprintf("a%d", i), i))
			}
			batch = append(batch, event("team-b", "b1", 1))
			if _, err := st.Insert(t.Context(), batch); err != nil {
				t.Fatal(err)
			}
			res, err := s1.SealAll(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			cp20 := res["team-a"].Checkpoint // what a report read (status.seal)
			if cp20.Size != 20 {
				t.Fatalf("size %d", cp20.Size)
			}
			batch = nil
			for i := 20; i < 32; i++ {
				batch = append(batch, event("team-a", fmt.Sprintf("a%d", i), i))
			}
			if _, err := st.Insert(t.Context(), batch); err != nil {
				t.Fatal(err)
			}
			if _, err := s1.SealAll(t.Context()); err != nil {
				t.Fatal(err)
			}
			// The intruder: one leaf of [16, 20), under the kept hash of [0, 32).
			exec(t, "DELETE FROM leaves WHERE namespace = 'team-a' AND place = 17")

			// A new leader: held to the report's checkpoint.
			now = t0.Add(91 * 24 * time.Hour)
			s2 := &seal.Sealer{Store: st, Keys: kr, Origin: seal.DefaultOriginPrefix, Now: func() time.Time { return now }}
			s2.Witness(cp20)
			unbound, err := s2.BindRetention(t.Context(), cut(now))
			if err != nil || !slices.Equal(unbound, []string{"team-a"}) {
				t.Fatalf("BindRetention: unbound %v, %v (ErrLogAltered: %v); want team-a unbound, no error", unbound, err, errors.Is(err, seal.ErrLogAltered))
			}
			// Without the witness, the same store binds, and verify names
			// the deleted leaf: the intruder is not invisible.
			s3 := &seal.Sealer{Store: st, Keys: kr, Origin: seal.DefaultOriginPrefix, Now: func() time.Time { return now }}
			if _, err := s3.BindRetention(t.Context(), cut(now)); err != nil {
				t.Fatal(err)
			}
			vs, _ := seal.Verifiers(kr.VerifierKeys()...)
			named := false
			if _, err := Verify(t.Context(), st, Options{Verifiers: vs, SealInterval: time.Minute, Now: func() time.Time { return now }}, func(f Finding) {
				named = named || f.Namespace == "team-a"
			}); err != nil {
				t.Fatal(err)
			}
			if !named {
				t.Fatal("verify names nothing of team-a's deleted leaf")
			}
		})
	}
}

// TestMetAcrossDenseBoundary: an index met twice is named twice-
// claimed whether it went to the bitmap or the far map, on either side of
// size+denseAhead, and wasMet agrees.
func TestMetAcrossDenseBoundary(t *testing.T) {
	w := newRootWalk("team-a", nil, nil, func(Finding) {}, 0, nil)
	for _, x := range []int64{0, 5, denseAhead - 1, denseAhead, denseAhead + 1, 1 << 57, 1<<63 - 1} {
		if w.wasMet(x) {
			t.Errorf("%d met before", x)
		}
		if w.met(x) {
			t.Errorf("%d: met says it was met the first time", x)
		}
		if !w.met(x) || !w.wasMet(x) {
			t.Errorf("%d: not met the second time", x)
		}
	}
	x := int64(denseAhead + 50) // far when met at size 0, dense at size 100
	if w.met(x) {
		t.Fatal("first")
	}
	t.Logf("bitmap words %d, far %d", len(w.seen), len(w.far))
	// Grow the range past the boundary of an index that went to the map.
	for range 100 {
		if err := w.cr.Append(make([]byte, 32), nil); err != nil {
			t.Fatal(err)
		}
	}
	if !w.met(x) {
		t.Errorf("%d went to the bitmap the second time and was not seen", x)
	}
}

// TestVerifyBesideUpkeep: the leader's verify runs beside the upkeep.
// When the upkeep binds a newer cutoff and deletes the expired events
// after verify read a quiet log's checkpoints and before it walked its
// events, each event retention deleted was named Missing (deleted by
// hand), which fires AuditopsRecordTampered (a review of BindRetention):
// verify reads the newest checkpoint's cutoff again before it names one.
func TestVerifyBesideUpkeep(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			kr := newKeyring(t)
			st, _ := b.open(t, seal.LeafMaker{Keys: kr})
			const retention = 90 * 24 * time.Hour
			cut := func(now time.Time) time.Time { return now.Add(-retention).UTC().Truncate(24 * time.Hour) }
			var batch []store.Event
			for i := 1; i <= 3; i++ {
				batch = append(batch, event("team-a", fmt.Sprintf("a%d", i), i))
			}
			if _, err := st.Insert(t.Context(), batch); err != nil {
				t.Fatal(err)
			}
			now := t0.Add(time.Hour)
			sealer := &seal.Sealer{Store: st, Keys: kr, Origin: seal.DefaultOriginPrefix, Now: func() time.Time { return now }}
			if _, err := sealer.SealAll(t.Context()); err != nil {
				t.Fatal(err)
			}
			// A day before the events expire: bound, nothing to delete.
			now = t0.Add(90 * 24 * time.Hour)
			if _, err := sealer.BindRetention(t.Context(), cut(now)); err != nil {
				t.Fatal(err)
			}
			// The next day's first upkeep, while verify reads team-a.
			now = t0.Add(91 * 24 * time.Hour)
			rs := &racing{Store: st, afterCheckpoints: func() {
				if _, err := sealer.BindRetention(t.Context(), cut(now)); err != nil {
					t.Error(err)
				}
				n, err := st.DeleteBefore(t.Context(), cut(now))
				t.Logf("upkeep deleted %d events before %s", n, cut(now))
				if err != nil {
					t.Error(err)
				}
			}}
			vs, _ := seal.Verifiers(kr.VerifierKeys()...)
			var got []Finding
			if _, err := Verify(t.Context(), rs, Options{Verifiers: vs, SealInterval: time.Minute, Now: func() time.Time { return now }}, func(f Finding) {
				got = append(got, f)
			}); err != nil {
				t.Fatal(err)
			}
			for _, f := range got {
				t.Errorf("finding: %s %s: %s", f.Namespace, f.Problem, f.Detail)
			}
			// A run after: clean.
			if _, err := Verify(t.Context(), st, Options{Verifiers: vs, SealInterval: time.Minute, Now: func() time.Time { return now }}, func(f Finding) {
				t.Errorf("the next run: finding %+v", f)
			}); err != nil {
				t.Fatal(err)
			}
		})
	}
}
