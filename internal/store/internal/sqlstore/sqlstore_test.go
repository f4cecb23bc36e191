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

package sqlstore

import (
	"math"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/auditops/auditops/internal/store"
	"github.com/auditops/auditops/internal/store/payload"
)

func TestDayStart(t *testing.T) {
	for _, tc := range []struct {
		at   time.Time
		want string
	}{
		{time.Date(2024, 5, 22, 0, 0, 0, 0, time.UTC), "2024-05-22"},
		{time.Date(2024, 5, 22, 23, 59, 59, 999999999, time.UTC), "2024-05-22"},
		{time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), "1970-01-01"},
		{time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC), "1969-12-31"},
		{time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC), "1969-12-31"},
		{time.Date(1900, 3, 1, 12, 0, 0, 0, time.UTC), "1900-03-01"},
		{time.Unix(0, math.MaxInt64), "2262-04-11"},
		{time.Date(2262, 4, 11, 0, 0, 0, 0, time.UTC), "2262-04-11"},
		{time.Date(1677, 9, 22, 0, 0, 0, 0, time.UTC), "1677-09-22"},
	} {
		d := DayStart(tc.at.UnixNano())
		if got := time.Unix(0, d).UTC(); got.Format(time.DateOnly) != tc.want || got.Hour() != 0 || got.Nanosecond() != 0 {
			t.Errorf("DayStart(%v) = %v, want %s 00:00", tc.at, got, tc.want)
		}
	}
	// The smallest int64's date starts before it: clamped, not wrapped
	// around into 2262.
	for _, ns := range []int64{math.MinInt64, math.MinInt64 + DayNanos/2} {
		if got := DayStart(ns); got != math.MinInt64 {
			t.Errorf("DayStart(%d) = %d (%v), want the smallest int64", ns, got, time.Unix(0, got).UTC())
		}
	}
	// And the date after the largest int64's starts after it.
	if got := dayStart(dayOf(math.MaxInt64) + 1); got != math.MaxInt64 {
		t.Errorf("start of 2262-04-12 = %d, want the largest int64", got)
	}
}

func TestBounds(t *testing.T) {
	from, to := Bounds(store.TimeRange{})
	if from != math.MinInt64 || to != math.MaxInt64 {
		t.Fatalf("zero range = %d, %d; want unbounded", from, to)
	}
	a := time.Date(2024, 1, 1, 0, 0, 0, 5, time.FixedZone("x", 3600))
	from, to = Bounds(store.TimeRange{From: a, To: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)})
	if from != a.UnixNano() || to != math.MaxInt64 {
		t.Fatalf("Bounds = %d, %d", from, to)
	}
}

func TestArgs(t *testing.T) {
	pg := Args{d: Postgres}
	if pg.Add(1) != "$1" || pg.Add("x") != "$2" || len(pg.Values()) != 2 {
		t.Fatal("postgres placeholders")
	}
	lite := Args{d: SQLite}
	if lite.Add(1) != "?" || lite.Add(2) != "?" || len(lite.Values()) != 2 {
		t.Fatal("sqlite placeholders")
	}
}

func TestKeyAfter(t *testing.T) {
	key := []string{"bob", "/pods", "success"}
	for _, tc := range []struct {
		row  store.SummaryRow
		want bool
	}{
		{store.SummaryRow{User: "bob", API: "/pods", Status: "success"}, false},
		{store.SummaryRow{User: "bob", API: "/pods", Status: "failure"}, false},
		{store.SummaryRow{User: "bob", API: "/pods/exec", Status: "failure"}, true},
		{store.SummaryRow{User: "bob", API: "/Pods", Status: "success"}, false},
		{store.SummaryRow{User: "bobby", API: "", Status: ""}, true},
		{store.SummaryRow{User: "Bob", API: "/z", Status: "z"}, false},
		{store.SummaryRow{User: "ä", API: "", Status: ""}, true},
	} {
		if got := keyAfter(tc.row, key); got != tc.want {
			t.Errorf("keyAfter(%+v) = %v, want %v", tc.row, got, tc.want)
		}
	}
}

// TestSetTextCopiesWhatAPartialViewKeeps: a payload's text fields share
// one string; a view that reads only some of them must not keep the rest
// alive unseen by the page's byte cap (store.EventBytes counts the fields
// read), so it gets copies. A view of them all shares the one string.
func TestSetTextCopiesWhatAPartialViewKeeps(t *testing.T) {
	all := "pods" + strings.Repeat("d", 1<<20) + "create pods/web" + "denied"
	errv := all[4+1<<20+15:]
	text := payload.Text{EntityKind: all[:4], Details: all[4 : 4+1<<20], Message: all[4+1<<20 : 4+1<<20+15], Error: &errv}
	shares := func(s string) bool {
		p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
		base := uintptr(unsafe.Pointer(unsafe.StringData(all)))
		return p >= base && p < base+uintptr(len(all))
	}
	for _, tc := range []struct {
		name  string
		f     store.Fields
		share bool
	}{
		{"message only (kubectl tables, without details)", store.FieldMessage | store.FieldUser, false},
		{"every text field", textFields, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e store.Event
			setText(&e, &text, tc.f)
			if e.Message != "create pods/web" {
				t.Fatalf("message = %q", e.Message)
			}
			if shares(e.Message) != tc.share {
				t.Fatalf("the message shares the payload's string: %v, want %v", shares(e.Message), tc.share)
			}
			if tc.f&store.FieldDevice == 0 && e.Details != "" {
				t.Fatal("details set for a view without them")
			}
		})
	}
}
