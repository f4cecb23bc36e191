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

package ingesthttp

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"github.com/auditops/auditops/internal/ingest"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditops/auditops/internal/store"
)

// post sends body to the server and decodes the JSON answer.
func post(t *testing.T, url, contentType string, body []byte) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (int, http.Header, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("answer %d is not JSON: %q", resp.StatusCode, raw)
	}
	return resp.StatusCode, resp.Header, m
}

func wantResult(t *testing.T, m map[string]any, received, stored, duplicates, skipped int) {
	t.Helper()
	want := map[string]any{"received": float64(received), "stored": float64(stored), "duplicates": float64(duplicates), "skipped": float64(skipped)}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("result %v, want %v", m, want)
	}
}

func TestKubeAuditIngest(t *testing.T) {
	st := newTestStore(t)
	srv := httptest.NewServer(NewHandler(ingest.NewService(st, ingest.Options{}), Options{}))
	defer srv.Close()

	body := webhookBody(8, "k") // 4 ResponseComplete, 4 RequestReceived
	code, _, m := post(t, srv.URL+KubeAuditPath, "application/json", body)
	if code != http.StatusOK {
		t.Fatalf("status %d: %v", code, m)
	}
	wantResult(t, m, 8, 4, 0, 4)

	// The webhook retries a batch it got no answer for: a no-op.
	code, _, m = post(t, srv.URL+KubeAuditPath, "application/json", body)
	if code != http.StatusOK {
		t.Fatalf("re-post: status %d: %v", code, m)
	}
	wantResult(t, m, 8, 0, 4, 4)

	// Events i=0,2,4,6 are ResponseComplete in namespaces team-0 and team-2.
	got := storedEvents(t, st, "team-0")
	if len(got) != 2 {
		t.Fatalf("team-0 holds %d events, want 2", len(got))
	}
	e := got[0]
	if e.ID != "k-0" || e.User != "system:serviceaccount:team-0:deployer" || e.API != "/configmaps" ||
		e.EntityID != "team-0/cm-0" || e.Method != "update" || e.Status != store.StatusSuccess || e.StatusCode != 200 ||
		e.Category != store.CategoryData || e.DeviceID != "10.244.0.0" || e.Message != "system:serviceaccount:team-0:deployer update configmaps team-0/cm-0: 200" ||
		!e.Time.Equal(time.Date(2026, 11, 22, 8, 15, 30, 131592000, time.UTC)) || e.Seq == 0 {
		t.Errorf("stored event %+v", e)
	}
	if len(storedEvents(t, st, "team-2")) != 2 {
		t.Errorf("team-2 should hold 2 events")
	}
}

func TestGenericIngest(t *testing.T) {
	st := newTestStore(t)
	srv := httptest.NewServer(NewHandler(ingest.NewService(st, ingest.Options{}), Options{}))
	defer srv.Close()

	ndjson := eventsBody(6, "g") // namespaces tenant-0..2, two each
	var arr bytes.Buffer
	arr.WriteString("[")
	for i, line := range bytes.Split(bytes.TrimSpace(eventsBody(6, "a")), []byte("\n")) {
		if i > 0 {
			arr.WriteString(",\n")
		}
		arr.Write(line)
	}
	arr.WriteString("]")

	tests := []struct {
		name, contentType string
		body              []byte
		stored, dups      int
	}{
		{"ndjson", "application/x-ndjson", ndjson, 6, 0},
		{"ndjson again is a no-op", "application/x-ndjson", ndjson, 0, 6},
		{"array", "application/json", arr.Bytes(), 6, 0},
		{"array again, no content type, sniffed", "", arr.Bytes(), 0, 6},
		{"ndjson labelled json, sniffed", "application/json; charset=utf-8", ndjson, 0, 6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, m := post(t, srv.URL+EventsPath, tc.contentType, tc.body)
			if code != http.StatusOK {
				t.Fatalf("status %d: %v", code, m)
			}
			wantResult(t, m, 6, tc.stored, tc.dups, 0)
		})
	}
	got := storedEvents(t, st, "tenant-1")
	if len(got) != 4 {
		t.Fatalf("tenant-1 holds %d events, want 4", len(got))
	}
	if got[0].ID != "a-1" && got[0].ID != "g-1" || got[0].User != "user1@example.com" || got[0].Time.Nanosecond() != 123456789 {
		t.Errorf("stored %+v", got[0])
	}

	// An empty batch is fine and touches nothing.
	code, _, m := post(t, srv.URL+EventsPath, "application/json", []byte("[]"))
	if code != http.StatusOK {
		t.Fatalf("empty batch: %d %v", code, m)
	}
	wantResult(t, m, 0, 0, 0, 0)
}

func TestIngestBadRequests(t *testing.T) {
	st := newTestStore(t)
	srv := httptest.NewServer(NewHandler(ingest.NewService(st, ingest.Options{}), Options{}))
	defer srv.Close()

	good := func(id string) string {
		return `{"id":"` + id + `","time":"2024-05-22T10:00:00Z","namespace":"bad-tenant","user":"u"}`
	}
	kubeItem := `{"auditID":"ok-1","stage":"ResponseComplete","verb":"get","user":{"username":"a"},"objectRef":{"resource":"pods","namespace":"bad-tenant"},"stageTimestamp":"2024-05-22T10:00:00.000001Z"}`
	tests := []struct {
		name, path, contentType, body string
		want                          string
	}{
		{"array: missing user at index 2", EventsPath, "application/json",
			"[" + good("b1") + "," + good("b2") + `,{"id":"b3","time":"2024-05-22T10:00:00Z","namespace":"bad-tenant"}]`,
			`index 2: field "user": is required`},
		{"array: bad status at index 1", EventsPath, "application/json",
			"[" + good("b1") + `,{"id":"b2","time":"2024-05-22T10:00:00Z","namespace":"bad-tenant","user":"u","status":"fine"}]`,
			`index 1: field "status"`},
		{"array: bad JSON at index 1", EventsPath, "application/json",
			"[" + good("b1") + `,{"id":"b2",}]`, `index 1: invalid JSON`},
		{"array: truncated", EventsPath, "application/json", "[" + good("b1") + ",", `unexpected end of JSON`},
		{"ndjson: missing id on line 3", EventsPath, "application/x-ndjson",
			good("b1") + "\n" + good("b2") + "\n" + `{"time":"2024-05-22T10:00:00Z","namespace":"bad-tenant","user":"u"}` + "\n",
			`line 3: field "id": is required`},
		{"ndjson: bad time on line 2", EventsPath, "application/x-ndjson",
			good("b1") + "\n" + `{"id":"b2","time":"22/05/2024","namespace":"bad-tenant","user":"u"}`,
			`line 2: field "time"`},
		{"ndjson: bad category on line 1", EventsPath, "",
			`{"id":"b1","time":"2024-05-22T10:00:00Z","namespace":"bad-tenant","user":"u","category":"other"}`,
			`line 1: field "category"`},
		{"ndjson: missing namespace on line 2", EventsPath, "application/x-ndjson",
			good("b1") + "\n" + `{"id":"b2","time":"2024-05-22T10:00:00Z","user":"u"}`, `line 2: field "namespace": is required`},
		{"ndjson: statusCode type on line 2", EventsPath, "application/x-ndjson",
			good("b1") + "\n" + `{"id":"b2","time":"2024-05-22T10:00:00Z","namespace":"bad-tenant","user":"u","statusCode":"x"}`,
			`line 2: field "statusCode": expected an integer`},
		{"kube: missing auditID at items[1]", KubeAuditPath, "application/json",
			`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[` + kubeItem + `,{"stage":"ResponseComplete","verb":"get","user":{"username":"a"},"stageTimestamp":"2024-05-22T10:00:00.000001Z"}]}`,
			`items[1]: field "auditID": is required`},
		{"kube: type error at items[1]", KubeAuditPath, "application/json",
			`{"items":[` + kubeItem + `,{"auditID":"x","responseStatus":{"code":"200"}}]}`,
			`items[1]: field "responseStatus.code": expected an integer`},
		{"kube: wrong apiVersion", KubeAuditPath, "application/json",
			`{"kind":"EventList","apiVersion":"audit.k8s.io/v1beta1","items":[` + kubeItem + `]}`, `field "apiVersion"`},
		{"kube: not an EventList", KubeAuditPath, "application/json", `[` + kubeItem + `]`, `EventList object is expected`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, m := post(t, srv.URL+tc.path, tc.contentType, []byte(tc.body))
			if code != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %v", code, m)
			}
			msg, _ := m["message"].(string)
			if !strings.Contains(msg, tc.want) || len(m) != 1 {
				t.Errorf("answer %v, want only a message containing %q", m, tc.want)
			}
		})
	}
	// Nothing of any bad batch was stored, though each began with good events.
	if got := storedEvents(t, st, "bad-tenant"); len(got) != 0 {
		t.Errorf("bad batches stored %d events", len(got))
	}
}

func TestIngestProtocolErrors(t *testing.T) {
	st := newTestStore(t)
	srv := httptest.NewServer(NewHandler(ingest.NewService(st, ingest.Options{}), Options{MaxBytes: 4096}))
	defer srv.Close()

	big := eventsBody(100, "big") // well over 4 KiB
	if len(big) <= 4096 {
		t.Fatalf("test body only %d bytes", len(big))
	}
	t.Run("413 by Content-Length", func(t *testing.T) {
		code, _, m := post(t, srv.URL+EventsPath, "application/x-ndjson", big)
		if code != http.StatusRequestEntityTooLarge || !strings.Contains(m["message"].(string), "4096 bytes") {
			t.Errorf("%d %v", code, m)
		}
	})
	t.Run("413 streamed without Content-Length", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+EventsPath, io.MultiReader(bytes.NewReader(big))) // unknown length: chunked
		req.Header.Set("Content-Type", "application/x-ndjson")
		if req.ContentLength != 0 {
			t.Fatalf("ContentLength %d, want unknown", req.ContentLength)
		}
		code, _, m := do(t, req)
		if code != http.StatusRequestEntityTooLarge {
			t.Errorf("%d %v", code, m)
		}
	})
	t.Run("413 kube-audit streamed", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+KubeAuditPath, io.MultiReader(bytes.NewReader(webhookBody(20, "big"))))
		code, _, m := do(t, req)
		if code != http.StatusRequestEntityTooLarge {
			t.Errorf("%d %v", code, m)
		}
	})
	for _, ns := range []string{"tenant-0", "team-0"} {
		if n := len(storedEvents(t, st, ns)); n != 0 {
			t.Errorf("over-size bodies stored %d events in %s", n, ns)
		}
	}
	t.Run("405", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+EventsPath, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
			t.Errorf("%d Allow=%q", resp.StatusCode, resp.Header.Get("Allow"))
		}
	})
	t.Run("415", func(t *testing.T) {
		code, _, m := post(t, srv.URL+EventsPath, "application/xml", []byte("<events/>"))
		if code != http.StatusUnsupportedMediaType {
			t.Errorf("%d %v", code, m)
		}
	})
	t.Run("404", func(t *testing.T) {
		code, _, m := post(t, srv.URL+"/ingest/v2/events", "application/json", []byte("[]"))
		if code != http.StatusNotFound {
			t.Errorf("%d %v", code, m)
		}
	})
}

// recordingAuthorizer denies any batch touching a namespace in deny, and
// records what it was asked.
type recordingAuthorizer struct {
	mu    sync.Mutex
	deny  map[string]bool
	asked [][]string
}

func (a *recordingAuthorizer) AuthorizeCreate(_ context.Context, r *http.Request, namespaces []string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.asked = append(a.asked, namespaces)
	if r.Header.Get("X-Test-User") == "" {
		return &ForbiddenError{Reason: "no user"}
	}
	if namespaces == nil {
		if a.deny["*"] || a.deny["user:"+r.Header.Get("X-Test-User")] {
			return &ForbiddenError{Reason: "cluster-wide denied"}
		}
		return nil
	}
	var denied []string
	for _, ns := range namespaces {
		if a.deny[ns] {
			denied = append(denied, ns)
		}
	}
	if denied != nil {
		return &ForbiddenError{Namespaces: denied, Reason: "RBAC: no rule"}
	}
	return nil
}

func (a *recordingAuthorizer) lastN(n int) [][]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.asked) < n {
		return a.asked
	}
	return a.asked[len(a.asked)-n:]
}

func (a *recordingAuthorizer) last() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.asked) == 0 {
		return []string{"<not asked>"}
	}
	return a.asked[len(a.asked)-1]
}

func TestIngestAuthorization(t *testing.T) {
	st := newTestStore(t)
	authz := &recordingAuthorizer{deny: map[string]bool{"tenant-1": true, "tenant-2": true, "user:alice": true}}
	h := NewHandler(ingest.NewService(st, ingest.Options{}), Options{Authorizer: authz})
	mux := http.NewServeMux()
	mux.Handle("/ingest/", h)
	// The aggregated, namespaced route of spec/API.md section 4.
	mux.HandleFunc("POST /apis/audit.auditops.dev/v1alpha1/namespaces/{ns}/events", func(w http.ResponseWriter, r *http.Request) {
		h.HandleEvents(w, r, r.PathValue("ns"))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	send := func(path string, body []byte, user string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, bytes.NewReader(body))
		if user != "" {
			req.Header.Set("X-Test-User", user)
		}
		code, _, m := do(t, req)
		return code, m
	}

	// eventsBody(6) touches tenant-0, tenant-1, tenant-2 (in that repeating order).
	code, m := send(EventsPath, eventsBody(6, "z"), "alice")
	if code != http.StatusForbidden {
		t.Fatalf("status %d, want 403: %v", code, m)
	}
	// Asked cluster-wide first, then for each namespace as its first event
	// arrives: the first denial (tenant-1, the second event) ends the
	// request before the rest of the body is read.
	if want := [][]string{nil, {"tenant-0"}, {"tenant-1"}}; !reflect.DeepEqual(authz.lastN(3), want) {
		t.Errorf("authorizer asked for %q, want %q", authz.lastN(3), want)
	}
	if msg := m["message"].(string); !strings.Contains(msg, `namespace "tenant-1"`) || !strings.Contains(msg, "RBAC: no rule") {
		t.Errorf("message %q does not name the denied namespace", msg)
	}
	if n := len(storedEvents(t, st, "tenant-0")); n != 0 {
		t.Errorf("a denied batch stored %d events in its allowed namespace", n)
	}

	// One allowed namespace only: stored.
	code, m = send(EventsPath, eventsBody(1, "z"), "alice")
	if code != http.StatusOK || !reflect.DeepEqual(authz.last(), []string{"tenant-0"}) {
		t.Errorf("allowed batch: %d %v, asked %q", code, m, authz.last())
	}

	// kube-audit is authorized cluster-wide (nil), before the body is read.
	code, m = send(KubeAuditPath, []byte("not even JSON"), "")
	if code != http.StatusForbidden || authz.last() != nil || !strings.Contains(m["message"].(string), "cluster-wide") {
		t.Errorf("kube-audit without user: %d %v, asked %q", code, m, authz.last())
	}
	code, m = send(KubeAuditPath, webhookBody(2, "az"), "kube-apiserver")
	if code != http.StatusOK || authz.last() != nil {
		t.Errorf("kube-audit: %d %v, asked %q", code, m, authz.last())
	}

	// Namespaced route: authorized for its namespace before decoding;
	// an event of another namespace is a 400; one without a namespace is
	// the route's.
	nsPath := "/apis/audit.auditops.dev/v1alpha1/namespaces/tenant-1/events"
	code, m = send(nsPath, []byte(`{"id":"n1","time":"2024-05-22T10:00:00Z","user":"u"}`), "alice")
	if code != http.StatusForbidden || !reflect.DeepEqual(authz.last(), []string{"tenant-1"}) {
		t.Errorf("namespaced denied: %d %v, asked %q", code, m, authz.last())
	}
	nsPath = "/apis/audit.auditops.dev/v1alpha1/namespaces/tenant-9/events"
	code, m = send(nsPath, []byte(`{"id":"n1","time":"2024-05-22T10:00:00Z","user":"u"}`+"\n"+
		`{"id":"n2","time":"2024-05-22T10:00:00Z","user":"u","namespace":"tenant-0"}`), "alice")
	if code != http.StatusBadRequest || !strings.Contains(m["message"].(string), `line 2: field "namespace": is "tenant-0"`) {
		t.Errorf("namespaced, foreign event: %d %v", code, m)
	}
	code, m = send(nsPath, []byte(`{"id":"n1","time":"2024-05-22T10:00:00Z","user":"u"}`), "alice")
	if code != http.StatusOK {
		t.Errorf("namespaced: %d %v", code, m)
	}
	if got := storedEvents(t, st, "tenant-9"); len(got) != 1 || got[0].ID != "n1" {
		t.Errorf("tenant-9 holds %+v", got)
	}
}

func TestIngestStoreUnavailable(t *testing.T) {
	t.Run("store busy: another connection holds the write lock", func(t *testing.T) {
		st, path := newTestStoreAt(t)
		srv := httptest.NewServer(NewHandler(ingest.NewService(st, ingest.Options{}), Options{RetryAfter: 3 * time.Second}))
		defer srv.Close()

		// A second process-like connection to the same file takes the
		// write lock, as a concurrent writer or a backup would.
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		conn, err := db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
			t.Fatal(err)
		}

		body := eventsBody(3, "busy")
		code, hdr, m := post(t, srv.URL+EventsPath, "application/x-ndjson", body)
		if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") != "3" {
			t.Fatalf("status %d Retry-After %q: %v", code, hdr.Get("Retry-After"), m)
		}
		if !strings.Contains(m["message"].(string), "unavailable or busy") {
			t.Errorf("message %v", m)
		}

		if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
			t.Fatal(err)
		}
		// The sender's retry is stored in full.
		code, _, m = post(t, srv.URL+EventsPath, "application/x-ndjson", body)
		if code != http.StatusOK {
			t.Fatalf("retry: %d %v", code, m)
		}
		wantResult(t, m, 3, 3, 0, 0)
	})
	t.Run("store closed", func(t *testing.T) {
		st := newTestStore(t)
		srv := httptest.NewServer(NewHandler(ingest.NewService(st, ingest.Options{}), Options{}))
		defer srv.Close()
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ path, body string }{
			{EventsPath, string(eventsBody(2, "closed"))},
			{KubeAuditPath, string(webhookBody(2, "closed"))},
		} {
			code, hdr, m := post(t, srv.URL+tc.path, "application/json", []byte(tc.body))
			if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") != "2" {
				t.Errorf("%s: status %d Retry-After %q: %v", tc.path, code, hdr.Get("Retry-After"), m)
			}
		}
	})
}

// TestIngestConcurrentRetries: senders racing with the same batches (a
// webhook retrying while another replica's retry arrives) store each event
// once, and every answer accounts for its whole batch.
func TestIngestConcurrentRetries(t *testing.T) {
	st := newTestStore(t)
	srv := httptest.NewServer(NewHandler(ingest.NewService(st, ingest.Options{}), Options{}))
	defer srv.Close()
	bodies := [][]byte{eventsBody(50, "c1"), eventsBody(50, "c2"), eventsBody(50, "c3")}
	var mu sync.Mutex
	stored := 0
	var wg sync.WaitGroup
	for s := 0; s < 4; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, body := range bodies {
				resp, err := http.Post(srv.URL+EventsPath, "application/x-ndjson", bytes.NewReader(body))
				if err != nil {
					t.Error(err)
					return
				}
				var r Result
				err = json.NewDecoder(resp.Body).Decode(&r)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK || r.Received != 50 || r.Stored+r.Duplicates != 50 {
					t.Errorf("status %d result %+v err %v", resp.StatusCode, r, err)
					return
				}
				mu.Lock()
				stored += r.Stored
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if stored != 150 {
		t.Errorf("answers say %d stored, want 150", stored)
	}
	total := 0
	for _, ns := range []string{"tenant-0", "tenant-1", "tenant-2"} {
		total += len(storedEvents(t, st, ns))
	}
	if total != 150 {
		t.Errorf("store holds %d events, want 150", total)
	}
}
