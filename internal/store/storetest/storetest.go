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

// Package storetest is the conformance suite every store.Store passes, and
// the benchmarks every store runs. A backend's tests call
//
//	func TestConformance(t *testing.T) {
//		t.Run("sqlite", func(t *testing.T) { storetest.Run(t, newStore) })
//	}
//
// so test names say which backend failed.
package storetest

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditops/auditops/internal/store"
	"github.com/auditops/auditops/internal/store/payload"
)

// Run runs the conformance suite. newStore returns a new, empty store with
// the default session gap; it closes it when t's test ends (t.Cleanup).
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Ping", testPing},
		{"InsertRoundTrip", testInsertRoundTrip},
		{"EventsFields", testEventsFields},
		{"SeqMonotonic", testSeqMonotonic},
		{"IdempotentInsert", testIdempotentInsert},
		{"ReusedIDNeverHides", testReusedIDNeverHides},
		{"ReusedIDConcurrent", testReusedIDConcurrent},
		{"LongIDsKeptWhole", testLongIDsKeptWhole},
		{"AtomicFailedBatch", testAtomicFailedBatch},
		{"InsertPartsOneTransaction", testInsertPartsOneTransaction},
		{"ConcurrentInserts", testConcurrentInserts},
		{"EventsOrdering", testEventsOrdering},
		{"EventsFilters", testEventsFilters},
		{"EventsRangeBounds", testEventsRangeBounds},
		{"EventsPagination", testEventsPagination},
		{"EventsPaginationInsertMidWalk", testEventsPaginationInsertMidWalk},
		{"EventsTotalOncePerWalk", testEventsTotalOncePerWalk},
		{"CategoryTotals", testCategoryTotals},
		{"EventsTokens", testEventsTokens},
		{"SummaryRows", testSummaryRows},
		{"SummarySessions", testSummarySessions},
		{"SummaryFiltersAndBounds", testSummaryFiltersAndBounds},
		{"SummaryPagination", testSummaryPagination},
		{"SummaryPaginationInsertMidWalk", testSummaryPaginationInsertMidWalk},
		{"SummaryTokens", testSummaryTokens},
		{"UserLogs", testUserLogs},
		{"UserExists", testUserExists},
		{"Retention", testRetention},
		{"RetentionManyEvents", testRetentionManyEvents},
		{"BadQueries", testBadQueries},
		{"QueryText", testQueryText},
		{"TimeLimits", testTimeLimits},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

// maxPages bounds every walk of the suite: no test needs more pages.
const maxPages = 1000

// t0 is a Wednesday morning, the base of most test times.
var t0 = time.Date(2024, 5, 22, 10, 0, 0, 0, time.UTC)

// ev returns a minimal valid event.
func ev(ns, id string, at time.Time, mods ...func(*store.Event)) store.Event {
	e := store.Event{ID: id, Namespace: ns, Time: at, User: "alice", API: "/pods", Method: "get",
		Status: store.StatusSuccess, Category: store.CategoryData}
	for _, m := range mods {
		m(&e)
	}
	return e
}

// testReusedIDConcurrent sends events that share an id in batches stored
// at the same moment (concurrent webhook requests, import workers,
// replicas): each id's events must count exactly one fewer reuse than
// there are events, whichever transaction commits first. (Under READ
// COMMITTED, two PostgreSQL transactions each saw only their own event
// and neither counted.)
func testReusedIDConcurrent(t *testing.T, s store.Store) {
	const rounds, senders = 25, 4
	for r := range rounds {
		id := fmt.Sprintf("race-%d", r)
		start := make(chan struct{})
		results := make(chan store.InsertResult, senders)
		var wg sync.WaitGroup
		for i := range senders {
			wg.Go(func() {
				<-start
				res, err := s.Insert(t.Context(), []store.Event{ev("team-a", id, t0.Add(time.Duration(i)*time.Second), user(fmt.Sprintf("u%d", i)))})
				if err != nil {
					t.Errorf("Insert: %v", err)
				}
				results <- res
			})
		}
		close(start)
		wg.Wait()
		close(results)
		reused := 0
		for res := range results {
			reused += res.Reused
		}
		if reused != senders-1 {
			t.Fatalf("round %d: %d events of id %s stored at once counted %d reuses, want %d", r, senders, id, reused, senders-1)
		}
	}
}

func user(u string) func(*store.Event)     { return func(e *store.Event) { e.User = u } }
func api(a string) func(*store.Event)      { return func(e *store.Event) { e.API = a } }
func category(c string) func(*store.Event) { return func(e *store.Event) { e.Category = c } }
func failed(e *store.Event)                { e.Status = store.StatusFailure }
func device(d string) func(*store.Event)   { return func(e *store.Event) { e.DeviceID = d } }

func mustInsert(t testing.TB, s store.Store, events ...store.Event) store.InsertResult {
	t.Helper()
	res, err := s.Insert(t.Context(), events)
	if err != nil {
		t.Fatalf("Insert: %v", err)
	}
	return res
}

// walk reads every page of q and checks the page invariants on the way.
func walk(t *testing.T, s store.Store, q store.EventQuery) []store.Event {
	t.Helper()
	var all []store.Event
	var prev *store.EventPage
	for i := 0; ; i++ {
		if i >= maxPages {
			t.Fatalf("more than %d pages: the walk does not end", maxPages)
		}
		p, err := s.Events(t.Context(), q)
		if err != nil {
			t.Fatalf("Events page %d: %v", i+1, err)
		}
		if prev != nil && (len(p.Events) == 0 || !p.Events[0].Time.Equal(prev.NextTime)) {
			t.Fatalf("page %d: NextTime of the previous page %v is not the time of this page's first row", i+1, prev.NextTime)
		}
		all = append(all, p.Events...)
		if p.NextToken == "" {
			if !p.NextTime.IsZero() {
				t.Fatalf("last page has NextTime %v", p.NextTime)
			}
			return all
		}
		if len(p.Events) != q.Page.Size {
			t.Fatalf("page %d has %d rows and a next token; want a full page of %d", i+1, len(p.Events), q.Page.Size)
		}
		prev = &p
		q.Page.Token = p.NextToken
	}
}

func ids(events []store.Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	return out
}

func checkIDs(t *testing.T, what string, got []store.Event, want []string) {
	t.Helper()
	if g := ids(got); !slices.Equal(g, want) {
		t.Fatalf("%s: got ids %v, want %v", what, g, want)
	}
}

func all(ns string) store.EventQuery {
	return store.EventQuery{View: "audit-details", Namespace: ns, Page: store.Page{Size: 1000}}
}

func testPing(t *testing.T, s store.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func testInsertRoundTrip(t *testing.T, s store.Store) {
	errLog := "pods \"x\" is forbidden"
	empty := ""
	full := store.Event{
		ID: "a1", Namespace: "team-a", User: "liam.lewis@example.com",
		Time:      time.Date(2024, 5, 28, 23, 59, 59, 900000001, time.FixedZone("CEST", 2*3600)),
		Principal: json.RawMessage(`{"username":"liam","groups":["a","b"],  "uid":"1"}`),
		Method:    "create", API: "/pods/exec", Status: store.StatusFailure, StatusCode: 403,
		Category: store.CategoryAccess, EntityKind: "pods", EntityID: "team-a/web-1",
		Message:       "create pods/exec team-a/web-1: forbidden ✓",
		Request:       json.RawMessage(`{"z":1,"a":[1,2,3],"s":"\u00e9"}`),
		Response:      json.RawMessage(`"plain string"`),
		PreviousState: json.RawMessage(`null`), CurrentState: json.RawMessage(`{"b":{"c":[]}}`),
		Error: &errLog, DeviceID: "10.0.0.1", CertificateSerialNumber: "2033460265",
		IssuerDN: "CN=issuer,O=x", Details: "kubectl/v1.37.1", Archived: true,
	}
	minimal := store.Event{ID: "a2", Namespace: "team-a", User: "u", Status: store.StatusSuccess,
		Time: time.Date(2024, 5, 28, 0, 0, 0, 1, time.UTC)}
	emptyErr := ev("team-a", "a3", time.Date(2024, 5, 28, 0, 0, 0, 2, time.UTC), func(e *store.Event) { e.Error = &empty })
	res := mustInsert(t, s, full, minimal, emptyErr)
	if counts(res) != (count{Inserted: 3}) {
		t.Fatalf("Insert = %+v, want 3 inserted", res)
	}
	got := walk(t, s, all("team-a"))
	checkIDs(t, "events", got, []string{"a2", "a3", "a1"})

	wantFull := full
	wantFull.Time = full.Time.UTC()
	wantMin := minimal
	wantMin.Category = store.CategoryData
	wantEmptyErr := emptyErr
	for i, want := range []store.Event{wantMin, wantEmptyErr, wantFull} {
		g := got[i]
		if g.Seq <= 0 {
			t.Fatalf("%s: seq %d, want > 0", g.ID, g.Seq)
		}
		if g.Time.Location() != time.UTC || !g.Time.Equal(want.Time) || g.Time.Nanosecond() != want.Time.Nanosecond() {
			t.Fatalf("%s: time %v, want %v in UTC with ns precision", g.ID, g.Time, want.Time)
		}
		g.Seq, want.Seq = 0, 0
		g.Time, want.Time = time.Time{}, time.Time{}
		if !reflect.DeepEqual(g, want) {
			gj, _ := json.Marshal(g)
			wj, _ := json.Marshal(want)
			t.Fatalf("round trip of %s:\n got %s\nwant %s", want.ID, gj, wj)
		}
		if (g.Error == nil) != (want.Error == nil) {
			t.Fatalf("%s: error %v, want %v", want.ID, g.Error, want.Error)
		}
	}
}

// testEventsFields: a query (Events, UserLogs) reads the fields it asks for
// (and Time and Seq always; Namespace is the query's), leaves the others
// zero, and zero asks for all.
func testEventsFields(t *testing.T, s store.Store) {
	errLog := "denied"
	e := ev("team-a", "f1", t0, func(e *store.Event) {
		e.User, e.API, e.Status, e.StatusCode, e.Category, e.Method = "u", "/pods", store.StatusFailure, 403, store.CategoryAccess, "get"
		e.EntityKind, e.EntityID, e.Message, e.Error = "pods", "team-a/p", "m", &errLog
		e.DeviceID, e.CertificateSerialNumber, e.IssuerDN, e.Details, e.Archived = "d", "c", "i", "x", true
		e.Principal, e.Request, e.Response = json.RawMessage(`{"username":"u"}`), json.RawMessage(`{"req":1}`), json.RawMessage(`{"resp":2}`)
		e.PreviousState, e.CurrentState = json.RawMessage(`{"prev":3}`), json.RawMessage(`{"cur":4}`)
	})
	mustInsert(t, s, e)
	// only returns e with the fields of f kept.
	only := func(f store.Fields) store.Event { return Restrict(e, f) }
	tests := []struct {
		name string
		ask  store.Fields
		want store.Fields
	}{
		{"zero is all", 0, store.AllFields},
		{"all", store.AllFields, store.AllFields},
		{"audit details' fields", store.FieldMethod | store.FieldUser | store.FieldStatus | store.FieldRequest | store.FieldError,
			store.FieldMethod | store.FieldUser | store.FieldStatus | store.FieldRequest | store.FieldError},
	}
	for f := store.FieldUser; f <= store.FieldStatusCode; f <<= 1 {
		tests = append(tests, struct {
			name      string
			ask, want store.Fields
		}{fmt.Sprintf("field %#x", uint32(f)), f, f})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := all("team-a")
			q.Fields = tc.ask
			got := walk(t, s, q)
			if len(got) != 1 {
				t.Fatalf("%d events, want 1", len(got))
			}
			g, want := got[0], only(tc.want)
			g.Seq, want.Time = 0, want.Time.UTC()
			if !reflect.DeepEqual(g, want) {
				gj, _ := json.Marshal(g)
				wj, _ := json.Marshal(want)
				t.Fatalf("Events: got  %s\nwant %s", gj, wj)
			}
			p, err := s.UserLogs(t.Context(), store.UserLogsQuery{Namespace: "team-a", User: "u", Limit: 1, Fields: tc.ask})
			if err != nil || len(p.Events) != 1 {
				t.Fatalf("UserLogs = %+v, %v; want 1 event", p, err)
			}
			g = p.Events[0]
			g.Seq = 0
			if !reflect.DeepEqual(g, want) {
				gj, _ := json.Marshal(g)
				wj, _ := json.Marshal(want)
				t.Fatalf("UserLogs: got  %s\nwant %s", gj, wj)
			}
		})
	}
}

func testSeqMonotonic(t *testing.T, s store.Store) {
	// Insert order, not time order, decides seq.
	mustInsert(t, s, ev("ns", "3", t0.Add(3*time.Second)), ev("ns", "1", t0.Add(time.Second)))
	mustInsert(t, s, ev("ns", "2", t0.Add(2*time.Second)), ev("other", "4", t0))
	seq := map[string]int64{}
	for _, ns := range []string{"ns", "other"} {
		for _, e := range walk(t, s, all(ns)) {
			seq[e.ID] = e.Seq
		}
	}
	if !(seq["3"] < seq["1"] && seq["1"] < seq["2"] && seq["2"] < seq["4"]) {
		t.Fatalf("seqs %v are not monotonic in insert order 3, 1, 2, 4", seq)
	}
}

// count is the comparable part of an InsertResult.
type count struct{ Inserted, Duplicates, Reused int }

func counts(r store.InsertResult) count { return count{r.Inserted, r.Duplicates, r.Reused} }

func testIdempotentInsert(t *testing.T, s store.Store) {
	batch := []store.Event{ev("ns", "1", t0), ev("ns", "2", t0.Add(time.Second)), ev("ns", "3", t0.Add(2*time.Second))}
	if res := mustInsert(t, s, batch...); counts(res) != (count{Inserted: 3}) {
		t.Fatalf("first insert = %+v", res)
	}
	before := walk(t, s, all("ns"))
	if res := mustInsert(t, s, batch...); counts(res) != (count{Duplicates: 3}) {
		t.Fatalf("re-sent batch = %+v, want 3 duplicates", res)
	}
	// A re-send mixed with a new event: only the new one is stored.
	if res := mustInsert(t, s, batch[1], ev("ns", "4", t0.Add(3*time.Second))); counts(res) != (count{Inserted: 1, Duplicates: 1}) {
		t.Fatalf("mixed batch = %+v, want 1 inserted, 1 duplicate", res)
	}
	// One event twice in a batch is stored once.
	five := ev("ns", "5", t0.Add(4*time.Second))
	if res := mustInsert(t, s, five, five); counts(res) != (count{Inserted: 1, Duplicates: 1}) {
		t.Fatalf("batch with an event twice = %+v, want 1 inserted, 1 duplicate", res)
	}
	// The same id in another namespace is another event, and no reuse.
	if res := mustInsert(t, s, ev("other", "1", t0)); counts(res) != (count{Inserted: 1}) {
		t.Fatalf("same id in another namespace = %+v, want inserted", res)
	}
	after := walk(t, s, all("ns"))
	checkIDs(t, "events", after, []string{"1", "2", "3", "4", "5"})
	for i := range before {
		if after[i].Seq != before[i].Seq || after[i].User != before[i].User {
			t.Fatalf("event %s changed by a re-send: %+v -> %+v", before[i].ID, before[i], after[i])
		}
	}
}

// testReusedIDNeverHides is the attack of spec/API.md section 1: a client
// sends a harmless request with Audit-ID X first, then the action it wants
// hidden with the same X. Both must be stored, the second counted as a
// reuse; only an event equal in every field is a re-send.
func testReusedIDNeverHides(t *testing.T, s store.Store) {
	decoy := ev("team-a", "X", t0, user("system:anonymous"), failed, api("/configmaps"),
		func(e *store.Event) { e.StatusCode = 401; e.Method = "list" })
	if res := mustInsert(t, s, decoy); counts(res) != (count{Inserted: 1}) {
		t.Fatalf("decoy = %+v", res)
	}
	action := ev("team-a", "X", t0.Add(time.Second), user("mallory"), api("/pods/exec"),
		func(e *store.Event) { e.Method = "create"; e.EntityID = "team-a/db-0" })
	res := mustInsert(t, s, action)
	if counts(res) != (count{Inserted: 1, Reused: 1}) {
		t.Fatalf("action with a reused id = %+v, want inserted and counted as a reuse", res)
	}
	if len(res.ReusedIDs) != 1 || res.ReusedIDs[0].Namespace != "team-a" || res.ReusedIDs[0].ID != "X" {
		t.Fatalf("ReusedIDs = %+v, want team-a/X", res.ReusedIDs)
	}
	// Each field alone makes another event: same id and time, other content.
	for name, mod := range map[string]func(*store.Event){
		"message":  func(e *store.Event) { e.Message = "other" },
		"payload":  func(e *store.Event) { e.Request = json.RawMessage(`{"a":1}`) },
		"status":   func(e *store.Event) { e.Status = store.StatusFailure },
		"archived": func(e *store.Event) { e.Archived = true },
		"error":    func(e *store.Event) { empty := ""; e.Error = &empty },
		"time":     func(e *store.Event) { e.Time = e.Time.Add(time.Nanosecond) },
	} {
		e := action
		mod(&e)
		if res := mustInsert(t, s, e); counts(res) != (count{Inserted: 1, Reused: 1}) {
			t.Errorf("action with another %s = %+v, want stored as a reuse", name, res)
		}
	}
	// The exact action again is a re-send.
	if res := mustInsert(t, s, action); counts(res) != (count{Duplicates: 1}) {
		t.Fatalf("re-sent action = %+v, want a duplicate", res)
	}
	// Two new events of one new id in one batch: one reuse.
	a, b := ev("team-a", "Y", t0, user("a")), ev("team-a", "Y", t0, user("b"))
	if res := mustInsert(t, s, a, b); counts(res) != (count{Inserted: 2, Reused: 1}) {
		t.Fatalf("batch with one id twice = %+v, want 2 inserted, 1 reuse", res)
	}
	// An id reused many times: each later event counts once.
	var many []store.Event
	for i := range 40 {
		many = append(many, ev("team-a", "Z", t0.Add(time.Duration(i)*time.Millisecond)))
	}
	mustInsert(t, s, many[:1]...)
	if res := mustInsert(t, s, many[1:]...); counts(res) != (count{Inserted: 39, Reused: 39}) || len(res.ReusedIDs) != store.MaxReusedIDs {
		t.Fatalf("39 reuses = %+v (%d ids named), want 39 (%d named)", counts(res), len(res.ReusedIDs), store.MaxReusedIDs)
	}
	got := walk(t, s, all("team-a"))
	byID := map[string]int{}
	for _, e := range got {
		byID[e.ID]++
	}
	if byID["X"] != 8 || byID["Y"] != 2 || byID["Z"] != 40 {
		t.Fatalf("stored per id = %v, want X 8, Y 2, Z 40", byID)
	}
	var sawAction bool
	for _, e := range got {
		if e.ID == "X" && e.User == "mallory" && e.Message == "" && e.Time.Equal(action.Time) && len(e.Request) == 0 && !e.Archived && e.Error == nil && e.Status == store.StatusSuccess {
			sawAction = true
		}
	}
	if !sawAction {
		t.Fatal("the action that reused the decoy's id is not stored")
	}
}

// testLongIDsKeptWhole: ids up to store.MaxIDLen are kept byte for byte, so
// two long ids sharing a prefix are two ids; a longer one is refused.
func testLongIDsKeptWhole(t *testing.T, s store.Store) {
	prefix := strings.Repeat("a", store.MaxIDLen-1)
	one, two := prefix+"1", prefix+"2"
	if res := mustInsert(t, s, ev("ns", one, t0), ev("ns", two, t0)); counts(res) != (count{Inserted: 2}) {
		t.Fatalf("two long ids sharing a prefix = %+v, want 2 inserted and no reuse", res)
	}
	got := walk(t, s, all("ns"))
	if len(got) != 2 || got[0].ID != one || got[1].ID != two {
		t.Fatalf("long ids read back cut or lost (%d events)", len(got))
	}
	_, err := s.Insert(t.Context(), []store.Event{ev("ns", prefix+"xy", t0)})
	if !errors.Is(err, store.ErrInvalidEvent) || !strings.Contains(err.Error(), "id is 4097 bytes long") {
		t.Fatalf("an id of MaxIDLen+1 bytes: %v, want ErrInvalidEvent naming its length", err)
	}
}

// testInsertPartsOneTransaction: a batch stored in parts (a spooled
// request body) is one transaction, as one Insert is (spec/API.md 2): a
// part that fails, or a failure to read the next part, stores nothing of
// the parts before; a part holding an event of an earlier part (stored or
// not yet committed) skips it, and one reusing an earlier part's id counts
// it.
func testInsertPartsOneTransaction(t *testing.T, s store.Store) {
	mustInsert(t, s, ev("ns", "old", t0))
	parts := func(fail error, ps ...[]store.Event) func() ([]store.Event, error) {
		return func() ([]store.Event, error) {
			if len(ps) == 0 {
				return nil, fail
			}
			p := ps[0]
			ps = ps[1:]
			return p, nil
		}
	}
	bad := ev("ns", "bad", t0.Add(5*time.Second))
	bad.Status = "ok"
	for name, next := range map[string]func() ([]store.Event, error){
		"the third part cannot be read": parts(errors.New("reading a spooled batch: unexpected EOF"),
			[]store.Event{ev("ns", "p1", t0.Add(time.Second))}, []store.Event{ev("ns", "p2", t0.Add(2*time.Second))}),
		"the second part is refused": parts(nil,
			[]store.Event{ev("ns", "p1", t0.Add(time.Second))}, []store.Event{ev("ns", "p2", t0.Add(2*time.Second)), bad}),
	} {
		t.Run(name, func(t *testing.T) {
			if res, err := s.InsertParts(t.Context(), next); err == nil {
				t.Fatalf("InsertParts = %+v, want an error", res)
			}
			checkIDs(t, "events after the failed batch", walk(t, s, all("ns")), []string{"old"})
		})
	}
	res, err := s.InsertParts(t.Context(), parts(nil,
		[]store.Event{ev("ns", "p1", t0.Add(time.Second)), ev("ns", "old", t0)},
		[]store.Event{}, // an empty part is no end
		[]store.Event{ev("ns", "p1", t0.Add(time.Second)), ev("ns", "p1", t0.Add(3*time.Second), user("bob"))},
	))
	if err != nil || res.Inserted != 2 || res.Duplicates != 2 || res.Reused != 1 {
		t.Fatalf("InsertParts = %+v, %v; want 2 stored, 2 re-sends (one of a stored event, one of the first part's), 1 reused id", res, err)
	}
	checkIDs(t, "events after the batch", walk(t, s, all("ns")), []string{"old", "p1", "p1"})
}

func testAtomicFailedBatch(t *testing.T, s store.Store) {
	mustInsert(t, s, ev("ns", "old", t0))
	cases := map[string]func(*store.Event){
		"invalid status":   func(e *store.Event) { e.Status = "ok" },
		"invalid category": func(e *store.Event) { e.Category = "admin" },
		"empty id":         func(e *store.Event) { e.ID = "" },
		"empty user":       func(e *store.Event) { e.User = "" },
		"empty namespace":  func(e *store.Event) { e.Namespace = "" },
		"zero time":        func(e *store.Event) { e.Time = time.Time{} },
		"invalid json":     func(e *store.Event) { e.Request = json.RawMessage(`{"a":`) },
		"invalid utf-8":    func(e *store.Event) { e.Message = "\xc3\x28" },
		"nul byte":         func(e *store.Event) { e.EntityID = "a\x00b" },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			bad := ev("ns", "bad", t0.Add(2*time.Second), user("bob"))
			mutate(&bad)
			batch := []store.Event{
				ev("ns", "new1", t0.Add(time.Second), user("carol")),
				ev("ns", "old", t0), // a duplicate in a failed batch changes nothing either
				bad,
				ev("ns", "new2", t0.Add(3*time.Second), user("carol")),
			}
			res, err := s.Insert(t.Context(), batch)
			if !errors.Is(err, store.ErrInvalidEvent) {
				t.Fatalf("Insert = %+v, %v; want an error wrapping ErrInvalidEvent", res, err)
			}
			if errors.Is(err, store.ErrUnavailable) {
				t.Fatalf("Insert error %v wraps ErrUnavailable", err)
			}
			checkIDs(t, "events after the failed batch", walk(t, s, all("ns")), []string{"old"})
			for _, u := range []string{"bob", "carol"} {
				if ok, err := s.UserExists(t.Context(), "ns", u); err != nil || ok {
					t.Fatalf("UserExists(%s) = %v, %v after a failed batch", u, ok, err)
				}
			}
		})
	}
	// The store still works, and seq stays monotonic.
	mustInsert(t, s, ev("ns", "after", t0.Add(time.Minute)))
	got := walk(t, s, all("ns"))
	checkIDs(t, "events", got, []string{"old", "after"})
	if got[1].Seq <= got[0].Seq {
		t.Fatalf("seq %d after a failed batch is not above %d", got[1].Seq, got[0].Seq)
	}
	if res, err := s.Insert(t.Context(), nil); err != nil || counts(res) != (count{}) {
		t.Fatalf("Insert(nil) = %+v, %v", res, err)
	}
}

func testConcurrentInserts(t *testing.T, s store.Store) {
	const writers, batches, size = 4, 10, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for b := range batches {
				batch := make([]store.Event, size)
				for i := range batch {
					batch[i] = ev("ns", fmt.Sprintf("w%d-b%02d-%02d", w, b, i), t0.Add(time.Duration(i)*time.Millisecond))
				}
				if _, err := s.Insert(t.Context(), batch); err != nil {
					t.Errorf("writer %d batch %d: %v", w, b, err)
					return
				}
			}
		})
	}
	// Readers run meanwhile.
	wg.Go(func() {
		for range 20 {
			if _, err := s.Events(t.Context(), all("ns")); err != nil {
				t.Errorf("Events during inserts: %v", err)
				return
			}
		}
	})
	wg.Wait()
	if t.Failed() {
		return
	}
	got := walk(t, s, store.EventQuery{View: "v", Namespace: "ns", Page: store.Page{Size: 333}})
	if len(got) != writers*batches*size {
		t.Fatalf("stored %d events, want %d", len(got), writers*batches*size)
	}
	seqOf := map[string]int64{}
	seen := map[int64]string{}
	for _, e := range got {
		if other, dup := seen[e.Seq]; dup {
			t.Fatalf("seq %d given to %s and %s", e.Seq, other, e.ID)
		}
		seen[e.Seq] = e.ID
		seqOf[e.ID] = e.Seq
	}
	// Within a batch, seq follows the batch's order.
	for w := range writers {
		for b := range batches {
			for i := 1; i < size; i++ {
				if seqOf[fmt.Sprintf("w%d-b%02d-%02d", w, b, i)] <= seqOf[fmt.Sprintf("w%d-b%02d-%02d", w, b, i-1)] {
					t.Fatalf("writer %d batch %d: seq not monotonic at %d", w, b, i)
				}
			}
		}
	}
}

func testEventsOrdering(t *testing.T, s store.Store) {
	// Inserted out of time order, with ties: time then seq (insert order).
	mustInsert(t, s,
		ev("ns", "c", t0.Add(2*time.Second)),
		ev("ns", "a2", t0),
		ev("ns", "b", t0.Add(time.Nanosecond)),
	)
	mustInsert(t, s,
		ev("ns", "a3", t0),
		ev("ns", "z", t0.Add(-time.Nanosecond)),
		ev("ns", "c2", t0.Add(2*time.Second)),
	)
	mustInsert(t, s, ev("ns", "a1", t0)) // latest insert, same time: last of the tie
	want := []string{"z", "a2", "a3", "a1", "b", "c", "c2"}
	checkIDs(t, "one page", walk(t, s, all("ns")), want)
	checkIDs(t, "pages of 1", walk(t, s, store.EventQuery{View: "v", Namespace: "ns", Page: store.Page{Size: 1}}), want)
	checkIDs(t, "pages of 2", walk(t, s, store.EventQuery{View: "v", Namespace: "ns", Page: store.Page{Size: 2}}), want)
}

// filterData inserts a small tenant with every filter's dimensions and
// returns its events in (time, seq) order as stored.
func filterData(t *testing.T, s store.Store) []store.Event {
	var batch []store.Event
	users := []string{"alice", "bob", "Bob", "carol"}
	cats := []string{store.CategoryAccess, store.CategoryUser, store.CategoryData}
	for i := range 36 {
		at := t0.Add(time.Duration(i%12) * 7 * time.Minute).Add(time.Duration(i/12) * time.Nanosecond)
		batch = append(batch, ev("team-a", fmt.Sprintf("e%02d", i), at, user(users[i%4]), category(cats[i%3])))
		batch = append(batch, ev("team-b", fmt.Sprintf("e%02d", i), at, user(users[i%4]), category(cats[i%3])))
	}
	batch = append(batch, ev("team-aa", "x", t0, user("alice"), category(store.CategoryAccess)))
	mustInsert(t, s, batch...)
	got := walk(t, s, all("team-a"))
	if len(got) != 36 {
		t.Fatalf("team-a holds %d events, want 36", len(got))
	}
	for i := 1; i < len(got); i++ {
		a, b := got[i-1], got[i]
		if a.Time.After(b.Time) || (a.Time.Equal(b.Time) && a.Seq >= b.Seq) {
			t.Fatalf("events not in (time, seq) order at %d: %s then %s", i, a.ID, b.ID)
		}
	}
	return got
}

func keep(events []store.Event, pred func(store.Event) bool) []string {
	out := []string{}
	for _, e := range events {
		if pred(e) {
			out = append(out, e.ID)
		}
	}
	return out
}

func testEventsFilters(t *testing.T, s store.Store) {
	data := filterData(t, s)
	from, to := t0.Add(14*time.Minute), t0.Add(56*time.Minute)
	cases := []struct {
		name string
		q    store.EventQuery
		want func(store.Event) bool
	}{
		{"all", store.EventQuery{}, func(store.Event) bool { return true }},
		{"access", store.EventQuery{Category: store.CategoryAccess}, func(e store.Event) bool { return e.Category == store.CategoryAccess }},
		{"user category", store.EventQuery{Category: store.CategoryUser}, func(e store.Event) bool { return e.Category == store.CategoryUser }},
		{"data", store.EventQuery{Category: store.CategoryData}, func(e store.Event) bool { return e.Category == store.CategoryData }},
		{"user bob", store.EventQuery{User: "bob"}, func(e store.Event) bool { return e.User == "bob" }},
		{"user Bob is another user", store.EventQuery{User: "Bob"}, func(e store.Event) bool { return e.User == "Bob" }},
		{"user and category", store.EventQuery{User: "alice", Category: store.CategoryAccess},
			func(e store.Event) bool { return e.User == "alice" && e.Category == store.CategoryAccess }},
		{"range", store.EventQuery{Range: store.TimeRange{From: from, To: to}},
			func(e store.Event) bool { return !e.Time.Before(from) && e.Time.Before(to) }},
		{"range from only", store.EventQuery{Range: store.TimeRange{From: from}}, func(e store.Event) bool { return !e.Time.Before(from) }},
		{"range to only", store.EventQuery{Range: store.TimeRange{To: to}}, func(e store.Event) bool { return e.Time.Before(to) }},
		{"range, category and user", store.EventQuery{Range: store.TimeRange{From: from, To: to}, Category: store.CategoryUser, User: "bob"},
			func(e store.Event) bool {
				return !e.Time.Before(from) && e.Time.Before(to) && e.Category == store.CategoryUser && e.User == "bob"
			}},
		{"unknown user", store.EventQuery{User: "nobody"}, func(store.Event) bool { return false }},
		{"empty range", store.EventQuery{Range: store.TimeRange{From: from, To: from}}, func(store.Event) bool { return false }},
		{"reversed range", store.EventQuery{Range: store.TimeRange{From: to, To: from}}, func(store.Event) bool { return false }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := keep(data, tc.want)
			for _, size := range []int{1, 4, 1000} {
				q := tc.q
				q.View, q.Namespace, q.Page.Size, q.WithTotal = "v", "team-a", size, true
				got := walk(t, s, q)
				checkIDs(t, fmt.Sprintf("page size %d", size), got, want)
				for _, e := range got {
					if e.Namespace != "team-a" {
						t.Fatalf("event of namespace %q in team-a's view", e.Namespace)
					}
				}
				p, err := s.Events(t.Context(), q)
				if err != nil {
					t.Fatal(err)
				}
				if p.Total != int64(len(want)) {
					t.Fatalf("page size %d: Total %d, want %d", size, p.Total, len(want))
				}
			}
		})
	}
	t.Run("unknown namespace", func(t *testing.T) {
		checkIDs(t, "events", walk(t, s, all("team")), []string{})
	})
}

func testEventsRangeBounds(t *testing.T, s store.Store) {
	mustInsert(t, s,
		ev("ns", "before", t0.Add(-time.Nanosecond)),
		ev("ns", "from", t0),
		ev("ns", "mid", t0.Add(time.Hour)),
		ev("ns", "last", t0.Add(2*time.Hour-time.Nanosecond)),
		ev("ns", "to", t0.Add(2*time.Hour)),
	)
	to := t0.Add(2 * time.Hour)
	cases := []struct {
		name     string
		from, to time.Time
		want     []string
	}{
		{"[from, to)", t0, to, []string{"from", "mid", "last"}},
		{"from-1ns", t0.Add(-time.Nanosecond), to, []string{"before", "from", "mid", "last"}},
		{"from+1ns", t0.Add(time.Nanosecond), to, []string{"mid", "last"}},
		{"to+1ns", t0, to.Add(time.Nanosecond), []string{"from", "mid", "last", "to"}},
		{"to-1ns", t0, to.Add(-time.Nanosecond), []string{"from", "mid"}},
		{"one nanosecond", t0, t0.Add(time.Nanosecond), []string{"from"}},
		{"non-UTC bounds", t0.In(time.FixedZone("X", -5*3600)), to.In(time.FixedZone("Y", 9*3600)), []string{"from", "mid", "last"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := store.EventQuery{View: "v", Namespace: "ns", Range: store.TimeRange{From: tc.from, To: tc.to}, Page: store.Page{Size: 2}, WithTotal: true}
			checkIDs(t, "events", walk(t, s, q), tc.want)
		})
	}
}

func testEventsPagination(t *testing.T, s store.Store) {
	data := filterData(t, s)
	for _, size := range []int{1, 2, 3, 5, 35, 36, 37, 1000} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			q := store.EventQuery{View: "audit-details", Namespace: "team-a", Page: store.Page{Size: size}, WithTotal: true}
			pages := 0
			var got []store.Event
			for {
				if pages >= maxPages {
					t.Fatalf("more than %d pages: the walk does not end", maxPages)
				}
				p, err := s.Events(t.Context(), q)
				if err != nil {
					t.Fatal(err)
				}
				pages++
				if p.Total != 36 {
					t.Fatalf("page %d: Total %d, want 36", pages, p.Total)
				}
				got = append(got, p.Events...)
				if p.NextToken == "" {
					break
				}
				for _, c := range p.NextToken {
					if !strings.ContainsRune("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", c) {
						t.Fatalf("token %q is not URL-safe base64", p.NextToken)
					}
				}
				q.Page.Token = p.NextToken
			}
			if want := (36 + size - 1) / size; pages != want {
				t.Fatalf("%d pages, want %d", pages, want)
			}
			checkIDs(t, "walk", got, ids(data))
			// A page not asked for its total has none.
			p, err := s.Events(t.Context(), store.EventQuery{View: "v", Namespace: "team-a", Page: store.Page{Size: size}})
			if err != nil || p.Total != 0 {
				t.Fatalf("Total without WithTotal = %d, %v", p.Total, err)
			}
		})
	}
}

func testEventsPaginationInsertMidWalk(t *testing.T, s store.Store) {
	var batch []store.Event
	for i := range 10 {
		batch = append(batch, ev("ns", fmt.Sprintf("e%d", i), t0.Add(time.Duration(i)*time.Minute)))
	}
	mustInsert(t, s, batch...)
	q := store.EventQuery{View: "v", Namespace: "ns", Range: store.TimeRange{From: t0, To: t0.Add(time.Hour)}, Page: store.Page{Size: 3}}
	p, err := s.Events(t.Context(), q)
	if err != nil {
		t.Fatal(err)
	}
	got := p.Events
	checkIDs(t, "first page", got, []string{"e0", "e1", "e2"})
	mustInsert(t, s,
		ev("ns", "behind", t0.Add(time.Minute+time.Second)),                   // behind the cursor: not shown
		ev("ns", "tie", t0.Add(2*time.Minute)),                                // same time as the cursor, later seq: ahead
		ev("ns", "ahead", t0.Add(5*time.Minute+time.Second)),                  // ahead: shown
		ev("ns", "at-end", t0.Add(59*time.Minute)),                            // ahead, last
		ev("ns", "out-of-range", t0.Add(time.Hour)),                           // outside the range
		ev("other", "other-ns", t0.Add(3*time.Minute+time.Second), user("x")), // another tenant
	)
	q.Page.Token = p.NextToken
	for pages := 2; q.Page.Token != ""; pages++ {
		if pages > maxPages {
			t.Fatalf("more than %d pages: the walk does not end", maxPages)
		}
		p, err := s.Events(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Events) == 0 {
			t.Fatalf("page %d is empty: a next token promises rows", pages)
		}
		got = append(got, p.Events...)
		q.Page.Token = p.NextToken
		if pages == 3 {
			// Rows keep coming while the client pages.
			mustInsert(t, s, ev("ns", "late", t0.Add(58*time.Minute)))
		}
	}
	checkIDs(t, "walk", got, []string{"e0", "e1", "e2", "tie", "e3", "e4", "e5", "ahead", "e6", "e7", "e8", "e9", "late", "at-end"})
}

// testEventsTotalOncePerWalk: a walk's total is counted on its first page
// and carried in its tokens, so rows stored mid-walk do not move it (and
// deep pages do not count again); a new walk counts them.
func testEventsTotalOncePerWalk(t *testing.T, s store.Store) {
	var batch []store.Event
	for i := range 10 {
		batch = append(batch, ev("ns", fmt.Sprintf("e%d", i), t0.Add(time.Duration(i)*time.Minute)))
	}
	mustInsert(t, s, batch...)
	q := store.EventQuery{View: "v", Namespace: "ns", Range: store.TimeRange{From: t0, To: t0.Add(time.Hour)}, Page: store.Page{Size: 3}, WithTotal: true}
	var rows int
	for pages := 1; ; pages++ {
		if pages > maxPages {
			t.Fatalf("more than %d pages: the walk does not end", maxPages)
		}
		p, err := s.Events(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		rows += len(p.Events)
		if p.Total != 10 {
			t.Fatalf("page %d: Total %d, want the walk's 10", pages, p.Total)
		}
		if pages == 1 {
			mustInsert(t, s, ev("ns", "ahead", t0.Add(30*time.Minute+time.Second)))
		}
		if p.NextToken == "" {
			break
		}
		q.Page.Token = p.NextToken
	}
	if rows != 11 {
		t.Fatalf("the walk read %d rows, want 11 (the row stored ahead of it included)", rows)
	}
	q.Page.Token = ""
	p, err := s.Events(t.Context(), q)
	if err != nil || p.Total != 11 {
		t.Fatalf("a new walk's Total = %d, %v; want 11", p.Total, err)
	}
}

// flips returns token altered one byte at a time (at every byte, and at
// every character of the string).
func flips(token string) []string {
	var out []string
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err == nil {
		for i := range raw {
			b := slices.Clone(raw)
			b[i] ^= 0x01
			out = append(out, base64.RawURLEncoding.EncodeToString(b))
		}
	}
	for i := range len(token) {
		c := byte('A')
		if token[i] == 'A' {
			c = 'B'
		}
		out = append(out, token[:i]+string(c)+token[i+1:])
	}
	return append(out, token[:len(token)-1], token+"A", "", "%%%", "AAAA")
}

func expectInvalidToken(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, store.ErrInvalidToken) {
		t.Fatalf("%s: error %v, want one wrapping ErrInvalidToken", what, err)
	}
}

func testEventsTokens(t *testing.T, s store.Store) {
	filterData(t, s)
	from, to := t0, t0.Add(2*time.Hour)
	q := store.EventQuery{View: "useraccess", Namespace: "team-a", Category: store.CategoryAccess, User: "alice",
		Range: store.TimeRange{From: from, To: to}, Page: store.Page{Size: 1}}
	p, err := s.Events(t.Context(), q)
	if err != nil || p.NextToken == "" {
		t.Fatalf("first page: %+v, %v", p, err)
	}
	tok := p.NextToken
	q.Page.Token = tok
	if _, err := s.Events(t.Context(), q); err != nil {
		t.Fatalf("the token with its own query: %v", err)
	}
	t.Run("tampered", func(t *testing.T) {
		for _, bad := range flips(tok) {
			if bad == "" {
				continue // "" is the first page
			}
			qq := q
			qq.Page.Token = bad
			_, err := s.Events(t.Context(), qq)
			expectInvalidToken(t, fmt.Sprintf("token %q", bad), err)
		}
	})
	t.Run("foreign", func(t *testing.T) {
		others := map[string]func(*store.EventQuery){
			"other namespace":  func(q *store.EventQuery) { q.Namespace = "team-b" },
			"other view":       func(q *store.EventQuery) { q.View = "users" },
			"other category":   func(q *store.EventQuery) { q.Category = store.CategoryUser },
			"no category":      func(q *store.EventQuery) { q.Category = "" },
			"other user":       func(q *store.EventQuery) { q.User = "bob" },
			"no user":          func(q *store.EventQuery) { q.User = "" },
			"other from":       func(q *store.EventQuery) { q.Range.From = from.Add(time.Nanosecond) },
			"other to":         func(q *store.EventQuery) { q.Range.To = to.Add(-time.Nanosecond) },
			"unbounded":        func(q *store.EventQuery) { q.Range = store.TimeRange{} },
			"other page size":  func(q *store.EventQuery) { q.Page.Size = 2 },
			"larger page size": func(q *store.EventQuery) { q.Page.Size = 1000 },
		}
		for name, mutate := range others {
			qq := q
			mutate(&qq)
			_, err := s.Events(t.Context(), qq)
			expectInvalidToken(t, name, err)
		}
		// A summary token is no events token, and the other way round.
		sq := store.SummaryQuery{Namespace: "team-a", Range: store.TimeRange{From: from, To: to}, Page: store.Page{Size: 1}}
		sp, err := s.Summary(t.Context(), sq)
		if err != nil || sp.NextToken == "" {
			t.Fatalf("summary: %+v, %v", sp, err)
		}
		qq := q
		qq.Page.Token = sp.NextToken
		_, err = s.Events(t.Context(), qq)
		expectInvalidToken(t, "summary token on events", err)
		sq.Page.Token = tok
		_, err = s.Summary(t.Context(), sq)
		expectInvalidToken(t, "events token on the summary", err)
	})
}

// row is a summary row without its logged-in time, for comparisons.
type row struct {
	Date, User, API, Status string
	Count                   int64
}

func rowsOf(rows []store.SummaryRow) []row {
	out := []row{}
	for _, r := range rows {
		out = append(out, row{r.Date, r.User, r.API, r.Status, r.Count})
	}
	return out
}

func summaryAll(t *testing.T, s store.Store, q store.SummaryQuery) []store.SummaryRow {
	t.Helper()
	var out []store.SummaryRow
	for i := 0; ; i++ {
		if i >= maxPages {
			t.Fatalf("more than %d summary pages: the walk does not end", maxPages)
		}
		p, err := s.Summary(t.Context(), q)
		if err != nil {
			t.Fatalf("Summary page %d: %v", i+1, err)
		}
		out = append(out, p.Rows...)
		if p.NextToken == "" {
			return out
		}
		if len(p.Rows) != q.Page.Size {
			t.Fatalf("summary page %d has %d rows and a next token; want %d", i+1, len(p.Rows), q.Page.Size)
		}
		q.Page.Token = p.NextToken
	}
}

func testSummaryRows(t *testing.T, s store.Store) {
	d1 := time.Date(2024, 5, 28, 0, 0, 0, 0, time.UTC)
	d2 := d1.Add(24 * time.Hour)
	mustInsert(t, s,
		// Strings sort in byte order: "Alice" < "alice" < "bob" < "ä"; "/Pods" < "/pods" < "/pods/exec".
		ev("ns", "1", d1.Add(time.Hour), user("bob"), api("/pods")),
		ev("ns", "2", d1.Add(2*time.Hour), user("ä"), api("/pods")),
		ev("ns", "3", d1.Add(3*time.Hour), user("alice"), api("/pods/exec")),
		ev("ns", "4", d1.Add(4*time.Hour), user("Alice"), api("/pods")),
		ev("ns", "5", d1.Add(5*time.Hour), user("alice"), api("/Pods")),
		ev("ns", "6", d1.Add(6*time.Hour), user("alice"), api("/pods"), failed),
		ev("ns", "7", d1.Add(7*time.Hour), user("alice"), api("/pods")),
		ev("ns", "8", d1.Add(8*time.Hour), user("alice"), api("/pods")),
		ev("ns", "9", d1.Add(24*time.Hour-time.Nanosecond), user("alice"), api("/pods"), failed),
		ev("ns", "10", d2, user("alice"), api("/pods")), // next date
		ev("ns", "11", d2.Add(time.Hour), user("alice"), api("")),
		ev("other", "12", d1.Add(time.Hour), user("alice"), api("/pods")), // another tenant
	)
	want := []row{
		{"2024-05-28", "Alice", "/pods", "success", 1},
		{"2024-05-28", "alice", "/Pods", "success", 1},
		{"2024-05-28", "alice", "/pods", "failure", 2},
		{"2024-05-28", "alice", "/pods", "success", 2},
		{"2024-05-28", "alice", "/pods/exec", "success", 1},
		{"2024-05-28", "bob", "/pods", "success", 1},
		{"2024-05-28", "ä", "/pods", "success", 1},
		{"2024-05-29", "alice", "", "success", 1},
		{"2024-05-29", "alice", "/pods", "success", 1},
	}
	q := store.SummaryQuery{Namespace: "ns", Range: store.TimeRange{From: d1, To: d2.Add(24 * time.Hour)}, Page: store.Page{Size: 100}}
	got := summaryAll(t, s, q)
	if !reflect.DeepEqual(rowsOf(got), want) {
		t.Fatalf("summary rows:\n got %v\nwant %v", rowsOf(got), want)
	}
	q.Range = store.TimeRange{}
	if got := summaryAll(t, s, q); !reflect.DeepEqual(rowsOf(got), want) {
		t.Fatalf("unbounded summary rows:\n got %v\nwant %v", rowsOf(got), want)
	}
	q.Namespace = "nobody"
	if got := summaryAll(t, s, q); len(got) != 0 {
		t.Fatalf("summary of an empty tenant: %v", got)
	}
}

// session is one logged-in-time case: one user's events (offsets from the
// date's start), a range (offsets; zero To = end of date) and the seconds
// expected on that date.
type session struct {
	name     string
	at       []time.Duration
	from, to time.Duration
	want     time.Duration
}

func testSummarySessions(t *testing.T, s store.Store) {
	h, m := time.Hour, time.Minute
	cases := []session{
		{name: "one event", at: []time.Duration{h}, want: 0},
		{name: "two events", at: []time.Duration{h, h + 10*m}, want: 10 * m},
		{name: "gap of exactly 30m is one session", at: []time.Duration{h, h + 30*m}, want: 30 * m},
		{name: "gap of 30m+1ns splits", at: []time.Duration{h, h + 30*m + 1}, want: 0},
		{name: "two sessions", at: []time.Duration{h, h + 20*m, h + 50*m + 1, h + 60*m + 1}, want: 30 * m},
		{name: "chain of 30m gaps", at: []time.Duration{0, 30 * m, 60 * m, 90 * m}, want: 90 * m},
		{name: "nanoseconds", at: []time.Duration{h, h + 1}, want: 1},
		{name: "same instant", at: []time.Duration{h, h, h}, want: 0},
		{name: "whole date", at: []time.Duration{0, 24*h - 1}, want: 0},
		{name: "whole date in 30m steps", at: steps(0, 24*h-1, 30*m), want: 24*h - 1 - (24*h-1)%(30*m)},
		{name: "range cuts the first event", at: []time.Duration{h, h + 10*m, h + 20*m}, from: h + 5*m, want: 10 * m},
		{name: "from is inclusive", at: []time.Duration{h, h + 10*m, h + 20*m}, from: h, want: 20 * m},
		{name: "to is exclusive", at: []time.Duration{h, h + 10*m, h + 20*m}, to: h + 20*m, want: 10 * m},
		{name: "range cut joins no sessions", at: []time.Duration{h, h + 40*m, h + 50*m}, from: h + 40*m, want: 10 * m},
		{name: "29m+1ns gaps stay one session", at: []time.Duration{0, 29 * m, 58 * m, 87*m + 1}, want: 87*m + 1},
		{name: "long session with a split", at: []time.Duration{0, 29 * m, 58 * m, 88*m + 1, 100 * m}, want: 58*m + 12*m - 1},
	}
	date := time.Date(2024, 6, 3, 0, 0, 0, 0, time.UTC)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns := fmt.Sprintf("sessions-%d", i)
			var batch []store.Event
			for j, at := range tc.at {
				batch = append(batch, ev(ns, fmt.Sprint(j), date.Add(at), user("u"), api(fmt.Sprintf("/api%d", j%2))))
				// Other users and tenants do not bridge u's gaps.
				batch = append(batch, ev(ns, fmt.Sprint("v", j), date.Add(at+15*m), user("v")))
				batch = append(batch, ev("other-"+ns, fmt.Sprint(j), date.Add(at+15*m), user("u")))
			}
			mustInsert(t, s, batch...)
			to := tc.to
			if to == 0 {
				to = 24 * h
			}
			q := store.SummaryQuery{Namespace: ns, User: "u", Range: store.TimeRange{From: date.Add(tc.from), To: date.Add(to)}, Page: store.Page{Size: 1}}
			rows := summaryAll(t, s, q)
			if len(rows) == 0 {
				t.Fatal("no rows")
			}
			for _, r := range rows {
				if r.Date != "2024-06-03" || r.User != "u" {
					t.Fatalf("unexpected row %+v", r)
				}
				if !secondsEqual(r.LoggedInSeconds, tc.want) {
					t.Fatalf("row %+v: logged_in_time %v s, want %v s", r, r.LoggedInSeconds, tc.want.Seconds())
				}
			}
		})
	}
	t.Run("per date", func(t *testing.T) {
		// Sessions never span midnight UTC: each date counts its own events.
		mustInsert(t, s,
			ev("dates", "1", date.Add(-20*m), user("u")),
			ev("dates", "2", date.Add(-10*m), user("u")),
			ev("dates", "3", date.Add(5*m), user("u"), api("/a")),
			ev("dates", "4", date.Add(25*m), user("u"), api("/b")),
			ev("dates", "5", date.Add(30*m), user("u"), api("/a"), failed),
			ev("dates", "6", date.Add(10*m), user("w")),
		)
		q := store.SummaryQuery{Namespace: "dates", Range: store.TimeRange{From: date.Add(-24 * h), To: date.Add(24 * h)}, Page: store.Page{Size: 2}}
		want := map[string]time.Duration{"2024-06-02/u": 10 * m, "2024-06-03/u": 25 * m, "2024-06-03/w": 0}
		rows := summaryAll(t, s, q)
		if len(rows) != 5 {
			t.Fatalf("rows %v, want 5", rows)
		}
		for _, r := range rows {
			if w := want[r.Date+"/"+r.User]; !secondsEqual(r.LoggedInSeconds, w) {
				t.Fatalf("row %+v: logged_in_time %v, want %v (the same on every row of the user and date)", r, r.LoggedInSeconds, w.Seconds())
			}
		}
	})
}

func steps(from, to, step time.Duration) []time.Duration {
	var out []time.Duration
	for d := from; d <= to; d += step {
		out = append(out, d)
	}
	return out
}

func secondsEqual(got float64, want time.Duration) bool {
	return math.Abs(got-want.Seconds()) <= 1e-9*math.Max(1, want.Seconds())
}

func testSummaryFiltersAndBounds(t *testing.T, s store.Store) {
	d := time.Date(2024, 5, 22, 0, 0, 0, 0, time.UTC)
	mustInsert(t, s,
		ev("ns", "1", d.Add(-time.Nanosecond), user("a")),
		ev("ns", "2", d, user("a")),
		ev("ns", "3", d.Add(time.Minute), user("b")),
		ev("ns", "4", d.Add(2*time.Minute), user("a")),
		ev("ns", "5", d.Add(3*time.Minute), user("a")),
	)
	cases := []struct {
		name     string
		user     string
		from, to time.Time
		want     []row
	}{
		{"[from, to)", "", d, d.Add(3 * time.Minute), []row{{"2024-05-22", "a", "/pods", "success", 2}, {"2024-05-22", "b", "/pods", "success", 1}}},
		{"from-1ns", "", d.Add(-time.Nanosecond), d.Add(time.Minute), []row{{"2024-05-21", "a", "/pods", "success", 1}, {"2024-05-22", "a", "/pods", "success", 1}}},
		{"to+1ns", "a", d, d.Add(3*time.Minute + 1), []row{{"2024-05-22", "a", "/pods", "success", 3}}},
		{"user", "b", time.Time{}, time.Time{}, []row{{"2024-05-22", "b", "/pods", "success", 1}}},
		{"unknown user", "c", time.Time{}, time.Time{}, []row{}},
		{"empty range", "", d, d, []row{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := store.SummaryQuery{Namespace: "ns", User: tc.user, Range: store.TimeRange{From: tc.from, To: tc.to}, Page: store.Page{Size: 1}}
			if got := rowsOf(summaryAll(t, s, q)); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("rows %v, want %v", got, tc.want)
			}
		})
	}
	// logged_in_time counts only the events inside the range.
	q := store.SummaryQuery{Namespace: "ns", User: "a", Range: store.TimeRange{From: d.Add(time.Minute), To: d.Add(time.Hour)}, Page: store.Page{Size: 10}}
	rows := summaryAll(t, s, q)
	if len(rows) != 1 || !secondsEqual(rows[0].LoggedInSeconds, time.Minute) {
		t.Fatalf("rows %+v, want one with 60 s", rows)
	}
}

// summaryData inserts several dates, users, apis and statuses, with empty
// dates between, and returns the expected rows.
func summaryData(t *testing.T, s store.Store, ns string) []row {
	var batch []store.Event
	users := []string{"zed", "amy", "Bea", "amy.b"}
	apis := []string{"/a", "/b", "/a/x"}
	want := map[row]int64{}
	for i := range 200 {
		day := []int{0, 1, 5, 6, 30}[i%5]
		at := t0.Add(time.Duration(day)*24*time.Hour + time.Duration(i)*time.Minute)
		e := ev(ns, fmt.Sprint(i), at, user(users[i%4]), api(apis[i%3]))
		if i%7 == 0 {
			e.Status = store.StatusFailure
		}
		batch = append(batch, e)
		want[row{Date: at.Format(time.DateOnly), User: e.User, API: e.API, Status: e.Status}]++
	}
	mustInsert(t, s, batch...)
	var out []row
	for r, n := range want {
		r.Count = n
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b row) int {
		return cmp.Or(cmp.Compare(a.Date, b.Date), cmp.Compare(a.User, b.User), cmp.Compare(a.API, b.API), cmp.Compare(a.Status, b.Status))
	})
	return out
}

func testSummaryPagination(t *testing.T, s store.Store) {
	want := summaryData(t, s, "ns")
	if len(want) < 30 {
		t.Fatalf("only %d rows of test data", len(want))
	}
	full := summaryAll(t, s, store.SummaryQuery{Namespace: "ns", Page: store.Page{Size: 1000}})
	if !reflect.DeepEqual(rowsOf(full), want) {
		t.Fatalf("rows:\n got %v\nwant %v", rowsOf(full), want)
	}
	for _, size := range []int{1, 2, 3, 7, len(want) - 1, len(want), len(want) + 1} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			got := summaryAll(t, s, store.SummaryQuery{Namespace: "ns", Page: store.Page{Size: size}})
			if !reflect.DeepEqual(got, full) {
				t.Fatalf("pages of %d:\n got %v\nwant %v", size, got, full)
			}
		})
	}
}

func testSummaryPaginationInsertMidWalk(t *testing.T, s store.Store) {
	d := time.Date(2024, 5, 22, 0, 0, 0, 0, time.UTC)
	mustInsert(t, s,
		ev("ns", "1", d.Add(time.Hour), user("b")),
		ev("ns", "2", d.Add(time.Hour), user("c")),
		ev("ns", "3", d.Add(time.Hour), user("e")),
		ev("ns", "4", d.Add(25*time.Hour), user("b")),
	)
	q := store.SummaryQuery{Namespace: "ns", Page: store.Page{Size: 2}}
	p, err := s.Summary(t.Context(), q)
	if err != nil {
		t.Fatal(err)
	}
	got := rowsOf(p.Rows)
	mustInsert(t, s,
		ev("ns", "5", d.Add(2*time.Hour), user("a")),         // behind the cursor (b... c): not shown
		ev("ns", "6", d.Add(2*time.Hour), user("c")),         // same key as the cursor row: not shown again
		ev("ns", "7", d.Add(2*time.Hour), user("d")),         // ahead: shown
		ev("ns", "8", d.Add(49*time.Hour), user("a")),        // a later date: shown
		ev("ns", "9", d.Add(2*time.Hour), user("c"), failed), // (c, /pods, failure) sorts before (c, /pods, success): behind
	)
	q.Page.Token = p.NextToken
	got = append(got, rowsOf(summaryAll(t, s, q))...)
	want := []row{
		{"2024-05-22", "b", "/pods", "success", 1},
		{"2024-05-22", "c", "/pods", "success", 1},
		{"2024-05-22", "d", "/pods", "success", 1},
		{"2024-05-22", "e", "/pods", "success", 1},
		{"2024-05-23", "b", "/pods", "success", 1},
		{"2024-05-24", "a", "/pods", "success", 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("walk:\n got %v\nwant %v", got, want)
	}
}

func testSummaryTokens(t *testing.T, s store.Store) {
	summaryData(t, s, "ns")
	summaryData(t, s, "ns2")
	from, to := t0, t0.Add(60*24*time.Hour)
	q := store.SummaryQuery{Namespace: "ns", User: "amy", Range: store.TimeRange{From: from, To: to}, Page: store.Page{Size: 2}}
	p, err := s.Summary(t.Context(), q)
	if err != nil || p.NextToken == "" {
		t.Fatalf("first page: %+v, %v", p, err)
	}
	q.Page.Token = p.NextToken
	if _, err := s.Summary(t.Context(), q); err != nil {
		t.Fatalf("the token with its own query: %v", err)
	}
	for _, bad := range flips(p.NextToken) {
		if bad == "" {
			continue
		}
		qq := q
		qq.Page.Token = bad
		_, err := s.Summary(t.Context(), qq)
		expectInvalidToken(t, fmt.Sprintf("token %q", bad), err)
	}
	others := map[string]func(*store.SummaryQuery){
		"other namespace": func(q *store.SummaryQuery) { q.Namespace = "ns2" },
		"other user":      func(q *store.SummaryQuery) { q.User = "zed" },
		"no user":         func(q *store.SummaryQuery) { q.User = "" },
		"other from":      func(q *store.SummaryQuery) { q.Range.From = from.Add(-time.Second) },
		"other to":        func(q *store.SummaryQuery) { q.Range.To = to.Add(time.Second) },
		"other page size": func(q *store.SummaryQuery) { q.Page.Size = 3 },
	}
	for name, mutate := range others {
		qq := q
		mutate(&qq)
		_, err := s.Summary(t.Context(), qq)
		expectInvalidToken(t, name, err)
	}
}

func testUserLogs(t *testing.T, s store.Store) {
	var batch []store.Event
	for i := range 7 {
		// Two events share a time; the later insert is newer.
		at := t0.Add(time.Duration(i) * time.Hour)
		if i == 4 {
			at = t0.Add(3 * time.Hour)
		}
		dev := "4184"
		if i%2 == 1 {
			dev = "77"
		}
		batch = append(batch, ev("kobil", fmt.Sprint("s", i), at, user("sony"), device(dev)))
	}
	batch = append(batch,
		ev("kobil", "o1", t0.Add(90*time.Minute), user("other")),
		ev("kobil", "o2", t0.Add(90*time.Minute), user("Sony")),
		ev("elsewhere", "s9", t0.Add(90*time.Minute), user("sony")),
	)
	mustInsert(t, s, batch...)
	newest := []string{"s6", "s5", "s4", "s3", "s2", "s1", "s0"}
	cases := []struct {
		name          string
		limit, offset int
		device        string
		r             store.TimeRange
		want          []string
		more          bool
	}{
		{"first page", 3, 0, "", store.TimeRange{}, newest[:3], true},
		{"second page", 3, 3, "", store.TimeRange{}, newest[3:6], true},
		{"last page", 3, 6, "", store.TimeRange{}, newest[6:], false},
		{"exactly all", 7, 0, "", store.TimeRange{}, newest, false},
		{"one short of all", 6, 0, "", store.TimeRange{}, newest[:6], true},
		{"past the end", 10, 20, "", store.TimeRange{}, []string{}, false},
		{"limit 1", 1, 0, "", store.TimeRange{}, newest[:1], true},
		{"device", 10, 0, "77", store.TimeRange{}, []string{"s5", "s3", "s1"}, false},
		{"device and offset", 1, 1, "77", store.TimeRange{}, []string{"s3"}, true},
		{"unknown device", 10, 0, "1", store.TimeRange{}, []string{}, false},
		{"range", 10, 0, "", store.TimeRange{From: t0.Add(time.Hour), To: t0.Add(5 * time.Hour)}, []string{"s4", "s3", "s2", "s1"}, false},
		{"range from only", 2, 0, "", store.TimeRange{From: t0.Add(5 * time.Hour)}, []string{"s6", "s5"}, false},
		{"range to only", 10, 1, "", store.TimeRange{To: t0.Add(time.Hour + 1)}, []string{"s0"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := s.UserLogs(t.Context(), store.UserLogsQuery{Namespace: "kobil", User: "sony", DeviceID: tc.device,
				Range: tc.r, Limit: tc.limit, Offset: tc.offset})
			if err != nil {
				t.Fatal(err)
			}
			checkIDs(t, "user logs", p.Events, tc.want)
			if p.More != tc.more {
				t.Fatalf("More = %v, want %v", p.More, tc.more)
			}
		})
	}
	p, err := s.UserLogs(t.Context(), store.UserLogsQuery{Namespace: "kobil", User: "nobody", Limit: 10})
	if err != nil || len(p.Events) != 0 || p.More {
		t.Fatalf("unknown user: %+v, %v", p, err)
	}
}

func testUserExists(t *testing.T, s store.Store) {
	mustInsert(t, s, ev("t1", "1", t0, user("sony")), ev("t2", "1", t0, user("ann")))
	cases := []struct {
		ns, user string
		want     bool
	}{
		{"t1", "sony", true},
		{"t2", "ann", true},
		{"t1", "Sony", false},
		{"t1", "son", false},
		{"t1", "ann", false},
		{"t3", "sony", false},
	}
	for _, tc := range cases {
		ok, err := s.UserExists(t.Context(), tc.ns, tc.user)
		if err != nil || ok != tc.want {
			t.Fatalf("UserExists(%q, %q) = %v, %v; want %v", tc.ns, tc.user, ok, err, tc.want)
		}
	}
}

func testRetention(t *testing.T, s store.Store) {
	cut := t0
	mustInsert(t, s,
		ev("a", "old", cut.Add(-24*time.Hour)),
		ev("a", "just-old", cut.Add(-time.Nanosecond)),
		ev("a", "at-cut", cut),
		ev("a", "new", cut.Add(time.Hour)),
		ev("b", "old", cut.Add(-time.Hour)),
		ev("c", "new", cut.Add(time.Hour)),
		ev("d", "ancient", epoch), // the earliest time an event may have
		ev("k", "old", cut.Add(-time.Hour)),
		ev("k", "new", cut.Add(time.Hour)),
	)
	// k is kept (a log retention could not bind); x holds nothing.
	n, err := s.DeleteBefore(t.Context(), cut, "x", "k")
	if err != nil || n != 4 {
		t.Fatalf("DeleteBefore keeping k = %d, %v; want 4", n, err)
	}
	checkIDs(t, "a", walk(t, s, all("a")), []string{"at-cut", "new"})
	checkIDs(t, "b", walk(t, s, all("b")), []string{})
	checkIDs(t, "c", walk(t, s, all("c")), []string{"new"})
	checkIDs(t, "d", walk(t, s, all("d")), []string{})
	checkIDs(t, "k", walk(t, s, all("k")), []string{"old", "new"})
	if n, err := s.DeleteBefore(t.Context(), cut); err != nil || n != 1 {
		t.Fatalf("second DeleteBefore = %d, %v; want k's old event", n, err)
	}
	checkIDs(t, "k", walk(t, s, all("k")), []string{"new"})
	if n, err := s.DeleteBefore(t.Context(), cut); err != nil || n != 0 {
		t.Fatalf("third DeleteBefore = %d, %v; want 0", n, err)
	}
	// A deleted id may come back (it is a new event then).
	if res := mustInsert(t, s, ev("b", "old", cut.Add(-time.Hour))); res.Inserted != 1 {
		t.Fatalf("re-insert after retention = %+v", res)
	}
}

func testRetentionManyEvents(t *testing.T, s store.Store) {
	const n = 25000
	for b := 0; b < n; b += 1000 {
		batch := make([]store.Event, 0, 1000)
		for i := b; i < b+1000; i++ {
			batch = append(batch, ev("big", fmt.Sprint(i), t0.Add(time.Duration(i)*time.Millisecond)))
		}
		mustInsert(t, s, batch...)
	}
	mustInsert(t, s, ev("small", "1", t0))
	cut := t0.Add(time.Duration(n-100) * time.Millisecond)
	got, err := s.DeleteBefore(t.Context(), cut)
	if err != nil || got != n-100+1 {
		t.Fatalf("DeleteBefore = %d, %v; want %d", got, err, n-100+1)
	}
	rest := walk(t, s, all("big"))
	if len(rest) != 100 || rest[0].ID != fmt.Sprint(n-100) {
		t.Fatalf("%d events left, first %v; want 100 from %d", len(rest), ids(rest[:min(1, len(rest))]), n-100)
	}
}

func testBadQueries(t *testing.T, s store.Store) {
	mustInsert(t, s, ev("ns", "1", t0))
	ctx := t.Context()
	for name, q := range map[string]store.EventQuery{
		"page size 0":      {View: "v", Namespace: "ns"},
		"negative size":    {View: "v", Namespace: "ns", Page: store.Page{Size: -1}},
		"no namespace":     {View: "v", Page: store.Page{Size: 1}},
		"unknown category": {View: "v", Namespace: "ns", Category: "other", Page: store.Page{Size: 1}},
	} {
		if _, err := s.Events(ctx, q); err == nil || errors.Is(err, store.ErrInvalidToken) || errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("Events(%s) = %v, want a plain error", name, err)
		}
	}
	if _, err := s.Summary(ctx, store.SummaryQuery{Namespace: "ns"}); err == nil {
		t.Fatal("Summary with page size 0: no error")
	}
	for name, q := range map[string]store.UserLogsQuery{
		"limit 0":         {Namespace: "ns", User: "alice"},
		"negative offset": {Namespace: "ns", User: "alice", Limit: 1, Offset: -1},
	} {
		if _, err := s.UserLogs(ctx, q); err == nil {
			t.Fatalf("UserLogs(%s): no error", name)
		}
	}
}

// testQueryText: a query's text value that is not valid UTF-8 or holds a
// NUL character is refused with store.ErrInvalidQuery by every view, before
// the database sees it (PostgreSQL fails on it; SQLite would match nothing).
func testQueryText(t *testing.T, s store.Store) {
	mustInsert(t, s, ev("ns", "1", t0, user("sony"), device("d")))
	ctx := t.Context()
	page := store.Page{Size: 10}
	for name, bad := range map[string]string{
		"NUL":            "ns\x00",
		"NUL only":       "\x00",
		"invalid UTF-8":  "ns\xff",
		"lone surrogate": "\xed\xa0\x80",
		"truncated rune": "\xe2\x82",
	} {
		calls := map[string]func() error{
			"Events namespace": func() error {
				_, err := s.Events(ctx, store.EventQuery{View: "v", Namespace: bad, Page: page})
				return err
			},
			"Events user": func() error {
				_, err := s.Events(ctx, store.EventQuery{View: "v", Namespace: "ns", User: bad, Page: page, WithTotal: true})
				return err
			},
			"Summary namespace": func() error {
				_, err := s.Summary(ctx, store.SummaryQuery{Namespace: bad, Page: page})
				return err
			},
			"Summary user": func() error {
				_, err := s.Summary(ctx, store.SummaryQuery{Namespace: "ns", User: bad, Page: page})
				return err
			},
			"UserLogs namespace": func() error {
				_, err := s.UserLogs(ctx, store.UserLogsQuery{Namespace: bad, User: "sony", Limit: 10})
				return err
			},
			"UserLogs user": func() error {
				_, err := s.UserLogs(ctx, store.UserLogsQuery{Namespace: "ns", User: bad, Limit: 10})
				return err
			},
			"UserLogs deviceId": func() error {
				_, err := s.UserLogs(ctx, store.UserLogsQuery{Namespace: "ns", User: "sony", DeviceID: bad, Limit: 10})
				return err
			},
			"UserExists namespace": func() error {
				_, err := s.UserExists(ctx, bad, "sony")
				return err
			},
			"UserExists user": func() error {
				_, err := s.UserExists(ctx, "ns", bad)
				return err
			},
		}
		for call, f := range calls {
			err := f()
			var qe *store.QueryError
			if !errors.Is(err, store.ErrInvalidQuery) || !errors.As(err, &qe) || qe.Field == "" {
				t.Errorf("%s %s: error %v, want a store.QueryError naming the field", call, name, err)
			}
		}
	}
	// The store is still fine, and good text still works.
	if ok, err := s.UserExists(ctx, "ns", "sony"); err != nil || !ok {
		t.Fatalf("UserExists after the refusals = %v, %v", ok, err)
	}
}

// Edges of the times the store keeps: int64 Unix nanoseconds from the Unix
// epoch, the largest value excluded (spec/API.md 6 pins a leaf's time as a
// big-endian int64 of Unix ns).
var (
	epoch    = time.Unix(0, 0).UTC()
	lastTime = time.Unix(0, math.MaxInt64-1).UTC() // 2262-04-11T23:47:16.854775806Z
)

// testTimeLimits: events at both edges of the representable times are
// stored and read back by every view, paged one row at a time, with
// unbounded ranges and with ranges whose end no store can represent (an
// endpoint's end_date 9999-12-31 23:59:59); times outside are refused,
// naming the field and the accepted range.
func testTimeLimits(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, at := range []time.Time{
		epoch.Add(-time.Nanosecond),
		time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Unix(0, math.MinInt64),
		lastTime.Add(time.Nanosecond), // the largest int64: the open end of every unbounded range
		time.Date(2262, 4, 12, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
	} {
		_, err := s.Insert(ctx, []store.Event{ev("edges", "x", at)})
		if !errors.Is(err, store.ErrInvalidEvent) || !strings.Contains(err.Error(), "time") ||
			!strings.Contains(err.Error(), "1970-01-01T00:00:00Z") || !strings.Contains(err.Error(), "2262-04-11T23:47:16.854775807Z") {
			t.Errorf("Insert at %s = %v, want ErrInvalidEvent naming time and the accepted range", at.Format(time.RFC3339Nano), err)
		}
	}
	mustInsert(t, s,
		ev("edges", "first", epoch, user("u")),
		ev("edges", "second", epoch.Add(time.Nanosecond), user("u")),
		ev("edges", "late", time.Date(2262, 4, 11, 23, 47, 16, 0, time.UTC), user("u")),
		ev("edges", "last", lastTime, user("u")),
	)
	want := []string{"first", "second", "late", "last"}
	for name, r := range map[string]store.TimeRange{
		"unbounded":       {},
		"1970 to 10000":   {From: epoch, To: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		"year 1 to 9999":  {From: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)},
		"to the last ns":  {From: epoch, To: lastTime.Add(time.Nanosecond)},
		"from the last":   {From: lastTime},
		"empty past 2262": {From: lastTime.Add(time.Nanosecond), To: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		t.Run(name, func(t *testing.T) {
			var w []string
			switch name {
			case "from the last":
				w = []string{"last"}
			case "empty past 2262":
				w = []string{}
			default:
				w = want
			}
			q := store.EventQuery{View: "v", Namespace: "edges", Range: r, Page: store.Page{Size: 1}, WithTotal: true}
			checkIDs(t, "events", walk(t, s, q), w)
			p, err := s.UserLogs(ctx, store.UserLogsQuery{Namespace: "edges", User: "u", Range: r, Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			checkIDs(t, "user logs", p.Events, reversed(w))
			// Keyset paging from the newest, one row at a time.
			var got []store.Event
			var before *store.Position
			for range 10 {
				p, err := s.UserLogs(ctx, store.UserLogsQuery{Namespace: "edges", User: "u", Range: r, Limit: 1, Before: before})
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, p.Events...)
				if !p.More {
					break
				}
				last := p.Events[len(p.Events)-1]
				before = &store.Position{Time: last.Time.UnixNano(), Seq: last.Seq}
			}
			checkIDs(t, "user logs by keyset", got, reversed(w))
			rows := summaryAll(t, s, store.SummaryQuery{Namespace: "edges", Range: r, Page: store.Page{Size: 1}})
			var wantRows []row
			var wantSecs []time.Duration
			if len(w) == 4 {
				wantRows = []row{{"1970-01-01", "u", "/pods", "success", 2}, {"2262-04-11", "u", "/pods", "success", 2}}
				wantSecs = []time.Duration{time.Nanosecond, 854775806 * time.Nanosecond}
			} else if len(w) == 1 {
				wantRows = []row{{"2262-04-11", "u", "/pods", "success", 1}}
				wantSecs = []time.Duration{0}
			}
			if g := rowsOf(rows); !reflect.DeepEqual(g, wantRows) && !(len(g) == 0 && len(wantRows) == 0) {
				t.Fatalf("summary rows %v, want %v", g, wantRows)
			}
			for i := range wantSecs {
				if !secondsEqual(rows[i].LoggedInSeconds, wantSecs[i]) {
					t.Fatalf("summary row %d: logged_in_time %v, want %v", i, rows[i].LoggedInSeconds, wantSecs[i].Seconds())
				}
			}
		})
	}
	// Retention at the edges: nothing is older than the epoch; a cut past
	// the last representable time deletes everything.
	if n, err := s.DeleteBefore(ctx, epoch); err != nil || n != 0 {
		t.Fatalf("DeleteBefore(epoch) = %d, %v; want 0", n, err)
	}
	if n, err := s.DeleteBefore(ctx, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil || n != 4 {
		t.Fatalf("DeleteBefore(9999) = %d, %v; want 4", n, err)
	}
}

func reversed(ids []string) []string {
	out := slices.Clone(ids)
	slices.Reverse(out)
	return out
}

// LegacyEvents are events older than the Unix epoch, which stores written
// by earlier versions accepted (from the int64 limit, 1677-09-21T00:12:43Z)
// and Insert now refuses: backends store them with raw SQL for
// CheckLegacyTimes.
func LegacyEvents() []store.Event {
	minT := time.Unix(0, math.MinInt64).UTC()
	return []store.Event{
		ev("legacy", "min", minT, user("u")),
		ev("legacy", "min+1h", minT.Add(time.Hour), user("u")),
		ev("legacy", "next day", time.Date(1677, 9, 22, 0, 0, 0, 0, time.UTC), user("u")),
		ev("legacy", "1969", epoch.Add(-time.Nanosecond), user("u")),
		ev("legacy", "2024", t0, user("u")),
	}
}

// CheckLegacyTimes checks that every view reads LegacyEvents (stored
// already) in order, and that the summary's day arithmetic holds down to
// the int64 limit, whose UTC date starts before it.
func CheckLegacyTimes(t *testing.T, s store.Store) {
	t.Helper()
	ctx := t.Context()
	want := []string{"min", "min+1h", "next day", "1969", "2024"}
	checkIDs(t, "events", walk(t, s, store.EventQuery{View: "v", Namespace: "legacy", Page: store.Page{Size: 1}}), want)
	p, err := s.UserLogs(ctx, store.UserLogsQuery{Namespace: "legacy", User: "u", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	checkIDs(t, "user logs", p.Events, reversed(want))
	for _, size := range []int{1, 10} {
		rows := summaryAll(t, s, store.SummaryQuery{Namespace: "legacy", Page: store.Page{Size: size}})
		wantRows := []row{
			{"1677-09-21", "u", "/pods", "success", 2}, {"1677-09-22", "u", "/pods", "success", 1},
			{"1969-12-31", "u", "/pods", "success", 1}, {"2024-05-22", "u", "/pods", "success", 1},
		}
		if g := rowsOf(rows); !reflect.DeepEqual(g, wantRows) {
			t.Fatalf("page size %d: summary rows %v, want %v", size, g, wantRows)
		}
		if !secondsEqual(rows[0].LoggedInSeconds, 0) {
			// The two events are an hour apart: more than the session gap.
			t.Fatalf("logged_in_time of 1677-09-21 = %v, want 0", rows[0].LoggedInSeconds)
		}
	}
	if n, err := s.DeleteBefore(ctx, epoch); err != nil || n != 4 {
		t.Fatalf("DeleteBefore(epoch) = %d, %v; want the 4 legacy events", n, err)
	}
}

// V1Columns are the columns of schema version 1's events table that an
// insert sets besides seq (before events were keyed by content), in the
// order of V1Values.
const V1Columns = "namespace, ts, id, user_name, api, status, category, method, status_code, " +
	"entity_kind, entity_id, device_id, certificate_serial_number, issuer_dn, details, archived, " +
	"message, error, principal, request, response, previous_state, current_state"

// LegacyColumns are V1Columns as the schema names them since the payload
// column took the JSON values and then the text fields no query filters on
// (their columns renamed _v1), for rows stored as before it; V1Values
// gives their values.
const LegacyColumns = "namespace, ts, id, user_name, api, status, category, method, status_code, " +
	"entity_kind_v1, entity_id_v1, device_id, certificate_serial_number_v1, issuer_dn_v1, details_v1, archived_v1, " +
	"message_v1, error_v1, principal_v1, request_v1, response_v1, previous_state_v1, current_state_v1"

// LegacyEmpty is a SQL condition: the row's columns that held its JSON
// values and text fields before the payload did are NULL or empty.
const LegacyEmpty = "(principal_v1 IS NULL AND request_v1 IS NULL AND response_v1 IS NULL AND previous_state_v1 IS NULL" +
	" AND current_state_v1 IS NULL AND entity_kind_v1 = '' AND entity_id_v1 = '' AND certificate_serial_number_v1 = ''" +
	" AND issuer_dn_v1 = '' AND details_v1 = '' AND NOT archived_v1 AND message_v1 = '' AND error_v1 IS NULL)"

// BeforeTextColumns are the columns of a row as schema versions 5 to 7
// stored it (by their names since): the text fields in their columns, the
// payload holding only the JSON values. BeforeTextValues gives their values.
const BeforeTextColumns = "namespace, ts, id, user_name, api, status, category, method, status_code, " +
	"entity_kind_v1, entity_id_v1, device_id, certificate_serial_number_v1, issuer_dn_v1, details_v1, archived_v1, " +
	"message_v1, error_v1, payload, id_hash, content_hash"

// BeforeTextValues returns e's values in BeforeTextColumns order; e must be
// normalized.
func BeforeTextValues(t *testing.T, e *store.Event) []any {
	c, err := payload.NewCodec(t.Context(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	v := V1Values(e)[:18]
	ch := store.ContentHash(e)
	var p any
	if b := c.Encode(payload.Values{Principal: e.Principal, Request: e.Request, Response: e.Response,
		PreviousState: e.PreviousState, CurrentState: e.CurrentState}); b != nil {
		p = b
	}
	return append(v, p, store.IDHash(e.ID), ch[:])
}

// V1Values returns e's values in V1Columns order.
func V1Values(e *store.Event) []any {
	var errv any
	if e.Error != nil {
		errv = *e.Error
	}
	nilIfEmpty := func(b []byte) any {
		if len(b) == 0 {
			return nil
		}
		return []byte(b)
	}
	return []any{e.Namespace, e.Time.UnixNano(), e.ID, e.User, e.API, e.Status, e.Category, e.Method,
		int64(e.StatusCode), e.EntityKind, e.EntityID, e.DeviceID, e.CertificateSerialNumber,
		e.IssuerDN, e.Details, e.Archived, e.Message, errv,
		nilIfEmpty(e.Principal), nilIfEmpty(e.Request), nilIfEmpty(e.Response),
		nilIfEmpty(e.PreviousState), nilIfEmpty(e.CurrentState)}
}

// MigrationEvents are events that exercise every field of the content
// hash: empty and NULL values, non-ASCII text, large payloads, negative
// and far times. Each has its own id (schema version 1 kept one event per
// namespace and id).
func MigrationEvents() []store.Event {
	errLog, empty := "forbidden: ✗ nope", ""
	big := json.RawMessage(`{"data":"` + strings.Repeat("x", 100<<10) + `"}`)
	return []store.Event{
		ev("team-a", "m1", t0),
		ev("team-a", "m2", t0.Add(time.Nanosecond), failed, func(e *store.Event) { e.Error = &errLog; e.StatusCode = 403 }),
		ev("team-a", "m3", t0, func(e *store.Event) { e.Error = &empty; e.Archived = true }),
		ev("team-a", "m4", t0, func(e *store.Event) {
			e.Principal = json.RawMessage(`{"user":{"username":"é"}}`)
			e.Request, e.Response = json.RawMessage(`{"a":[1,2]}`), json.RawMessage(`"s"`)
			e.PreviousState, e.CurrentState = json.RawMessage(`null`), big
			e.Message, e.EntityKind, e.EntityID = "日本語 ✓", "pods", "team-a/web-1"
			e.DeviceID, e.CertificateSerialNumber, e.IssuerDN, e.Details = "10.0.0.1", "X509SHA256=ab", "CN=x", "kubectl/v1.37"
		}),
		ev("_cluster", "m5", time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC).Add(-time.Hour), category(store.CategoryUser)),
		ev("team-b", strings.Repeat("i", 500), time.Date(2261, 12, 31, 23, 59, 59, 999999999, time.UTC)),
	}
}

// CheckMigratedKeys checks what a store holds after the migration that
// keyed events by content, given the events that were stored before it
// (MigrationEvents): every event is there with its fields, a re-send of
// one is a duplicate, and an event that reuses one's id is stored.
func CheckMigratedKeys(t *testing.T, s store.Store, before []store.Event) {
	t.Helper()
	for _, ns := range []string{"team-a", "_cluster", "team-b"} {
		got := walk(t, s, all(ns))
		var want []store.Event
		for _, e := range before {
			if e.Namespace == ns {
				want = append(want, e)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d events after the migration, want %d", ns, len(got), len(want))
		}
		// Rows stored before the payload column are read from the
		// columns that held their JSON values.
		for _, g := range got {
			for _, w := range want {
				if w.ID == g.ID {
					checkSameValues(t, g, w)
				}
			}
		}
	}
	// Events before the Unix epoch (m5) were stored by earlier versions;
	// Insert refuses them now, so they cannot be re-sent.
	var resend []store.Event
	for _, e := range before {
		if _, err := store.NormalizeEvent(e); err == nil {
			resend = append(resend, e)
		}
	}
	res := mustInsert(t, s, resend...)
	if counts(res) != (count{Duplicates: len(resend)}) {
		t.Fatalf("re-sending the events stored before the migration = %+v, want %d duplicates (the migrated content keys differ from Go's)", counts(res), len(resend))
	}
	reuse := before[0]
	reuse.User = "mallory"
	if res := mustInsert(t, s, reuse); counts(res) != (count{Inserted: 1, Reused: 1}) {
		t.Fatalf("an event reusing a migrated id = %+v, want stored and counted", counts(res))
	}
}

// checkSameValues fails t unless got has want's JSON values and text
// fields, byte for byte.
func checkSameValues(t *testing.T, got, want store.Event) {
	t.Helper()
	same := func(a, b []byte) bool { return string(a) == string(b) }
	if !same(got.Principal, want.Principal) || !same(got.Request, want.Request) || !same(got.Response, want.Response) ||
		!same(got.PreviousState, want.PreviousState) || !same(got.CurrentState, want.CurrentState) ||
		got.Message != want.Message || (got.Error == nil) != (want.Error == nil) || (got.Error != nil && *got.Error != *want.Error) ||
		got.EntityKind != want.EntityKind || got.EntityID != want.EntityID || got.DeviceID != want.DeviceID ||
		got.CertificateSerialNumber != want.CertificateSerialNumber || got.IssuerDN != want.IssuerDN ||
		got.Details != want.Details || got.Archived != want.Archived {
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(want)
		t.Fatalf("event %s read back as\n%.600s\nwant\n%.600s", want.ID, gj, wj)
	}
}

// PayloadRaw is what a payload test needs of a store beside store.Store:
// plain SQL, as the stores' own tests have it.
type PayloadRaw struct {
	// Stored returns the length of an event's payload column (-1: NULL)
	// and whether the columns that held its JSON values and text fields
	// before it are NULL or empty.
	Stored func(t *testing.T, id string) (payloadLen int, legacyNull bool)
	// Insert stores one row with plain SQL: values for columns (SQLite
	// gives it a seq of its own).
	Insert func(t *testing.T, columns string, values []any)
	// Corrupt overwrites an event's payload with bytes that do not decode.
	Corrupt func(t *testing.T, id string)
	// Dicts counts the store's payload dictionaries.
	Dicts func(t *testing.T) int
	// Reopen closes the store and opens it again (a restart).
	Reopen func(t *testing.T) store.Store
	// SetLegacy records in the store that rows hold fields in the legacy
	// columns (legacy_columns.in_use), for the next open to read them.
	SetLegacy func(t *testing.T)
}

// CheckPayloads: events' JSON values and text fields are stored compressed
// in the payload column and read back byte for byte, beside rows stored
// before it and rows whose payload holds only the JSON values; a row whose
// payload does not decode fails a read with an error naming it, or is
// returned without what it holds to a reader that asks for that (verify,
// which then finds it edited).
func CheckPayloads(t *testing.T, s store.Store, raw PayloadRaw) {
	obj := json.RawMessage(`{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"web","namespace":"team-p","labels":{"app":"web","tier":"frontend"}},` +
		`"spec":{"replicas":3,"template":{"spec":{"containers":[{"name":"web","image":"registry.example.com/team/web:1.20.0"},{"name":"sidecar","image":"registry.example.com/team/sidecar:1.20.0"}]}}}}`)
	prin := json.RawMessage(`{"user":{"username":"alice","groups":["system:authenticated"]}}`)
	errLog := "forbidden: ✗ nope"
	text := func(e *store.Event) {
		e.Message, e.EntityKind, e.EntityID, e.Error = "update deployments/web in team-p ✓", "deployments", "team-p/web", &errLog
		e.DeviceID, e.CertificateSerialNumber, e.IssuerDN, e.Details, e.Archived = "10.0.0.1", "X509SHA256=ab", "CN=x", "kubectl/v1.37", true
	}
	big := ev("team-p", "p1", t0, text, func(e *store.Event) {
		e.Principal, e.Request, e.Response, e.CurrentState = prin, obj, obj, obj
		e.PreviousState = json.RawMessage(`{"kind":"Deployment","spec":{"replicas":2}}`)
	})
	small := ev("team-p", "p2", t0.Add(time.Second), func(e *store.Event) { e.Request, e.Message = json.RawMessage(`{}`), "get configmaps" })
	none := ev("team-p", "p3", t0.Add(2*time.Second))
	legacy := ev("team-p", "p0", t0.Add(-2*time.Second), text, func(e *store.Event) {
		e.Principal, e.Request, e.Response, e.CurrentState = prin, obj, obj, obj
	})
	beforeText := ev("team-p", "p00", t0.Add(-time.Second), text, func(e *store.Event) {
		e.Principal, e.Request, e.Response, e.CurrentState = prin, obj, obj, obj
	})
	// p4 comes in a batch with a re-send (on PostgreSQL, the insert that
	// skips duplicates rather than COPY).
	resent := ev("team-p", "p4", t0.Add(3*time.Second), text)
	mustInsert(t, s, big, small, none)
	if res := mustInsert(t, s, big, resent); counts(res) != (count{Inserted: 1, Duplicates: 1}) {
		t.Fatalf("a re-send of p1 with p4 = %+v, want p4 stored and p1 a duplicate", counts(res))
	}
	for _, e := range []store.Event{legacy, beforeText} {
		norm, err := store.NormalizeEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		if e.ID == legacy.ID {
			ch := store.ContentHash(&norm)
			raw.Insert(t, LegacyColumns+", id_hash, content_hash", append(V1Values(&norm), store.IDHash(norm.ID), ch[:]))
		} else {
			raw.Insert(t, BeforeTextColumns, BeforeTextValues(t, &norm))
		}
	}

	// The store holds no row that filled the legacy columns, so its reads
	// leave them out: rows planted with SQL read without what they hold.
	for _, g := range walk(t, s, all("team-p"))[:2] {
		if g.Message != "" || g.EntityKind != "" || g.Details != "" || g.Error != nil || g.Archived || (g.ID == legacy.ID) != (g.Request == nil) {
			t.Fatalf("%s, planted in the legacy columns of a store that has none, read as %+v; want it without those columns' fields", g.ID, g)
		}
	}
	// Once the store says it has such rows (as migrations that find them
	// do), it reads them.
	raw.SetLegacy(t)
	s = raw.Reopen(t)

	n, legacyNull := raw.Stored(t, "p1")
	values := len(prin) + 3*len(obj) + len(big.PreviousState) + len(big.Message) + len(big.EntityKind) + len(big.EntityID) +
		len(*big.Error) + len(big.CertificateSerialNumber) + len(big.IssuerDN) + len(big.Details)
	if !legacyNull || n <= 0 || n*10 > values*4 {
		t.Fatalf("p1 stored a payload of %d bytes for %d bytes of JSON values and text (legacy columns NULL or empty: %v); want under 40%%, in the payload column", n, values, legacyNull)
	}
	if n, legacyNull := raw.Stored(t, "p2"); n <= 0 || !legacyNull {
		t.Fatalf("p2 stored a payload of %d bytes (legacy columns NULL or empty: %v); want its message in the payload", n, legacyNull)
	}
	if n, legacyNull := raw.Stored(t, "p4"); n <= 0 || !legacyNull {
		t.Fatalf("p4 (stored beside a re-send) stored a payload of %d bytes (legacy columns NULL or empty: %v); want its text fields in the payload only", n, legacyNull)
	}
	if n, legacyNull := raw.Stored(t, "p3"); n != -1 || !legacyNull {
		t.Fatalf("p3 (no JSON values, no text) stored a payload of %d bytes; want NULL", n)
	}
	got := walk(t, s, all("team-p"))
	checkIDs(t, "events", got, []string{"p0", "p00", "p1", "p2", "p3", "p4"})
	for i, want := range []store.Event{legacy, beforeText, big, small, none, resent} {
		checkSameValues(t, got[i], want)
	}
	// A view that reads only some of the payload's text fields gets those.
	q := all("team-p")
	q.Fields = store.FieldMessage | store.FieldUser | store.FieldID
	for _, g := range walk(t, s, q) {
		if want := map[string]string{"p0": big.Message, "p00": big.Message, "p1": big.Message, "p2": small.Message, "p3": "", "p4": big.Message}[g.ID]; g.Message != want || g.User != "alice" || g.Error != nil || g.Request != nil || g.Details != "" {
			t.Fatalf("%s read for its message: %+v; want message %q and no other payload field", g.ID, g, want)
		}
	}

	raw.Corrupt(t, "p2")
	_, err := s.Events(t.Context(), all("team-p"))
	if !errors.Is(err, payload.ErrCorrupt) || !strings.Contains(err.Error(), fmt.Sprintf("event %d of team-p", got[3].Seq)) {
		t.Fatalf("reading a row whose payload does not decode: %v; want an error naming event %d, wrapping payload.ErrCorrupt", err, got[3].Seq)
	}
	q = all("team-p")
	q.KeepUnreadable = true
	kept := walk(t, s, q)
	checkIDs(t, "events kept unreadable", kept, []string{"p0", "p00", "p1", "p2", "p3", "p4"})
	checkSameValues(t, kept[2], big)
	if kept[3].Request != nil || kept[3].Message != "" || kept[3].User != small.User || kept[3].Method != small.Method {
		t.Fatalf("the unreadable row = %+v; want it without what its payload holds, its other fields read", kept[3])
	}
	checkDictionary(t, s, raw)
}

// checkDictionary: after a few thousand events a store makes a payload
// dictionary and stores it; later payloads are made with it, far smaller,
// and after a restart every event reads back as it was stored.
func checkDictionary(t *testing.T, s store.Store, raw PayloadRaw) {
	values := func(i int) store.Event {
		obj := json.RawMessage(fmt.Sprintf(`{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"cm-%d","namespace":"team-d","uid":"%08x-77aa-4c1d-9e8f-000000000014",`+
			`"resourceVersion":"%d","labels":{"app":"web","tier":"frontend","release":"r%d"},"annotations":{"kubernetes.io/change-cause":"kubectl apply --filename=web.yaml"}},`+
			`"data":{"config.yaml":"replicas: %d\nimage: registry.example.com/team/web:1.%d.0\n"}}`, i%300, i, 5000+i, i%9, i%5, i%40))
		return ev("team-d", fmt.Sprintf("d%05d", i), t0.Add(time.Duration(i)*time.Millisecond), func(e *store.Event) {
			e.Principal = json.RawMessage(fmt.Sprintf(`{"user":{"username":"user-%d@example.com","groups":["system:authenticated","team-%d"]}}`, i%30, i%4))
			e.Request, e.Response, e.CurrentState = obj, obj, obj
		})
	}
	var stored []store.Event
	// The store adopts a dictionary once it is stored: the events after
	// that are made with it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var batch []store.Event
		for range 250 {
			batch = append(batch, values(len(stored)+len(batch)))
		}
		mustInsert(t, s, batch...)
		stored = append(stored, batch...)
		last := stored[len(stored)-1]
		n, _ := raw.Stored(t, last.ID)
		if size := len(last.Principal) + len(last.Request); n > 0 && n*5 <= size && raw.Dicts(t) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %d events, %d payload dictionaries, the last payload %d bytes for %d bytes of distinct JSON values; want one dictionary and under a fifth",
				len(stored), raw.Dicts(t), n, len(last.Principal)+len(last.Request))
		}
	}
	s = raw.Reopen(t)
	got := walk(t, s, all("team-d"))
	if len(got) != len(stored) {
		t.Fatalf("%d events after a restart, want %d", len(got), len(stored))
	}
	for i := range got {
		checkSameValues(t, got[i], stored[i])
	}
}

// RunPageBytes checks the byte cap of pages (store.Options.MaxPageBytes,
// see store.Page) with rows far larger than usual: newStore returns a new,
// empty store whose cap is maxBytes (t.Cleanup closes it).
func RunPageBytes(t *testing.T, newStore func(t *testing.T, maxBytes int) store.Store) {
	const capBytes = 64 << 10
	capped, uncapped := newStore(t, capBytes), newStore(t, 1<<30)
	payload := func(n int) json.RawMessage {
		return json.RawMessage(`{"p":"` + strings.Repeat("x", n) + `"}`)
	}
	// Rows of 20 KiB, 1 KiB and 100 B in a mixed order, one of 100 KiB
	// (alone more than the cap), all of user u; long user names and APIs
	// make summary rows of 1.5 KiB.
	var batch []store.Event
	for i := range 60 {
		size := []int{20 << 10, 1 << 10, 100, 20 << 10, 20 << 10, 100}[i%6]
		if i == 31 {
			size = 100 << 10
		}
		batch = append(batch, ev("big", fmt.Sprintf("e%02d", i), t0.Add(time.Duration(i)*time.Minute), user("u"), device("d"),
			category([]string{store.CategoryAccess, store.CategoryData}[i%2]), func(e *store.Event) {
				e.Request = payload(size)
				e.CurrentState = payload(size / 2)
			}))
		batch = append(batch, ev("wide", fmt.Sprintf("w%02d", i), t0.Add(time.Duration(i)*time.Second),
			user(fmt.Sprintf("%03d", i)+strings.Repeat("u", 500)), api("/"+strings.Repeat("a", 1000))))
	}
	mustInsert(t, capped, batch...)
	mustInsert(t, uncapped, batch...)

	pageBytes := func(events []store.Event) int {
		n := 0
		for i := range events {
			n += store.EventBytes(&events[i])
		}
		return n
	}
	// checkPage holds a page to the cap: at most capBytes of rows, or one
	// row; a page with fewer rows than asked ended at the cap, so its next
	// row would have passed it.
	checkPage := func(t *testing.T, what string, events []store.Event, size int, more bool, next *store.Event) {
		t.Helper()
		if b := pageBytes(events); b > capBytes && len(events) != 1 {
			t.Fatalf("%s: %d rows of %d bytes, over the cap of %d", what, len(events), b, capBytes)
		}
		if len(events) == 0 && more {
			t.Fatalf("%s: an empty page with a next page", what)
		}
		if more && len(events) < size && next != nil && pageBytes(events)+store.EventBytes(next) <= capBytes {
			t.Fatalf("%s: %d rows of %d asked, yet the next row (%d bytes) fits the cap", what, len(events), size, store.EventBytes(next))
		}
	}

	t.Run("Events", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			q      store.EventQuery
			capped bool // the cap ends pages early
		}{
			{"all fields", store.EventQuery{View: "v", Namespace: "big", WithTotal: true}, true},
			{"payloads", store.EventQuery{View: "v", Namespace: "big", Fields: store.FieldRequest | store.FieldStates}, true},
			{"category", store.EventQuery{View: "v", Namespace: "big", Category: store.CategoryAccess, WithTotal: true}, true},
			{"user", store.EventQuery{View: "v", Namespace: "big", User: "u", Range: store.TimeRange{From: t0.Add(time.Minute), To: t0.Add(50 * time.Minute)}}, true},
			// Without the JSON values the rows are small: full pages.
			{"no JSON values", store.EventQuery{View: "v", Namespace: "big", Fields: store.FieldUser | store.FieldMessage, WithTotal: true}, false},
		} {
			for _, size := range []int{1, 7, 1000} {
				t.Run(fmt.Sprintf("%s size %d", tc.name, size), func(t *testing.T) {
					q := tc.q
					q.Page.Size = size
					want := walk(t, uncapped, q)
					var got []store.Event
					early := 0
					for i := 0; ; i++ {
						if i >= maxPages {
							t.Fatalf("more than %d pages", maxPages)
						}
						p, err := capped.Events(t.Context(), q)
						if err != nil {
							t.Fatal(err)
						}
						var next *store.Event
						if p.NextToken != "" {
							if p.NextTime.IsZero() {
								t.Fatalf("page %d: a next token without NextTime", i+1)
							}
							// The next page's first row is the one that did not fit.
							n := want[len(got)+len(p.Events)]
							next = &n
							if !n.Time.Equal(p.NextTime) {
								t.Fatalf("page %d: NextTime %v, want the next row's %v", i+1, p.NextTime, n.Time)
							}
						}
						checkPage(t, fmt.Sprintf("page %d", i+1), p.Events, size, p.NextToken != "", next)
						if tc.name == "all fields" && size == 1000 && i == 0 && len(p.Events) != 4 {
							// 30 KiB, 1.6 KiB, 0.3 KiB and 30 KiB fit 64 KiB; the next 30 KiB does not.
							t.Fatalf("first page: %d rows of 1000 asked, want the 4 that fit the cap", len(p.Events))
						}
						if q.WithTotal && p.Total != int64(len(want)) {
							t.Fatalf("page %d: Total %d, want %d", i+1, p.Total, len(want))
						}
						if p.NextToken != "" && len(p.Events) < size {
							early++
						}
						got = append(got, p.Events...)
						if p.NextToken == "" {
							break
						}
						q.Page.Token = p.NextToken
					}
					if !reflect.DeepEqual(got, want) {
						t.Fatalf("capped pages joined: %v\nuncapped: %v", ids(got), ids(want))
					}
					if wantEarly := tc.capped && size > 1; (early > 0) != wantEarly {
						t.Fatalf("%d pages ended early at the cap; want some: %v", early, wantEarly)
					}
				})
			}
		}
		// A row larger than the cap is a page of its own.
		q := store.EventQuery{View: "v", Namespace: "big", Range: store.TimeRange{From: t0.Add(31 * time.Minute)}, Page: store.Page{Size: 10}}
		p, err := capped.Events(t.Context(), q)
		if err != nil || len(p.Events) != 1 || p.Events[0].ID != "e31" || p.NextToken == "" {
			t.Fatalf("page from the 100 KiB row: %v, %v; want it alone and a next token", ids(p.Events), err)
		}
	})

	t.Run("UserLogs", func(t *testing.T) {
		for _, size := range []int{1, 7, 1000} {
			for _, fields := range []store.Fields{0, store.FieldDevice | store.FieldStatus} {
				t.Run(fmt.Sprintf("size %d fields %#x", size, uint32(fields)), func(t *testing.T) {
					q := store.UserLogsQuery{Namespace: "big", User: "u", Limit: size, Fields: fields}
					all := q
					all.Limit = 1000
					wantPage, err := uncapped.UserLogs(t.Context(), all)
					if err != nil {
						t.Fatal(err)
					}
					want := wantPage.Events
					// By offset (the endpoint): the next offset is past the
					// rows received, not Offset+Limit.
					var byOffset, byKeyset []store.Event
					early := 0
					for i := 0; ; i++ {
						if i >= maxPages {
							t.Fatalf("more than %d pages", maxPages)
						}
						p, err := capped.UserLogs(t.Context(), q)
						if err != nil {
							t.Fatal(err)
						}
						var next *store.Event
						if p.More {
							next = &want[len(byOffset)+len(p.Events)]
						}
						checkPage(t, fmt.Sprintf("offset page %d", i+1), p.Events, size, p.More, next)
						if p.More && len(p.Events) < size {
							early++
						}
						byOffset = append(byOffset, p.Events...)
						if !p.More {
							break
						}
						q.Offset += len(p.Events)
					}
					// By keyset (reports).
					q.Offset = 0
					for i := 0; ; i++ {
						if i >= maxPages {
							t.Fatalf("more than %d pages", maxPages)
						}
						p, err := capped.UserLogs(t.Context(), q)
						if err != nil {
							t.Fatal(err)
						}
						byKeyset = append(byKeyset, p.Events...)
						if !p.More {
							break
						}
						last := p.Events[len(p.Events)-1]
						q.Before = &store.Position{Time: last.Time.UnixNano(), Seq: last.Seq}
					}
					for name, got := range map[string][]store.Event{"offset": byOffset, "keyset": byKeyset} {
						if !reflect.DeepEqual(got, want) {
							t.Fatalf("capped %s pages joined: %v\nuncapped: %v", name, ids(got), ids(want))
						}
					}
					if wantEarly := fields == 0 && size > 1; (early > 0) != wantEarly {
						t.Fatalf("%d pages ended early at the cap; want some: %v", early, wantEarly)
					}
				})
			}
		}
	})

	t.Run("Summary", func(t *testing.T) {
		for _, size := range []int{1, 7, 1000} {
			q := store.SummaryQuery{Namespace: "wide", Page: store.Page{Size: size}}
			want := summaryAll(t, uncapped, q)
			var got []store.SummaryRow
			early := 0
			for i := 0; ; i++ {
				if i >= maxPages {
					t.Fatalf("more than %d pages", maxPages)
				}
				p, err := capped.Summary(t.Context(), q)
				if err != nil {
					t.Fatal(err)
				}
				n := 0
				for j := range p.Rows {
					n += store.SummaryRowBytes(&p.Rows[j])
				}
				if n > capBytes {
					t.Fatalf("size %d page %d: %d rows of %d bytes, over the cap", size, i+1, len(p.Rows), n)
				}
				if p.NextToken != "" && len(p.Rows) < size {
					early++
				}
				got = append(got, p.Rows...)
				if p.NextToken == "" {
					break
				}
				q.Page.Token = p.NextToken
			}
			if !reflect.DeepEqual(got, want) || len(want) != 60 {
				t.Fatalf("size %d: capped pages joined: %d rows %v\nuncapped: %d rows", size, len(got), rowsOf(got), len(want))
			}
			if wantEarly := size > capBytes/store.SummaryRowBytes(&want[0]); (early > 0) != wantEarly {
				t.Fatalf("size %d: %d pages ended early at the cap; want some: %v", size, early, wantEarly)
			}
		}
	})
}

// Restrict keeps the fields f of e (and Time, Seq and Namespace, which
// every page has), as a store query asking for f returns it.
func Restrict(e store.Event, f store.Fields) store.Event {
	o := store.Event{Time: e.Time, Seq: e.Seq, Namespace: e.Namespace}
	keep := func(field store.Fields, set func()) {
		if f&field != 0 {
			set()
		}
	}
	keep(store.FieldID, func() { o.ID = e.ID })
	keep(store.FieldUser, func() { o.User = e.User })
	keep(store.FieldAPI, func() { o.API = e.API })
	keep(store.FieldStatus, func() { o.Status = e.Status })
	keep(store.FieldStatusCode, func() { o.StatusCode = e.StatusCode })
	keep(store.FieldCategory, func() { o.Category = e.Category })
	keep(store.FieldMethod, func() { o.Method = e.Method })
	keep(store.FieldEntity, func() { o.EntityKind, o.EntityID = e.EntityKind, e.EntityID })
	keep(store.FieldDevice, func() {
		o.DeviceID, o.CertificateSerialNumber, o.IssuerDN, o.Details, o.Archived = e.DeviceID, e.CertificateSerialNumber, e.IssuerDN, e.Details, e.Archived
	})
	keep(store.FieldMessage, func() { o.Message = e.Message })
	keep(store.FieldError, func() { o.Error = e.Error })
	keep(store.FieldPrincipal, func() { o.Principal = e.Principal })
	keep(store.FieldRequest, func() { o.Request, o.Response = e.Request, e.Response })
	keep(store.FieldStates, func() { o.PreviousState, o.CurrentState = e.PreviousState, e.CurrentState })
	return o
}

// RunLegacyColumnsMigration: a store upgraded across the migration that
// adds legacy_columns finds a row that holds any one field in a legacy
// column (LegacyColumns' _v1 columns), and then reads it whole; one whose
// rows hold none reads without those columns. upgrade makes a store at the
// schema before that migration, inserts one row (columns, values) with
// SQL, upgrades it, and returns it with whether it reads the legacy columns.
func RunLegacyColumnsMigration(t *testing.T, upgrade func(t *testing.T, columns string, values []any) (s store.Store, legacy bool)) {
	errLog := "forbidden"
	obj := json.RawMessage(`{"kind":"ConfigMap"}`)
	mods := []func(*store.Event){
		func(*store.Event) {},
		func(e *store.Event) { e.EntityKind = "configmaps" },
		func(e *store.Event) { e.EntityID = "team-l/cm" },
		func(e *store.Event) { e.CertificateSerialNumber = "X509SHA256=ab" },
		func(e *store.Event) { e.IssuerDN = "CN=ca" },
		func(e *store.Event) { e.Details = "kubectl/v1.37" },
		func(e *store.Event) { e.Archived = true },
		func(e *store.Event) { e.Message = "get configmaps" },
		func(e *store.Event) { e.Error = &errLog },
		func(e *store.Event) { e.Principal = obj },
		func(e *store.Event) { e.Request = obj },
		func(e *store.Event) { e.Response = obj },
		func(e *store.Event) { e.PreviousState = obj },
		func(e *store.Event) { e.CurrentState = obj },
	}
	for i, m := range mods {
		e := ev("team-l", fmt.Sprintf("l%02d", i), t0, m)
		t.Run(e.ID, func(t *testing.T) {
			norm, err := store.NormalizeEvent(e)
			if err != nil {
				t.Fatal(err)
			}
			ch := store.ContentHash(&norm)
			s, legacy := upgrade(t, LegacyColumns+", id_hash, content_hash", append(V1Values(&norm), store.IDHash(norm.ID), ch[:]))
			defer s.Close()
			if want := i > 0; legacy != want {
				t.Fatalf("after the migration the store reads the legacy columns: %v, want %v", legacy, want)
			}
			got := walk(t, s, all(e.Namespace))
			if len(got) != 1 {
				t.Fatalf("%d events read after the upgrade, want 1", len(got))
			}
			checkSameValues(t, got[0], e)
		})
	}
}
