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

package report

import (
	"context"
	"fmt"

	reportsv1alpha1 "github.com/auditops/auditops/api/v1alpha1"
	"github.com/auditops/auditops/internal/store"
)

// Store views the endpoints and reports page through; a page token minted for
// one view is refused by another.
const (
	ViewAuditDetails = "audit-details"
	ViewUserAccess   = "useraccess"
	ViewUsers        = "users"
)

// Params select one report.
type Params struct {
	Type      reportsv1alpha1.ReportType
	Namespace string
	// User keeps one user's rows ("" = all); required for UserLogs.
	User     string
	Range    store.TimeRange
	PageSize int
	// InLog pins the report to a checkpoint of the namespace's log
	// (store.EventQuery.InLog); nil reads every stored event.
	InLog *int64
}

// Cursor is where a generator stands between two pages: enough to resume the
// report after a restart (it is kept in status.checkpoint).
type Cursor struct {
	// Token is the store's next keyset page token.
	Token string `json:"token,omitempty"`
	// Offset is the next user-logs offset of a checkpoint written before
	// user-logs reports paged by keyset; it is read, never written.
	Offset int `json:"offset,omitempty"`
	// Before is the position of the last user-logs row emitted: the next
	// page holds the rows older than it.
	Before *store.Position `json:"before,omitempty"`
	// Records and Pages count what has been emitted so far.
	Records int64 `json:"records"`
	Pages   int64 `json:"pages"`
	// Done is set on the cursor of the last page.
	Done bool `json:"done,omitempty"`
}

// Format says how a report type is encoded: file extension and media type.
func Format(t reportsv1alpha1.ReportType) (ext, contentType string) {
	switch t {
	case reportsv1alpha1.UserAccess, reportsv1alpha1.Users:
		return "csv", "text/csv; charset=utf-8"
	default:
		return "json", "application/json"
	}
}

// EmitFunc receives the bytes of one page and the cursor after it. The bytes
// of all calls, in order, are the report; chunk is reused after the call.
type EmitFunc func(ctx context.Context, chunk []byte, next Cursor) error

// Generate streams a report from cursor c (the zero Cursor starts it) through
// emit, one store page at a time, so memory stays flat whatever the row
// count. JSON types are one array of the endpoint's detail objects, CSV types
// one header row then the endpoint's records (spec/API.md section 5).
func Generate(ctx context.Context, st store.Store, p Params, c Cursor, emit EmitFunc) error {
	if p.PageSize <= 0 {
		return fmt.Errorf("report: page size %d must be positive", p.PageSize)
	}
	if c.Done {
		return nil
	}
	g := generator{st: st, p: p, c: c, emit: emit, buf: make([]byte, 0, 64<<10)}
	switch p.Type {
	case reportsv1alpha1.NamespaceUsersSummary:
		return g.summary(ctx)
	case reportsv1alpha1.AuditDetails:
		return g.events(ctx, ViewAuditDetails, "")
	case reportsv1alpha1.UserAccess:
		return g.events(ctx, ViewUserAccess, store.CategoryAccess)
	case reportsv1alpha1.Users:
		return g.events(ctx, ViewUsers, store.CategoryUser)
	case reportsv1alpha1.UserLogs:
		if p.User == "" {
			return fmt.Errorf("report: a UserLogs report needs a user")
		}
		return g.userLogs(ctx)
	default:
		return fmt.Errorf("report: unknown report type %q", p.Type)
	}
}

// Late counts the events of p's report that a read pinned to the first
// size leaves of the namespace's log leaves out: those stored after that
// checkpoint, or not sealed yet. A scheduled run reads the checkpoint it
// sealed, and the next run's window starts where its own ended: an event
// of its window stored after its seal is in no run.
func Late(ctx context.Context, st store.Store, p Params, size int64) (int64, error) {
	view, category := ViewAuditDetails, ""
	switch p.Type {
	case reportsv1alpha1.UserAccess:
		view, category = ViewUserAccess, store.CategoryAccess
	case reportsv1alpha1.Users:
		view, category = ViewUsers, store.CategoryUser
	}
	q := store.EventQuery{View: view, Namespace: p.Namespace, Range: p.Range, Category: category, User: p.User,
		Fields: store.FieldUser, Page: store.Page{Size: 1}, WithTotal: true}
	all, err := st.Events(ctx, q)
	if err != nil {
		return 0, fmt.Errorf("report: counting the events of %s: %w", p.Namespace, err)
	}
	q.InLog = &size
	read, err := st.Events(ctx, q)
	if err != nil {
		return 0, fmt.Errorf("report: counting the events of %s in its log's first %d leaves: %w", p.Namespace, size, err)
	}
	// Retention may have deleted some of what was read since.
	return max(all.Total-read.Total, 0), nil
}

type generator struct {
	st   store.Store
	p    Params
	c    Cursor
	emit EmitFunc
	buf  []byte
}

// begin starts a page's bytes: the opening of the report on its first page.
func (g *generator) begin() {
	g.buf = g.buf[:0]
	if g.c.Pages == 0 {
		if ext, _ := Format(g.p.Type); ext == "csv" {
			g.buf = append(g.buf, CSVHeader...)
		} else {
			g.buf = append(g.buf, '[')
		}
	}
}

// separate writes the comma between two JSON rows.
func (g *generator) separate() {
	if g.c.Records > 0 {
		g.buf = append(g.buf, ',')
	}
	g.c.Records++
}

// end closes a page; the last page also closes the report.
func (g *generator) end(ctx context.Context, last bool) error {
	g.c.Pages++
	if last {
		g.c.Done = true
		g.c.Token, g.c.Offset = "", 0
		if ext, _ := Format(g.p.Type); ext == "json" {
			g.buf = append(g.buf, ']')
		}
	}
	return g.emit(ctx, g.buf, g.c)
}

func (g *generator) summary(ctx context.Context) error {
	for {
		page, err := g.st.Summary(ctx, store.SummaryQuery{
			Namespace: g.p.Namespace, Range: g.p.Range, User: g.p.User,
			Page: store.Page{Size: g.p.PageSize, Token: g.c.Token}, InLog: g.p.InLog,
		})
		if err != nil {
			return fmt.Errorf("report: summary page %d: %w", g.c.Pages+1, err)
		}
		g.begin()
		for i := range page.Rows {
			g.separate()
			g.buf = AppendSummaryRow(g.buf, page.Rows[i])
		}
		if err := g.advance(page.NextToken); err != nil {
			return err
		}
		if err := g.end(ctx, page.NextToken == ""); err != nil || g.c.Done {
			return err
		}
	}
}

func (g *generator) events(ctx context.Context, view, category string) error {
	csv := category != ""
	fields := AuditDetailFields
	if csv {
		fields = CSVFields
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops a prefetch nobody will read
	fetch := func(token string) (store.EventPage, error) {
		return g.st.Events(ctx, store.EventQuery{
			View: view, Namespace: g.p.Namespace, Range: g.p.Range,
			Category: category, User: g.p.User, Fields: fields,
			Page: store.Page{Size: g.p.PageSize, Token: token}, InLog: g.p.InLog,
		})
	}
	type fetched struct {
		page store.EventPage
		err  error
	}
	page, err := fetch(g.c.Token)
	for {
		if err != nil {
			return fmt.Errorf("report: %s page %d: %w", view, g.c.Pages+1, err)
		}
		if err := g.advance(page.NextToken); err != nil {
			return err
		}
		// The next page is read while this one is encoded and emitted: the
		// store's work (PostgreSQL's process, or SQLite in the reading
		// goroutine) and ours then share the machine's cores instead of
		// taking turns.
		var next chan fetched
		if page.NextToken != "" {
			next = make(chan fetched, 1)
			go func(token string) {
				p, err := fetch(token)
				next <- fetched{p, err}
			}(page.NextToken)
		}
		g.begin()
		for i := range page.Events {
			if csv {
				g.c.Records++
				g.buf = AppendCSVRow(g.buf, &page.Events[i])
				continue
			}
			g.separate()
			g.buf = AppendAuditDetail(g.buf, &page.Events[i])
		}
		if err := g.end(ctx, next == nil); err != nil || g.c.Done {
			return err
		}
		f := <-next
		page, err = f.page, f.err
	}
}

// advance moves the cursor to the next page's token. A store that hands back
// the token it was given would loop forever: that is a fault, said loudly.
func (g *generator) advance(next string) error {
	if next != "" && next == g.c.Token {
		return fmt.Errorf("report: the store returned the same page token twice after %d pages", g.c.Pages)
	}
	g.c.Token = next
	return nil
}

func (g *generator) userLogs(ctx context.Context) error {
	for {
		page, err := g.st.UserLogs(ctx, store.UserLogsQuery{
			Namespace: g.p.Namespace, User: g.p.User, Range: g.p.Range,
			Limit: g.p.PageSize, Offset: g.c.Offset, Before: g.c.Before, Fields: UserLogFields, InLog: g.p.InLog,
		})
		if err != nil {
			return fmt.Errorf("report: user logs page %d: %w", g.c.Pages+1, err)
		}
		g.begin()
		for i := range page.Events {
			g.separate()
			g.buf = AppendUserLogItem(g.buf, &page.Events[i])
		}
		if n := len(page.Events); n > 0 {
			last := &page.Events[n-1]
			g.c.Offset, g.c.Before = 0, &store.Position{Time: last.Time.UnixNano(), Seq: last.Seq}
		}
		if err := g.end(ctx, !page.More || len(page.Events) == 0); err != nil || g.c.Done {
			return err
		}
	}
}
