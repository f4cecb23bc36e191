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
	"crypto/tls"
	"encoding/json"
	"fmt"
	"github.com/spf13/pflag"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"

	"github.com/auditops/auditops/internal/store"
	"github.com/auditops/auditops/internal/store/sqlite"
)

const (
	P       = groupVersionPath
	qDates  = "start_date=2024-05-21+00:00:00&end_date=2024-05-22++23:59:59" // two spaces, as the seeds print
	qRange  = "fromDate=2024-05-20&toDate=2024-05-25"
	logUser = "sony"
)

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

// seedEvents are the known events every test reads.
func seedEvents() []store.Event {
	boom := "boom"
	return []store.Event{
		{ID: "a1", Namespace: nsA, User: "alice@example.com", Time: mustTime("2024-05-21T10:00:00Z"), Method: "mask", API: "/mask",
			Status: store.StatusSuccess, Request: json.RawMessage(`{"mask":[{"value":"George"}]}`), Response: json.RawMessage(`{"ok":true}`)},
		{ID: "a2", Namespace: nsA, User: "alice@example.com", Time: mustTime("2024-05-21T10:10:00Z"), Method: "mask", API: "/mask", Status: store.StatusSuccess},
		// Inside end_date=2024-05-22 23:59:59: the end is inclusive to the second.
		{ID: "a3", Namespace: nsA, User: "bob@example.com", Time: mustTime("2024-05-22T23:59:59.900Z"), Method: "unmask", API: "/unmask",
			Status: store.StatusFailure, StatusCode: 500, Error: &boom},
		{ID: "a4", Namespace: nsA, User: logUser, Time: mustTime("2024-05-23T08:00:00.123Z"), Method: "35", API: "/login", Status: store.StatusSuccess,
			Category: store.CategoryAccess, EntityKind: "sessions", EntityID: "team-a/s1", Message: `login, "quoted"`,
			Principal: json.RawMessage(`{"username":"sony"}`), DeviceID: "4184", CertificateSerialNumber: "2033460265",
			IssuerDN: "CN=asm,O=KOBIL", Details: "key=KS.IP; owner=OWNER_DEVICE"},
		{ID: "a5", Namespace: nsA, User: logUser, Time: mustTime("2024-05-23T09:00:00Z"), Method: "13", Status: store.StatusFailure, StatusCode: 403,
			Category: store.CategoryUser, EntityKind: "users", EntityID: "team-a/sony", DeviceID: "4185",
			PreviousState: json.RawMessage(`{"role":"a"}`), CurrentState: json.RawMessage(`{"role":"b"}`)},
		{ID: "b1", Namespace: nsB, User: "carol", Time: mustTime("2024-05-21T12:00:00Z"), Method: "mask", API: "/mask", Status: store.StatusSuccess},
		{ID: "b2", Namespace: nsB, User: logUser, Time: mustTime("2024-05-23T08:00:00Z"), Method: "35", Status: store.StatusSuccess, Category: store.CategoryAccess},
	}
}

// caller is one identity and one way in.
type caller struct {
	name   string
	client *http.Client
	base   string
}

// viaKube calls through kube-apiserver (the aggregator) as user.
func viaKube(t *testing.T, user string) caller {
	t.Helper()
	cfg, ok := ts.users[user]
	if !ok {
		t.Fatalf("no user %q", user)
	}
	return caller{name: user + " via kube-apiserver", client: httpClient(t, cfg), base: strings.TrimSuffix(cfg.Host, "/")}
}

// direct calls our secure port as user ("" = no credentials).
func direct(t *testing.T, user string) caller {
	t.Helper()
	var cfg *rest.Config
	switch user {
	case "":
		cfg = &rest.Config{}
	case "sa":
		cfg = &rest.Config{BearerToken: ts.saToken}
	default:
		c, ok := ts.users[user]
		if !ok {
			t.Fatalf("no user %q", user)
		}
		cfg = rest.CopyConfig(c)
	}
	cfg.Host = ts.directURL
	// Trust exactly our serving CA.
	cfg.TLSClientConfig.CAData = ts.servingCAPEM
	cfg.TLSClientConfig.CAFile = ""
	c := httpClient(t, cfg)
	name := user
	if name == "" {
		name = "anonymous"
	}
	return caller{name: name + " direct", client: c, base: ts.directURL}
}

type result struct {
	code   int
	header http.Header
	body   []byte
}

func (c caller) do(t *testing.T, method, path string, body []byte, hdr ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s %s: %v", c.name, method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s %s: reading body: %v", c.name, method, path, err)
	}
	return result{code: resp.StatusCode, header: resp.Header, body: b}
}

func (c caller) get(t *testing.T, path string) result { return c.do(t, http.MethodGet, path, nil) }

// checkShape checks an error body's shape; "status" is kube-apiserver's own
// metav1.Status (its own RBAC denial), the others are ours.
func checkShape(t *testing.T, what string, r result, shape string) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Errorf("%s: body is not JSON: %v: %s", what, err, r.body)
		return
	}
	switch shape {
	case "protecto":
		e, _ := m["error"].(map[string]any)
		if m["data"] != nil || m["success"] != false || e == nil || e["message"] == "" || len(m) != 3 {
			t.Errorf("%s: want the Protecto error shape, got %s", what, r.body)
		}
	case "message":
		if msg, _ := m["message"].(string); msg == "" || len(m) != 1 {
			t.Errorf("%s: want {\"message\":…}, got %s", what, r.body)
		}
	case "kobil":
		if msg, _ := m["message"].(string); msg == "" || m["subSystem"] != float64(5) || m["status"] == "" || len(m) != 3 {
			t.Errorf("%s: want the KOBIL error shape, got %s", what, r.body)
		}
	case "status":
		if m["kind"] != "Status" {
			t.Errorf("%s: want a kube-apiserver Status, got %s", what, r.body)
		}
	default:
		t.Fatalf("unknown shape %q", shape)
	}
}

// readRoutes are the GET routes for tenant ns, with the shape of their
// errors; seed paths are relative and get prefixed by the caller.
func readRoutes(ns string) []struct{ path, shape string } {
	return []struct{ path, shape string }{
		{"/api/vault/reports/namespace-users-summary?namespace=" + ns + "&" + qDates, "protecto"},
		{"/namespace/reports/audit-details?namespace=" + ns + "&" + qDates, "protecto"},
		{"/network/audit/accounts/" + ns + "/userAccess?" + qRange, "message"},
		{"/network/audit/accounts/" + ns + "/userAccess/" + logUser + "?" + qRange, "message"},
		{"/network/audit/accounts/" + ns + "/users?" + qRange, "message"},
		{"/network/audit/accounts/" + ns + "/users/" + logUser + "?" + qRange, "message"},
		{"/auth/realms/" + ns + "/v3_user/" + logUser + "/logs", "kobil"},
		{"/digitanium/v4/user/" + logUser + "/logs?tenantId=" + ns, "kobil"},
	}
}

func namespacedRoutes(ns string) []struct{ path, shape string } {
	b := P + "/namespaces/" + ns
	return []struct{ path, shape string }{
		{b + "/namespaceuserssummaries?" + qDates, "protecto"},
		{b + "/auditdetails?" + qDates, "protecto"},
		{b + "/useraccess?" + qRange, "message"},
		{b + "/useraccess/" + logUser + "?" + qRange, "message"},
		{b + "/users?" + qRange, "message"},
		{b + "/users/" + logUser + "?" + qRange, "message"},
		{b + "/userlogs/" + logUser, "kobil"},
	}
}

// TestAuthorizationPerIdentity calls every read route with each identity
// and way in; "" in want means 200.
func TestAuthorizationPerIdentity(t *testing.T) {
	type want struct {
		code  int
		shape string
	}
	ok := want{code: 200}
	for _, tc := range []struct {
		name      string
		caller    caller
		ns        string
		seed      want // seed path under the prefix (via kube) or plain (direct)
		realms    want // /auth/realms: kube-apiserver wants auth/{tenant}
		namespace want // namespaced Kubernetes-shaped paths (via kube only)
	}{
		{"admin team-a", viaKube(t, "admin"), nsA, ok, ok, ok},
		{"admin team-b", viaKube(t, "admin"), nsB, ok, ok, ok},
		{"reader own namespace", viaKube(t, "reader"), nsA, ok, want{403, "status"}, ok},
		// kube-apiserver lets the seed paths through (auditops-seed-paths);
		// our own SubjectAccessReview denies the other tenant.
		{"reader other namespace", viaKube(t, "reader"), nsB, want{403, "own"}, want{403, "status"}, want{403, "status"}},
		{"no RBAC", viaKube(t, "nobody"), nsA, want{403, "status"}, want{403, "status"}, want{403, "status"}},
		{"reader direct own namespace", direct(t, "reader"), nsA, ok, ok, want{}},
		{"reader direct other namespace", direct(t, "reader"), nsB, want{403, "own"}, want{403, "own"}, want{}},
		{"no RBAC direct", direct(t, "nobody"), nsA, want{403, "own"}, want{403, "own"}, want{}},
		{"anonymous direct", direct(t, ""), nsA, want{401, "own"}, want{401, "own"}, want{}},
		{"service account direct", direct(t, "sa"), nsA, ok, ok, want{}},
		{"service account direct other namespace", direct(t, "sa"), nsB, want{403, "own"}, want{403, "own"}, want{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			viaKube := strings.Contains(tc.caller.name, "via kube")
			prefix := ""
			if viaKube {
				prefix = P
			}
			check := func(path, shape string, w want) {
				t.Helper()
				r := tc.caller.get(t, path)
				code := w.code
				if code == 0 {
					code = 200
				}
				if r.code != code {
					t.Errorf("GET %s: status %d, want %d: %s", path, r.code, code, r.body)
					return
				}
				if code == 200 {
					return
				}
				if w.shape == "own" {
					checkShape(t, "GET "+path, r, shape)
				} else {
					checkShape(t, "GET "+path, r, w.shape)
				}
				if code == 401 && shape == "kobil" && string(r.body) != `{"message":"HTTP 401 Unauthorized","status":"Unauthorized","subSystem":5}`+"\n" {
					t.Errorf("GET %s: KOBIL 401 body %s", path, r.body)
				}
			}
			for _, rt := range readRoutes(tc.ns) {
				w := tc.seed
				if strings.HasPrefix(rt.path, "/auth/realms/") {
					w = tc.realms
				}
				check(prefix+rt.path, rt.shape, w)
			}
			if viaKube {
				for _, rt := range namespacedRoutes(tc.ns) {
					check(rt.path, rt.shape, tc.namespace)
				}
			}
		})
	}
}

// TestUnauthenticated: no or spoofed credentials straight to our port are
// 401 in each endpoint's shape; probes stay open.
func TestUnauthenticated(t *testing.T) {
	anon := direct(t, "")
	for _, tc := range []struct{ method, path, shape string }{
		{"GET", "/api/vault/reports/namespace-users-summary?namespace=team-a&" + qDates, "protecto"},
		{"GET", "/namespace/reports/audit-details?" + qDates, "protecto"},
		{"GET", "/network/audit/accounts/team-a/users?" + qRange, "message"},
		{"GET", "/digitanium/v4/user/sony/logs?tenantId=team-a", "kobil"},
		{"GET", P + "/namespaces/team-a/userlogs/sony", "kobil"},
		{"POST", "/ingest/v1/events", "message"},
		{"POST", "/ingest/v1/kube-audit", "message"},
		{"POST", P + "/namespaces/team-a/events", "message"},
		{"GET", P, "status"},
		{"GET", "/apis", "status"},
	} {
		for _, spoof := range []bool{false, true} {
			var hdr []string
			if spoof {
				// Front-proxy headers count only with the proxy's client
				// certificate.
				hdr = []string{"X-Remote-User", "admin", "X-Remote-Group", "system:masters"}
			}
			r := anon.do(t, tc.method, tc.path, nil, hdr...)
			// Ingest without a certificate is 503 in the client-CA warm-up
			// (a webhook may have withheld its certificate), 401 after.
			if age := time.Since(ts.started); tc.method == http.MethodPost && age < clientCAWarmup+5*time.Second &&
				r.code == http.StatusServiceUnavailable && strings.Contains(string(r.body), clientCAsLoadingMessage) {
				continue
			} else if tc.method == http.MethodPost && age < clientCAWarmup-5*time.Second {
				t.Errorf("%s %s (spoofed %v) %s after the start: status %d, want 503 in the warm-up: %s", tc.method, tc.path, spoof, age, r.code, r.body)
				continue
			}
			if r.code != http.StatusUnauthorized {
				t.Errorf("%s %s (spoofed %v): status %d, want 401: %s", tc.method, tc.path, spoof, r.code, r.body)
				continue
			}
			checkShape(t, tc.path, r, tc.shape)
		}
	}
	bad := direct(t, "")
	r := bad.do(t, "GET", "/network/audit/accounts/team-a/users?"+qRange, nil, "Authorization", "Bearer not-a-token")
	if r.code != http.StatusUnauthorized {
		t.Errorf("invalid token: status %d, want 401: %s", r.code, r.body)
	}
	for _, p := range []string{"/healthz", "/livez", "/readyz"} {
		if r := anon.get(t, p); r.code != 200 {
			t.Errorf("GET %s without credentials: %d %s", p, r.code, r.body)
		}
	}
}

// TestResponses checks the bodies and headers byte for byte.
func TestResponses(t *testing.T) {
	admin := viaKube(t, "admin")
	t.Run("summary", func(t *testing.T) {
		want := `{"data":{"details":[` +
			`{"date":"2024-05-21","api_type":"/mask","status":"success","user":"alice@example.com","logged_in_time":600,"count":2},` +
			`{"date":"2024-05-22","api_type":"/unmask","status":"failure","user":"bob@example.com","logged_in_time":0,"count":1}` +
			`],"next_page_token":""},"success":true,"error":{"message":""}}` + "\n"
		for _, p := range []string{P + "/api/vault/reports/namespace-users-summary?namespace=team-a&" + qDates, P + "/namespaces/team-a/namespaceuserssummaries?" + qDates} {
			r := admin.get(t, p)
			if r.code != 200 || string(r.body) != want || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
				t.Errorf("GET %s: %d %s\n got %s\nwant %s", p, r.code, r.header.Get("Content-Type"), r.body, want)
			}
		}
	})
	t.Run("audit details", func(t *testing.T) {
		r := admin.get(t, P+"/namespaces/team-a/auditdetails?"+qDates)
		var body struct {
			Data struct {
				Details []struct {
					Method   string          `json:"requested_method"`
					User     string          `json:"requested_user"`
					Status   string          `json:"status"`
					Input    json.RawMessage `json:"input_payload"`
					Response json.RawMessage `json:"response"`
					Time     string          `json:"requested_time"`
					ErrorLog *string         `json:"error_log"`
				} `json:"details"`
				Next *string `json:"next_page_token"`
			} `json:"data"`
			Success bool `json:"success"`
			Error   struct {
				Message *string `json:"message"`
			} `json:"error"`
		}
		if r.code != 200 {
			t.Fatalf("status %d: %s", r.code, r.body)
		}
		if err := json.Unmarshal(r.body, &body); err != nil {
			t.Fatal(err)
		}
		var times []string
		for _, d := range body.Data.Details {
			times = append(times, d.Time)
		}
		if !slices.Equal(times, []string{"2024-05-21 10:00:00", "2024-05-21 10:10:00", "2024-05-22 23:59:59"}) {
			t.Errorf("requested_time %v", times)
		}
		d := body.Data.Details
		if len(d) == 3 && (string(d[0].Input) != `{"mask":[{"value":"George"}]}` || d[0].ErrorLog != nil || d[2].ErrorLog == nil || *d[2].ErrorLog != "boom" || d[2].Status != "failure") {
			t.Errorf("details %s", r.body)
		}
		if !body.Success || body.Data.Next == nil || *body.Data.Next != "" || body.Error.Message == nil || !bytes.Contains(r.body, []byte(`"success":true`)) {
			t.Errorf("envelope %s", r.body)
		}
	})
	t.Run("csv", func(t *testing.T) {
		for _, tc := range []struct{ path, want string }{
			{P + "/network/audit/accounts/team-a/userAccess?" + qRange, "a4,sessions,team-a/s1,2024-05-23T08:00:00.123Z,\"{\"\"username\"\":\"\"sony\"\"}\",\"login, \"\"quoted\"\"\",,\r\n"},
			{P + "/namespaces/team-a/users/sony?" + qRange, "a5,users,team-a/sony,2024-05-23T09:00:00.000Z,,,\"{\"\"role\"\":\"\"a\"\"}\",\"{\"\"role\"\":\"\"b\"\"}\"\r\n"},
		} {
			r := admin.get(t, tc.path)
			want := "MessageKey,EntityKey,EntityId,When,Principal,Message,PreviousState,CurrentState\r\n" + tc.want
			if r.code != 200 || string(r.body) != want {
				t.Errorf("GET %s: %d\n got %q\nwant %q", tc.path, r.code, r.body, want)
			}
			if r.header.Get("Content-Type") != "text/csv" || r.header.Get("totalRecords") != "1" ||
				r.header.Get("nextcontinuationtoken") != "" || r.header.Get("nextfromdate") != "" {
				t.Errorf("GET %s: headers %v", tc.path, r.header)
			}
			if _, ok := r.header[http.CanonicalHeaderKey("nextcontinuationtoken")]; !ok {
				t.Errorf("GET %s: nextcontinuationtoken header missing on the last page", tc.path)
			}
		}
	})
	t.Run("user logs", func(t *testing.T) {
		want := `{"data":{"moreResultsAvailable":true,"reportingFilterUsed":{"deviceId":"null","limit":1,"offset":0,"userId":"sony"},"reportingInfoItems":[` +
			`{"action":"13","archived":false,"deviceId":"4185","id":%d,"logDate":"%d","status":"403","userId":"sony"}` +
			`]},"message":"Logs fetched successfully","status":"OK","subSystem":5}` + "\n"
		page, err := ts.st.UserLogs(context.Background(), store.UserLogsQuery{Namespace: nsA, User: logUser, Limit: 2})
		if err != nil || len(page.Events) != 2 {
			t.Fatalf("store: %v %v", page, err)
		}
		want = fmt.Sprintf(want, page.Events[0].Seq, mustTime("2024-05-23T09:00:00Z").Unix())
		for _, p := range []string{P + "/auth/realms/team-a/v3_user/sony/logs?limit=1", P + "/digitanium/v4/user/sony/logs?limit=1&tenantId=team-a", P + "/namespaces/team-a/userlogs/sony?limit=1"} {
			r := admin.get(t, p)
			if r.code != 200 || string(r.body) != want {
				t.Errorf("GET %s: %d\n got %s\nwant %s", p, r.code, r.body, want)
			}
		}
		r := admin.get(t, P+"/namespaces/team-a/userlogs/sony?offset=1&deviceId=4184")
		if r.code != 200 || !bytes.Contains(r.body, []byte(`"reportingFilterUsed":{"deviceId":"4184","limit":10,"offset":1,"userId":"sony"},"reportingInfoItems":[]`)) ||
			!bytes.Contains(r.body, []byte(`"moreResultsAvailable":false`)) {
			t.Errorf("deviceId filter: %d %s", r.code, r.body)
		}
		r = admin.get(t, P+"/namespaces/team-a/userlogs/nobody-here")
		if r.code != 404 || string(r.body) != `{"message":"User does not exist","status":"USER_NOT_FOUND","subSystem":5}`+"\n" {
			t.Errorf("unknown user: %d %s", r.code, r.body)
		}
	})
	t.Run("service account namespace", func(t *testing.T) {
		r := direct(t, "sa").get(t, "/namespace/reports/audit-details?"+qDates)
		if r.code != 200 || !bytes.Contains(r.body, []byte(`"requested_user":"alice@example.com"`)) || bytes.Contains(r.body, []byte("carol")) {
			t.Errorf("audit details of the token's namespace: %d %s", r.code, r.body)
		}
	})
}

// TestBadInput is the bad-input table of spec/API.md: every 400 names the
// parameter, in the endpoint's shape.
func TestBadInput(t *testing.T) {
	admin := viaKube(t, "admin")
	sum := P + "/api/vault/reports/namespace-users-summary?namespace=team-a&"
	det := P + "/namespaces/team-a/auditdetails?"
	net := P + "/network/audit/accounts/team-a/userAccess?"
	logs := P + "/namespaces/team-a/userlogs/sony?"
	for _, tc := range []struct{ path, param, shape string }{
		{P + "/api/vault/reports/namespace-users-summary?" + qDates, "namespace", "protecto"},
		{sum + "end_date=2024-05-22+23:59:59", "start_date", "protecto"},
		{sum + "start_date=2024-05-21+00:00:00", "end_date", "protecto"},
		{sum + "start_date=2024-05-22+28:23:32&end_date=2024-05-23+00:00:00", "start_date", "protecto"},
		{sum + "start_date=2024-05-21&end_date=2024-05-23+00:00:00", "start_date", "protecto"},
		{sum + "start_date=2024-05-21T00:00:00&end_date=2024-05-23+00:00:00", "start_date", "protecto"},
		{sum + "start_date=2024-05-21+00:00:00&end_date=2024-02-30+00:00:00", "end_date", "protecto"},
		{sum + "start_date=2024-05-22+00:00:00&end_date=2024-05-21+23:59:59", "end_date", "protecto"},
		{sum + qDates + "&page_size=0", "page_size", "protecto"},
		{sum + qDates + "&page_size=1001", "page_size", "protecto"},
		{sum + qDates + "&page_size=ten", "page_size", "protecto"},
		{sum + qDates + "&page_size=1.5", "page_size", "protecto"},
		{sum + qDates + "&next_page_token=not-a-token", "next_page_token", "protecto"},
		{P + "/namespace/reports/audit-details?" + qDates, "namespace", "protecto"},
		{det + qDates + "&namespace=team-b", "namespace", "protecto"},
		{det + "start_date=2024-05-21+00:00:00&end_date=2024-05-22+23:59:60", "end_date", "protecto"},
		{det + qDates + "&page_size=-1", "page_size", "protecto"},
		{net + "toDate=2024-05-25", "fromDate", "message"},
		{net + "fromDate=2024-05-20", "toDate", "message"},
		{net + "fromDate=yesterday&toDate=2024-05-25", "fromDate", "message"},
		{net + "fromDate=2024-05-20&toDate=2024-13-01", "toDate", "message"},
		{net + "fromDate=2024-05-20T10:00:00Z&toDate=2024-05-20T10:00:00Z", "toDate", "message"},
		{net + qRange + "&pageSize=0", "pageSize", "message"},
		{net + qRange + "&pageSize=10001", "pageSize", "message"},
		{net + qRange + "&pageSize=x", "pageSize", "message"},
		{net + qRange + "&nextContinuationToken=AAAA", "nextContinuationToken", "message"},
		{logs + "limit=0", "limit", "kobil"},
		{logs + "limit=1001", "limit", "kobil"},
		{logs + "limit=many", "limit", "kobil"},
		{logs + "offset=-1", "offset", "kobil"},
		{logs + "offset=1e3", "offset", "kobil"},
		{P + "/digitanium/v4/user/sony/logs", "tenantId", "kobil"},
	} {
		r := admin.get(t, tc.path)
		if r.code != http.StatusBadRequest {
			t.Errorf("GET %s: status %d, want 400: %s", tc.path, r.code, r.body)
			continue
		}
		checkShape(t, tc.path, r, tc.shape)
		if !bytes.Contains(r.body, []byte(tc.param)) {
			t.Errorf("GET %s: message does not name %s: %s", tc.path, tc.param, r.body)
		}
		if tc.shape == "kobil" && !bytes.Contains(r.body, []byte(`"status":"BAD_REQUEST"`)) {
			t.Errorf("GET %s: KOBIL 400 status: %s", tc.path, r.body)
		}
	}
	// Valid edge values are accepted, not clamped or refused.
	for _, p := range []string{
		sum + qDates + "&page_size=1000", sum + qDates + "&page_size=",
		net + qRange + "&pageSize=10000", net + "fromDate=2024-05-20T00:00:00%2B02:00&toDate=2024-05-25T00:00:00.5Z",
		logs + "limit=1000&offset=0",
	} {
		if r := admin.get(t, p); r.code != 200 {
			t.Errorf("GET %s: status %d: %s", p, r.code, r.body)
		}
	}
}

// TestPageTokens: a token is bound to its view, tenant, filters and page
// size; anything else, or a tampered one, is 400.
func TestPageTokens(t *testing.T) {
	admin := viaKube(t, "admin")
	first := admin.get(t, P+"/namespaces/team-a/auditdetails?"+qDates+"&page_size=1")
	var env struct {
		Data struct {
			Next string `json:"next_page_token"`
		} `json:"data"`
	}
	if err := json.Unmarshal(first.body, &env); err != nil || env.Data.Next == "" {
		t.Fatalf("first page: %v %s", err, first.body)
	}
	tok := env.Data.Next
	flipped := []byte(tok)
	i := len(flipped) / 2
	if flipped[i] == 'A' {
		flipped[i] = 'B'
	} else {
		flipped[i] = 'A'
	}
	// Two access rows, so the CSV view's first page has a token.
	if _, err := ts.st.Insert(context.Background(), []store.Event{
		{ID: "t1", Namespace: "tokens", User: "u", Time: mustTime("2024-05-21T00:00:00Z"), Status: store.StatusSuccess, Category: store.CategoryAccess},
		{ID: "t2", Namespace: "tokens", User: "u", Time: mustTime("2024-05-21T00:00:01Z"), Status: store.StatusSuccess, Category: store.CategoryAccess},
	}); err != nil {
		t.Fatal(err)
	}
	csv := admin.get(t, P+"/namespaces/tokens/useraccess?"+qRange+"&pageSize=1")
	csvTok := csv.header.Get("nextcontinuationtoken")
	if csv.code != 200 || csvTok == "" {
		t.Fatalf("csv page: %d %v %s", csv.code, csv.header, csv.body)
	}
	for _, tc := range []struct{ name, path, param string }{
		{"tampered", P + "/namespaces/team-a/auditdetails?" + qDates + "&page_size=1&next_page_token=" + string(flipped), "next_page_token"},
		{"other tenant", P + "/namespaces/team-b/auditdetails?" + qDates + "&page_size=1&next_page_token=" + tok, "next_page_token"},
		{"other page size", P + "/namespaces/team-a/auditdetails?" + qDates + "&page_size=2&next_page_token=" + tok, "next_page_token"},
		{"other range", P + "/namespaces/team-a/auditdetails?start_date=2024-05-21+00:00:01&end_date=2024-05-22+23:59:59&page_size=1&next_page_token=" + tok, "next_page_token"},
		{"other view", P + "/namespaces/team-a/namespaceuserssummaries?" + qDates + "&page_size=1&next_page_token=" + tok, "next_page_token"},
		{"useraccess token on users", P + "/namespaces/tokens/users?" + qRange + "&pageSize=1&nextContinuationToken=" + url.QueryEscape(csvTok), "nextContinuationToken"},
	} {
		r := admin.get(t, tc.path)
		if r.code != http.StatusBadRequest || !bytes.Contains(r.body, []byte(tc.param)) {
			t.Errorf("%s: %d %s", tc.name, r.code, r.body)
		}
	}
	// The good token works.
	if r := admin.get(t, P+"/namespaces/team-a/auditdetails?"+qDates+"&page_size=1&next_page_token="+tok); r.code != 200 {
		t.Errorf("next page: %d %s", r.code, r.body)
	}
}

// TestPageWalkWithIngest walks the CSV view page by page while events are
// ingested through the API ahead of and behind the cursor: every original
// row once, the row ahead once, the row behind never.
func TestPageWalkWithIngest(t *testing.T) {
	admin := viaKube(t, "admin")
	const ns = "walk"
	base := mustTime("2024-06-01T00:00:00Z")
	var batch []map[string]any
	for i := range 10 {
		batch = append(batch, map[string]any{"id": fmt.Sprintf("w%02d", i), "namespace": ns, "user": "u", "status": "success",
			"category": "access", "time": base.Add(time.Duration(i) * time.Minute).Format(time.RFC3339Nano)})
	}
	body, _ := json.Marshal(batch)
	if r := admin.do(t, "POST", P+"/namespaces/"+ns+"/events", body); r.code != 200 {
		t.Fatalf("ingest: %d %s", r.code, r.body)
	}
	seen := map[string]int{}
	var order []string
	tok := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("too many pages")
		}
		p := P + "/network/audit/accounts/" + ns + "/userAccess?fromDate=2024-05-31&toDate=2024-06-02&pageSize=3"
		if tok != "" {
			p += "&nextContinuationToken=" + url.QueryEscape(tok)
		}
		r := admin.get(t, p)
		if r.code != 200 {
			t.Fatalf("page %d: %d %s", pages, r.code, r.body)
		}
		lines := strings.Split(strings.TrimSuffix(string(r.body), "\r\n"), "\r\n")[1:]
		for _, l := range lines {
			id := strings.SplitN(l, ",", 2)[0]
			seen[id]++
			order = append(order, id)
		}
		if pages == 0 {
			mid, _ := json.Marshal([]map[string]any{
				{"id": "ahead", "namespace": ns, "user": "u", "status": "success", "category": "access", "time": base.Add(30 * time.Minute).Format(time.RFC3339Nano)},
				{"id": "behind", "namespace": ns, "user": "u", "status": "success", "category": "access", "time": base.Add(-time.Minute).Format(time.RFC3339Nano)},
			})
			if r := admin.do(t, "POST", P+"/ingest/v1/events", mid); r.code != 200 {
				t.Fatalf("ingest mid-walk: %d %s", r.code, r.body)
			}
		}
		tok = r.header.Get("nextcontinuationtoken")
		from := r.header.Get("nextfromdate")
		if tok == "" {
			if from != "" {
				t.Errorf("last page with nextfromdate %q", from)
			}
			break
		}
		if from == "" {
			t.Errorf("page %d: nextcontinuationtoken without nextfromdate", pages)
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("row %s seen %d times", id, n)
		}
	}
	if len(seen) != 11 || seen["ahead"] != 1 || seen["behind"] != 0 {
		t.Errorf("rows %v, want w00..w09 and ahead", order)
	}
}

// TestIngestRoutes: the ingest routes, authorized per namespace by our
// server wherever the request comes from.
func TestIngestRoutes(t *testing.T) {
	ev := func(id, ns string) []byte {
		b, _ := json.Marshal([]map[string]any{{"id": id, "namespace": ns, "user": "ingest-test", "status": "success", "time": "2024-07-01T00:00:00Z"}})
		return b
	}
	kubeAudit := []byte(`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[{"level":"Metadata","auditID":"k1","stage":"ResponseComplete",` +
		`"requestURI":"/api/v1/namespaces/team-a/pods","verb":"list","user":{"username":"alice"},"objectRef":{"resource":"pods","namespace":"team-a","apiVersion":"v1"},` +
		`"responseStatus":{"code":200},"requestReceivedTimestamp":"2024-07-01T00:00:00.000000Z","stageTimestamp":"2024-07-01T00:00:00.100000Z"}]}`)
	reader, admin, nobody := viaKube(t, "reader"), viaKube(t, "admin"), direct(t, "nobody")
	for _, tc := range []struct {
		name   string
		c      caller
		path   string
		body   []byte
		code   int
		shape  string
		reason string
	}{
		{"reader namespaced own", reader, P + "/namespaces/team-a/events", ev("i1", nsA), 200, "", ""},
		{"reader namespaced, event of another namespace", reader, P + "/namespaces/team-a/events", ev("i2", nsB), 400, "message", "namespace"},
		{"reader namespaced other", reader, P + "/namespaces/team-b/events", ev("i3", nsB), 403, "status", ""},
		{"reader seed path own", reader, P + "/ingest/v1/events", ev("i4", nsA), 200, "", ""},
		{"reader seed path other", reader, P + "/ingest/v1/events", ev("i5", nsB), 403, "message", "team-b"},
		{"reader cluster events", reader, P + "/events", ev("i6", nsA), 403, "status", ""},
		{"reader kube-audit", reader, P + "/ingest/v1/kube-audit", kubeAudit, 403, "message", "cluster"},
		{"admin kube-audit", admin, P + "/ingest/v1/kube-audit", kubeAudit, 200, "", ""},
		{"admin cluster events", admin, P + "/events", ev("i7", nsB), 200, "", ""},
		{"admin malformed", admin, P + "/ingest/v1/events", []byte(`[{"id":`), 400, "message", ""},
		{"nobody direct", nobody, "/ingest/v1/events", ev("i8", nsA), 403, "message", ""},
		{"admin direct too large", direct(t, "admin"), "/ingest/v1/events", bytes.Repeat([]byte(" "), 70<<10), 413, "message", ""},
	} {
		r := tc.c.do(t, "POST", tc.path, tc.body)
		if r.code != tc.code {
			t.Errorf("%s: status %d, want %d: %s", tc.name, r.code, tc.code, r.body)
			continue
		}
		if tc.shape != "" {
			checkShape(t, tc.name, r, tc.shape)
		}
		if !bytes.Contains(r.body, []byte(tc.reason)) {
			t.Errorf("%s: body does not mention %q: %s", tc.name, tc.reason, r.body)
		}
	}
	ok, err := ts.st.UserExists(context.Background(), nsA, "ingest-test")
	if err != nil || !ok {
		t.Errorf("ingested events not stored: %v %v", ok, err)
	}
	if ok, _ := ts.st.UserExists(context.Background(), nsB, "ingest-test"); !ok {
		t.Errorf("admin's cluster-wide ingest not stored")
	}
	if ok, _ := ts.st.UserExists(context.Background(), nsA, "alice"); !ok {
		t.Errorf("kube-audit event not stored")
	}
}

// TestDiscovery: the group and its resources through kube-apiserver, in
// both discovery formats, so kubectl api-resources and RBAC tooling work.
func TestDiscovery(t *testing.T) {
	dc, err := discovery.NewDiscoveryClientForConfig(ts.users["nobody"])
	if err != nil {
		t.Fatal(err)
	}
	readVerbs := []string{"get", "list"}
	want := map[string][]string{
		resSummaries: readVerbs, resAuditDetails: readVerbs, resUserAccess: readVerbs,
		resUsers: readVerbs, resUserLogs: readVerbs, resEvents: {"create"},
		resCheckpoints: {"list"}, resLeaves: {"list"}, resProofs: {"list"},
	}
	check := func(what string, list *metav1.APIResourceList) {
		t.Helper()
		got := map[string][]string{}
		for _, r := range list.APIResources {
			if !r.Namespaced || r.Kind == "" {
				t.Errorf("%s: %s: namespaced %v kind %q", what, r.Name, r.Namespaced, r.Kind)
			}
			got[r.Name] = r.Verbs
		}
		if len(got) != len(want) {
			t.Errorf("%s: resources %v, want %v", what, got, want)
		}
		for name, verbs := range want {
			if !slices.Equal(got[name], verbs) {
				t.Errorf("%s: %s verbs %v, want %v", what, name, got[name], verbs)
			}
		}
	}
	// Legacy per-version document.
	list, err := dc.ServerResourcesForGroupVersion(Group + "/" + Version)
	if err != nil {
		t.Fatalf("resources: %v", err)
	}
	check("APIResourceList", list)
	// Aggregated discovery (what kubectl api-resources uses).
	groups, lists, err := dc.ServerGroupsAndResources()
	if err != nil {
		t.Fatalf("ServerGroupsAndResources: %v", err)
	}
	if !slices.ContainsFunc(groups, func(g *metav1.APIGroup) bool { return g.Name == Group }) {
		t.Errorf("group %s not in /apis", Group)
	}
	found := false
	for _, l := range lists {
		if l.GroupVersion == Group+"/"+Version {
			found = true
			check("aggregated", l)
		}
	}
	if !found {
		t.Errorf("aggregated discovery lacks %s/%s", Group, Version)
	}
	// The group document and our own /apis.
	r := viaKube(t, "nobody").get(t, groupPath)
	var g metav1.APIGroup
	if err := json.Unmarshal(r.body, &g); r.code != 200 || err != nil || g.Name != Group || g.PreferredVersion.Version != Version {
		t.Errorf("GET %s: %d %s", groupPath, r.code, r.body)
	}
	r = direct(t, "nobody").get(t, "/apis")
	var gl metav1.APIGroupList
	if err := json.Unmarshal(r.body, &gl); r.code != 200 || err != nil || len(gl.Groups) != 1 || gl.Groups[0].Name != Group {
		t.Errorf("GET /apis direct: %d %s", r.code, r.body)
	}
}

// TestSelfSignedAndReadiness runs a second server without certificate
// files: its generated certificate names the configured Service, and its
// readyz follows the store.
func TestSelfSignedAndReadiness(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.New(ctx, filepath.Join(t.TempDir(), "audit.db"), store.Options{TokenKey: []byte("apiserver-test-token-key-0123456789")})
	if err != nil {
		t.Fatal(err)
	}
	o := NewOptions()
	o.ServiceName, o.ServiceNamespace = "custom-api", "ops"
	stop, port, err := startServer(ctx, o, ts.kubeconfig, st)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	addr := "127.0.0.1:" + strconv.Itoa(port)
	var conn *tls.Conn
	eventuallyOK(t, func() error {
		conn, err = tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // reading the certificate is the point
		return err
	})
	leaf := conn.ConnectionState().PeerCertificates[0]
	conn.Close()
	if err := leaf.VerifyHostname("custom-api.ops.svc"); err != nil {
		t.Errorf("self-signed certificate: %v (DNS names %v)", err, leaf.DNSNames)
	}
	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // probes, like the kubelet's
	probe := func(p string) int {
		resp, err := insecure.Get("https://" + addr + p)
		if err != nil {
			t.Fatalf("GET %s: %v", p, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	eventuallyOK(t, func() error {
		if c := probe("/readyz"); c != 200 {
			return fmt.Errorf("readyz %d", c)
		}
		return nil
	})
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if c := probe("/readyz"); c != http.StatusInternalServerError {
		t.Errorf("readyz with the store closed: %d, want 500", c)
	}
	if c := probe("/livez"); c != 200 {
		t.Errorf("livez with the store closed: %d, want 200", c)
	}
}

func eventuallyOK(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestFlags: the options parse from the manager's flag set, as main.go
// registers them.
func TestFlags(t *testing.T) {
	o := NewOptions()
	fs := pflag.NewFlagSet("manager", pflag.ContinueOnError)
	o.AddFlags(fs)
	err := fs.Parse([]string{"--secure-port=9443", "--tls-cert-file=/c.crt", "--tls-private-key-file=/c.key",
		"--authentication-skip-lookup", "--tenant-host-suffix=.audit.example.com", "--apiserver-service-name=x",
		"--requestheader-allowed-names=a,b"})
	if err != nil {
		t.Fatal(err)
	}
	if o.SecureServing.BindPort != 9443 || o.SecureServing.ServerCert.CertKey.CertFile != "/c.crt" ||
		!o.Authentication.SkipInClusterLookup || o.TenantHostSuffix != ".audit.example.com" || o.ServiceName != "x" ||
		!slices.Equal(o.Authentication.RequestHeader.AllowedNames, []string{"a", "b"}) {
		t.Errorf("parsed options: %+v", o)
	}
	if err := o.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	if NewOptions().SecureServing.BindPort != DefaultSecurePort {
		t.Errorf("default port")
	}
	o.TenantHostSuffix = "audit.example.com"
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "tenant-host-suffix") {
		t.Errorf("Validate accepted a suffix without a dot: %v", err)
	}
}

// TestHostTenant: --tenant-host-suffix takes the tenant from the Host.
func TestHostTenant(t *testing.T) {
	s := &Server{tenantHostSuffix: ".audit.example.com"}
	for host, want := range map[string]string{
		"acme.audit.example.com":      "acme",
		"ACME.audit.example.com:8443": "acme",
		"x.acme.audit.example.com":    "x",
		"audit.example.com":           "",
		"acme.other.com":              "",
	} {
		got, ok := s.hostTenant(&http.Request{Host: host})
		if got != want || ok != (want != "") {
			t.Errorf("Host %q: tenant %q %v, want %q", host, got, ok, want)
		}
	}
	if _, ok := (&Server{}).hostTenant(&http.Request{Host: "acme.audit.example.com"}); ok {
		t.Error("suffix off, yet a tenant from the Host")
	}
}
