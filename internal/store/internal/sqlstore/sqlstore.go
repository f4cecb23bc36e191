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

// Package sqlstore holds what the SQLite and PostgreSQL stores share: the
// queries of every view (written once, rendered per dialect), row scanning,
// keyset cursors and page tokens, and the summary's day-by-day paging. The
// backends own connections, transactions, inserts, migrations and error
// mapping; given a read transaction, every view is answered here, so both
// stores return the same rows in the same order.
package sqlstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/auditops/auditops/internal/seal"
	"github.com/auditops/auditops/internal/store"
	"github.com/auditops/auditops/internal/store/payload"
)

// Dialect selects placeholder syntax and per-engine hints.
type Dialect int

// Dialects.
const (
	SQLite Dialect = iota
	Postgres
)

// MaxPageSize bounds Page.Size and UserLogsQuery.Limit (the endpoints'
// maxima are far below it); it keeps one page's memory bounded.
const MaxPageSize = 100000

// View names bound into page tokens.
const (
	SummaryView    = "namespace-users-summary"
	eventViewScope = "events:"
)

// Rows is the part of *sql.Rows and pgx.Rows the readers use.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// Queryer runs a query inside the caller's read transaction.
type Queryer interface {
	Query(ctx context.Context, sql string, args ...any) (Rows, error)
}

// Args collects the arguments of a query and renders their placeholders.
type Args struct {
	d    Dialect
	vals []any
}

// Add appends v and returns its placeholder.
func (a *Args) Add(v any) string {
	a.vals = append(a.vals, v)
	if a.d == Postgres {
		return "$" + strconv.Itoa(len(a.vals))
	}
	return "?"
}

// Values returns the collected arguments.
func (a *Args) Values() []any { return a.vals }

// Index names, the same in both schemas; TableOrder reads the table itself
// in its key order (namespace, ts, seq).
const (
	IndexUser  = "events_namespace_user"
	TableOrder = "NOT INDEXED"
)

// categoryIndexes are the partial indexes (namespace, ts, seq) of the
// categories a view reads alone (the network CSV views: userAccess, users).
// Most events are of category data, which no view reads alone, and
// stay out of them (bench/README.md). A query names its category as a
// literal: neither planner can prove that a bound parameter matches an
// index's WHERE clause.
var categoryIndexes = map[string]string{
	store.CategoryAccess: "events_category_access",
	store.CategoryUser:   "events_category_user",
}

// from names the events table, with an index hint for SQLite, whose planner
// has no statistics to choose between equally good indexes (the content
// key (namespace, ts, content_hash) would serve a time range too, with a
// table lookup per row).
func (d Dialect) from(index string) string {
	switch {
	case d != SQLite || index == "":
		return "events"
	case index == TableOrder:
		return "events NOT INDEXED"
	}
	return "events INDEXED BY " + index
}

// InsertColumns are the columns an insert sets besides seq, in the order of
// InsertValues: the event's fields (its JSON values and the text fields no
// query filters on in one payload column, internal/store/payload), then its
// keys (store.IDHash, store.ContentHash). The columns principal_v1 ..
// current_state_v1, which held the JSON values one by one before the
// payload column, are left NULL, and entity_kind_v1 .. error_v1, which held
// those text fields before the payload did, empty: rows stored before are
// read from them.
const InsertColumns = "namespace, ts, id, user_name, api, status, category, method, status_code, " +
	"entity_kind_v1, entity_id_v1, device_id, certificate_serial_number_v1, issuer_dn_v1, details_v1, archived_v1, " +
	"message_v1, error_v1, payload, id_hash, content_hash"

// ContentKeyColumns is the unique key that makes re-sends no-ops.
const ContentKeyColumns = "namespace, ts, content_hash"

// InsertValues returns e's values in InsertColumns order, its JSON values
// encoded by c. e must be normalized (store.NormalizeEvent).
func InsertValues(c *payload.Codec, e *store.Event) []any {
	ch := store.ContentHash(e)
	return InsertValuesKeyed(e, c.Encode(payload.ValuesOf(e)), store.IDHash(e.ID), ch[:])
}

// InsertValuesKeyed is InsertValues with the payload and the keys computed
// already (off a single writer's critical path).
func InsertValuesKeyed(e *store.Event, encoded []byte, idHash int64, contentHash []byte) []any {
	var p any
	if encoded != nil {
		p = encoded
	}
	return []any{
		e.Namespace, e.Time.UnixNano(), e.ID, e.User, e.API, e.Status, e.Category, e.Method,
		int64(e.StatusCode), "", "", e.DeviceID, "", "", "", false, "", nil, p,
		idHash, contentHash,
	}
}

// jsonFields are the JSON values the payload column holds; payloadFields
// all it holds (textFields: since payload.flagText, and for rows stored
// before, in their _v1 columns).
const (
	jsonFields    = store.FieldPrincipal | store.FieldRequest | store.FieldStates
	textFields    = store.FieldEntity | store.FieldDevice | store.FieldMessage | store.FieldError
	payloadFields = jsonFields | textFields
)

// ScanEvent reads one row of eventColumns' select list for fields f and
// legacy (see Reader.LegacyFlag) of tenant ns: the namespace is the query's,
// never read. A row with a payload takes its JSON values from it (decoded
// by c), one without from the columns that held them before; the text
// fields likewise, where its payload holds them.
//
// extra are the destinations of the columns the query reads after those of
// eventColumns.
func ScanEvent(ctx context.Context, r Rows, ns string, c *payload.Codec, f store.Fields, legacy bool, extra ...any) (store.Event, error) {
	var (
		e                     store.Event
		ts                    int64
		code                  int64
		errv                  *string
		p, rq, rs, ps, cs, pl []byte
	)
	e.Namespace = ns
	if f == 0 {
		f = store.AllFields
	}
	// In optionalColumns' order.
	all := [len(optionalColumns)]any{&e.ID, &e.User, &e.API, &e.Status, &e.Category,
		&e.Method, &code, &e.EntityKind, &e.EntityID, &e.DeviceID, &e.CertificateSerialNumber,
		&e.IssuerDN, &e.Details, &e.Archived, &e.Message, &errv, &p, &rq, &rs, &ps, &cs, &pl}
	dst := make([]any, 0, 2+len(all)+len(extra))
	dst = append(dst, &ts, &e.Seq)
	for i, col := range optionalColumns {
		if col.read(f, legacy) {
			dst = append(dst, all[i])
		}
	}
	if err := r.Scan(append(dst, extra...)...); err != nil {
		return store.Event{}, err
	}
	e.Time = time.Unix(0, ts).UTC()
	e.StatusCode = int(code)
	e.Error = errv
	if pl != nil {
		v, err := c.Decode(ctx, pl)
		if err != nil {
			return e, fmt.Errorf("event %d of %s at %s: %w", e.Seq, ns, e.Time.Format(time.RFC3339Nano), err)
		}
		if v.HasText {
			setText(&e, &v.Text, f)
		}
		p, rq, rs, ps, cs = nil, nil, nil, nil, nil
		// The values share one buffer: a query that reads only some
		// copies them out, so that the page's byte cap (store.EventBytes)
		// counts what it holds.
		keep := func(b []byte) []byte { return b }
		if f&jsonFields != jsonFields {
			keep = bytes.Clone
		}
		if f&store.FieldPrincipal != 0 {
			p = keep(v.Principal)
		}
		if f&store.FieldRequest != 0 {
			rq, rs = keep(v.Request), keep(v.Response)
		}
		if f&store.FieldStates != 0 {
			ps, cs = keep(v.PreviousState), keep(v.CurrentState)
		}
	}
	e.Principal, e.Request, e.Response, e.PreviousState, e.CurrentState = p, rq, rs, ps, cs
	return e, nil
}

// setText sets e's text fields of f that a payload holds to t's. They
// share one string: a query that reads only some copies them out, so that
// the page's byte cap (store.EventBytes) counts what it holds.
func setText(e *store.Event, t *payload.Text, f store.Fields) {
	keep := func(s string) string { return s }
	if f&textFields != textFields {
		keep = strings.Clone
	}
	if f&store.FieldEntity != 0 {
		e.EntityKind, e.EntityID = keep(t.EntityKind), keep(t.EntityID)
	}
	if f&store.FieldDevice != 0 {
		e.CertificateSerialNumber, e.IssuerDN, e.Details, e.Archived = keep(t.CertificateSerialNumber), keep(t.IssuerDN), keep(t.Details), t.Archived
	}
	if f&store.FieldMessage != 0 {
		e.Message = keep(t.Message)
	}
	// A payload that holds the text fields holds the error too, none
	// included: error_v1, the column it had before, is never read for
	// such a row (written by hand, it would show where nothing checks it).
	if f&store.FieldError != 0 {
		e.Error = nil
		if t.Error != nil {
			v := keep(*t.Error)
			e.Error = &v
		}
	}
}

// optionalColumns are the columns of an event's select list after the two
// every query reads (ts, seq), in order, with their field. Small, often-read
// columns come first: SQLite stores a row's columns in this order and reads
// overflow pages only for the columns it needs.
//
// The legacy ones held an event's fields before the payload column did
// (SQLite's migrations 5 and 8, PostgreSQL's 6 and 8); rows stored since
// leave them empty.
var optionalColumns = [...]eventColumn{
	{"id", store.FieldID, false},
	{"user_name", store.FieldUser, false}, {"api", store.FieldAPI, false},
	{"status", store.FieldStatus, false}, {"category", store.FieldCategory, false},
	{"method", store.FieldMethod, false}, {"status_code", store.FieldStatusCode, false},
	{"entity_kind_v1", store.FieldEntity, true}, {"entity_id_v1", store.FieldEntity, true},
	{"device_id", store.FieldDevice, false}, {"certificate_serial_number_v1", store.FieldDevice, true},
	{"issuer_dn_v1", store.FieldDevice, true}, {"details_v1", store.FieldDevice, true},
	{"archived_v1", store.FieldDevice, true}, {"message_v1", store.FieldMessage, true},
	{"error_v1", store.FieldError, true}, {"principal_v1", store.FieldPrincipal, true},
	{"request_v1", store.FieldRequest, true}, {"response_v1", store.FieldRequest, true},
	{"previous_state_v1", store.FieldStates, true}, {"current_state_v1", store.FieldStates, true},
	{"payload", payloadFields, false},
}

// eventColumn is a column of an event's select list.
type eventColumn struct {
	name   string
	field  store.Fields
	legacy bool
}

// read says whether a query for fields f (not zero) selects the column:
// a legacy column only when the store may hold rows that filled it.
func (c eventColumn) read(f store.Fields, legacy bool) bool {
	return f&c.field != 0 && (legacy || !c.legacy)
}

// eventColumns is the select list of ScanEvent for fields f (zero reads
// all) and legacy. A column it leaves out is not read at all, not even as a
// constant: SQLite's driver costs the same for a constant column as for a
// stored one (a call into the C library for its type and one for its value),
// and the rows read most, by reports and verify, read every field.
func eventColumns(f store.Fields, legacy bool) string {
	if f == 0 {
		f = store.AllFields
	}
	var b strings.Builder
	b.WriteString("ts, seq")
	for _, c := range optionalColumns {
		if c.read(f, legacy) {
			b.WriteString(", ")
			b.WriteString(c.name)
		}
	}
	return b.String()
}

// Bounds returns r in Unix nanoseconds; a zero side is unbounded.
func Bounds(r store.TimeRange) (from, to int64) {
	from, to = math.MinInt64, math.MaxInt64
	if !r.From.IsZero() {
		from = clampNanos(r.From)
	}
	if !r.To.IsZero() {
		to = clampNanos(r.To)
	}
	return from, to
}

func clampNanos(t time.Time) int64 {
	switch {
	case t.Before(time.Unix(0, math.MinInt64)):
		return math.MinInt64
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// DayNanos is the length of a UTC date.
const DayNanos = int64(24 * time.Hour)

// DayStart returns the start of the UTC date holding ns, clamped to the
// int64 range (see dayStart).
func DayStart(ns int64) int64 { return dayStart(dayOf(ns)) }

// dayOf returns the number of the UTC date holding ns (days since the
// epoch, rounded down).
func dayOf(ns int64) int64 {
	d := ns / DayNanos
	if ns%DayNanos < 0 {
		d--
	}
	return d
}

// dayStart returns the start of date d in Unix nanoseconds, clamped to the
// int64 range: the dates of the smallest and largest int64 (1677-09-21,
// 2262-04-11) hold times that are representable, but the first starts
// before the smallest int64 and the next after the last starts after the
// largest. Unclamped, d * DayNanos wrapped around (a date in 1677 became one
// in 2262).
func dayStart(d int64) int64 {
	switch {
	case d < math.MinInt64/DayNanos:
		return math.MinInt64
	case d > math.MaxInt64/DayNanos:
		return math.MaxInt64
	}
	return d * DayNanos
}

func checkPage(p store.Page) error {
	if p.Size < 1 || p.Size > MaxPageSize {
		return fmt.Errorf("page size %d is outside 1..%d", p.Size, MaxPageSize)
	}
	return nil
}

// checkText refuses a query's text value that no store can compare
// (store.TextProblem): PostgreSQL fails on it, so no query holding one is
// ever sent. fields are name, value pairs.
func checkText(fields ...string) error {
	for i := 0; i+1 < len(fields); i += 2 {
		if p := store.TextProblem(fields[i+1]); p != "" {
			return &store.QueryError{Field: fields[i], Problem: p}
		}
	}
	return nil
}

// Reader answers the views inside a read transaction.
type Reader struct {
	Dialect Dialect
	Codec   *store.TokenCodec
	// Payload decodes the payload column (internal/store/payload).
	Payload    *payload.Codec
	SessionGap time.Duration
	// MaxPageBytes caps a page's row data (store.Options.MaxPageBytes);
	// 0 means store.DefaultMaxPageBytes.
	MaxPageBytes int
	// LegacyFlag: the store keeps legacy_columns (SQLite's migration 15,
	// PostgreSQL's 13), whose in_use says whether rows may hold fields in
	// the legacy columns (optionalColumns), stored before the payload
	// column held them. Each read reads it in its own snapshot and reads
	// those columns only then, so that every reader of one snapshot (the
	// API, reports, verify, whenever each process opened the store) reads
	// the same events. Without it (an older schema) they are always read.
	LegacyFlag bool
	// HourCounts: the store keeps category_hours, the number of access
	// and of user events per namespace and hour (SQLite's migration 13,
	// PostgreSQL's 12), and a total of one of those categories reads its
	// whole hours there.
	HourCounts bool
}

// HourNanos is category_hours' bucket: hour h holds the events of
// [h*HourNanos, (h+1)*HourNanos) Unix ns.
const HourNanos = int64(time.Hour)

func (r *Reader) maxPageBytes() int {
	if r.MaxPageBytes <= 0 {
		return store.DefaultMaxPageBytes
	}
	return r.MaxPageBytes
}

// PostgresFirstChunkRows bounds the rows the first query of a PostgreSQL page
// asks for; the next ones ask for what the byte cap leaves room for, judged
// by the rows read so far (see eventPage.nextLimit). PostgreSQL sends every
// row a query selects even when the reader stops early (closing the rows
// drains them), so asking for a whole page of 10,000 rows to keep the first
// few, when payloads are large, would make it read and send gigabytes. (A
// page of small rows takes two queries instead of one.) SQLite reads a row
// only when asked for it, so its pages are one query each.
const PostgresFirstChunkRows = 16

// legacy says whether a read in db's snapshot reads the legacy columns
// (LegacyFlag). A missing flag row reads them: right for every row.
func (r *Reader) legacy(ctx context.Context, db Queryer) (bool, error) {
	if !r.LegacyFlag {
		return true, nil
	}
	q := "SELECT coalesce((SELECT in_use FROM legacy_columns WHERE id = 1), 1)"
	if r.Dialect == Postgres {
		q = "SELECT coalesce((SELECT in_use FROM legacy_columns WHERE id = 1), true)"
	}
	rows, err := db.Query(ctx, q)
	if err != nil {
		return false, fmt.Errorf("reading legacy_columns: %w", err)
	}
	defer rows.Close()
	legacy := true
	if rows.Next() {
		if err := rows.Scan(&legacy); err != nil {
			return false, fmt.Errorf("reading legacy_columns: %w", err)
		}
	}
	return legacy, rows.Err()
}

// firstChunk is the limit of a page's first query, the page's size
// included (see PostgresFirstChunkRows).
func (r *Reader) firstChunk(size int) int {
	if r.Dialect == Postgres {
		return min(size+1, PostgresFirstChunkRows)
	}
	return size + 1
}

// eventPage collects one page of events as they are read, in chunks,
// within the page size and the byte cap.
type eventPage struct {
	size, maxBytes, first int
	events                []store.Event
	bytes                 int
	// next is the row after the page (its time is NextTime), nil when no
	// row follows it.
	next *store.Event
	// full is set once the page is complete: it holds size rows, or the
	// byte cap ended it, and next says whether a row follows.
	full bool
	// codec decodes payloads; fields are those the query reads, legacy
	// says whether it reads the legacy columns (Reader.LegacyFlag).
	codec  *payload.Codec
	fields store.Fields
	legacy bool
	// keepUnreadable: see store.EventQuery.KeepUnreadable; unreadable
	// collects those rows (store.EventPage.Unreadable).
	keepUnreadable bool
	unreadable     map[int64]error
	// withKeys: see store.EventQuery.WithKeys; keys collects them.
	withKeys bool
	keys     []store.StoredKeys
}

func (r *Reader) newEventPage(size int, f store.Fields, legacy bool) *eventPage {
	return &eventPage{size: size, maxBytes: r.maxPageBytes(), first: r.firstChunk(size),
		events: make([]store.Event, 0, min(size+1, 1024)), codec: r.Payload, fields: f, legacy: legacy}
}

// read runs one chunk's query and adds its rows; it returns how many rows
// the query gave (fewer than its limit: no rows are left).
func (p *eventPage) read(ctx context.Context, db Queryer, ns, sql string, args []any) (int, error) {
	rows, err := db.Query(ctx, sql, args...)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
		var extra []any
		var k store.StoredKeys
		if p.withKeys {
			extra = []any{&k.IDHash, &k.Content}
		}
		e, err := ScanEvent(ctx, rows, ns, p.codec, p.fields, p.legacy, extra...)
		if err != nil {
			if !p.keepUnreadable || !errors.Is(err, payload.ErrCorrupt) {
				return n, err
			}
			if p.unreadable == nil {
				p.unreadable = map[int64]error{}
			}
			p.unreadable[e.Seq] = err
		}
		b := store.EventBytes(&e)
		if len(p.events) == p.size || (len(p.events) > 0 && p.bytes+b > p.maxBytes) {
			// The row after the page: there is a next page, which starts
			// with it.
			p.next, p.full = &e, true
			break
		}
		p.events = append(p.events, e)
		if p.withKeys {
			p.keys = append(p.keys, k)
		}
		p.bytes += b
	}
	if err := rows.Err(); err != nil {
		return n, err
	}
	return n, nil
}

// nextLimit is the limit of the next chunk's query: the rows the page still
// wants (with the one that tells whether another page follows), at most
// those the byte cap leaves room for at the average row size so far, plus
// the row that would end the page.
func (p *eventPage) nextLimit() int {
	want := p.size + 1 - len(p.events)
	if len(p.events) == 0 {
		return p.first
	}
	avg := max(1, p.bytes/len(p.events))
	return max(1, min(want, (p.maxBytes-p.bytes)/avg+1))
}

// last is the position of the page's last row.
func (p *eventPage) last() store.Cursor {
	e := p.events[len(p.events)-1]
	return store.Cursor{Time: e.Time.UnixNano(), Seq: e.Seq}
}

// eventScope is what an events token is bound to.
func eventScope(q store.EventQuery, from, to int64) store.TokenScope {
	return store.TokenScope{
		View: eventViewScope + q.View, Namespace: q.Namespace, From: from, To: to,
		Filters: pinFilters(q.InLog, q.Category, q.User), PageSize: q.Page.Size,
	}
}

// pinFilters are a token scope's filters, with the log size a query is
// pinned to when it is (a token of one pin is refused by another; an
// unpinned query's scope is as before pins existed).
func pinFilters(inLog *int64, filters ...string) []string {
	if inLog != nil {
		filters = append(filters, "in-log="+strconv.FormatInt(*inLog, 10))
	}
	return filters
}

// inLog renders the condition of a pinned read on the events table's rows:
// a row whose leaf the pinned checkpoint of size n does not cover
// (unsealed, or sealed later) is left out; a row without a leaf is kept.
//
// It is one probe of the leaves' primary key (the events' key) per row,
// written as a scalar subquery because PostgreSQL always runs that as a
// per-row probe: as NOT EXISTS (an anti join) or NOT IN (a hashed subplan)
// the planner, with statistics that sealing makes stale by the thousand
// leaves, read a namespace's leaves whole on every page, and under ingest
// into the same namespace a report stalled (TestReplicasFailover in CI).
// SQLite plans NOT EXISTS as that probe (measured as fast as an unpinned
// read).
//
// Ingest places a leaf when it writes it (a place is not a seal: the
// newest checkpoint's size is), so n is bounded by that size, read once in
// the statement: a report pinned to a checkpoint the store no longer has
// (restored from an older copy) must not take the leaves placed since as
// sealed.
func (r *Reader) inLog(a *Args, ns string, n *int64) string {
	if n == nil {
		return ""
	}
	if r.Dialect == SQLite {
		return " AND NOT EXISTS (SELECT 1 FROM leaves AS l WHERE l.namespace = events.namespace AND l.ts = events.ts AND l.seq = events.seq" +
			" AND (l.place IS NULL OR l.place < 0 OR l.place >= min(" + a.Add(*n) + ", (SELECT coalesce(max(size), 0) FROM checkpoints WHERE namespace = " + a.Add(ns) + "))))"
	}
	return " AND coalesce((SELECT CASE WHEN l.place IS NULL OR l.place < 0 OR l.place >= least(" + a.Add(*n) + ", (SELECT coalesce(max(size), 0) FROM checkpoints WHERE namespace = " + a.Add(ns) + ")) THEN 1 ELSE 0 END FROM leaves AS l" +
		" WHERE l.namespace = events.namespace AND l.ts = events.ts AND l.seq = events.seq), 0) = 0"
}

// Events answers store.Store.Events.
func (r *Reader) Events(ctx context.Context, db Queryer, q store.EventQuery) (store.EventPage, error) {
	if q.Namespace == "" {
		return store.EventPage{}, fmt.Errorf("namespace is required")
	}
	if err := checkText("namespace", q.Namespace, "user", q.User); err != nil {
		return store.EventPage{}, err
	}
	if err := checkPage(q.Page); err != nil {
		return store.EventPage{}, err
	}
	switch q.Category {
	case "", store.CategoryAccess, store.CategoryUser, store.CategoryData:
	default:
		return store.EventPage{}, fmt.Errorf("unknown category %q", q.Category)
	}
	from, to := Bounds(q.Range)
	scope := eventScope(q, from, to)
	var after *store.Cursor
	if q.Page.Token != "" {
		c, err := r.Codec.Decode(q.Page.Token, scope)
		if err != nil {
			return store.EventPage{}, err
		}
		if len(c.Keys) != 0 {
			return store.EventPage{}, fmt.Errorf("%w: not an events cursor", store.ErrInvalidToken)
		}
		after = &c
	}

	var page store.EventPage
	var more *store.Cursor
	if from < to {
		legacy, err := r.legacy(ctx, db)
		if err != nil {
			return store.EventPage{}, err
		}
		pp := r.newEventPage(q.Page.Size, q.Fields, legacy)
		pp.keepUnreadable, pp.withKeys = q.KeepUnreadable, q.WithKeys
		cols := eventColumns(q.Fields, legacy)
		if q.WithKeys {
			cols += ", id_hash, content_hash"
		}
		// Each chunk continues after the last row read, in the same read
		// transaction: the page is the rows one query would give.
		for cursor := after; ; {
			limit := pp.nextLimit()
			a := Args{d: r.Dialect}
			sql := "SELECT " + cols + " FROM " + r.eventsWhere(&a, q, from, to, cursor) +
				" ORDER BY ts, seq LIMIT " + a.Add(int64(limit))
			n, err := pp.read(ctx, db, q.Namespace, sql, a.Values())
			if err != nil {
				return store.EventPage{}, err
			}
			if pp.full || n < limit {
				break
			}
			c := pp.last()
			cursor = &c
		}
		page.Events = pp.events
		page.Unreadable, page.Keys = pp.unreadable, pp.keys
		if pp.next != nil {
			page.NextTime = pp.next.Time
			c := pp.last()
			more = &c
		}
	}
	// The total of a walk is counted on its first page and carried in the
	// tokens: counting the whole query on every page made deep CSV pages
	// cost as much as the first.
	if q.WithTotal && from < to {
		if after != nil && after.HasTotal {
			page.Total = after.Total
		} else {
			n, err := r.total(ctx, db, q, from, to)
			if err != nil {
				return store.EventPage{}, err
			}
			page.Total = n
		}
	}
	if more != nil {
		more.Total, more.HasTotal = page.Total, q.WithTotal
		page.NextToken = r.Codec.Encode(scope, *more)
	}
	return page, nil
}

// total counts the events of q in [from, to). A query of one category that
// category_hours counts (HourCounts), without a user or a log to keep to,
// counts the partial hours at the range's ends in the category's index
// and adds the whole hours between from the table (a month of one
// tenant's access events: ~720 rows instead of tens of thousands); any
// other counts in the index.
func (r *Reader) total(ctx context.Context, db Queryer, q store.EventQuery, from, to int64) (int64, error) {
	a := Args{d: r.Dialect}
	if r.HourCounts && q.User == "" && q.InLog == nil && (q.Category == store.CategoryAccess || q.Category == store.CategoryUser) {
		// The whole hours are [first, last); the table holds none before
		// 1970, so a range from before counts those in the index.
		lo := max(from, 0)
		first, last := lo/HourNanos, to/HourNanos
		if lo%HourNanos != 0 {
			first++
		}
		if first < last {
			head := r.eventsWhere(&a, q, from, first*HourNanos, nil)
			tail := r.eventsWhere(&a, q, last*HourNanos, to, nil)
			return queryInt(ctx, db, "SELECT (SELECT count(*) FROM "+head+") + (SELECT count(*) FROM "+tail+")"+
				" + (SELECT CAST(coalesce(sum(n), 0) AS BIGINT) FROM category_hours WHERE namespace = "+a.Add(q.Namespace)+
				" AND category = "+a.Add(q.Category)+" AND hour >= "+a.Add(first)+" AND hour < "+a.Add(last)+")", a.Values()...)
		}
	}
	return queryInt(ctx, db, "SELECT count(*) FROM "+r.eventsWhere(&a, q, from, to, nil), a.Values()...)
}

// eventsWhere renders "events ... WHERE <filters and range>" of q, from
// after the cursor when there is one. The cursor, not the range's start, is
// then the lower bound (it is inside the range: the token is bound to it),
// so the index range scan starts at the cursor, however deep the page.
func (r *Reader) eventsWhere(a *Args, q store.EventQuery, from, to int64, after *store.Cursor) string {
	index := ""
	switch {
	case q.User != "":
		index = IndexUser
	case categoryIndexes[q.Category] != "":
		index = categoryIndexes[q.Category]
	case q.Category != "":
		index = TableOrder
	}
	var b strings.Builder
	b.WriteString(r.Dialect.from(index))
	b.WriteString(" WHERE namespace = " + a.Add(q.Namespace))
	if q.Category != "" {
		// A literal (see categoryIndexes); Events admits only the three
		// categories, and the quote is doubled all the same.
		b.WriteString(" AND category = '" + strings.ReplaceAll(q.Category, "'", "''") + "'")
	}
	if q.User != "" {
		b.WriteString(" AND user_name = " + a.Add(q.User))
	}
	if after != nil {
		b.WriteString(" AND (ts, seq) > (" + a.Add(after.Time) + ", " + a.Add(after.Seq) + ")")
	} else {
		b.WriteString(" AND ts >= " + a.Add(from))
	}
	// A range without an end has none: a row at the largest time (only
	// SQL writes one) is read too, by verify above all.
	if to != math.MaxInt64 {
		b.WriteString(" AND ts < " + a.Add(to))
	}
	b.WriteString(r.inLog(a, q.Namespace, q.InLog))
	return b.String()
}

// UserLogs answers store.Store.UserLogs. A page the byte cap ends early
// has fewer than Limit rows and More set; the next page is at
// Offset+len(Events) (or Before its last row).
func (r *Reader) UserLogs(ctx context.Context, db Queryer, q store.UserLogsQuery) (store.UserLogsPage, error) {
	if q.Namespace == "" || q.User == "" {
		return store.UserLogsPage{}, fmt.Errorf("namespace and user are required")
	}
	if err := checkText("namespace", q.Namespace, "user", q.User, "deviceId", q.DeviceID); err != nil {
		return store.UserLogsPage{}, err
	}
	if q.Limit < 1 || q.Limit > MaxPageSize {
		return store.UserLogsPage{}, fmt.Errorf("limit %d is outside 1..%d", q.Limit, MaxPageSize)
	}
	if q.Offset < 0 {
		return store.UserLogsPage{}, fmt.Errorf("offset %d is negative", q.Offset)
	}
	if q.Before != nil && q.Offset != 0 {
		return store.UserLogsPage{}, fmt.Errorf("offset %d with a keyset position: use one or the other", q.Offset)
	}
	from, to := Bounds(q.Range)
	var page store.UserLogsPage
	if from >= to {
		return page, nil
	}
	legacy, err := r.legacy(ctx, db)
	if err != nil {
		return store.UserLogsPage{}, err
	}
	pp := r.newEventPage(q.Limit, q.Fields, legacy)
	cols := eventColumns(q.Fields, legacy)
	// The first chunk skips Offset rows; the next ones continue before the
	// last row read, in the same read transaction.
	before, offset := q.Before, q.Offset
	for {
		limit := pp.nextLimit()
		a := Args{d: r.Dialect}
		sql := "SELECT " + cols + " FROM " + r.Dialect.from(IndexUser) +
			" WHERE namespace = " + a.Add(q.Namespace) + " AND user_name = " + a.Add(q.User)
		if q.DeviceID != "" {
			sql += " AND device_id = " + a.Add(q.DeviceID)
		}
		sql += " AND ts >= " + a.Add(from) + " AND ts < " + a.Add(to)
		if before != nil {
			sql += " AND (ts, seq) < (" + a.Add(before.Time) + ", " + a.Add(before.Seq) + ")"
		}
		sql += r.inLog(&a, q.Namespace, q.InLog)
		sql += " ORDER BY ts DESC, seq DESC LIMIT " + a.Add(int64(limit))
		if offset > 0 {
			sql += " OFFSET " + a.Add(int64(offset))
		}
		n, err := pp.read(ctx, db, q.Namespace, sql, a.Values())
		if err != nil {
			return store.UserLogsPage{}, err
		}
		if pp.full || n < limit {
			break
		}
		c := pp.last()
		before, offset = &store.Position{Time: c.Time, Seq: c.Seq}, 0
	}
	page.Events, page.More = pp.events, pp.next != nil
	return page, nil
}

// UserExists answers store.Store.UserExists.
func (r *Reader) UserExists(ctx context.Context, db Queryer, namespace, user string) (bool, error) {
	if err := checkText("namespace", namespace, "user", user); err != nil {
		return false, err
	}
	a := Args{d: r.Dialect}
	n, err := queryInt(ctx, db, "SELECT count(*) FROM (SELECT 1 FROM "+r.Dialect.from(IndexUser)+
		" WHERE namespace = "+a.Add(namespace)+" AND user_name = "+a.Add(user)+" LIMIT 1) AS u", a.Values()...)
	return n > 0, err
}

// HourCountMismatches implements store.HourCountChecker; db must read one
// snapshot. For each category, the hours its partial index gives are read
// first, then merged with category_hours as it is read in key order (a
// full outer join was a nested loop on SQLite: 3x verify's time). An hour
// either side leaves out counts as 0. Nothing without category_hours
// (HourCounts false).
func (r *Reader) HourCountMismatches(ctx context.Context, db Queryer, ns string, f func(store.HourCount)) error {
	if !r.HourCounts {
		return nil
	}
	hour := "ts / " + strconv.FormatInt(HourNanos, 10)
	type count struct{ hour, n int64 }
	for _, category := range []string{store.CategoryAccess, store.CategoryUser} {
		a := Args{d: r.Dialect}
		rows, err := db.Query(ctx, "SELECT "+hour+", count(*) FROM "+r.Dialect.from(categoryIndexes[category])+
			" WHERE namespace = "+a.Add(ns)+" AND category = '"+category+"' AND ts >= 0 GROUP BY 1 ORDER BY 1", a.Values()...)
		if err != nil {
			return err
		}
		var counted []count
		for rows.Next() {
			var c count
			if err := rows.Scan(&c.hour, &c.n); err != nil {
				rows.Close()
				return err
			}
			counted = append(counted, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		a = Args{d: r.Dialect}
		rows, err = db.Query(ctx, "SELECT hour, n FROM category_hours WHERE namespace = "+a.Add(ns)+" AND category = "+a.Add(category)+
			" ORDER BY hour", a.Values()...)
		if err != nil {
			return err
		}
		i := 0
		report := func(c store.HourCount) {
			if c.Kept != c.Events {
				f(c)
			}
		}
		for rows.Next() {
			var k count
			if err := rows.Scan(&k.hour, &k.n); err != nil {
				rows.Close()
				return err
			}
			for ; i < len(counted) && counted[i].hour < k.hour; i++ {
				report(store.HourCount{Category: category, Hour: counted[i].hour, Events: counted[i].n})
			}
			c := store.HourCount{Category: category, Hour: k.hour, Kept: k.n}
			if i < len(counted) && counted[i].hour == k.hour {
				c.Events = counted[i].n
				i++
			}
			report(c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for ; i < len(counted); i++ {
			report(store.HourCount{Category: category, Hour: counted[i].hour, Events: counted[i].n})
		}
	}
	return nil
}

// NextNamespace returns the smallest namespace holding events that sorts
// after after (byte order); ok is false past the last one. Walking the
// namespaces this way costs one index seek each.
func (r *Reader) NextNamespace(ctx context.Context, db Queryer, after string) (ns string, ok bool, err error) {
	a := Args{d: r.Dialect}
	rows, err := db.Query(ctx, "SELECT namespace FROM events WHERE namespace > "+a.Add(after)+
		" ORDER BY namespace LIMIT 1", a.Values()...)
	if err != nil {
		return "", false, err
	}
	defer rows.Close()
	if rows.Next() {
		if err := rows.Scan(&ns); err != nil {
			return "", false, err
		}
		ok = true
	}
	return ns, ok, rows.Err()
}

func queryInt(ctx context.Context, db Queryer, sql string, args ...any) (int64, error) {
	rows, err := db.Query(ctx, sql, args...)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var n int64
	if rows.Next() {
		if err := rows.Scan(&n); err != nil {
			return 0, err
		}
	}
	return n, rows.Err()
}

// RowScanner is what ScanTreeHashes reads: *sql.Rows and pgx.Rows both.
type RowScanner interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// ScanTreeHashes reads rows of (id, hash) of ns's tree hashes into out, in
// the order of indexes; every index must be there.
func ScanTreeHashes(rows RowScanner, ns string, indexes []int64, out []tlog.Hash) error {
	got := make(map[int64]tlog.Hash, len(indexes))
	for rows.Next() {
		var id int64
		var h []byte
		if err := rows.Scan(&id, &h); err != nil {
			return err
		}
		if len(h) != len(tlog.Hash{}) {
			return fmt.Errorf("tree hash %d of %s: %w: %d bytes", id, ns, seal.ErrHashMalformed, len(h))
		}
		got[id] = tlog.Hash(h)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for i, x := range indexes {
		h, ok := got[x]
		if !ok {
			return fmt.Errorf("tree hash %d of %s: %w", x, ns, seal.ErrHashNotStored)
		}
		out[i] = h
	}
	return nil
}

// LogNamespaces returns, in byte order, every namespace that has events or
// leaves: what verify walks. Each table is read by a loose index scan, one
// seek per namespace, not a scan of its rows.
func LogNamespaces(ctx context.Context, db Queryer) ([]string, error) {
	seen := map[string]bool{}
	for _, table := range []string{"events", "leaves"} {
		rows, err := db.Query(ctx, `WITH RECURSIVE ns(n) AS (
    SELECT min(namespace) FROM `+table+`
    UNION ALL
    SELECT (SELECT min(namespace) FROM `+table+` WHERE namespace > ns.n) FROM ns WHERE ns.n IS NOT NULL
) SELECT n FROM ns WHERE n IS NOT NULL`)
		if err != nil {
			return nil, fmt.Errorf("listing the namespaces of %s: %w", table, err)
		}
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				rows.Close()
				return nil, err
			}
			seen[n] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	slices.Sort(out)
	return out, nil
}
