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
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/auditops/auditops/internal/seal"
	"github.com/auditops/auditops/internal/store"
)

// day is a retention cutoff's unit: main.go cuts at a UTC midnight.
const day = 24 * time.Hour

// cutoffOf is main.go's retention cutoff for a retention.
func cutoffOf(retention time.Duration) func(time.Time) time.Time {
	return func(now time.Time) time.Time { return now.Add(-retention).UTC().Truncate(day) }
}

// sealedExpired stores five events of team-a at t0 and seals them, then
// binds and applies the cutoff of the UTC midnight at which they expire
// under a 30-day retention, as the leader's upkeep does; it returns that
// cutoff and the time of the upkeep.
func sealedExpired(t *testing.T, st Store, kr *seal.Keyring) (cut, now time.Time) {
	t.Helper()
	var batch []store.Event
	for i := range 5 {
		batch = append(batch, event("team-a", fmt.Sprintf("a%d", i), i))
	}
	if _, err := st.Insert(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	now = t0.Add(time.Hour)
	first := &seal.Sealer{Store: st, Keys: kr, Origin: seal.DefaultOriginPrefix, Now: func() time.Time { return now }}
	if _, err := first.SealAll(t.Context()); err != nil {
		t.Fatal(err)
	}
	now = t0.Truncate(day).Add(31*day + 5*time.Second)
	cut = cutoffOf(30 * day)(now)
	if _, err := first.BindRetention(t.Context(), cut); err != nil {
		t.Fatal(err)
	}
	if n, err := st.DeleteBefore(t.Context(), cut); err != nil || n != 5 {
		t.Fatalf("DeleteBefore(%s) = %d, %v; want 5", cut, n, err)
	}
	return cut, now
}

// lateEvent is an event of team-a at at, to give its log a leaf to seal.
func lateEvent(id string, at time.Time) store.Event {
	return store.Event{ID: id, Namespace: "team-a", Time: at, User: "alice", API: "/pods",
		Method: "get", Status: store.StatusSuccess, Category: store.CategoryData, Message: "late"}
}

// findings runs Verify at now.
func findings(t *testing.T, st Store, kr *seal.Keyring, now time.Time) []Finding {
	t.Helper()
	vs, _ := seal.Verifiers(kr.VerifierKeys()...)
	var got []Finding
	if _, err := Verify(t.Context(), st, Options{Verifiers: vs, SealInterval: time.Minute, Now: func() time.Time { return now }}, func(f Finding) {
		got = append(got, f)
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

// sealWants seals team-a with s and fails unless the checkpoint it signs
// is of size and binds the retention cutoff want (zero: none).
func sealWants(t *testing.T, s *seal.Sealer, size int64, want time.Time) {
	t.Helper()
	res, err := s.SealAll(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if cp := res["team-a"].Checkpoint; cp.Size != size || !cp.RetentionCutoff.Equal(want) {
		t.Errorf("the checkpoint signed: size %d, cutoff %s; want size %d, cutoff %s", cp.Size, cp.RetentionCutoff, size, want)
	}
}

// checkHandDeletion: verify at now names nothing, then, once the event
// 'late' is deleted with SQL, names it missing.
func checkHandDeletion(t *testing.T, st Store, exec func(*testing.T, string), kr *seal.Keyring, now time.Time) {
	t.Helper()
	verifyClean(t, st, kr, now)
	exec(t, "DELETE FROM events WHERE id = 'late'")
	if got := findings(t, st, kr, now); len(got) != 1 || got[0].Problem != Missing {
		t.Errorf("after deleting 'late' by hand: %+v; want it missing", got)
	}
}

// verifyClean runs Verify at now and fails on any finding.
func verifyClean(t *testing.T, st Store, kr *seal.Keyring, now time.Time) {
	t.Helper()
	for _, f := range findings(t, st, kr, now) {
		t.Errorf("finding: %+v", f)
	}
}

// TestCheckpointsCarryTheBoundCutoff: a checkpoint binds the retention
// cutoff retention last applied (BindRetention, right before it deletes),
// carried from the log's newest, whatever the sealer's clock says. Before,
// each checkpoint bound the cutoff its sealer computed: one below what was
// applied (--retention raised or turned off, a new leader whose clock is
// behind across a UTC midnight) had verify name every event retention
// deleted missing, and one above it (a clock stepped ahead for a moment)
// excused a later deletion by hand (two reviews, this session).
func TestCheckpointsCarryTheBoundCutoff(t *testing.T) {
	cases := []struct {
		name string
		// later is the next sealer's clock, from the upkeep's time.
		later func(time.Time) time.Time
	}{
		{"an hour after the upkeep", func(n time.Time) time.Time { return n.Add(time.Hour) }},
		{"a leader whose clock is 10 s behind, across UTC midnight", func(n time.Time) time.Time { return n.Add(-10 * time.Second) }},
		{"a leader whose clock stepped 5 years ahead", func(n time.Time) time.Time { return n.AddDate(5, 0, 0) }},
	}
	for _, b := range backends {
		for _, c := range cases {
			t.Run(b.name+"/"+c.name, func(t *testing.T) {
				kr := newKeyring(t)
				st, exec := b.open(t, seal.LeafMaker{Keys: kr})
				cut, now := sealedExpired(t, st, kr)
				verifyClean(t, st, kr, now)
				next := c.later(now)
				if _, err := st.Insert(t.Context(), []store.Event{lateEvent("late", now.Add(-time.Second)), lateEvent("later", now.Add(time.Second))}); err != nil {
					t.Fatal(err)
				}
				sealWants(t, &seal.Sealer{Store: st, Keys: kr, Origin: seal.DefaultOriginPrefix, Now: func() time.Time { return next }}, 7, cut)
				// Retention's deletions are no finding; one by hand inside
				// retention is, whatever the clock said.
				checkHandDeletion(t, st, exec, kr, now.Add(time.Minute))
			})
		}
	}
}

// TestUnverifiedHeadLendsNoCutoff: a leader that builds on a checkpoint no
// key of its ring signed (--seal-accept-unverified-checkpoints, after a
// lost key) carries no retention cutoff from it: an intruder who edited
// that note's cutoff would otherwise have it signed with the new key and
// excuse deletions by hand (the review of this session's change).
func TestUnverifiedHeadLendsNoCutoff(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			kr := newKeyring(t)
			st, exec := b.open(t, seal.LeafMaker{Keys: kr})
			_, now := sealedExpired(t, st, kr)
			exec(t, "UPDATE checkpoints SET note = replace(note, 'retention-cutoff 2026-', 'retention-cutoff 2100-') WHERE namespace = 'team-a'")
			if _, err := st.Insert(t.Context(), []store.Event{lateEvent("late", now.Add(-time.Second))}); err != nil {
				t.Fatal(err)
			}
			sealWants(t, &seal.Sealer{Store: st, Keys: kr, Origin: seal.DefaultOriginPrefix, Now: func() time.Time { return now },
				AcceptUnverifiedHead: true}, 6, time.Time{})
		})
	}
}

// pausedAppend is a seal.LogStore whose Append waits for release: a leader
// paused (SIGSTOP, a frozen VM) between signing a checkpoint and storing it.
type pausedAppend struct {
	seal.LogStore
	reached, release chan struct{}
}

func (p *pausedAppend) Append(ctx context.Context, ns string, seqs []int64, hashes []seal.StoredHash, cp seal.Checkpoint, note []byte) error {
	close(p.reached)
	<-p.release
	return p.LogStore.Append(ctx, ns, seqs, hashes, cp, note)
}

// TestStaleAppendAfterBind: two leaders for a moment. A signs a checkpoint
// just before a UTC midnight and is paused before storing it; B, the new
// leader, binds the next day's cutoff on the log's newest checkpoint
// (Resign keeps its size); A resumes and stores its checkpoint, which
// carries the cutoff bound before (none), on top; B deletes what expired.
// Verify names nothing: the latest cutoff any checkpoint of the log binds
// was in force. Before, it judged by the newest checkpoint's alone and
// named every deleted event missing until B's next upkeep, an hour later.
func TestStaleAppendAfterBind(t *testing.T) {
	cut := cutoffOf(30 * day)
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			kr := newKeyring(t)
			st, _ := b.open(t, seal.LeafMaker{Keys: kr})
			var batch []store.Event
			for i := range 5 {
				batch = append(batch, event("team-a", fmt.Sprintf("a%d", i), i))
			}
			if _, err := st.Insert(t.Context(), batch); err != nil {
				t.Fatal(err)
			}
			sealedAt := t0.Add(time.Hour)
			if _, err := (&seal.Sealer{Store: st, Keys: kr, Origin: seal.DefaultOriginPrefix, Now: func() time.Time { return sealedAt }}).SealAll(t.Context()); err != nil {
				t.Fatal(err)
			}
			midnight := t0.Truncate(day).Add(31 * day) // the events expire at it
			if _, err := st.Insert(t.Context(), []store.Event{lateEvent("late", midnight.Add(-5*time.Second))}); err != nil {
				t.Fatal(err)
			}
			pa := &pausedAppend{LogStore: st, reached: make(chan struct{}), release: make(chan struct{})}
			nowA := midnight.Add(-time.Second)
			a := &seal.Sealer{Store: pa, Keys: kr, Origin: seal.DefaultOriginPrefix, Now: func() time.Time { return nowA }}
			aDone := make(chan error, 1)
			go func() { _, err := a.Seal(t.Context(), "team-a"); aDone <- err }()
			<-pa.reached
			nowB := midnight.Add(10 * time.Second)
			bs := &seal.Sealer{Store: st, Keys: kr, Origin: seal.DefaultOriginPrefix, Now: func() time.Time { return nowB }}
			if unbound, err := bs.BindRetention(t.Context(), cut(nowB)); err != nil || len(unbound) > 0 {
				t.Fatalf("B's BindRetention: %v, %v", unbound, err)
			}
			close(pa.release)
			if err := <-aDone; err != nil {
				t.Fatalf("A's Append after B's bind: %v; the case wants it stored (the stores check the size only)", err)
			}
			cps, err := st.Checkpoints(t.Context(), "team-a", 0, 1)
			if err != nil || len(cps) != 1 || cps[0].Size != 6 {
				t.Fatalf("the newest checkpoint: %+v, %v; want A's, of size 6", cps, err)
			}
			if n, err := st.DeleteBefore(t.Context(), cut(nowB)); err != nil || n != 5 {
				t.Fatalf("B's DeleteBefore = %d, %v; want 5", n, err)
			}
			verifyClean(t, st, kr, nowB.Add(time.Minute))
		})
	}
}

// TestFirstCheckpointAfterRetention: a log whose leaves no checkpoint
// covered yet when the upkeep ran (events imported with old times into a
// new namespace, the upkeep within a seal interval) gets a first checkpoint
// that binds the cutoff retention applied: its deleted events are no
// finding, and one deleted by hand is.
func TestFirstCheckpointAfterRetention(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			kr := newKeyring(t)
			st, exec := b.open(t, seal.LeafMaker{Keys: kr})
			now := t0.Truncate(day).Add(31*day + 5*time.Second)
			sealer := &seal.Sealer{Store: st, Keys: kr, Origin: seal.DefaultOriginPrefix, Now: func() time.Time { return now }}
			var batch []store.Event
			for i := range 5 {
				batch = append(batch, event("team-a", fmt.Sprintf("a%d", i), i))
			}
			batch = append(batch, lateEvent("late", now.Add(-time.Hour)))
			if _, err := st.Insert(t.Context(), batch); err != nil {
				t.Fatal(err)
			}
			cut := cutoffOf(30 * day)(now)
			if unbound, err := sealer.BindRetention(t.Context(), cut); err != nil || len(unbound) > 0 {
				t.Fatalf("BindRetention: %v, %v", unbound, err)
			}
			if n, err := st.DeleteBefore(t.Context(), cut); err != nil || n != 5 {
				t.Fatalf("DeleteBefore = %d, %v; want 5", n, err)
			}
			sealWants(t, sealer, 6, cut)
			checkHandDeletion(t, st, exec, kr, now.Add(time.Minute))
		})
	}
}

// TestUpkeepUnderAClockAhead: one upkeep under a clock stepped 5 years
// ahead binds a cutoff in the future and deletes all it allows. Once the
// clock is back, that cutoff counts for nothing: the next checkpoint does
// not carry it, verify does not count it, and both the event it deleted
// (not expired by the right clock) and one deleted by hand afterwards are
// named. Before, every later checkpoint carried it and verify excused
// every deletion by hand (a review of this session's change).
func TestUpkeepUnderAClockAhead(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			kr := newKeyring(t)
			st, exec := b.open(t, seal.LeafMaker{Keys: kr})
			now := t0.Add(time.Hour)
			if _, err := st.Insert(t.Context(), []store.Event{event("team-a", "a0", 0)}); err != nil {
				t.Fatal(err)
			}
			s := &seal.Sealer{Store: st, Keys: kr, Origin: seal.DefaultOriginPrefix, Now: func() time.Time { return now }}
			if _, err := s.SealAll(t.Context()); err != nil {
				t.Fatal(err)
			}
			cut := cutoffOf(30 * day)(now.AddDate(5, 0, 0))
			if _, err := s.BindRetention(t.Context(), cut); err != nil {
				t.Fatal(err)
			}
			if n, err := st.DeleteBefore(t.Context(), cut); err != nil || n != 1 {
				t.Fatalf("DeleteBefore = %d, %v; want 1", n, err)
			}
			now = now.Add(2 * time.Hour)
			if _, err := st.Insert(t.Context(), []store.Event{lateEvent("late", now.Add(-time.Minute))}); err != nil {
				t.Fatal(err)
			}
			sealWants(t, s, 2, time.Time{})
			exec(t, "DELETE FROM events WHERE id = 'late'")
			got := findings(t, st, kr, now.Add(time.Minute))
			if len(got) != 2 || got[0].Problem != Missing || got[1].Problem != Missing {
				t.Errorf("findings %+v; want a0 and late missing", got)
			}
		})
	}
}
