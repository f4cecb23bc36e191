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
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/auditops/auditops/internal/store"
)

// TestIDTiers runs the reuse probe across the tiers of ids (migrations 12
// and 14): an id is found whether its entry was merged, waits in
// ids_recent or came in the same group; merges keep every event's entry
// exactly once; retention's deletes take entries with them; an entry whose
// event has another id never counts. It runs with merges into ids and
// through ids_mid; TestIDMidSlices follows entries from ids_mid into ids.
func TestIDTiers(t *testing.T) {
	for _, tiered := range []bool{false, true} {
		t.Run(fmt.Sprintf("tiered=%v", tiered), func(t *testing.T) { testIDTiers(t, tiered) })
	}
}

// setTiered makes s's merges go through ids_mid from now on (tiersFrom).
func setTiered(s *Store) {
	s.tiersFrom = 0
	s.tiered.Store(true)
}

func testIDTiers(t *testing.T, tiered bool) {
	s := newStore(t)
	s.recentIDsMax = 4
	if tiered {
		setTiered(s)
	}
	ctx := t.Context()
	t0 := time.Unix(1_700_000_000, 0)
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }
	event := func(id string, i int, user string) store.Event {
		return store.Event{ID: id, Namespace: "team-a", User: user, API: "/pods", Method: "get",
			Status: store.StatusSuccess, Category: store.CategoryData, Time: at(i)}
	}
	insert := func(what string, wantReused int, events ...store.Event) {
		t.Helper()
		res, err := s.Insert(ctx, events)
		if err != nil || res.Inserted != len(events) || res.Reused != wantReused {
			t.Fatalf("%s: %+v, %v; want %d inserted, %d reused", what, res, err, len(events), wantReused)
		}
	}
	tiers := func(wantMerged, wantRecent int) {
		t.Helper()
		ids, mid, recent := tierSizes(t, s)
		if merged := ids + mid; merged != wantMerged || recent != wantRecent {
			t.Fatalf("ids and ids_mid hold %d, ids_recent %d; want %d and %d", merged, recent, wantMerged, wantRecent)
		}
		checkIDTiers(t, s)
	}

	insert("three new ids", 0, event("a", 1, "u"), event("b", 2, "u"), event("c", 3, "u"))
	tiers(0, 3)
	insert("two more, past the bound", 0, event("d", 4, "u"), event("e", 5, "u"))
	tiers(5, 0)
	if got := s.recentIDs.Load(); got != 0 {
		t.Fatalf("ids_recent counted %d after a merge, want 0", got)
	}
	insert("a merged id, reused", 1, event("a", 6, "mallory"))
	tiers(5, 1)
	insert("an id merged and in ids_recent, reused again", 1, event("a", 7, "eve"))
	tiers(5, 2)
	insert("a new id", 0, event("f", 8, "u"))
	insert("an id of ids_recent, reused", 1, event("f", 9, "mallory"))
	tiers(9, 0)
	insert("one new id twice in a group", 1, event("g", 10, "u"), event("g", 11, "mallory"))
	tiers(9, 2)

	// Entries that match an id's hash but name an event of another id:
	// what a planted row or a hash collision looks like. Neither counts.
	for _, table := range []string{"ids", "ids_recent", "ids_mid"} {
		q := "INSERT INTO " + table + " (namespace, id_hash, ts, seq) SELECT namespace, ?1, ts, seq FROM events WHERE id = 'b'"
		if table == "ids_mid" {
			q = "INSERT INTO ids_mid (slice, namespace, id_hash, ts, seq) SELECT " + sliceOf("?1") + ", namespace, ?1, ts, seq FROM events WHERE id = 'b'"
		}
		if _, err := s.w.ExecContext(ctx, q, store.IDHash("h-"+table)); err != nil {
			t.Fatal(err)
		}
		insert("an id whose hash has an entry of "+table+" for another id", 0, event("h-"+table, 20, "u"))
	}
	// The planted entries go again, wherever the merge (at the second
	// insert) took them.
	for _, table := range []string{"ids", "ids_mid"} {
		if _, err := s.w.ExecContext(ctx, "DELETE FROM "+table+" WHERE id_hash IN (?, ?, ?) AND seq = (SELECT seq FROM events WHERE id = 'b')",
			store.IDHash("h-ids"), store.IDHash("h-ids_mid"), store.IDHash("h-ids_recent")); err != nil {
			t.Fatal(err)
		}
	}
	tiers(13, 1)
	insert("an old event reusing a merged id", 1, event("c", 0, "late"))
	tiers(13, 2)

	// Retention deletes the events before minute 7 (a, b, c, d, e, the
	// first reuse of a, and the late c in ids_recent) with their entries:
	// b is then a new id again, and a has one event left.
	n, err := s.DeleteBefore(ctx, at(7))
	if err != nil || n != 7 {
		t.Fatalf("retention: %d deleted, %v; want 7", n, err)
	}
	tiers(7, 1)
	insert("an id whose events retention deleted", 0, event("b", 30, "u"))
	insert("an id with one event left", 1, event("a", 31, "u"))
	tiers(10, 0)

	// An entry planted for the next event, key and all, is its entry: the
	// event is stored, and is no reuse of itself.
	if _, err := s.w.ExecContext(ctx, "INSERT INTO ids_recent (namespace, id_hash, ts, seq) SELECT 'team-a', ?, ?, next FROM seq_counter",
		store.IDHash("p"), at(40).UnixNano()); err != nil {
		t.Fatal(err)
	}
	insert("an event whose entry was planted before it", 0, event("p", 40, "u"))
	tiers(10, 1)
}

// tierSizes is the number of entries in ids, ids_mid and ids_recent.
func tierSizes(t *testing.T, s *Store) (ids, mid, recent int) {
	t.Helper()
	if err := s.w.QueryRowContext(t.Context(), "SELECT (SELECT count(*) FROM ids), (SELECT count(*) FROM ids_mid), (SELECT count(*) FROM ids_recent)").
		Scan(&ids, &mid, &recent); err != nil {
		t.Fatal(err)
	}
	return ids, mid, recent
}

// checkIDTiers fails unless the tiers of ids hold exactly one entry per
// event, the event's own.
func checkIDTiers(t *testing.T, s *Store) {
	t.Helper()
	const entries = "(SELECT namespace, id_hash, ts, seq FROM ids UNION ALL SELECT namespace, id_hash, ts, seq FROM ids_mid" +
		" UNION ALL SELECT namespace, id_hash, ts, seq FROM ids_recent)"
	const events = "(SELECT namespace, id_hash, ts, seq FROM events)"
	var missing, stray, twice int
	if err := s.w.QueryRowContext(t.Context(), "SELECT"+
		" (SELECT count(*) FROM (SELECT * FROM "+events+" EXCEPT SELECT * FROM "+entries+")),"+
		" (SELECT count(*) FROM (SELECT * FROM "+entries+" EXCEPT SELECT * FROM "+events+")),"+
		" (SELECT count(*) FROM "+entries+") - (SELECT count(*) FROM (SELECT DISTINCT * FROM "+entries+"))").
		Scan(&missing, &stray, &twice); err != nil {
		t.Fatal(err)
	}
	if missing+stray+twice != 0 {
		t.Fatalf("ids: %d events without an entry, %d entries without an event, %d entries twice", missing, stray, twice)
	}
}

// TestIDProbePlan: the reuse probe seeks each tier of ids by (namespace,
// id_hash) and reads events by their key, and the delete trigger's
// statements seek by the whole key: no scan anywhere, at any size.
func TestIDProbePlan(t *testing.T) {
	s := newStore(t)
	for _, q := range []struct {
		sql  string
		args []any
		want []string
	}{
		{reusedProbe, []any{`[["a",1,"x",5]]`}, []string{
			"SEARCH x USING PRIMARY KEY (namespace=? AND id_hash=?)",
			"SEARCH e USING PRIMARY KEY (namespace=? AND ts=? AND seq=?)",
		}},
		{reusedProbeTiered, []any{`[["a",1,"x",5]]`}, []string{
			"SEARCH x USING PRIMARY KEY (namespace=? AND id_hash=?)",
			"SEARCH x USING PRIMARY KEY (slice=? AND namespace=? AND id_hash=?)",
			"SEARCH e USING PRIMARY KEY (namespace=? AND ts=? AND seq=?)",
		}},
		{"DELETE FROM ids WHERE namespace = ? AND id_hash = ? AND ts = ? AND seq = ?", []any{"a", 1, 2, 3}, []string{
			"SEARCH ids USING PRIMARY KEY (namespace=? AND id_hash=? AND ts=? AND seq=?)",
		}},
		{"DELETE FROM ids_recent WHERE namespace = ? AND id_hash = ? AND ts = ? AND seq = ?", []any{"a", 1, 2, 3}, []string{
			"SEARCH ids_recent USING PRIMARY KEY (namespace=? AND id_hash=? AND ts=? AND seq=?)",
		}},
		{"DELETE FROM ids_mid WHERE slice = " + sliceOf("?") + " AND namespace = ? AND id_hash = ? AND ts = ? AND seq = ?", []any{1, "a", 1, 2, 3}, []string{
			"SEARCH ids_mid USING PRIMARY KEY (slice=? AND namespace=? AND id_hash=? AND ts=? AND seq=?)",
		}},
	} {
		plan := explainPlan(t, s.r, q.sql, q.args)
		all := strings.Join(plan, "\n")
		for _, w := range q.want {
			if !strings.Contains(all, w) {
				t.Errorf("%s\nplan:\n%s\nwant %q", q.sql, all, w)
			}
		}
		for _, l := range plan {
			if strings.HasPrefix(l, "SCAN ") && !strings.HasPrefix(l, "SCAN j") {
				t.Errorf("%s\nscans: %s", q.sql, l)
			}
		}
	}
}

// TestIDMergeFailure: a merge of ids_recent that fails (here triggers that
// refuse every row of ids and ids_mid, as a full disk would refuse their
// pages) fails no insert, and loses no reuse; the next group's merge, once
// they take rows again, empties ids_recent. With merges into ids and
// through ids_mid.
func TestIDMergeFailure(t *testing.T) {
	for _, tiered := range []bool{false, true} {
		t.Run(fmt.Sprintf("tiered=%v", tiered), func(t *testing.T) { testIDMergeFailure(t, tiered) })
	}
}

func testIDMergeFailure(t *testing.T, tiered bool) {
	var heard []error
	s := newStoreWith(t, store.Options{TokenKey: testKey, OnError: func(err error) { heard = append(heard, err) }})
	s.recentIDsMax = 2
	s.schema = nil // the triggers below are this test's faults, not an intruder's
	if tiered {
		setTiered(s)
	}
	ctx := t.Context()
	event := idEvent
	for _, table := range []string{"ids", "ids_mid"} {
		if _, err := s.w.ExecContext(ctx, "CREATE TRIGGER refuse_"+table+" BEFORE INSERT ON "+table+" BEGIN SELECT RAISE(ABORT, 'no space'); END"); err != nil {
			t.Fatal(err)
		}
	}
	for i, want := range []int{0, 0, 1, 1, 0} {
		id := []string{"a", "b", "a", "b", "c"}[i]
		res, err := s.Insert(ctx, []store.Event{event(id, i)})
		if err != nil || res.Inserted != 1 || res.Reused != want {
			t.Fatalf("insert %d (id %s) while merges fail: %+v, %v; want inserted, %d reused", i, id, res, err, want)
		}
	}
	if len(heard) != 4 || !strings.Contains(heard[0].Error(), "no space") {
		t.Fatalf("OnError heard %v, want the 4 failed merges", heard)
	}
	if _, _, recent := tierSizes(t, s); recent != 5 {
		t.Fatalf("ids_recent holds %d, want all 5 entries", recent)
	}
	for _, table := range []string{"ids", "ids_mid"} {
		if _, err := s.w.ExecContext(ctx, "DROP TRIGGER refuse_"+table); err != nil {
			t.Fatal(err)
		}
	}
	if res, err := s.Insert(ctx, []store.Event{event("c", 9)}); err != nil || res.Reused != 1 {
		t.Fatalf("insert after the fault: %+v, %v", res, err)
	}
	if ids, mid, recent := tierSizes(t, s); ids+mid != 6 || recent != 0 {
		t.Fatalf("after the fault: ids and ids_mid %d, ids_recent %d; want 6 and 0", ids+mid, recent)
	}
	checkIDTiers(t, s)
}

// TestIDMidSlices follows id entries through the three tiers (migration
// 14): each merge moves the next slice of id hashes from ids_mid into ids,
// round the slices, then ids_recent into ids_mid, so that ids_mid holds at
// most the entries of the last midSlices merges; an id counts as reused
// from every tier.
func TestIDMidSlices(t *testing.T) {
	s := newStore(t)
	s.recentIDsMax = 8
	setTiered(s)
	ctx := t.Context()
	t0 := time.Unix(1_700_000_000, 0)
	event := func(i, id int) store.Event {
		return store.Event{ID: fmt.Sprintf("id-%d", id), Namespace: []string{"team-a", "team-b"}[id%2], User: "u", API: "/pods",
			Method: "get", Status: store.StatusSuccess, Category: store.CategoryData, Time: t0.Add(time.Duration(i) * time.Second)}
	}
	count := func(q string, args ...any) int {
		t.Helper()
		var n int
		if err := s.w.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	const ids = 8*midSlices*2 + 4
	for i := 0; i < ids; i += 8 {
		slice := s.nextSlice.Load()
		first := count("SELECT next FROM seq_counter")
		var batch []store.Event
		for j := i; j < min(i+8, ids); j++ {
			batch = append(batch, event(j, j))
		}
		if res, err := s.Insert(ctx, batch); err != nil || res.Inserted != len(batch) || res.Reused != 0 {
			t.Fatalf("insert of ids %d to %d: %+v, %v", i, i+len(batch), res, err)
		}
		if len(batch) < 8 {
			break // no merge: the last entries stay in ids_recent
		}
		if n := count("SELECT count(*) FROM ids_mid WHERE "+sliceOf("id_hash")+" = ? AND seq < ?", slice, first); n != 0 {
			t.Fatalf("merge %d left %d entries of slice %d in ids_mid", i/8, n, slice)
		}
		if n := count("SELECT count(*) FROM ids_mid"); n > midSlices*int(s.recentIDsMax) {
			t.Fatalf("merge %d: ids_mid holds %d entries, want at most %d", i/8, n, midSlices*s.recentIDsMax)
		}
		if got, want := s.nextSlice.Load(), (slice+1)%midSlices; got != want {
			t.Fatalf("merge %d: the next slice is %d, want %d", i/8, got, want)
		}
	}
	for _, table := range []string{"ids", "ids_mid", "ids_recent"} {
		if count("SELECT count(*) FROM "+table) == 0 {
			t.Fatalf("%s is empty: the reuses below would not reach it", table)
		}
	}
	checkIDTiers(t, s)
	// One group, so that every probe sees the tiers as they are now.
	var again []store.Event
	for j := range ids {
		again = append(again, event(ids+j, j))
	}
	if res, err := s.Insert(ctx, again); err != nil || res.Inserted != ids || res.Reused != ids {
		t.Fatalf("reuse of every id: %d inserted, %d reused, %v; want %d of each", res.Inserted, res.Reused, err, ids)
	}
	checkIDTiers(t, s)
}

// TestIDTiersFrom: merges go into ids until the store holds tiersFrom
// events, then through ids_mid, for good: a store reopened with ids_mid in
// use keeps reading it, whatever its size.
func TestIDTiersFrom(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	s := openStore(t, path, store.Options{TokenKey: testKey})
	s.recentIDsMax, s.tiersFrom = 4, 10
	ctx := t.Context()
	event := func(i int) store.Event { return idEvent(fmt.Sprintf("id-%d", i), i) }
	tiers := func(what string, wantIDs, wantMid, wantRecent int, wantTiered bool) {
		t.Helper()
		ids, mid, recent := tierSizes(t, s)
		if ids != wantIDs || mid != wantMid || recent != wantRecent || s.tiered.Load() != wantTiered {
			t.Fatalf("%s: ids %d, ids_mid %d, ids_recent %d, tiered %v; want %d, %d, %d, %v", what, ids, mid, recent, s.tiered.Load(), wantIDs, wantMid, wantRecent, wantTiered)
		}
	}
	for i := range 8 {
		if _, err := s.Insert(ctx, []store.Event{event(i)}); err != nil {
			t.Fatal(err)
		}
	}
	tiers("8 events", 8, 0, 0, false)
	if _, err := s.Insert(ctx, []store.Event{event(8)}); err != nil {
		t.Fatal(err)
	}
	tiers("the 9th event", 8, 0, 1, true) // the next seq is 10
	for i := 9; i < 12; i++ {
		if _, err := s.Insert(ctx, []store.Event{event(i)}); err != nil {
			t.Fatal(err)
		}
	}
	tiers("the merge after", 8, 4, 0, true)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, path, store.Options{TokenKey: testKey})
	if !s.tiered.Load() {
		t.Fatal("reopened with entries in ids_mid, the store does not read it")
	}
	res, err := s.Insert(ctx, []store.Event{idEvent("id-10", 3600)})
	if err != nil || res.Reused != 1 {
		t.Fatalf("reuse of an id in ids_mid after reopening: %+v, %v", res, err)
	}
}

// TestIDTiersTwoWriters: a second writer of the same file (manager import
// beside the manager) that opened it before the first one's merges went
// through ids_mid still finds the ids there.
func TestIDTiersTwoWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	a := openStore(t, path, store.Options{TokenKey: testKey})
	b := openStore(t, path, store.Options{TokenKey: testKey})
	a.recentIDsMax = 4
	setTiered(a)
	ctx := t.Context()
	event := idEvent
	var batch []store.Event
	for i := range 4 {
		batch = append(batch, event(fmt.Sprintf("id-%d", i), i))
	}
	if _, err := a.Insert(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if _, mid, _ := tierSizes(t, a); mid != 4 {
		t.Fatalf("ids_mid holds %d, want the 4 entries", mid)
	}
	if b.tiered.Load() {
		t.Fatal("the second writer reads ids_mid already: the test would prove nothing")
	}
	if res, err := b.Insert(ctx, []store.Event{event("id-2", 10)}); err != nil || res.Reused != 1 {
		t.Fatalf("the second writer's reuse of an id in ids_mid: %+v, %v; want it reused", res, err)
	}
}

// idEvent is an event of id id in namespace team-a, at second i of a day
// in 2023, by a user of its own.
func idEvent(id string, i int) store.Event {
	return store.Event{ID: id, Namespace: "team-a", User: fmt.Sprintf("u%d", i), Status: store.StatusSuccess,
		Category: store.CategoryData, Time: time.Unix(1_700_000_000, 0).Add(time.Duration(i) * time.Second)}
}
