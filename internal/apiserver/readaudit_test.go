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
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/auditops/auditops/internal/store"
)

// readEvents returns the audit events of reads of ns's audit data by user
// since since.
func readEvents(t *testing.T, ns, user string, since time.Time) []store.Event {
	t.Helper()
	p, err := ts.st.Events(context.Background(), store.EventQuery{
		View: "audit-details", Namespace: ns, User: user,
		Range: store.TimeRange{From: since, To: time.Now().Add(time.Minute)}, Page: store.Page{Size: 100},
	})
	if err != nil {
		t.Fatalf("reading %s's events: %v", ns, err)
	}
	var out []store.Event
	for _, e := range p.Events {
		if e.API == "/"+resAuditDetails {
			out = append(out, e)
		}
	}
	return out
}

// TestDirectReadsAreAudited: a read of the audit data made on our port
// directly is stored as an audit event (allowed: of the namespace read,
// category data; denied: of the cluster, category access), with who, from
// where and what;
// a read kube-apiserver proxied is not (kube-apiserver audits it), and
// front-proxy headers sent by a direct client do not pass it off as one.
func TestDirectReadsAreAudited(t *testing.T) {
	since := time.Now().Add(-time.Second)
	path := P + "/namespaces/" + nsA + "/auditdetails?" + qDates
	for _, tc := range []struct {
		name       string
		c          caller
		hdr        []string
		code       int
		user       string
		at         string // the log the event is recorded in
		recorded   int
		category   string
		statusCode int
	}{
		{"direct read", direct(t, "reader"), nil, http.StatusOK, "reader", nsA, 1, store.CategoryData, 200},
		{"read through kube-apiserver", viaKube(t, "reader"), nil, http.StatusOK, "reader", nsA, 1, "", 0},
		{"direct read claiming to be proxied", direct(t, "reader"), []string{"X-Remote-User", "reader"}, http.StatusOK, "reader", nsA, 2, store.CategoryData, 200},
		{"direct read denied", direct(t, "nobody"), nil, http.StatusForbidden, "nobody", store.ClusterNamespace, 1, store.CategoryAccess, 403},
	} {
		r := tc.c.do(t, http.MethodGet, path, nil, tc.hdr...)
		if r.code != tc.code {
			t.Fatalf("%s: status %d, want %d: %s", tc.name, r.code, tc.code, r.body)
		}
		got := readEvents(t, tc.at, tc.user, since)
		if len(got) != tc.recorded {
			t.Fatalf("%s: %d read events of %s by %s, want %d: %+v", tc.name, len(got), tc.at, tc.user, tc.recorded, got)
		}
		if tc.at != nsA {
			if others := readEvents(t, nsA, tc.user, since); len(others) != 0 {
				t.Fatalf("%s: %d read events in %s, the namespace asked for", tc.name, len(others), nsA)
			}
		}
		if tc.category == "" {
			continue
		}
		e := got[len(got)-1]
		if e.Category != tc.category || e.StatusCode != tc.statusCode || e.Method != "get" || e.EntityKind != resAuditDetails ||
			e.EntityID != nsA || e.DeviceID != "127.0.0.1" || len(e.Principal) == 0 || len(e.Request) == 0 {
			t.Errorf("%s: event %+v", tc.name, e)
		}
		if (tc.statusCode >= 400) != (e.Status == store.StatusFailure) {
			t.Errorf("%s: status %q for code %d", tc.name, e.Status, tc.statusCode)
		}
	}
}
