package apiserver

import (
	"bytes"
	"fmt"
	"net/url"
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
