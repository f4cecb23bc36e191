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
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/auditops/auditops/internal/apiserver/ingesthttp"
	"github.com/auditops/auditops/internal/ingest"
	"github.com/auditops/auditops/internal/store"
	"github.com/auditops/auditops/internal/store/postgres"
	"github.com/auditops/auditops/internal/store/sqlite"
	"github.com/auditops/auditops/internal/store/storetest"
)

// handlerHostSuffix is the --tenant-host-suffix of handler servers.
const handlerHostSuffix = ".audit.example.com"

// handlerServer is the server's route table over a real store, called the
// way the handler chain calls it once a request is authenticated: the user
// in the request context. Its authorizer allows everything (the suite's
// tests check authorization against kube-apiserver); parameter parsing, the
// store, the encoders and the error shapes are the real code. It needs no
// control plane, so fuzz targets use it.
type handlerServer struct {
	name string
	srv  *Server
	st   store.Store
}

func newHandlerServer(name string, st store.Store) handlerServer {
	s := &Server{
		cfg: &Config{storeTimeout: DefaultStoreTimeout, retryAfter: DefaultRetryAfter},
		st:  st, log: logr.Discard(), tenantHostSuffix: handlerHostSuffix,
		authz: func(context.Context, authorizer.Attributes) (authorizer.Decision, string, error) {
			return authorizer.DecisionAllow, "", nil
		},
	}
	s.ingest = ingesthttp.NewHandler(ingest.NewService(st, ingest.Options{}),
		ingesthttp.Options{Authorizer: ingesthttp.AuthorizerFunc(s.authorizeIngest), MaxBytes: 1 << 20})
	s.mux = s.routes()
	return handlerServer{name: name, srv: s, st: st}
}

// handlerServers returns one handler server per store kind (SQLite and
// PostgreSQL), each store new and holding seedEvents (and extra).
func handlerServers(tb testing.TB, extra ...store.Event) []handlerServer {
	tb.Helper()
	return handlerServersWith(tb, store.Options{}, append(seedEvents(), extra...))
}

// handlerServersWith is handlerServers with store options (TokenKey is
// set) and the events to store.
func handlerServersWith(tb testing.TB, opts store.Options, events []store.Event) []handlerServer {
	tb.Helper()
	ctx := context.Background()
	opts.TokenKey = []byte("apiserver-test-token-key-0123456789")
	lite, err := sqlite.New(ctx, filepath.Join(tb.TempDir(), "audit.db"), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = lite.Close() })
	pg, err := postgres.New(ctx, storetest.PostgresDatabase(tb), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = pg.Close() })
	var out []handlerServer
	for _, hs := range []handlerServer{newHandlerServer("sqlite", lite), newHandlerServer("postgres", pg)} {
		if _, err := hs.st.Insert(ctx, events); err != nil {
			tb.Fatalf("%s: seeding the store: %v", hs.name, err)
		}
		out = append(out, hs)
	}
	return out
}

// serve sends one request as the service account team-a/reporter.
func (hs handlerServer) serve(method string, u *url.URL, host string, body []byte) result {
	r := httptest.NewRequest(method, "https://auditops.test/", bytes.NewReader(body))
	r.URL = u
	r.RequestURI = u.RequestURI()
	r.Host = host
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	u0 := &user.DefaultInfo{Name: "system:serviceaccount:" + nsA + ":reporter", Groups: []string{"system:serviceaccounts", "system:authenticated"}}
	r = r.WithContext(request.WithUser(r.Context(), u0))
	w := httptest.NewRecorder()
	hs.srv.mux.ServeHTTP(w, r)
	return result{code: w.Code, header: w.Header(), body: w.Body.Bytes()}
}

// endpoint is one route of spec/API.md 2-4 with valid parameters. path
// marks its path parameters {name}, named as the API names them.
type endpoint struct {
	method, path string
	// pathParams are the path parameters in path order, with valid values.
	pathParams [][2]string
	query      [][2]string
	shape      string
	json       bool
	// host takes the tenant from the Host (--tenant-host-suffix).
	host bool
}

func (e endpoint) url(pathValues []string, rawQuery string) *url.URL {
	p := e.path
	for i, pp := range e.pathParams {
		p = strings.Replace(p, "{"+pp[0]+"}", url.PathEscape(pathValues[i]), 1)
	}
	u, err := url.Parse(p)
	if err != nil {
		panic(fmt.Sprintf("%s: %v", p, err))
	}
	u.RawQuery = rawQuery
	return u
}

func encodeQuery(q [][2]string) string {
	var b strings.Builder
	for i, kv := range q {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(kv[0]) + "=" + url.QueryEscape(kv[1]))
	}
	return b.String()
}

var (
	protectoQuery = [][2]string{{"start_date", "2024-05-21 00:00:00"}, {"end_date", "2024-05-22  23:59:59"}, {"page_size", "2"}}
	networkQuery  = [][2]string{{"fromDate", "2024-05-20"}, {"toDate", "2024-05-25"}, {"pageSize", "2"}}
	kobilQuery    = [][2]string{{"limit", "2"}, {"offset", "0"}, {"deviceId", "4184"}}
	tenant        = [2]string{"namespace", nsA}
)

func with(q [][2]string, kv ...[2]string) [][2]string {
	return append(append([][2]string{}, kv...), q...)
}

// endpoints are every route that takes a parameter; the seed routes under
// the group-version prefix run the same handlers.
var endpoints = []endpoint{
	{method: "GET", path: "/api/vault/reports/namespace-users-summary", query: with(protectoQuery, tenant, [2]string{"next_page_token", ""}), shape: "protecto", json: true},
	{method: "GET", path: P + "/namespaces/{namespace}/namespaceuserssummaries", pathParams: [][2]string{tenant}, query: protectoQuery, shape: "protecto", json: true},
	{method: "GET", path: "/namespace/reports/audit-details", query: with(protectoQuery, tenant), shape: "protecto", json: true},
	{method: "GET", path: P + "/namespaces/{namespace}/auditdetails", pathParams: [][2]string{tenant}, query: with(protectoQuery, [2]string{"next_page_token", ""}), shape: "protecto", json: true},
	{method: "GET", path: "/network/audit/accounts/{accountId}/userAccess", pathParams: [][2]string{{"accountId", nsA}}, query: with(networkQuery, [2]string{"nextContinuationToken", ""}), shape: "message"},
	{method: "GET", path: "/network/audit/accounts/{accountId}/userAccess/{userId}", pathParams: [][2]string{{"accountId", nsA}, {"userId", logUser}}, query: networkQuery, shape: "message"},
	{method: "GET", path: "/network/audit/accounts/{accountId}/users", pathParams: [][2]string{{"accountId", nsA}}, query: networkQuery, shape: "message"},
	{method: "GET", path: "/network/audit/accounts/{accountId}/users/{userId}", pathParams: [][2]string{{"accountId", nsA}, {"userId", logUser}}, query: networkQuery, shape: "message"},
	{method: "GET", path: P + "/namespaces/{namespace}/useraccess", pathParams: [][2]string{tenant}, query: networkQuery, shape: "message"},
	{method: "GET", path: P + "/namespaces/{namespace}/useraccess/{userId}", pathParams: [][2]string{tenant, {"userId", logUser}}, query: networkQuery, shape: "message"},
	{method: "GET", path: P + "/namespaces/{namespace}/users", pathParams: [][2]string{tenant}, query: networkQuery, shape: "message"},
	{method: "GET", path: P + "/namespaces/{namespace}/users/{userId}", pathParams: [][2]string{tenant, {"userId", logUser}}, query: networkQuery, shape: "message"},
	{method: "GET", path: "/auth/realms/{tenantId}/v3_user/{userName}/logs", pathParams: [][2]string{{"tenantId", nsA}, {"userName", logUser}}, query: kobilQuery, shape: "kobil", json: true},
	{method: "GET", path: "/digitanium/v4/user/{userName}/logs", pathParams: [][2]string{{"userName", logUser}}, query: with(kobilQuery, [2]string{"tenantId", nsA}), shape: "kobil", json: true},
	{method: "GET", path: "/digitanium/v4/user/{userName}/logs", pathParams: [][2]string{{"userName", logUser}}, query: kobilQuery, shape: "kobil", json: true, host: true},
	{method: "GET", path: P + "/namespaces/{namespace}/userlogs/{userName}", pathParams: [][2]string{tenant, {"userName", logUser}}, query: kobilQuery, shape: "kobil", json: true},
	{method: "POST", path: P + "/namespaces/{namespace}/events", pathParams: [][2]string{tenant}, shape: "message"},
}

// request builds e's request with pathValues and rawQuery; with the host
// tenant, the first path value is the Host's tenant label instead.
func (e endpoint) request(a, b, rawQuery string) (u *url.URL, host string, body []byte) {
	values := []string{a, b}
	host = "auditops.test"
	if e.host {
		host = a + handlerHostSuffix
		values = values[1:]
	}
	if e.method == "POST" {
		body = []byte("[]")
	}
	return e.url(values, rawQuery), host, body
}

// checkAnswer holds one answer to the rules every answer follows: a status
// the contract allows for what was asked (never a 500), an error body in the
// endpoint's shape, a JSON body that parses.
func checkAnswer(t *testing.T, what string, e endpoint, u *url.URL, r result) {
	t.Helper()
	allowed := map[int]bool{200: true, 400: true, 404: true}
	if p := u.Path; path.Clean(p) != p || strings.HasSuffix(p, "/") {
		// The mux redirects to the clean path (a "." or "" path value).
		allowed[http.StatusMovedPermanently], allowed[http.StatusTemporaryRedirect] = true, true
	}
	if !allowed[r.code] {
		t.Fatalf("%s: status %d: %s", what, r.code, r.body)
	}
	switch {
	case r.code == 400 || (r.code == 404 && e.shape == "kobil" && r.header.Get("Content-Type") == "application/json"):
		checkShape(t, what, r, e.shape)
	case r.code == 200 && e.json && !json.Valid(r.body):
		t.Fatalf("%s: 200 with a body that is not JSON: %q", what, r.body)
	}
}

// TestNonTextParams: a parameter value that is not UTF-8 text without NUL
// characters, in any query parameter or path segment of any endpoint, is a
// 400 naming the parameter in the endpoint's shape, on both stores
// (PostgreSQL's text holds neither: it was a 500 there).
func TestNonTextParams(t *testing.T) {
	servers := handlerServers(t)
	for _, hs := range servers {
		t.Run(hs.name, func(t *testing.T) {
			for i, e := range endpoints {
				valid := make([]string, len(e.pathParams))
				for j, pp := range e.pathParams {
					valid[j] = pp[1]
				}
				pathValues := func(j int, v string) (string, string) {
					vs := append([]string{}, valid...)
					if j >= 0 {
						vs[j] = v
					}
					if e.host {
						vs = append([]string{nsA}, vs...)
					}
					vs = append(vs, "", "")
					return vs[0], vs[1]
				}
				check := func(name, param, a, b, rawQuery string) {
					t.Helper()
					u, host, body := e.request(a, b, rawQuery)
					what := fmt.Sprintf("endpoint %d %s %s (%s)", i, e.method, u.String(), name)
					r := hs.serve(e.method, u, host, body)
					if r.code != 400 {
						t.Errorf("%s: status %d, want 400: %s", what, r.code, r.body)
						return
					}
					checkShape(t, what, r, e.shape)
					if !bytes.Contains(r.body, []byte(param)) {
						t.Errorf("%s: the message does not name %s: %s", what, param, r.body)
					}
				}
				// The valid request is answered.
				a, b := pathValues(-1, "")
				u, host, body := e.request(a, b, encodeQuery(e.query))
				if r := hs.serve(e.method, u, host, body); r.code != 200 {
					t.Errorf("endpoint %d %s %s: status %d, want 200: %s", i, e.method, u, r.code, r.body)
				}
				for _, bad := range []string{"a\x00b", "\x00", "a\xffb", "\xed\xa0\x80", "\xe2\x82"} {
					for j, pp := range e.pathParams {
						a, b := pathValues(j, bad)
						check(fmt.Sprintf("path %s=%q", pp[0], bad), pp[0], a, b, encodeQuery(e.query))
					}
					if e.host {
						_, b := pathValues(-1, "")
						check(fmt.Sprintf("Host label %q", bad), "Host", "x"+bad, b, encodeQuery(e.query))
					}
					if e.method != "GET" {
						// Ingest reads no query parameter.
						continue
					}
					a, b := pathValues(-1, "")
					for k, kv := range append(e.query, [2]string{"unknown", "x"}) {
						q := with(e.query)
						if k < len(e.query) {
							q[k][1] = bad
						} else {
							q = append(q, [2]string{kv[0], bad})
						}
						check(fmt.Sprintf("query %s=%q", kv[0], bad), kv[0], a, b, encodeQuery(q))
						// Unescaped bytes too (a client that does not escape).
						raw := strings.Replace(encodeQuery(q), url.QueryEscape(bad), bad, 1)
						check(fmt.Sprintf("raw query %s=%q", kv[0], bad), kv[0], a, b, raw)
					}
					check(fmt.Sprintf("query parameter name %q", bad), "query parameter name", a, b, encodeQuery(with(e.query, [2]string{bad, "1"})))
				}
				if e.method != "GET" {
					continue
				}
				a, b = pathValues(-1, "")
				for _, raw := range []string{"limit=%zz", "x=1;y=2", "%zz=1"} {
					u, host, body := e.request(a, b, encodeQuery(e.query)+"&"+raw)
					if r := hs.serve(e.method, u, host, body); r.code != 400 {
						t.Errorf("endpoint %d %s: malformed query %q: status %d, want 400: %s", i, u, raw, r.code, r.body)
					}
				}
			}
		})
	}
}

// FuzzEndpointParams sends any path parameters and any query string to
// every endpoint, on both stores: the answer is never a 500, is one the
// contract allows (200, 400, 404; the mux's redirect for a path it cleans),
// the same status on both stores, an error in the endpoint's shape, JSON
// that parses. Its seeds run in make test; make fuzz fuzzes it.
func FuzzEndpointParams(f *testing.F) {
	for i, e := range endpoints {
		var valid [2]string
		for j, pp := range e.pathParams {
			valid[j] = pp[1]
		}
		if e.host {
			valid = [2]string{nsA, valid[0]}
		}
		q := encodeQuery(e.query)
		f.Add(uint8(i), valid[0], valid[1], q)
		f.Add(uint8(i), valid[0]+"\x00", valid[1], q)
		f.Add(uint8(i), valid[0], "\xff"+valid[1], q)
		f.Add(uint8(i), valid[0], valid[1], q+"&x=%00")
		f.Add(uint8(i), valid[0], valid[1], q+"&x=\xc3\x28")
		f.Add(uint8(i), valid[0], valid[1], q+"&%zz")
		f.Add(uint8(i), valid[0], valid[1], q+";")
		f.Add(uint8(i), ".", "..", q)
		f.Add(uint8(i), "", "", "")
		f.Add(uint8(i), "a/b", "%2F", q)
	}
	for _, q := range []string{
		"start_date=1969-12-31+23:59:59&end_date=2024-05-22+23:59:59",
		"start_date=1970-01-01+00:00:00&end_date=9999-12-31+23:59:59",
		"start_date=0000-01-01+00:00:00&end_date=9999-12-31+23:59:59",
		"start_date=2262-04-11+23:47:16&end_date=2262-04-11+23:47:17",
		"start_date=2024-05-21+00:00:00&end_date=2024-05-22+23:59:59&page_size=9223372036854775808",
	} {
		f.Add(uint8(0), "", "", "namespace=team-a&"+q)
		f.Add(uint8(3), nsA, "", q)
	}
	for _, q := range []string{
		"fromDate=1969-12-31T23:59:59Z&toDate=2024-05-25",
		"fromDate=1970-01-01&toDate=9999-12-31T23:59:59.999999999Z",
		"fromDate=0001-01-01T00:00:00Z&toDate=9999-12-31T23:59:59-23:59",
		"fromDate=2262-04-11T23:47:16.854775807Z&toDate=2262-04-11T23:47:16.854775808Z",
		"fromDate=2024-05-20&toDate=2024-05-25&pageSize=-0",
	} {
		f.Add(uint8(4), nsA, "", q)
		f.Add(uint8(9), nsA, logUser, q)
	}
	for _, q := range []string{"limit=1000&offset=1099511627776", "offset=99999999999999999999", "limit=+1", "deviceId=%00"} {
		f.Add(uint8(12), nsA, logUser, q)
	}
	servers := handlerServers(f)
	f.Fuzz(func(t *testing.T, route uint8, a, b, rawQuery string) {
		e := endpoints[int(route)%len(endpoints)]
		u, host, body := e.request(a, b, rawQuery)
		codes := map[string]int{}
		for _, hs := range servers {
			r := hs.serve(e.method, u, host, body)
			checkAnswer(t, fmt.Sprintf("%s: %s %s (Host %q)", hs.name, e.method, u, host), e, u, r)
			codes[hs.name] = r.code
		}
		if codes["sqlite"] != codes["postgres"] {
			t.Fatalf("%s %s (Host %q): the stores answer differently: %v", e.method, u, host, codes)
		}
	})
}
