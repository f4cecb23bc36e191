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
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/auditops/auditops/internal/store"
)

// edgeEvents are at both ends of the times the store keeps.
func edgeEvents() []store.Event {
	return []store.Event{
		{ID: "epoch", Namespace: "edges", User: "u", Time: time.Unix(0, 0).UTC(), Method: "m", API: "/a", Status: store.StatusSuccess,
			Category: store.CategoryAccess, DeviceID: "d"},
		{ID: "late", Namespace: "edges", User: "u", Time: time.Date(2262, 4, 11, 23, 47, 16, 0, time.UTC), Method: "m", API: "/a",
			Status: store.StatusSuccess, Category: store.CategoryAccess, DeviceID: "d"},
	}
}

// TestTimeLimits: date parameters are accepted from 1970-01-01 to
// 9999-12-31 23:59:59 (a bound past what the store represents is
// unbounded there), anything outside is a 400 naming the parameter and the
// range; events at both edges of the store's times are read by every
// endpoint; ingest refuses event times outside the store's range with a
// 400 naming the field and the range. On both stores.
func TestTimeLimits(t *testing.T) {
	for _, hs := range handlerServers(t, edgeEvents()...) {
		t.Run(hs.name, func(t *testing.T) {
			get := func(p string) result {
				t.Helper()
				u, err := url.Parse(p)
				if err != nil {
					t.Fatal(err)
				}
				return hs.serve("GET", u, "auditops.test", nil)
			}
			const all = "start_date=1970-01-01+00:00:00&end_date=9999-12-31+23:59:59"
			for _, tc := range []struct {
				path string
				want []string // substrings of the 200 body, in order
			}{
				{"/api/vault/reports/namespace-users-summary?namespace=edges&" + all,
					[]string{`"date":"1970-01-01"`, `"date":"2262-04-11"`}},
				{P + "/namespaces/edges/auditdetails?" + all,
					[]string{`"requested_time":"1970-01-01 00:00:00"`, `"requested_time":"2262-04-11 23:47:16"`}},
				// end_date is inclusive to the second: the last event is in.
				{P + "/namespaces/edges/auditdetails?start_date=2262-04-11+23:47:16&end_date=2262-04-11+23:47:16",
					[]string{`"requested_time":"2262-04-11 23:47:16"`}},
				{P + "/namespaces/edges/auditdetails?start_date=1970-01-01+00:00:00&end_date=1970-01-01+00:00:00",
					[]string{`"requested_time":"1970-01-01 00:00:00"`}},
				{P + "/namespaces/edges/useraccess?fromDate=1970-01-01&toDate=9999-12-31T23:59:59.999999999Z",
					[]string{"epoch,", "1970-01-01T00:00:00.000Z", "late,", "2262-04-11T23:47:16.000Z"}},
				{P + "/namespaces/edges/useraccess?fromDate=2262-04-11T23:47:16Z&toDate=9999-12-31T23:00:00-00:59",
					[]string{"late,"}},
				{P + "/namespaces/edges/userlogs/u", []string{`"logDate":"9223372036"`, `"logDate":"0"`}},
			} {
				r := get(tc.path)
				if r.code != 200 {
					t.Errorf("GET %s: status %d: %s", tc.path, r.code, r.body)
					continue
				}
				rest := r.body
				for _, w := range tc.want {
					i := bytes.Index(rest, []byte(w))
					if i < 0 {
						t.Errorf("GET %s: %q missing (or out of order) in %s", tc.path, w, r.body)
						break
					}
					rest = rest[i+len(w):]
				}
			}
			// Paging over the edges, one row a page.
			r := get(P + "/namespaces/edges/useraccess?fromDate=1970-01-01&toDate=9999-12-31&pageSize=1")
			if r.code != 200 || rawHeader(r, "nextfromdate") != "2262-04-11T23:47:16.000Z" || rawHeader(r, "totalRecords") != "2" {
				t.Errorf("first page: %d %v %s", r.code, r.header, r.body)
			}
			r = get(P + "/namespaces/edges/useraccess?fromDate=1970-01-01&toDate=9999-12-31&pageSize=1&nextContinuationToken=" +
				url.QueryEscape(rawHeader(r, "nextcontinuationtoken")))
			if r.code != 200 || !bytes.Contains(r.body, []byte("late,")) || bytes.Contains(r.body, []byte("epoch,")) || rawHeader(r, "nextcontinuationtoken") != "" {
				t.Errorf("second page: %d %v %s", r.code, r.header, r.body)
			}

			protectoRange := "1970-01-01 00:00:00 to 9999-12-31 23:59:59"
			networkRange := "1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z"
			for _, tc := range []struct{ path, param, rng string }{
				{P + "/namespaces/edges/namespaceuserssummaries?start_date=1969-12-31+23:59:59&end_date=2024-05-22+23:59:59", "start_date", protectoRange},
				{P + "/namespaces/edges/auditdetails?start_date=0000-01-01+00:00:00&end_date=2024-05-22+23:59:59", "start_date", protectoRange},
				{P + "/namespaces/edges/auditdetails?start_date=1970-01-01+00:00:00&end_date=1969-12-31+23:59:59", "end_date", protectoRange},
				{"/network/audit/accounts/edges/userAccess?fromDate=1969-12-31T23:59:59.999999999Z&toDate=2024-05-25", "fromDate", networkRange},
				{"/network/audit/accounts/edges/userAccess?fromDate=1970-01-01T00:00:00%2B01:00&toDate=2024-05-25", "fromDate", networkRange},
				{"/network/audit/accounts/edges/userAccess?fromDate=0000-01-01&toDate=2024-05-25", "fromDate", networkRange},
				{P + "/namespaces/edges/users?fromDate=1970-01-01&toDate=9999-12-31T23:59:59-00:01", "toDate", networkRange},
				{P + "/namespaces/edges/users/u?fromDate=1970-01-01&toDate=1969-12-31", "toDate", networkRange},
			} {
				r := get(tc.path)
				if r.code != 400 || !bytes.Contains(r.body, []byte(tc.param)) || !bytes.Contains(r.body, []byte(tc.rng)) {
					t.Errorf("GET %s: %d %s; want 400 naming %s and the range %s", tc.path, r.code, r.body, tc.param, tc.rng)
				}
			}

			// Ingest: the store's range, [1970-01-01T00:00:00Z, the largest int64 ns).
			post := func(p string, body string) result {
				t.Helper()
				u, _ := url.Parse(p)
				return hs.serve("POST", u, "auditops.test", []byte(body))
			}
			const storeRange = "[1970-01-01T00:00:00Z, 2262-04-11T23:47:16.854775807Z)"
			for _, tc := range []struct {
				at, micro string // kube-apiserver's stageTimestamp has exactly 6 fraction digits
				code      int
			}{
				{"1969-12-31T23:59:59.999999999Z", "1969-12-31T23:59:59.999999Z", 400},
				{"1677-09-21T00:12:43.145224192Z", "1677-09-21T00:12:43.145225Z", 400},
				{"2262-04-11T23:47:16.854775807Z", "2262-04-11T23:47:16.854776Z", 400},
				{"9999-12-31T23:59:59Z", "9999-12-31T23:59:59.000000Z", 400},
				{"1970-01-01T00:00:00Z", "1970-01-01T00:00:00.000000Z", 200},
				{"2262-04-11T23:47:16.854775806Z", "2262-04-11T23:47:16.854775Z", 200},
			} {
				generic := fmt.Sprintf(`[{"id":"i-%s","time":%q,"namespace":"edges-ingest","user":"u","status":"success"}]`, tc.at, tc.at)
				kube := fmt.Sprintf(`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[{"auditID":"k-%s","stage":"ResponseComplete",`+
					`"stageTimestamp":%q,"verb":"get","user":{"username":"u"},"objectRef":{"resource":"pods","namespace":"edges-ingest"},"responseStatus":{"code":200}}]}`, tc.at, tc.micro)
				for _, c := range []struct{ path, body, field string }{
					{P + "/namespaces/edges-ingest/events", generic, "time"},
					{"/ingest/v1/events", generic, "time"},
					{"/ingest/v1/kube-audit", kube, "stageTimestamp"},
				} {
					r := post(c.path, c.body)
					if r.code != tc.code {
						t.Errorf("POST %s at %s: status %d, want %d: %s", c.path, tc.at, r.code, tc.code, r.body)
						continue
					}
					if tc.code == 400 && (!bytes.Contains(r.body, []byte(c.field)) || !strings.Contains(string(r.body), storeRange)) {
						t.Errorf("POST %s at %s: the message does not name %s and the range %s: %s", c.path, tc.at, c.field, storeRange, r.body)
					}
				}
			}
		})
	}
}

// rawHeader reads a response header the handlers set under a
// non-canonical key (the seeds' spelling), as a client would.
func rawHeader(r result, key string) string {
	if v, ok := r.header[key]; ok && len(v) > 0 {
		return v[0]
	}
	return r.header.Get(key)
}

// TestCappedPages: pages that the store's byte cap ends early (large rows)
// page through every endpoint to exactly the rows of an uncapped store: a
// next token with fewer rows than the page size, nextfromdate on the row
// that did not fit, and for user logs moreResultsAvailable with fewer items
// than the limit, the next offset being past the items received. On both
// stores.
func TestCappedPages(t *testing.T) {
	big := func(i, n int) json.RawMessage {
		return json.RawMessage(fmt.Sprintf(`{"i":%d,"p":%q}`, i, strings.Repeat("x", n)))
	}
	var events []store.Event
	for i := range 40 {
		n := []int{20 << 10, 50, 30 << 10, 1 << 10}[i%4]
		events = append(events, store.Event{ID: fmt.Sprint("c", i), Namespace: "capped", User: "u", Method: "get", API: "/p",
			Time: mustTime("2024-05-21T10:00:00Z").Add(time.Duration(i) * time.Minute), Status: store.StatusSuccess,
			Category: store.CategoryAccess, Request: big(i, n), CurrentState: big(i, n), DeviceID: "d",
			Details: strings.Repeat("d", n)}) // user logs show details
	}
	capped := handlerServersWith(t, store.Options{MaxPageBytes: 64 << 10}, events)
	uncapped := handlerServersWith(t, store.Options{}, events)
	for i := range capped {
		c, u := capped[i], uncapped[i]
		t.Run(c.name, func(t *testing.T) {
			get := func(hs handlerServer, p string) result {
				t.Helper()
				pu, err := url.Parse(p)
				if err != nil {
					t.Fatal(err)
				}
				r := hs.serve("GET", pu, "auditops.test", nil)
				if r.code != 200 {
					t.Fatalf("%s GET %s: %d %s", hs.name, p, r.code, r.body)
				}
				return r
			}
			type protecto struct {
				Data struct {
					Details []json.RawMessage `json:"details"`
					Next    string            `json:"next_page_token"`
				} `json:"data"`
			}
			walkDetails := func(hs handlerServer) (rows []string, pages, early int) {
				tok := ""
				for pages = 1; ; pages++ {
					r := get(hs, P+"/namespaces/capped/auditdetails?start_date=2024-05-21+00:00:00&end_date=2024-05-21+23:59:59&page_size=1000&next_page_token="+url.QueryEscape(tok))
					var body protecto
					if err := json.Unmarshal(r.body, &body); err != nil {
						t.Fatal(err)
					}
					for _, d := range body.Data.Details {
						rows = append(rows, string(d))
					}
					if tok = body.Data.Next; tok == "" {
						return rows, pages, early
					}
					if len(body.Data.Details) < 1000 {
						early++
					}
				}
			}
			want, _, _ := walkDetails(u)
			got, pages, early := walkDetails(c)
			if !slices.Equal(got, want) || len(want) != 40 || early == 0 || early != pages-1 {
				t.Errorf("audit details: %d rows in %d pages (%d early), want the uncapped %d rows", len(got), pages, early, len(want))
			}

			walkCSV := func(hs handlerServer) (rows []string, pages int) {
				tok := ""
				for pages = 1; ; pages++ {
					r := get(hs, P+"/namespaces/capped/useraccess?fromDate=2024-05-21&toDate=2024-05-22&pageSize=10000&nextContinuationToken="+url.QueryEscape(tok))
					lines := strings.Split(strings.TrimSuffix(string(r.body), "\r\n"), "\r\n")[1:]
					if rawHeader(r, "totalRecords") != "40" {
						t.Fatalf("page %d: totalRecords %q, want 40", pages, rawHeader(r, "totalRecords"))
					}
					tok = rawHeader(r, "nextcontinuationtoken")
					if tok == "" {
						return append(rows, lines...), pages
					}
					// nextfromdate is the When of the next page's first row.
					next := mustTime("2024-05-21T10:00:00Z").Add(time.Duration(len(rows)+len(lines)) * time.Minute)
					if from := rawHeader(r, "nextfromdate"); from != next.Format("2006-01-02T15:04:05.000Z") {
						t.Fatalf("page %d: nextfromdate %q, want %s", pages, from, next)
					}
					rows = append(rows, lines...)
				}
			}
			wantCSV, _ := walkCSV(u)
			gotCSV, csvPages := walkCSV(c)
			if !slices.Equal(gotCSV, wantCSV) || len(wantCSV) != 40 || csvPages < 2 {
				t.Errorf("useraccess: %d rows in %d pages, want the uncapped %d rows", len(gotCSV), csvPages, len(wantCSV))
			}

			type kobil struct {
				Data struct {
					More  bool              `json:"moreResultsAvailable"`
					Items []json.RawMessage `json:"reportingInfoItems"`
				} `json:"data"`
			}
			walkLogs := func(hs handlerServer) (items []string, pages, short int) {
				for pages = 1; ; pages++ {
					r := get(hs, fmt.Sprintf(P+"/namespaces/capped/userlogs/u?limit=1000&offset=%d", len(items)))
					var body kobil
					if err := json.Unmarshal(r.body, &body); err != nil {
						t.Fatal(err)
					}
					for _, it := range body.Data.Items {
						items = append(items, string(it))
					}
					if !body.Data.More {
						return items, pages, short
					}
					if len(body.Data.Items) < 1000 {
						short++
					}
				}
			}
			wantLogs, _, _ := walkLogs(u)
			gotLogs, logPages, short := walkLogs(c)
			if !slices.Equal(gotLogs, wantLogs) || len(wantLogs) != 40 || short == 0 || short != logPages-1 {
				t.Errorf("user logs: %d items in %d pages (%d short), want the uncapped %d items", len(gotLogs), logPages, short, len(wantLogs))
			}
		})
	}
}
