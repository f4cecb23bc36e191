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
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1beta1 "k8s.io/apimachinery/pkg/apis/meta/v1beta1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apiserver/pkg/endpoints/handlers/negotiation"

	"github.com/auditops/auditops/internal/report"
	"github.com/auditops/auditops/internal/store"
)

// Tables for kubectl get (issue 17). kubectl asks for a meta.k8s.io Table
// (Accept: application/json;as=Table;g=meta.k8s.io;v=v1, then v1beta1, then
// plain JSON) and prints its columns; priority-1 columns only with -o wide.
// A request that does not ask for a Table, or prefers plain JSON, gets the
// seed answer, byte for byte as before: only the group's namespaced list
// paths answer Tables (their route's table handler), never a seed path.
//
// A Table request takes Kubernetes' list parameters, not the seed ones:
// limit, continue and fieldSelector (user=, status=, since=, until=).
// Without since= the window is the tableWindow before until= (default: now),
// so a bare `kubectl get auditdetails` prints the last day and not the
// whole store.

// tableWindow is the window of a Table request that names no since=.
const tableWindow = 24 * time.Hour

// tableSelectors are the field selectors a Table request takes, in the order
// a 400 lists them.
var tableSelectors = []string{"user", "status", "since", "until"}

// tableParams are the query parameters a Table request takes. Besides
// limit, continue and fieldSelector, the list parameters kubectl and client
// libraries send by habit are accepted and have no effect here: rows are
// not objects (includeObject), have no resource version and no labels
// (labelSelector must be empty).
var tableParams = []string{"limit", "continue", "fieldSelector", "labelSelector", "includeObject", "resourceVersion", "resourceVersionMatch", "timeoutSeconds", "pretty"}

// tableRestrictions lets negotiation pick a JSON Table of meta.k8s.io v1 or
// v1beta1, or plain JSON (the seed answer).
type tableRestrictions struct{}

func (tableRestrictions) AllowsMediaTypeTransform(_, _ string, target *schema.GroupVersionKind) bool {
	return target == nil || target.Kind == "Table" &&
		(target.GroupVersion() == metav1.SchemeGroupVersion || target.GroupVersion() == metav1beta1.SchemeGroupVersion)
}
func (tableRestrictions) AllowsServerVersion(string) bool { return false }
func (tableRestrictions) AllowsStreamSchema(string) bool  { return false }

var jsonOnly = []runtime.SerializerInfo{{MediaType: "application/json", MediaTypeType: "application", MediaTypeSubType: "json"}}

// wantsTable says whether r asks for a Table before anything else it
// accepts, and in which apiVersion (meta.k8s.io/v1 or v1beta1). It
// negotiates as kube-apiserver does (k8s.io/apiserver's negotiation, the
// Accept header's order and q values), so a client that prefers plain JSON,
// sends no Accept, or accepts only CSV gets the seed answer.
func wantsTable(r *http.Request) (string, bool) {
	accept := r.Header.Get("Accept")
	if !strings.Contains(accept, "Table") {
		return "", false
	}
	opts, ok := negotiation.NegotiateMediaTypeOptions(accept, jsonOnly, tableRestrictions{})
	if !ok || opts.Convert == nil {
		return "", false
	}
	return opts.Convert.GroupVersion().String(), true
}

// tableQuery is a Table request's parameters, checked.
type tableQuery struct {
	rng          store.TimeRange
	user, status string
	size         int
	// token is the store's page token carried in continue ("" = first page).
	token string
}

// windowBound is a since= or until= value: absolute, or a duration before
// now (relative).
type windowBound struct {
	t        time.Time
	relative bool
	set      bool
}

// readTableQuery reads a Table request's parameters. pathUser is the user
// named by the path ("" for none); maxSize is the family's page maximum,
// also the size when limit is absent or 0 (Kubernetes' "no limit": a page
// as large as the family serves, then continue).
func readTableQuery(r *http.Request, pathUser string, maxSize int, now time.Time) (tableQuery, error) {
	q, err := readQuery(r)
	if err != nil {
		return tableQuery{}, err
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !slices.Contains(tableParams, k) {
			return tableQuery{}, badParam(fmt.Sprintf("unknown query parameter %q for a Table request: known ones are %s (the window is fieldSelector since= and until=)",
				k, strings.Join(tableParams, ", ")))
		}
	}
	if v := q.Get("labelSelector"); v != "" {
		return tableQuery{}, badParam(fmt.Sprintf("labelSelector %q: audit rows have no labels; filter with fieldSelector (%s)", v, strings.Join(tableSelectors, ", ")))
	}
	var tq tableQuery
	tq.size = maxSize
	if v := q.Get("limit"); v != "" && v != "0" {
		if tq.size, err = intParam(q, "limit", maxSize, 1, maxSize); err != nil {
			return tableQuery{}, err
		}
	}
	var since, until windowBound
	sel, err := fields.ParseSelector(q.Get("fieldSelector"))
	if err != nil {
		return tableQuery{}, badParam(fmt.Sprintf("fieldSelector: %v", err))
	}
	seen := map[string]bool{}
	for _, req := range sel.Requirements() {
		if !slices.Contains(tableSelectors, req.Field) {
			return tableQuery{}, badParam(fmt.Sprintf("unknown field selector %q: known ones are %s", req.Field, strings.Join(tableSelectors, ", ")))
		}
		if req.Operator != selection.Equals && req.Operator != selection.DoubleEquals {
			return tableQuery{}, badParam(fmt.Sprintf("field selector %s: only = is supported", req.Field))
		}
		if seen[req.Field] {
			return tableQuery{}, badParam(fmt.Sprintf("field selector %s is given twice", req.Field))
		}
		seen[req.Field] = true
		switch req.Field {
		case "user":
			tq.user = req.Value
		case "status":
			if req.Value != store.StatusSuccess && req.Value != store.StatusFailure {
				return tableQuery{}, badParam(fmt.Sprintf("field selector status must be %s or %s, got %q", store.StatusSuccess, store.StatusFailure, req.Value))
			}
			tq.status = req.Value
		case "since":
			if since, err = parseWindowBound("since", req.Value, now); err != nil {
				return tableQuery{}, err
			}
		case "until":
			if until, err = parseWindowBound("until", req.Value, now); err != nil {
				return tableQuery{}, err
			}
		}
	}
	if err := textParam("user", tq.user); err != nil {
		return tableQuery{}, err
	}
	if pathUser != "" {
		if tq.user != "" && tq.user != pathUser {
			return tableQuery{}, badParam(fmt.Sprintf("field selector user %q differs from the user %q of the path", tq.user, pathUser))
		}
		tq.user = pathUser
	}
	if c := q.Get("continue"); c != "" {
		// The window is the first page's: a relative or default bound
		// moves with now, and the store's token is bound to the window.
		rng, status, token, err := decodeTableContinue(c)
		if err != nil {
			return tableQuery{}, err
		}
		if (since.set && !since.relative && !since.t.Equal(rng.From)) || (until.set && !until.relative && !until.t.Equal(rng.To)) || status != tq.status {
			return tableQuery{}, badParam("continue belongs to another fieldSelector: start again without it")
		}
		tq.rng, tq.token = rng, token
		return tq, nil
	}
	if until.set {
		tq.rng.To = until.t
	}
	if since.set {
		tq.rng.From = since.t
	} else {
		end := now
		if until.set {
			end = until.t
		}
		tq.rng.From = end.Add(-tableWindow)
		if tq.rng.From.Before(queryMinTime) {
			tq.rng.From = queryMinTime
		}
	}
	if !tq.rng.To.IsZero() && !tq.rng.To.After(tq.rng.From) {
		return tableQuery{}, badParam(fmt.Sprintf("field selector until (%s) must be later than since (%s)",
			tq.rng.To.Format(time.RFC3339Nano), tq.rng.From.Format(time.RFC3339Nano)))
	}
	return tq, nil
}

// parseWindowBound reads since= or until=: an RFC 3339 date-time, a date
// YYYY-MM-DD (midnight UTC), or a duration before now (90m, 2h, 7d).
func parseWindowBound(name, v string, now time.Time) (windowBound, error) {
	if d, ok := parseAgo(v); ok {
		t := now.Add(-d)
		if err := checkQueryTime(name, v, t, time.RFC3339Nano); err != nil {
			return windowBound{}, err
		}
		return windowBound{t: t, relative: true, set: true}, nil
	}
	var t time.Time
	var err error
	if len(v) == len(time.DateOnly) {
		t, err = time.Parse(time.DateOnly, v)
	} else {
		t, err = time.Parse(time.RFC3339Nano, v)
	}
	if err != nil {
		return windowBound{}, badParam(fmt.Sprintf("field selector %s must be an RFC 3339 date-time (2026-05-21T10:00:00Z), a date (2026-05-21) or a duration before now (90m, 2h, 7d), got %q", name, v))
	}
	if err := checkQueryTime(name, v, t, time.RFC3339Nano); err != nil {
		return windowBound{}, err
	}
	return windowBound{t: t.UTC(), set: true}, nil
}

// parseAgo parses a non-negative Go duration, or a whole number of days
// ("7d", which Go durations lack), of at most 100 years.
func parseAgo(v string) (time.Duration, bool) {
	const maxAgo = 100 * 365 * 24 * time.Hour
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > int(maxAgo/(24*time.Hour)) {
			return 0, false
		}
		return time.Duration(n) * 24 * time.Hour, true
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > maxAgo {
		return 0, false
	}
	return d, true
}

// Table continue tokens: "1.<from>.<to>.<status>.<store token>", from and
// to in Unix nanoseconds (to empty when unbounded). The store token is
// HMAC-signed and bound to the window, the filters and the page size (and,
// for events, the status: see tableEventView), so a continue whose window
// was changed is refused by the store.
const tableContinueVersion = "1"

func encodeTableContinue(rng store.TimeRange, status, token string) string {
	if token == "" {
		return ""
	}
	to := ""
	if !rng.To.IsZero() {
		to = strconv.FormatInt(rng.To.UnixNano(), 10)
	}
	return tableContinueVersion + "." + strconv.FormatInt(rng.From.UnixNano(), 10) + "." + to + "." + status + "." + token
}

func decodeTableContinue(c string) (rng store.TimeRange, status, token string, err error) {
	bad := badParam("continue is invalid: it was tampered with, has expired, or belongs to another query; start again without it")
	parts := strings.SplitN(c, ".", 5)
	if len(parts) != 5 || parts[0] != tableContinueVersion || parts[4] == "" {
		return rng, "", "", bad
	}
	from, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return rng, "", "", bad
	}
	rng.From = time.Unix(0, from).UTC()
	if parts[2] != "" {
		to, err := strconv.ParseInt(parts[2], 10, 64)
		if err != nil {
			return rng, "", "", bad
		}
		rng.To = time.Unix(0, to).UTC()
	}
	switch parts[3] {
	case "", store.StatusSuccess, store.StatusFailure:
	default:
		return rng, "", "", bad
	}
	return rng, parts[3], parts[4], nil
}

// tableEventView is the store view a Table of events pages: its own (a seed
// page token is not a continue, nor the other way round), and bound to the
// status filter, which the server applies to each page's rows (the store
// has no status filter).
func tableEventView(view, status string) string { return "table/" + view + "?status=" + status }

// tableEventFields are the fields an events Table shows.
const tableEventFields = store.FieldUser | store.FieldMethod | store.FieldAPI | store.FieldStatus | store.FieldStatusCode |
	store.FieldEntity | store.FieldMessage | store.FieldError | store.FieldID

// eventColumns are the columns of an events Table; priority 1 only with
// kubectl -o wide.
var eventColumns = []metav1.TableColumnDefinition{
	{Name: "Time", Type: "string", Format: "date-time", Description: "When it happened (UTC)."},
	{Name: "User", Type: "string", Description: "Principal name."},
	{Name: "Verb", Type: "string", Description: "Method: the Kubernetes verb or the source's action."},
	{Name: "Resource", Type: "string", Description: "API path acted on (api_type), e.g. /pods/exec."},
	{Name: "Status", Type: "string", Description: "success or failure."},
	{Name: "Code", Type: "integer", Description: "HTTP-like status code (0 = unknown)."},
	{Name: "Object", Type: "string", Priority: 1, Description: "The object acted on (entityId)."},
	{Name: "Message", Type: "string", Priority: 1, Description: "One-line summary, or the error of a failure."},
	{Name: "ID", Type: "string", Priority: 1, Description: "The source's event id."},
}

// summaryColumns are the columns of a namespace users summary Table.
var summaryColumns = []metav1.TableColumnDefinition{
	{Name: "Date", Type: "string", Format: "date", Description: "Day (UTC)."},
	{Name: "User", Type: "string", Description: "Principal name."},
	{Name: "Resource", Type: "string", Description: "API path (api_type)."},
	{Name: "Status", Type: "string", Description: "success or failure."},
	{Name: "Count", Type: "integer", Description: "Events in the row."},
	{Name: "Active", Type: "string", Description: "Time the user was active that day within the window (logged_in_time)."},
	{Name: "Active-Seconds", Type: "number", Priority: 1, Description: "logged_in_time in seconds."},
}

// tableEvents answers a Table request on an events view (audit details,
// user access, users) of tenant ns; pathUser is the user the path names
// (named routes), "" for the collection.
func (s *Server) tableEvents(w http.ResponseWriter, r *http.Request, apiVersion string, v networkView, ns, pathUser string, named bool, maxSize int) {
	const sh = shapeStatus
	if err := textParam("namespace", ns); err != nil {
		s.fail(w, r, sh, "continue", err)
		return
	}
	if err := textParam("name", pathUser); err != nil {
		s.fail(w, r, sh, "continue", err)
		return
	}
	if named && pathUser == "" {
		s.fail(w, r, sh, "continue", badParam("the user name of the path must not be empty"))
		return
	}
	tq, err := readTableQuery(r, pathUser, maxSize, time.Now())
	if err != nil {
		s.fail(w, r, sh, "continue", err)
		return
	}
	if err := s.authorize(r.Context(), "get", v.resource, ns, pathUser); err != nil {
		s.fail(w, r, sh, "continue", err)
		return
	}
	ctx, cancel := s.storeCtx(r)
	page, err := s.st.Events(ctx, store.EventQuery{
		View: tableEventView(v.view, tq.status), Namespace: ns, Range: tq.rng, Category: v.category, User: tq.user,
		Page: store.Page{Size: tq.size, Token: tq.token}, Fields: tableEventFields,
	})
	cancel()
	if err != nil {
		s.fail(w, r, sh, "continue", err)
		return
	}
	rows := make([]metav1.TableRow, 0, len(page.Events))
	for i := range page.Events {
		e := &page.Events[i]
		if tq.status != "" && e.Status != tq.status {
			continue
		}
		msg := e.Message
		if msg == "" && e.Error != nil {
			msg = *e.Error
		}
		rows = append(rows, metav1.TableRow{Cells: []any{
			report.FormatCSVTime(e.Time), cell(e.User), cell(e.Method), cell(e.API), e.Status, int64(e.StatusCode),
			cell(e.EntityID), cell(msg), cell(e.ID),
		}})
	}
	s.writeTable(w, r, apiVersion, eventColumns, rows, encodeTableContinue(tq.rng, tq.status, page.NextToken))
}

// tableSummary answers a Table request on the namespace users summary of
// tenant ns.
func (s *Server) tableSummary(w http.ResponseWriter, r *http.Request, apiVersion, ns string) {
	const sh = shapeStatus
	if err := textParam("namespace", ns); err != nil {
		s.fail(w, r, sh, "continue", err)
		return
	}
	tq, err := readTableQuery(r, "", protectoMaxPageSize, time.Now())
	if err != nil {
		s.fail(w, r, sh, "continue", err)
		return
	}
	if err := s.authorize(r.Context(), "get", resSummaries, ns, ""); err != nil {
		s.fail(w, r, sh, "continue", err)
		return
	}
	ctx, cancel := s.storeCtx(r)
	page, err := s.st.Summary(ctx, store.SummaryQuery{
		Namespace: ns, Range: tq.rng, User: tq.user, Page: store.Page{Size: tq.size, Token: tq.token},
	})
	cancel()
	if err != nil {
		s.fail(w, r, sh, "continue", err)
		return
	}
	rows := make([]metav1.TableRow, 0, len(page.Rows))
	for _, row := range page.Rows {
		if tq.status != "" && row.Status != tq.status {
			continue
		}
		active := time.Duration(row.LoggedInSeconds * float64(time.Second)).Round(time.Second)
		rows = append(rows, metav1.TableRow{Cells: []any{
			row.Date, cell(row.User), cell(row.API), row.Status, row.Count, active.String(), row.LoggedInSeconds,
		}})
	}
	s.writeTable(w, r, apiVersion, summaryColumns, rows, encodeTableContinue(tq.rng, tq.status, page.NextToken))
}

// writeTable writes one page as a Table. A page is bounded in rows and
// bytes by the store, so it is encoded whole.
func (s *Server) writeTable(w http.ResponseWriter, r *http.Request, apiVersion string, cols []metav1.TableColumnDefinition, rows []metav1.TableRow, cont string) {
	t := metav1.Table{
		TypeMeta:          metav1.TypeMeta{Kind: "Table", APIVersion: apiVersion},
		ListMeta:          metav1.ListMeta{Continue: cont},
		ColumnDefinitions: cols,
		Rows:              rows,
	}
	b, err := json.Marshal(&t)
	if err != nil {
		s.fail(w, r, shapeStatus, "continue", fmt.Errorf("encoding a table: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append(b, '\n'))
}

// maxCellRunes bounds a text cell: ids, messages and names are
// client-chosen and may be kilobytes long.
const maxCellRunes = 256

// cell makes client-chosen text safe to print in a terminal table: control
// and other non-printing characters (tabs and newlines would break kubectl's
// columns, escape sequences would reach the terminal) are written as Go
// escapes, "" is "<none>" as kubectl prints it, and long text is cut with
// "...".
func cell(v string) string {
	if v == "" {
		return "<none>"
	}
	var b strings.Builder
	n := 0
	for _, r := range v {
		if n == maxCellRunes {
			b.WriteString("...")
			break
		}
		n++
		switch {
		case !unicode.IsPrint(r) && r != ' ':
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// userLogColumns are the columns of a user logs Table (newest first).
var userLogColumns = []metav1.TableColumnDefinition{
	{Name: "Time", Type: "string", Format: "date-time", Description: "When it happened (UTC)."},
	{Name: "Action", Type: "string", Description: "The source's action (requested method)."},
	{Name: "Status", Type: "string", Description: "success or failure."},
	{Name: "Code", Type: "integer", Description: "HTTP-like status code (0 = unknown)."},
	{Name: "Device", Type: "string", Description: "Device id."},
	{Name: "Certificate", Type: "string", Priority: 1, Description: "Certificate serial number."},
	{Name: "Issuer", Type: "string", Priority: 1, Description: "Certificate issuer DN."},
	{Name: "Details", Type: "string", Priority: 1, Description: "Details (KOBIL), or the user agent (Kubernetes)."},
	{Name: "ID", Type: "integer", Priority: 1, Description: "The log item's id (the store's seq)."},
}

// tableUserLogs answers a Table request for one user's logs in tenant ns,
// newest first (kubectl get userlogs NAME). The page continues before its
// last row (a keyset position, as reports page user logs): continue carries
// that position, "<unix nanoseconds>_<seq>". Unlike a store token it is not
// signed; it only moves the cursor within the rows this caller may read
// (the user and window it names are checked against the request's).
func (s *Server) tableUserLogs(w http.ResponseWriter, r *http.Request, apiVersion, ns, userName string) {
	const sh = shapeStatus
	if err := textParam("namespace", ns); err != nil {
		s.fail(w, r, sh, "continue", err)
		return
	}
	if err := textParam("name", userName); err != nil {
		s.fail(w, r, sh, "continue", err)
		return
	}
	if userName == "" {
		s.fail(w, r, sh, "continue", badParam("the user name of the path must not be empty"))
		return
	}
	tq, err := readTableQuery(r, userName, kobilMaxLimit, time.Now())
	if err != nil {
		s.fail(w, r, sh, "continue", err)
		return
	}
	var before *store.Position
	if tq.token != "" {
		t, seq, ok := strings.Cut(tq.token, "_")
		p := store.Position{}
		var e1, e2 error
		p.Time, e1 = strconv.ParseInt(t, 10, 64)
		p.Seq, e2 = strconv.ParseInt(seq, 10, 64)
		if !ok || e1 != nil || e2 != nil {
			s.fail(w, r, sh, "continue", badParam("continue is invalid: it was tampered with or belongs to another query; start again without it"))
			return
		}
		before = &p
	}
	if err := s.authorize(r.Context(), "get", resUserLogs, ns, userName); err != nil {
		s.fail(w, r, sh, "continue", err)
		return
	}
	ctx, cancel := s.storeCtx(r)
	defer cancel()
	exists, err := s.st.UserExists(ctx, ns, userName)
	if err != nil {
		s.fail(w, r, sh, "continue", err)
		return
	}
	if !exists {
		writeError(w, sh, http.StatusNotFound, fmt.Sprintf("user %q has no logs in namespace %q", userName, ns))
		return
	}
	page, err := s.st.UserLogs(ctx, store.UserLogsQuery{
		Namespace: ns, User: userName, Range: tq.rng, Limit: tq.size, Before: before, Fields: report.UserLogFields,
	})
	if err != nil {
		s.fail(w, r, sh, "continue", err)
		return
	}
	rows := make([]metav1.TableRow, 0, len(page.Events))
	for i := range page.Events {
		e := &page.Events[i]
		if tq.status != "" && e.Status != tq.status {
			continue
		}
		rows = append(rows, metav1.TableRow{Cells: []any{
			report.FormatCSVTime(e.Time), cell(e.Method), e.Status, int64(e.StatusCode), cell(e.DeviceID),
			cell(e.CertificateSerialNumber), cell(e.IssuerDN), cell(e.Details), e.Seq,
		}})
	}
	next := ""
	if page.More && len(page.Events) > 0 {
		last := page.Events[len(page.Events)-1]
		next = strconv.FormatInt(last.Time.UnixNano(), 10) + "_" + strconv.FormatInt(last.Seq, 10)
	}
	s.writeTable(w, r, apiVersion, userLogColumns, rows, encodeTableContinue(tq.rng, tq.status, next))
}
