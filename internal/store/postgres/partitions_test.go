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
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/auditops/auditops/internal/store"
	"github.com/auditops/auditops/internal/store/internal/sqlstore"
	"github.com/auditops/auditops/internal/store/storetest"
)

var day0 = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

func dayN(n int) time.Time { return day0.Add(time.Duration(n) * 24 * time.Hour) }

func partitionEvent(ns string, i int, at time.Time) store.Event {
	return store.Event{ID: ns + "-" + strconv.Itoa(i), Namespace: ns, User: "u", Status: store.StatusSuccess, Time: at,
		Category: []string{store.CategoryAccess, store.CategoryUser}[i%2]}
}

// requireHoursCounted fails unless category_hours holds exactly the access
// and user events of each namespace and hour (migration 12), and no empty
// hour.
func requireHoursCounted(t *testing.T, s *Store, when string) {
	t.Helper()
	var wrong int
	if err := s.pool.QueryRow(t.Context(), "SELECT count(*) FROM"+
		" (SELECT namespace, category, ts / 3600000000000 AS hour, count(*) AS n FROM events WHERE category IN ('access', 'user') AND ts >= 0 GROUP BY 1, 2, 3) AS e"+
		" FULL JOIN category_hours AS h USING (namespace, category, hour) WHERE e.n IS DISTINCT FROM h.n").Scan(&wrong); err != nil {
		t.Fatal(err)
	}
	if wrong != 0 {
		t.Fatalf("%s: %d hours of category_hours differ from the events they count", when, wrong)
	}
}

// newPartitionedStore is a store with Options.DayPartitions.
func newPartitionedStore(t *testing.T) *Store {
	t.Helper()
	s, err := New(t.Context(), storetest.PostgresDatabase(t), store.Options{TokenKey: testKey, DayPartitions: true})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// partitionRows lists the partitions and, for each, the ids it holds.
func partitionRows(t *testing.T, s *Store) map[string][]string {
	t.Helper()
	parts, err := s.partitions(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, p := range parts {
		rows, err := s.pool.Query(t.Context(), "SELECT id FROM "+pgx.Identifier{p.name}.Sanitize()+" ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		out[p.name] = ids
	}
	return out
}

// TestPartitionsByDay: Maintain makes today's and the next DaysAhead days'
// partitions, and those of past days the default partition holds events
// of (moving them); retention drops whole days, counting their events,
// and deletes only what is left before the cut elsewhere.
func TestPartitionsByDay(t *testing.T) {
	ctx := t.Context()
	now := dayN(0).Add(15 * time.Hour)
	// Without the option, Maintain makes none.
	plain := newStore(t)
	if err := plain.Maintain(ctx, now); err != nil {
		t.Fatal(err)
	}
	if got := sortedKeys(partitionRows(t, plain)); !slices.Equal(got, []string{"events_default"}) {
		t.Fatalf("partitions without DayPartitions: %v, want only events_default", got)
	}
	s := newPartitionedStore(t)
	if got := sortedKeys(partitionRows(t, s)); !slices.Equal(got, []string{"events_default"}) {
		t.Fatalf("a new store's partitions: %v, want only events_default", got)
	}
	if err := s.Maintain(ctx, now); err != nil {
		t.Fatal(err)
	}
	var want []string
	for d := range DaysAhead + 1 {
		want = append(want, "events_p"+dayN(d).Format("20060102"))
	}
	want = append(want, "events_default")
	got := partitionRows(t, s)
	if names := sortedKeys(got); !slices.Equal(names, sortedCopy(want)) {
		t.Fatalf("partitions after Maintain: %v, want %v", names, want)
	}

	mustInsert(t, s,
		partitionEvent("a", 1, dayN(-2).Add(time.Hour)), // default, then its own day
		partitionEvent("a", 2, dayN(0)),                 // first ns of day 0
		partitionEvent("b", 3, dayN(1).Add(-1)),         // last ns of day 0
		partitionEvent("a", 4, dayN(1)),
		partitionEvent("a", 5, dayN(30)),              // far ahead: default
		partitionEvent("a", 6, dayN(-DaysBack-5)),     // too far back for a partition of its own
		partitionEvent("b", 7, time.Unix(0, 0).UTC()), // the epoch
	)
	if err := s.Maintain(ctx, now); err != nil {
		t.Fatal(err)
	}
	requireVacuumAfterInserts(t, plain)
	requireVacuumAfterInserts(t, s)
	requireHoursCounted(t, s, "after ingest and moves out of the default partition")
	got = partitionRows(t, s)
	for name, ids := range map[string][]string{
		"events_p" + dayN(-2).Format("20060102"): {"a-1"},
		"events_p" + dayN(0).Format("20060102"):  {"a-2", "b-3"},
		"events_p" + dayN(1).Format("20060102"):  {"a-4"},
		"events_default":                         {"a-5", "a-6", "b-7"},
	} {
		if !slices.Equal(got[name], ids) {
			t.Errorf("partition %s holds %v, want %v (all: %v)", name, got[name], ids, got)
		}
	}
	if err := s.Maintain(ctx, now); err != nil { // nothing left to make
		t.Fatal(err)
	}

	// Retention keeping namespace b (a log it could not bind): day -2 is
	// dropped whole, day 0 stays for b-3 with a-2 deleted from it, and the
	// default partition keeps b-7.
	n, err := s.DeleteBefore(ctx, dayN(1), "b")
	if err != nil || n != 3 {
		t.Fatalf("DeleteBefore(day 1) keeping b = %d, %v; want 3 (a-1, a-2, a-6)", n, err)
	}
	got = partitionRows(t, s)
	if _, ok := got["events_p"+dayN(-2).Format("20060102")]; ok {
		t.Errorf("partition of day -2 not dropped: %v", got)
	}
	for name, ids := range map[string][]string{
		"events_p" + dayN(0).Format("20060102"): {"b-3"},
		"events_default":                        {"a-5", "b-7"},
	} {
		if !slices.Equal(got[name], ids) {
			t.Errorf("keeping b, partition %s holds %v, want %v (all: %v)", name, got[name], ids, got)
		}
	}
	requireHoursCounted(t, s, "after retention kept a namespace")

	// Retention at a day's start: day 0 is dropped whole now, the default
	// partition's old events deleted.
	n, err = s.DeleteBefore(ctx, dayN(1))
	if err != nil || n != 2 {
		t.Fatalf("DeleteBefore(day 1) = %d, %v; want 2 (b-3, b-7)", n, err)
	}
	got = partitionRows(t, s)
	for _, gone := range []time.Time{dayN(-2), dayN(0)} {
		if ids, ok := got["events_p"+gone.Format("20060102")]; ok {
			t.Errorf("partition of %s not dropped (holds %v)", gone, ids)
		}
	}
	if ids := got["events_default"]; !slices.Equal(ids, []string{"a-5"}) {
		t.Errorf("default partition holds %v, want [a-5]", ids)
	}
	requireHoursCounted(t, s, "after retention dropped two days")
	// An id reused on another day (another partition) is stored and
	// counted: the reuse probe reads every partition, not the event's own.
	reuse := partitionEvent("a", 4, dayN(3).Add(time.Hour)) // a-4 is stored on day 1
	reuse.Method = "delete"
	if res, err := s.Insert(ctx, []store.Event{reuse}); err != nil || res.Inserted != 1 || res.Reused != 1 {
		t.Fatalf("an id of day 1 reused on day 3: %+v, %v; want stored and counted as reused", res, err)
	}
	if _, err := s.pool.Exec(ctx, "DELETE FROM events WHERE id = 'a-4' AND ts >= $1", dayN(3).UnixNano()); err != nil {
		t.Fatal(err)
	}
	// A cut inside a day deletes that day's earlier rows, keeps the rest.
	mustInsert(t, s, partitionEvent("a", 8, dayN(2).Add(time.Hour)), partitionEvent("a", 9, dayN(2).Add(3*time.Hour)))
	if n, err := s.DeleteBefore(ctx, dayN(2).Add(2*time.Hour)); err != nil || n != 2 {
		t.Fatalf("DeleteBefore(day 2, 02:00) = %d, %v; want 2 (a-4 and a-8)", n, err)
	}
	if ids := partitionRows(t, s)["events_p"+dayN(2).Format("20060102")]; !slices.Equal(ids, []string{"a-9"}) {
		t.Errorf("day 2 holds %v, want [a-9]", ids)
	}
	requireHoursCounted(t, s, "after deletes inside a day")
	// A replica of the version before drops a partition as it did, without
	// taking its hours off; the next retention deletes the orphaned hours.
	mustInsert(t, s, partitionEvent("b", 11, dayN(3).Add(time.Hour)), partitionEvent("b", 12, dayN(3).Add(2*time.Hour)))
	if _, err := s.pool.Exec(ctx, "DROP TABLE events_p"+dayN(3).Format("20060102")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteBefore(ctx, dayN(4)); err != nil {
		t.Fatal(err)
	}
	requireHoursCounted(t, s, "after retention past a partition dropped without its hours")
}

// TestPartitionPruning: a page of a window reads only its days'
// partitions (EXPLAIN of the reader's own queries).
func TestPartitionPruning(t *testing.T) {
	s := newPartitionedStore(t)
	ctx := t.Context()
	if err := s.Maintain(ctx, dayN(0)); err != nil {
		t.Fatal(err)
	}
	var batch []store.Event
	for d := range 4 {
		for i := range 50 {
			batch = append(batch, partitionEvent("a", d*100+i, dayN(d).Add(time.Duration(i)*time.Minute)))
		}
	}
	mustInsert(t, s, batch...)
	if _, err := s.pool.Exec(ctx, "ANALYZE events"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rng  store.TimeRange
		want []string
	}{
		{store.TimeRange{From: dayN(1), To: dayN(2)}, []string{"events_p" + dayN(1).Format("20060102")}},
		{store.TimeRange{From: dayN(1).Add(time.Hour), To: dayN(3).Add(time.Hour)},
			[]string{"events_p" + dayN(1).Format("20060102"), "events_p" + dayN(2).Format("20060102"), "events_p" + dayN(3).Format("20060102")}},
	} {
		rec := &explainQueryer{t: t, pool: s}
		for _, q := range []store.EventQuery{
			{View: "v", Namespace: "a", Range: tc.rng, Page: store.Page{Size: 10}, WithTotal: true},
			{View: "v", Namespace: "a", Range: tc.rng, User: "u", Page: store.Page{Size: 10}},
			{View: "v", Namespace: "a", Range: tc.rng, Category: "data", Page: store.Page{Size: 10}},
		} {
			if _, err := s.reader.Events(ctx, rec, q); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.reader.Summary(ctx, rec, store.SummaryQuery{Namespace: "a", Range: tc.rng, Page: store.Page{Size: 10}}); err != nil {
			t.Fatal(err)
		}
		if rec.n < 4 {
			t.Fatalf("only %d queries explained", rec.n)
		}
		for _, plan := range rec.plans {
			read := partitionsIn(plan)
			if extra := slices.DeleteFunc(read, func(p string) bool { return slices.Contains(tc.want, p) }); len(extra) > 0 {
				t.Errorf("window %v reads partitions %v beyond %v:\n%s", tc.rng, extra, tc.want, plan)
			}
		}
		t.Logf("window %v: %s", tc.rng, rec.plans[0])
	}
}

// partitionsIn names the partitions a plan reads (its index names start
// with their table's name).
func partitionsIn(plan string) []string {
	var out []string
	for _, f := range strings.Fields(plan) {
		if i := strings.Index(f, "events_p"); i >= 0 && len(f) >= i+16 {
			if name := f[i : i+16]; !slices.Contains(out, name) {
				out = append(out, name)
			}
		}
		if strings.Contains(f, "events_default") && !slices.Contains(out, "events_default") {
			out = append(out, "events_default")
		}
		if strings.Contains(f, "events_legacy") && !slices.Contains(out, "events_legacy") {
			out = append(out, "events_legacy")
		}
	}
	return out
}

// explainQueryer runs each query of the reader, after EXPLAINing it with
// its arguments.
type explainQueryer struct {
	t     *testing.T
	pool  *Store
	plans []string
	n     int
}

func (e *explainQueryer) Query(ctx context.Context, sql string, args ...any) (sqlstore.Rows, error) {
	rows, err := e.pool.pool.Query(ctx, "EXPLAIN "+sql, args...)
	if err != nil {
		e.t.Fatalf("explain %s: %v", sql, err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		e.t.Fatal(err)
	}
	e.plans = append(e.plans, sql+"\n"+strings.Join(lines, "\n"))
	e.n++
	return e.pool.pool.Query(ctx, sql, args...)
}

// TestPartitionMigration builds a database at schema version 3 with
// events, a future one among them, and migrates it: every row is kept
// with its seq, the old table is the legacy partition of every time before
// tomorrow, the future event is in the default partition, re-sends are
// duplicates, and new events continue the sequence.
func TestPartitionMigration(t *testing.T) {
	url := storetest.PostgresDatabase(t)
	ctx := t.Context()
	v3, err := open(ctx, url, store.Options{TokenKey: testKey}, 3)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	var events []store.Event
	for i := range 300 {
		events = append(events, partitionEvent([]string{"a", "b", "c"}[i%3], i, now.Add(-time.Duration(i)*time.Hour)))
	}
	future := partitionEvent("a", 1000, now.Add(40*24*time.Hour))
	events = append(events, future)
	insertV3(t, v3, events)
	before := seqs(t, v3)
	v3.Close()

	s, err := New(ctx, url, store.Options{TokenKey: testKey, DayPartitions: true})
	if err != nil {
		t.Fatalf("migrate: %v", err)
	}
	defer s.Close()
	if after := seqs(t, s); !mapsEqual(before, after) {
		t.Fatalf("rows or seqs changed by the migration: %d before, %d after", len(before), len(after))
	}
	requireVacuumAfterInserts(t, s)
	parts, err := s.partitions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tomorrow := now.Truncate(24 * time.Hour).Add(24 * time.Hour).UnixNano()
	if len(parts) != 2 || parts[0] != (partition{name: "events_legacy", from: math.MinInt64, to: tomorrow}) || !parts[1].isDefault {
		t.Fatalf("partitions after the migration: %+v", parts)
	}
	if ids := partitionRows(t, s)["events_default"]; !slices.Equal(ids, []string{future.ID}) {
		t.Fatalf("default partition holds %v, want the future event", ids)
	}
	res, err := s.Insert(ctx, events)
	if err != nil || res.Inserted != 0 || res.Duplicates != len(events) {
		t.Fatalf("re-sending every migrated event = %+v, %v; want all duplicates", res, err)
	}
	if err := s.Maintain(ctx, now); err != nil { // days after the legacy range
		t.Fatal(err)
	}
	mustInsert(t, s, partitionEvent("a", 2000, now.Add(24*time.Hour)))
	var maxBefore, seq int64
	for _, v := range before {
		maxBefore = max(maxBefore, v)
	}
	if err := s.pool.QueryRow(ctx, "SELECT seq FROM events WHERE id = 'a-2000'").Scan(&seq); err != nil || seq <= maxBefore {
		t.Fatalf("new event's seq %d (%v), want above %d", seq, err, maxBefore)
	}
	if err := s.Maintain(ctx, future.Time); err != nil { // the future event's day: moved out of default
		t.Fatal(err)
	}
	if ids := partitionRows(t, s)["events_p"+future.Time.Format("20060102")]; !slices.Equal(ids, []string{future.ID}) {
		t.Fatalf("the future event's day holds %v", ids)
	}
	// Past days are compacted, events_legacy (all of the time before) is not.
	var legacy, day string
	if err := s.pool.QueryRow(ctx, "SELECT coalesce(obj_description('events_legacy'::regclass, 'pg_class'), ''), coalesce(obj_description($1::regclass, 'pg_class'), '')",
		"events_p"+now.Add(24*time.Hour).Format("20060102")).Scan(&legacy, &day); err != nil || legacy != "" || !strings.HasPrefix(day, compactedComment) {
		t.Fatalf("comments of events_legacy %q and of the first day %q (%v): want the day's alone", legacy, day, err)
	}
}

func seqs(t *testing.T, s *Store) map[string]int64 {
	t.Helper()
	rows, err := s.pool.Query(t.Context(), "SELECT namespace || '/' || id, seq FROM events")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var k string
		var v int64
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		out[k] = v
	}
	return out
}

func mapsEqual(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// insertV3 stores events as schema version 3 did (before the payload
// column): each JSON value in a column of its own.
func insertV3(t *testing.T, s *Store, events []store.Event) {
	t.Helper()
	norm, err := store.NormalizeBatch(events)
	if err != nil {
		t.Fatal(err)
	}
	cols := storetest.V1Columns + ", id_hash, content_hash"
	ph := make([]string, strings.Count(cols, ",")+1)
	for i := range ph {
		ph[i] = "$" + strconv.Itoa(i+1)
	}
	for i := range norm {
		ch := store.ContentHash(&norm[i])
		v := append(storetest.V1Values(&norm[i]), store.IDHash(norm[i].ID), ch[:])
		if _, err := s.pool.Exec(t.Context(), "INSERT INTO events ("+cols+") VALUES ("+strings.Join(ph, ", ")+")", v...); err != nil {
			t.Fatal(fmt.Errorf("insert: %w", err))
		}
	}
}

// requireVacuumAfterInserts fails t unless every partition of s's events
// (the default, the legacy one of an upgraded store, each day's) has the
// storage parameters that have autovacuum visit it every 20,000 inserts
// (migration 11, createDay), and names the partitions it checked.
func requireVacuumAfterInserts(t *testing.T, s *Store) {
	t.Helper()
	rows, err := s.pool.Query(t.Context(), "SELECT c.relname, coalesce(c.reloptions, '{}') FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid"+
		" WHERE i.inhparent = 'events'::regclass ORDER BY 1")
	if err != nil {
		t.Fatal(err)
	}
	type part struct {
		Name    string
		Options []string
	}
	parts, err := pgx.CollectRows(rows, pgx.RowToStructByPos[part])
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) == 0 {
		t.Fatal("events has no partitions")
	}
	for _, p := range parts {
		if !slices.Contains(p.Options, "autovacuum_vacuum_insert_threshold=20000") || !slices.Contains(p.Options, "autovacuum_vacuum_insert_scale_factor=0") {
			t.Errorf("partition %s has storage parameters %v, want autovacuum to visit it every 20,000 inserts", p.Name, p.Options)
		}
	}
	t.Logf("%d partitions visited by autovacuum every 20,000 inserts", len(parts))
}

func mustInsert(t *testing.T, s *Store, events ...store.Event) {
	t.Helper()
	if _, err := s.Insert(t.Context(), events); err != nil {
		t.Fatal(fmt.Errorf("insert: %w", err))
	}
}

func sortedKeys(m map[string][]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// TestPartitionCompaction: Maintain rebuilds the indexes of the day
// partitions that ended a day ago or more, once, shrinking them (events
// of several namespaces in time order leave them about half full), with
// every event still found through them; it first drops what an
// interrupted rebuild left, and no other invalid index.
func TestPartitionCompaction(t *testing.T) {
	ctx := t.Context()
	s := newPartitionedStore(t)
	if err := s.Maintain(ctx, dayN(0)); err != nil {
		t.Fatal(err)
	}
	var batch []store.Event
	for d := range 2 {
		for i := range 12000 {
			ns := "tenant-" + strconv.Itoa(i%8)
			batch = append(batch, store.Event{ID: strconv.Itoa(d*100000 + i), Namespace: ns, User: "user-" + strconv.Itoa(i%37) + "@example.com",
				API: "/pods", Status: store.StatusSuccess, Category: []string{"access", "user", "data"}[i%3], Time: dayN(d).Add(time.Duration(i) * time.Second)})
			if len(batch) == 400 {
				mustInsert(t, s, batch...)
				batch = batch[:0]
			}
		}
	}
	day0, day1 := "events_p"+dayN(0).Format("20060102"), "events_p"+dayN(1).Format("20060102")
	indexBytes := func(table string) (n int64) {
		if err := s.pool.QueryRow(ctx, "SELECT pg_indexes_size($1::regclass)", table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	comment := func(table string) (c string) {
		if err := s.pool.QueryRow(ctx, "SELECT coalesce(obj_description($1::regclass, 'pg_class'), '')", table).Scan(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	pages := func() map[string][]string {
		out := map[string][]string{}
		for i := range 8 {
			ns := "tenant-" + strconv.Itoa(i)
			for _, q := range []store.EventQuery{{Namespace: ns}, {Namespace: ns, Category: "access"}, {Namespace: ns, User: "user-3@example.com"}} {
				q.View, q.Range, q.Page.Size = "v", store.TimeRange{From: dayN(0), To: dayN(2)}, 5000
				p, err := s.Events(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range p.Events {
					out[fmt.Sprint(q)] = append(out[fmt.Sprint(q)], e.ID)
				}
			}
		}
		return out
	}
	before := pages()
	bloated := indexBytes(day0)
	// What an interrupted REINDEX CONCURRENTLY leaves (an invalid _ccnew
	// index), and someone else's failed CREATE INDEX CONCURRENTLY.
	for _, name := range []string{day0 + "_namespace_idx_ccnew", "someone_elses"} {
		if _, err := s.pool.Exec(ctx, "CREATE UNIQUE INDEX CONCURRENTLY "+name+" ON "+day0+" (namespace)"); err == nil {
			t.Fatalf("%s: a unique index of duplicates was made", name)
		}
	}

	now := dayN(2).Add(time.Hour) // day 0 ended a day ago, day 1 an hour ago
	// Late events of day 0 arrive while its indexes are rebuilt: every
	// acknowledged one is found through them afterwards. (They may land
	// before the rebuild starts: overlap is likely, not forced.)
	late := make(chan []string, 1)
	go func() {
		var ids []string
		for i := range 40 {
			e := store.Event{ID: "late-" + strconv.Itoa(i), Namespace: "tenant-0", User: "user-3@example.com", API: "/pods",
				Status: store.StatusSuccess, Category: "access", Time: dayN(0).Add(time.Duration(13000+i) * time.Second)}
			if _, err := s.Insert(ctx, []store.Event{e}); err == nil {
				ids = append(ids, e.ID)
			}
		}
		late <- ids
	}()
	if err := s.Maintain(ctx, now); err != nil {
		t.Fatal(err)
	}
	acked := <-late
	if len(acked) != 40 {
		t.Fatalf("%d of 40 late events acknowledged during the compaction", len(acked))
	}
	for _, q := range []store.EventQuery{{Namespace: "tenant-0"}, {Namespace: "tenant-0", Category: "access"}, {Namespace: "tenant-0", User: "user-3@example.com"}} {
		q.View, q.Range, q.Page.Size = "v", store.TimeRange{From: dayN(0).Add(13000 * time.Second), To: dayN(1)}, 5000
		p, err := s.Events(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range p.Events {
			if strings.HasPrefix(e.ID, "late-") {
				got = append(got, e.ID)
			}
		}
		if !slices.Equal(got, acked) {
			t.Fatalf("%+v finds late events %v, want %v", q, got, acked)
		}
	}
	if _, err := s.pool.Exec(ctx, "DELETE FROM events WHERE id LIKE 'late-%'"); err != nil {
		t.Fatal(err)
	}
	compacted := indexBytes(day0)
	if !strings.HasPrefix(comment(day0), compactedComment) || comment(day1) != "" {
		t.Fatalf("comments after Maintain: %s %q, %s %q; want day 0's only", day0, comment(day0), day1, comment(day1))
	}
	if compacted > bloated*3/4 {
		t.Fatalf("the indexes of %s hold %d bytes after compaction, %d before: want a quarter less at least", day0, compacted, bloated)
	}
	var invalid []string
	rows, err := s.pool.Query(ctx, "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE NOT i.indisvalid ORDER BY 1")
	if err != nil {
		t.Fatal(err)
	}
	if invalid, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil || !slices.Equal(invalid, []string{"someone_elses"}) {
		t.Fatalf("invalid indexes after Maintain: %v, %v; want someone_elses only", invalid, err)
	}
	if after := pages(); !maps.EqualFunc(before, after, slices.Equal) || len(after) != 24 {
		t.Fatalf("pages changed by the compaction")
	}
	// Done once: the next run leaves day 0 as it is.
	var node, node2 int64
	if err := s.pool.QueryRow(ctx, "SELECT pg_relation_filenode($1::regclass)::bigint", day0+"_pkey").Scan(&node); err != nil {
		t.Fatal(err)
	}
	if err := s.Maintain(ctx, now); err != nil {
		t.Fatal(err)
	}
	if err := s.pool.QueryRow(ctx, "SELECT pg_relation_filenode($1::regclass)::bigint", day0+"_pkey").Scan(&node2); err != nil || node2 != node {
		t.Fatalf("%s_pkey rebuilt again (filenode %d -> %d, %v)", day0, node, node2, err)
	}
	t.Logf("indexes of %s: %d bytes, %d after compaction", day0, bloated, compacted)
}

// TestCategoryHoursMigration: migration 12 counts the events stored before
// it, and the totals (then retention) agree with the events.
func TestCategoryHoursMigration(t *testing.T) {
	url := storetest.PostgresDatabase(t)
	ctx := t.Context()
	v11, err := open(ctx, url, store.Options{TokenKey: testKey}, 11)
	if err != nil {
		t.Fatal(err)
	}
	all := storetest.CategoryTotalsEvents()
	if _, err := v11.Insert(ctx, all); err != nil {
		t.Fatal(err)
	}
	v11.Close()
	s, err := New(ctx, url, store.Options{TokenKey: testKey})
	if err != nil {
		t.Fatalf("migrate: %v", err)
	}
	defer s.Close()
	requireHoursCounted(t, s, "after the migration")
	storetest.CheckCategoryTotals(t, s, all, "after the migration")
	requireHoursCounted(t, s, "after the migration and retention")
}
