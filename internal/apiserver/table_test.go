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

package apiserver

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/auditops/auditops/internal/store"
)

// TestReadTableQuery: a Table request's window, selectors and page size,
// and the 400 of each kind of bad input.
func TestReadTableQuery(t *testing.T) {
	now := time.Date(2026, 5, 21, 12, 0, 0, 0, time.UTC)
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		name, query, pathUser string
		want                  tableQuery
		err                   string
	}{
		{name: "defaults: the last 24 h, the family's largest page", want: tableQuery{rng: store.TimeRange{From: at("2026-05-20T12:00:00Z")}, size: 1000}},
		{name: "limit 0 is no limit", query: "limit=0", want: tableQuery{rng: store.TimeRange{From: at("2026-05-20T12:00:00Z")}, size: 1000}},
		{name: "kubectl's limit", query: "limit=500&includeObject=Object&resourceVersion=0", want: tableQuery{rng: store.TimeRange{From: at("2026-05-20T12:00:00Z")}, size: 500}},
		{name: "until alone: the 24 h before it", query: "fieldSelector=until%3D2026-05-01", want: tableQuery{rng: store.TimeRange{From: at("2026-04-30T00:00:00Z"), To: at("2026-05-01T00:00:00Z")}, size: 1000}},
		{name: "durations and days", query: "fieldSelector=since%3D7d,until%3D90m", want: tableQuery{rng: store.TimeRange{From: at("2026-05-14T12:00:00Z"), To: at("2026-05-21T10:30:00Z")}, size: 1000}},
		{name: "offsets are UTC", query: "fieldSelector=" + url.QueryEscape("since=2026-05-21T10:00:00+02:00,user==bob,status=failure"),
			want: tableQuery{rng: store.TimeRange{From: at("2026-05-21T08:00:00Z")}, user: "bob", status: "failure", size: 1000}},
		{name: "an escaped comma in a user", query: "fieldSelector=" + url.QueryEscape(`user=a\,b`), want: tableQuery{rng: store.TimeRange{From: at("2026-05-20T12:00:00Z")}, user: "a,b", size: 1000}},
		{name: "the path's user", pathUser: "alice", query: "fieldSelector=user%3Dalice", want: tableQuery{rng: store.TimeRange{From: at("2026-05-20T12:00:00Z")}, user: "alice", size: 1000}},
		{name: "another user than the path's", pathUser: "alice", query: "fieldSelector=user%3Dbob", err: `field selector user "bob" differs from the user "alice" of the path`},
		{name: "unknown selector", query: "fieldSelector=verb%3Dget", err: `unknown field selector "verb": known ones are user, status, since, until`},
		{name: "not equals", query: "fieldSelector=user!%3Dbob", err: "field selector user: only = is supported"},
		{name: "twice", query: "fieldSelector=user%3Da,user%3Db", err: "field selector user is given twice"},
		{name: "bad status", query: "fieldSelector=status%3D200", err: `field selector status must be success or failure, got "200"`},
		{name: "bad time", query: "fieldSelector=since%3Dyesterday", err: `field selector since must be an RFC 3339 date-time`},
		{name: "negative duration", query: "fieldSelector=since%3D-1h", err: `field selector since must be`},
		{name: "before 1970", query: "fieldSelector=since%3D1969-12-31", err: `since "1969-12-31" is outside the accepted range`},
		{name: "empty window", query: "fieldSelector=since%3D2026-05-02,until%3D2026-05-01", err: "field selector until (2026-05-01T00:00:00Z) must be later than since (2026-05-02T00:00:00Z)"},
		{name: "limit too large", query: "limit=1001", err: `limit must be an integer between 1 and 1000, got "1001"`},
		{name: "labels", query: "labelSelector=a%3Db", err: `labelSelector "a=b": audit rows have no labels`},
		{name: "a seed parameter", query: "page_size=10", err: `unknown query parameter "page_size" for a Table request`},
		{name: "a malformed selector", query: "fieldSelector=user", err: "fieldSelector: "},
		{name: "a NUL in a selector", query: "fieldSelector=user%3Da%00", err: "holds a NUL"},
		{name: "a continue of another version", query: "continue=2.0..." + ".x", err: "continue is invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/x?"+tc.query, nil)
			got, err := readTableQuery(r, tc.pathUser, 1000, now)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !got.rng.From.Equal(tc.want.rng.From) || !got.rng.To.Equal(tc.want.rng.To) || got.user != tc.want.user ||
				got.status != tc.want.status || got.size != tc.want.size || got.token != "" {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestCell: client-chosen text cannot break kubectl's columns or reach the
// terminal as control sequences.
func TestCell(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "<none>"},
		{"alice@example.com", "alice@example.com"},
		{"a b", "a b"},
		{"\x1b[2J\tx\r\n", `\x1b[2J\tx\r\n`},
		{"\u202eevil", `\u202eevil`},
		{"é漢", "é漢"},
		{strings.Repeat("x", 300), strings.Repeat("x", 256) + "..."},
	} {
		if got := cell(tc.in); got != tc.want {
			t.Errorf("cell(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
