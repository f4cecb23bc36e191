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

package storetest

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/auditops/auditops/internal/store"
)

// BenchBatch is the batch size of the insert benchmarks: kube-apiserver's
// audit webhook default.
const BenchBatch = 400

// BigEvent returns a realistic event of 1-2 KB, shaped like a mapped
// Kubernetes audit event, number i of a tenant, at time at.
func BigEvent(ns string, i int, at time.Time) store.Event {
	u := fmt.Sprintf("user%02d@example.com", i%50)
	res := []string{"pods", "deployments", "configmaps", "secrets", "services"}[i%5]
	sub := []string{"", "/status", "/exec", "/log"}[i%4]
	name := fmt.Sprintf("web-%d", i%1000)
	status, code := store.StatusSuccess, 200
	var errLog *string
	if i%17 == 0 {
		status, code = store.StatusFailure, 403
		e := fmt.Sprintf("%s %q is forbidden: User %q cannot get resource %q in API group \"\" in the namespace %q", res, name, u, res, ns)
		errLog = &e
	}
	cat := store.CategoryData
	switch {
	case i%10 == 0:
		cat = store.CategoryAccess
	case i%10 == 1:
		cat = store.CategoryUser
	}
	obj := fmt.Sprintf(`{"kind":"Pod","apiVersion":"v1","metadata":{"name":%q,"namespace":%q,"uid":"6a2b9f3e-%08d-4c1d-9e8f-0123456789ab","resourceVersion":"%d","labels":{"app":"web","tier":"frontend","release":"r%d"},"annotations":{"kubernetes.io/change-cause":"kubectl apply --filename=web.yaml --record=true"}},"spec":{"containers":[{"name":"web","image":"registry.example.com/team/web:1.%d.0","ports":[{"containerPort":8080,"protocol":"TCP"}],"resources":{"limits":{"cpu":"500m","memory":"256Mi"}}}],"serviceAccountName":"web","nodeName":"node-%d"}}`,
		name, ns, i, 100000+i, i%7, i%30, i%12)
	return store.Event{
		ID: fmt.Sprintf("b2c1%04x-%08x-4a5b-9c8d-%012x", i%65536, i, i*7919), Namespace: ns, Time: at, User: u,
		Principal: []byte(fmt.Sprintf(`{"username":%q,"uid":"u-%d","groups":["system:authenticated","team-%d"],"extra":{"authentication.kubernetes.io/credential-id":["X509SHA256=%064x"]}}`, u, i%50, i%5, i%50)),
		Method:    []string{"get", "list", "create", "update", "delete"}[i%5], API: "/" + res + sub,
		Status: status, StatusCode: code, Category: cat, EntityKind: res, EntityID: ns + "/" + name,
		Message: fmt.Sprintf("%s %s %s/%s", []string{"get", "list", "create", "update", "delete"}[i%5], res+sub, ns, name),
		Request: []byte(obj), Response: []byte(obj),
		Error: errLog, DeviceID: fmt.Sprintf("10.%d.%d.%d", i%3, i%250, i%200),
		Details: "kubectl/v1.37.1 (linux/amd64) kubernetes/4e2a6f1",
	}
}

func benchEvents() int {
	if n, err := strconv.Atoi(os.Getenv("BENCH_EVENTS")); err == nil && n > 0 {
		return n
	}
	return 200000
}

// BenchInsert measures inserts of BenchBatch realistic events per
// transaction, b.N batches, and reports events/s.
func BenchInsert(b *testing.B, s store.Store) {
	ctx := b.Context()
	base := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	batch := make([]store.Event, BenchBatch)
	n, bytes := 0, 0
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		for j := range batch {
			batch[j] = BigEvent("bench", n, base.Add(time.Duration(n)*time.Millisecond))
			bytes += len(batch[j].Request) + len(batch[j].Response) + len(batch[j].Principal) + len(batch[j].Message) + 200
			n++
		}
		b.StartTimer()
		res, err := s.Insert(ctx, batch)
		if err != nil {
			b.Fatal(err)
		}
		if res.Inserted != BenchBatch {
			b.Fatalf("inserted %d of %d", res.Inserted, BenchBatch)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(bytes)/float64(n), "B/event")
}

// BenchPages loads BENCH_EVENTS (default 200000) realistic events into one
// tenant (over about 12 days) and measures: the first page and page 1000 of
// the audit-details view (200 rows a page), a category page, reading the
// whole tenant in order (1000 rows a page), and summary pages.
func BenchPages(b *testing.B, s store.Store) {
	ctx := b.Context()
	n := benchEvents()
	const size = 200
	base := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	step := 5 * time.Second
	start := time.Now()
	batch := make([]store.Event, 0, BenchBatch)
	for i := range n {
		batch = append(batch, BigEvent("bench", i, base.Add(time.Duration(i)*step)))
		if len(batch) == BenchBatch || i == n-1 {
			if _, err := s.Insert(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	b.Logf("loaded %d events in %v (%.0f events/s)", n, time.Since(start).Round(time.Millisecond), float64(n)/time.Since(start).Seconds())

	q := store.EventQuery{View: "audit-details", Namespace: "bench", Page: store.Page{Size: size}}
	page := func(b *testing.B, q store.EventQuery) store.EventPage {
		p, err := s.Events(ctx, q)
		if err != nil {
			b.Fatal(err)
		}
		return p
	}
	// The token of page 1000 (or of the last page, for small loads).
	deep, pages := q, 1
	for pages < 1000 {
		p := page(b, deep)
		if p.NextToken == "" {
			break
		}
		deep.Page.Token = p.NextToken
		pages++
	}
	b.Run("events/page-1", func(b *testing.B) {
		for b.Loop() {
			if p := page(b, q); len(p.Events) != size {
				b.Fatalf("%d rows", len(p.Events))
			}
		}
	})
	b.Run(fmt.Sprintf("events/page-%d", pages), func(b *testing.B) {
		for b.Loop() {
			page(b, deep)
		}
	})
	b.Run("useraccess/page-1-with-total", func(b *testing.B) {
		cq := store.EventQuery{View: "useraccess", Namespace: "bench", Category: store.CategoryAccess, Page: store.Page{Size: size}, WithTotal: true}
		for b.Loop() {
			page(b, cq)
		}
	})
	b.Run("events/read-tenant", func(b *testing.B) {
		rows := 0
		for b.Loop() {
			rq := store.EventQuery{View: "report", Namespace: "bench", Page: store.Page{Size: 1000}}
			for {
				p := page(b, rq)
				rows += len(p.Events)
				if p.NextToken == "" {
					break
				}
				rq.Page.Token = p.NextToken
			}
		}
		b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
	})
	b.Run("summary/page-1", func(b *testing.B) {
		sq := store.SummaryQuery{Namespace: "bench", Page: store.Page{Size: 100}}
		for b.Loop() {
			if _, err := s.Summary(ctx, sq); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("userlogs/page-1", func(b *testing.B) {
		uq := store.UserLogsQuery{Namespace: "bench", User: "user07@example.com", Limit: 10}
		for b.Loop() {
			if _, err := s.UserLogs(ctx, uq); err != nil {
				b.Fatal(err)
			}
		}
	})
}
