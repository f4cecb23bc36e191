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

// Package ingesttest holds what the ingest tests of several packages share:
// a real SQLite store and the request bodies they send.
package ingesttest

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/auditops/auditops/internal/store"
	"github.com/auditops/auditops/internal/store/sqlite"
)

// BusyTimeout keeps the "store busy" tests short.
const BusyTimeout = 300 * time.Millisecond

// AllTime covers every event the tests write.
var AllTime = store.TimeRange{From: time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)}

// NewStore opens a real SQLite store in a fresh directory, closed when the
// test ends.
func NewStore(t testing.TB) store.Store {
	t.Helper()
	st, _ := NewStoreAt(t)
	return st
}

// NewStoreAt also returns the database file, for tests that need to reach
// it from outside the store.
func NewStoreAt(t testing.TB) (*sqlite.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.db")
	st, err := sqlite.New(context.Background(), path, store.Options{
		TokenKey:    []byte("ingest-test-token-key-32-bytes!!"),
		BusyTimeout: BusyTimeout,
	})
	if err != nil {
		t.Fatalf("opening sqlite store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st, path
}

// WebhookBody is an EventList of n events as the audit webhook sends it
// (default batch size 400), half of them RequestReceived stages.
func WebhookBody(n int, prefix string) []byte {
	var b bytes.Buffer
	b.WriteString(`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[`)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		stage := "ResponseComplete"
		if i%2 == 1 {
			stage = "RequestReceived"
		}
		fmt.Fprintf(&b, `{"level":"RequestResponse","auditID":"%s-%d","stage":"%s","requestURI":"/api/v1/namespaces/team-%d/configmaps/cm-%d","verb":"update","user":{"username":"system:serviceaccount:team-%d:deployer","uid":"5d1c","groups":["system:serviceaccounts","system:authenticated"],"extra":{"authentication.kubernetes.io/credential-id":["JTI=9f0e"]}},"sourceIPs":["10.244.0.%d"],"userAgent":"deployer/v1.2.3","objectRef":{"resource":"configmaps","namespace":"team-%d","name":"cm-%d","uid":"e1b9","apiVersion":"v1","resourceVersion":"12345"},"responseStatus":{"metadata":{},"code":200},"requestObject":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"cm-%d","namespace":"team-%d"},"data":{"key":"value-%d"}},"responseObject":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"cm-%d","namespace":"team-%d","uid":"e1b9","resourceVersion":"12346"},"data":{"key":"value-%d"}},"requestReceivedTimestamp":"2026-11-22T08:15:30.120011Z","stageTimestamp":"2026-11-22T08:15:30.131592Z","annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":"RBAC: allowed by RoleBinding"}}`,
			prefix, i/2, stage, i%4, i, i%4, i%250, i%4, i, i, i%4, i, i, i%4, i)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// EventsBody is NDJSON of n generic events.
func EventsBody(n int, prefix string) []byte {
	var b bytes.Buffer
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `{"id":"%s-%d","time":"2024-05-22T10:%02d:%02d.123456789Z","namespace":"tenant-%d","user":"user%d@example.com","principal":{"userId":"user%d"},"method":"mask","api":"/mask","status":"success","statusCode":200,"category":"data","message":"masked","request":{"text":"my card is 4111"},"response":{"text":"my card is ****"}}`+"\n",
			prefix, i, i%60, i%60, i%3, i%17, i%17)
	}
	return b.Bytes()
}

// BigObject is a JSON object of about n bytes.
func BigObject(n int) string {
	return `{"kind":"ConfigMap","data":{"blob":"` + strings.Repeat("x", n-40) + `"}}`
}

// KubeItem is one ResponseComplete create of a ConfigMap with request and
// response objects of objBytes each.
func KubeItem(id, name string, objBytes int, annotations string) string {
	obj := BigObject(objBytes)
	return `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"` + id +
		`","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/team-a/configmaps","verb":"create",` +
		`"user":{"username":"alice"},"sourceIPs":["10.0.0.1"],"userAgent":"kubectl/v1.37",` +
		`"objectRef":{"resource":"configmaps","namespace":"team-a","name":"` + name + `","apiVersion":"v1"},` +
		`"responseStatus":{"metadata":{},"code":201},"requestObject":` + obj + `,"responseObject":` + obj +
		`,"requestReceivedTimestamp":"2024-05-22T10:00:00.000000Z","stageTimestamp":"2024-05-22T10:00:00.100000Z"` + annotations + `}`
}

// StoredEvents returns every event of a tenant, in (time, seq) order.
func StoredEvents(t testing.TB, st store.Store, ns string) []store.Event {
	t.Helper()
	var out []store.Event
	q := store.EventQuery{View: "audit-details", Namespace: ns, Range: AllTime, Page: store.Page{Size: 1000}}
	for {
		p, err := st.Events(context.Background(), q)
		if err != nil {
			t.Fatalf("reading events of %s: %v", ns, err)
		}
		out = append(out, p.Events...)
		if p.NextToken == "" {
			return out
		}
		q.Page.Token = p.NextToken
	}
}

// LiveHeap is the heap's live bytes: a full collection, then what is left.
func LiveHeap() uint64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// PeakHeap samples the heap's bytes in objects until stop is closed, and
// then sends the largest it saw.
func PeakHeap(stop <-chan struct{}) <-chan uint64 {
	out := make(chan uint64, 1)
	go func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		var peak uint64
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(s)
			peak = max(peak, s[0].Value.Uint64())
			select {
			case <-stop:
				out <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return out
}
