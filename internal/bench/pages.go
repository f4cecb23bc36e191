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

package bench

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/auditops/auditops/internal/report"
	"github.com/auditops/auditops/internal/store"
)

// endpointPages are the paged endpoints measured, at the store level (the
// store's Events with the endpoint's view, filters and page size, the page
// encoded with the endpoint's row encoder from internal/report).
var endpointPages = []struct {
	name     string
	view     string
	category string
	size     int
	total    bool
	note     string
}{
	{"audit-details", report.ViewAuditDetails, "", 100, false, "page_size 100 (the endpoint's default)"},
	// The network default (1000) would need a million access events in one
	// tenant for page 1000 to exist; 50 keeps page 1000 inside the data set.
	{"useraccess", report.ViewUserAccess, store.CategoryAccess, 50, true, "pageSize 50, with totalRecords (the endpoint counts the whole query on every page)"},
}

// pages measures page 1 and page 1000 of each endpoint; settled, when set,
// says how the store was left before them (PostgreSQL: awaitAutovacuum).
func (r *runner) pages(ctx context.Context, kind string, st store.Store, settled string) error {
	rg := reportRange()
	for _, ep := range endpointPages {
		p := r.ph.begin("%s: %s pages 1 and 1000, %d samples each", kind, ep.name, r.cfg.PageIterations)
		q := store.EventQuery{View: ep.view, Namespace: BigTenant, Range: rg, Category: ep.category,
			Page: store.Page{Size: ep.size}, WithTotal: ep.total, Fields: report.AuditDetailFields}
		if ep.category != "" {
			q.Fields = report.CSVFields
		}
		// Walk to page 1000 (or the last page of a small data set).
		deep, depth := q, 1
		for depth < 1000 {
			p, err := st.Events(ctx, deep)
			if err != nil {
				return err
			}
			if p.NextToken == "" {
				break
			}
			deep.Page.Token = p.NextToken
			depth++
		}
		var buf []byte
		page := func(q store.EventQuery) (time.Duration, error) {
			start := time.Now()
			p, err := st.Events(ctx, q)
			if err != nil {
				return 0, err
			}
			buf = buf[:0]
			for i := range p.Events {
				if ep.category != "" {
					buf = report.AppendCSVRow(buf, &p.Events[i])
				} else {
					buf = report.AppendAuditDetail(buf, &p.Events[i])
				}
			}
			return time.Since(start), nil
		}
		var d1, dN []float64
		for range r.cfg.PageIterations {
			a, err := page(q)
			if err != nil {
				return err
			}
			b, err := page(deep)
			if err != nil {
				return err
			}
			d1 = append(d1, a.Seconds()*1000)
			dN = append(dN, b.Seconds()*1000)
		}
		for _, m := range []struct {
			depth string
			ds    []float64
			real  int
		}{{"1", d1, 1}, {"1000", dN, depth}} {
			note := fmt.Sprintf("store-level: Store.Events + report row encoder, %s, %s, %d samples", ep.note, BigTenant, len(m.ds))
			if settled != "" {
				note += ", " + settled
			}
			if m.real != 1 && m.real != 1000 {
				note += fmt.Sprintf("; the data set has only %d pages: measured the last", m.real)
			}
			for _, pct := range []struct {
				name string
				p    float64
			}{{"p50", 0.50}, {"p99", 0.99}} {
				v := percentile(m.ds, pct.p)
				name := fmt.Sprintf("page_ms_%s{endpoint=%s,depth=%s", pct.name, ep.name, m.depth)
				met := Metric{Metric: name + ",store=" + kind + "}", Value: v, Unit: "ms", Note: note}
				if m.depth == "1000" {
					met.floor = fmt.Sprintf("page_ms_%s{endpoint=%s,depth=1,store=%s}", pct.name, ep.name, kind)
				}
				r.res.add(met)
				r.worst(&r.pageP99, name+"}", v)
			}
		}
		p.end("page 1 p50 %.2f ms p99 %.2f ms; page %d p50 %.2f ms p99 %.2f ms",
			percentile(d1, .5), percentile(d1, .99), depth, percentile(dN, .5), percentile(dN, .99))
	}
	return nil
}

func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(p*float64(len(s)-1) + 0.5)
	return s[min(i, len(s)-1)]
}
