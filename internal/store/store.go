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

// Package store is the audit-event store: one small interface, implemented by
// an embedded SQLite database (the default) and by PostgreSQL. Every report and
// endpoint of auditops is a view of the events kept here (spec/API.md
// section 1); each view is read one keyset page at a time.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Event categories (spec/API.md section 1).
const (
	CategoryAccess = "access"
	CategoryUser   = "user"
	CategoryData   = "data"
)

// Event outcomes.
const (
	StatusSuccess = "success"
	StatusFailure = "failure"
)

// ClusterNamespace is the tenant of cluster-scoped Kubernetes events.
const ClusterNamespace = "_cluster"

// Event is one audited action by one principal.
type Event struct {
	// extension is empty but in a test build (event_extension.go); first,
	// so that as an empty struct it adds no padding.
	//lint:ignore U1000 empty but in the sealfieldtest build.
	extension
	// ID is the source's id. It is not trusted to be unique: two events
	// with one id and different content are two events (see ContentHash).
	ID string `json:"id"`
	// Seq is assigned by the store on insert: monotonic, ingest order.
	Seq       int64     `json:"seq,omitempty"`
	Time      time.Time `json:"time"`
	Namespace string    `json:"namespace"`
	User      string    `json:"user"`
	// Principal is the full identity as a JSON object (or nil).
	Principal  json.RawMessage `json:"principal,omitempty"`
	Method     string          `json:"method,omitempty"`
	API        string          `json:"api,omitempty"`
	Status     string          `json:"status"`
	StatusCode int             `json:"statusCode,omitempty"`
	Category   string          `json:"category,omitempty"`
	EntityKind string          `json:"entityKind,omitempty"`
	EntityID   string          `json:"entityId,omitempty"`
	Message    string          `json:"message,omitempty"`
	// Request, Response, PreviousState and CurrentState are JSON values or nil.
	Request       json.RawMessage `json:"request,omitempty"`
	Response      json.RawMessage `json:"response,omitempty"`
	PreviousState json.RawMessage `json:"previousState,omitempty"`
	CurrentState  json.RawMessage `json:"currentState,omitempty"`
	// Error is the error log of a failure; nil is JSON null.
	Error                   *string `json:"error,omitempty"`
	DeviceID                string  `json:"deviceId,omitempty"`
	CertificateSerialNumber string  `json:"certificateSerialNumber,omitempty"`
	IssuerDN                string  `json:"issuerDN,omitempty"`
	Details                 string  `json:"details,omitempty"`
	Archived                bool    `json:"archived,omitempty"`
}

// TimeRange is the half-open interval [From, To). Every view takes one; the
// endpoints turn their inclusive or exclusive bounds into it. A zero From or
// To leaves that side unbounded.
type TimeRange struct {
	From time.Time
	To   time.Time
}

// Page is what every keyset query takes besides its filters.
//
// A page holds at most Size rows and at most the store's MaxPageBytes of row
// data (EventBytes, SummaryRowBytes), or a single row when that row alone
// is larger: a page whose next row would pass the byte cap ends before it,
// with fewer rows than Size and a NextToken that continues exactly after
// its last row. So a walk of every page reads every row once, whatever the
// cap, and no page holds more than the cap plus one row in memory.
type Page struct {
	// Size is the number of rows wanted, >= 1.
	Size int
	// Token is the NextToken of the previous page, "" for the first page.
	Token string
}

// SummaryQuery selects the namespace-users summary (spec/API.md 3.1).
type SummaryQuery struct {
	Namespace string
	Range     TimeRange
	// User optionally keeps one user's rows (AuditReport spec.user).
	User string
	Page Page
	// InLog, when set, pins the query to a checkpoint of the namespace's
	// tamper-evident log (spec/API.md 6): events whose leaf is not among
	// its first *InLog leaves (ingested after that checkpoint, or not
	// sealed yet) are left out. Rows without a leaf (stored before sealing
	// was on, or behind ingest's back) are kept: they are in no log, and
	// verify names each.
	InLog *int64
}

// SummaryRow is one (date, user, api, status) row of the summary.
type SummaryRow struct {
	Date   string // YYYY-MM-DD, UTC
	User   string
	API    string
	Status string
	Count  int64
	// LoggedInSeconds is the sum of the user's session spans that date
	// (sessions split at gaps > the store's session gap), within Range.
	LoggedInSeconds float64
}

// SummaryPage is one page of summary rows.
type SummaryPage struct {
	Rows []SummaryRow
	// NextToken is "" on the last page.
	NextToken string
}

// EventQuery selects events of one tenant in time order (time, then seq):
// audit details (spec/API.md 3.2) and the network CSV views (3.3).
type EventQuery struct {
	// View names the endpoint the token is bound to (e.g. "audit-details",
	// "useraccess"); a token minted for one view is refused by another.
	View      string
	Namespace string
	Range     TimeRange
	// Category optionally keeps one category ("" = all).
	Category string
	// User optionally keeps one user ("" = all).
	User string
	Page Page
	// WithTotal asks for the number of rows matching the whole query.
	WithTotal bool
	// Fields selects what is read besides Time and Seq (which every page
	// needs; Namespace is the query's); the others are left zero. Zero
	// reads every field. Each view shows only some fields, the payloads
	// are most of an event's bytes, and every column read costs per row.
	Fields Fields
	// InLog, when set, pins the query to a checkpoint of the namespace's
	// tamper-evident log (spec/API.md 6): events whose leaf is not among
	// its first *InLog leaves (ingested after that checkpoint, or not
	// sealed yet) are left out. Rows without a leaf (stored before sealing
	// was on, or behind ingest's back) are kept: they are in no log, and
	// verify names each.
	InLog *int64
	// KeepUnreadable returns a row whose payload cannot be decoded (an
	// edited or damaged payload, internal/store/payload) without what it
	// holds (JSON values, and the text fields no query filters on)
	// instead of failing the page. Verify asks for it: the
	// row's digest then differs from its leaf's, and verify names the row
	// and goes on; every other reader fails with an error naming the row.
	KeepUnreadable bool
	// WithKeys returns each row's stored keys in EventPage.Keys: verify
	// checks them against the row (no leaf covers them, and an edited key
	// lets a re-send be stored twice, or a reused id go uncounted).
	WithKeys bool
}

// HourCount is a namespace's number of events of one category (access or
// user) in one hour as the store keeps it for totals (Kept) beside the
// number its events give (Events).
type HourCount struct {
	Category string
	// Hour counts hours from the Unix epoch: the events of
	// [Hour, Hour+1) hours.
	Hour         int64
	Kept, Events int64
}

// HourCountChecker is a store that keeps counts of events per hour for
// totals (the network CSV views' totalRecords): it compares them with the
// events they count, so that an edit of the counts, which no leaf
// covers, shows (manager verify).
type HourCountChecker interface {
	// HourCountMismatches calls f with each hour of namespace ns whose
	// kept count is not what its events give, in one snapshot.
	HourCountMismatches(ctx context.Context, ns string, f func(HourCount)) error
}

// SchemaChecker is a store that can tell its schema from the one its
// migrations make. Whoever holds the manager's database credentials can
// change the schema as well as the rows: a trigger that drops one user's
// events as ingest writes them (with their leaves, before a checkpoint
// covers them), a row security policy or rule that hides them from the
// manager's own reads. No row is edited then, and no leaf tells.
type SchemaChecker interface {
	// SchemaChanges names each change found (none: the schema is the
	// migrations').
	SchemaChanges(ctx context.Context) ([]string, error)
}

// StoredKeys are the keys a row was stored with: IDHash(its id) and
// ContentHash(it).
type StoredKeys struct {
	IDHash  int64
	Content []byte
}

// Fields is a set of an event's fields.
type Fields uint32

// Field sets.
const (
	FieldUser Fields = 1 << iota
	FieldAPI
	FieldStatus
	FieldCategory
	FieldMethod
	// FieldEntity is EntityKind and EntityID.
	FieldEntity
	// FieldDevice is DeviceID, CertificateSerialNumber, IssuerDN, Details
	// and Archived.
	FieldDevice
	FieldMessage
	FieldError
	FieldPrincipal
	// FieldRequest is Request and Response.
	FieldRequest
	// FieldStates is PreviousState and CurrentState.
	FieldStates
	FieldID
	FieldStatusCode
	// AllFields is every field.
	AllFields = FieldStatusCode<<1 - 1
)

// EventBytes is the row data of e that a page's byte cap counts: its text
// and JSON values, and 64 bytes for the rest. Fields a query did not read
// are empty and count nothing.
func EventBytes(e *Event) int {
	n := 64 + len(e.ID) + len(e.Namespace) + len(e.User) + len(e.Method) + len(e.API) + len(e.Status) +
		len(e.Category) + len(e.EntityKind) + len(e.EntityID) + len(e.Message) + len(e.DeviceID) +
		len(e.CertificateSerialNumber) + len(e.IssuerDN) + len(e.Details) +
		len(e.Principal) + len(e.Request) + len(e.Response) + len(e.PreviousState) + len(e.CurrentState)
	if e.Error != nil {
		n += len(*e.Error)
	}
	return n
}

// SummaryRowBytes is the row data of r that a page's byte cap counts.
func SummaryRowBytes(r *SummaryRow) int {
	return 32 + len(r.Date) + len(r.User) + len(r.API) + len(r.Status)
}

// EventPage is one page of events.
type EventPage struct {
	Events []Event
	// NextToken is "" on the last page.
	NextToken string
	// NextTime is the time of the next page's first row (zero on the last page).
	NextTime time.Time
	// Total is set when the query asked WithTotal.
	Total int64
	// Unreadable names, by seq, the events whose payload did not decode
	// (only with EventQuery.KeepUnreadable; they are in Events without
	// what it holds), with why.
	Unreadable map[int64]error
	// Keys are the stored keys of Events, in their order (only with
	// EventQuery.WithKeys).
	Keys []StoredKeys
}

// UserLogsQuery selects one user's events newest first, by limit/offset
// (spec/API.md 3.4).
type UserLogsQuery struct {
	Namespace string
	User      string
	// DeviceID optionally keeps one device ("" = all).
	DeviceID string
	// Range optionally bounds the events (zero values = unbounded).
	Range TimeRange
	// Limit is the number of rows wanted; a page also ends early at the
	// store's byte cap (see Page), with More set.
	Limit  int
	Offset int
	// Before, when set, keeps the events before this (time, seq) position,
	// newest first: keyset paging, which a report walking every page uses
	// so that an event stored meanwhile neither shifts nor repeats a row
	// (an offset does). Offset must then be 0.
	Before *Position
	// Fields selects what is read, as EventQuery.Fields (zero = all).
	Fields Fields
	// InLog, when set, pins the query to a checkpoint of the namespace's
	// tamper-evident log (spec/API.md 6): events whose leaf is not among
	// its first *InLog leaves (ingested after that checkpoint, or not
	// sealed yet) are left out. Rows without a leaf (stored before sealing
	// was on, or behind ingest's back) are kept: they are in no log, and
	// verify names each.
	InLog *int64
}

// Position is an event's place in the time, seq order.
type Position struct {
	Time int64 `json:"time"` // Unix nanoseconds
	Seq  int64 `json:"seq"`
}

// UserLogsPage is one page of a user's events, newest first.
type UserLogsPage struct {
	Events []Event
	// More is true when rows exist past the page's last: past
	// Offset+Limit, or past a page the byte cap ended early (fewer than
	// Limit rows; the next page starts at Offset+len(Events), or Before
	// the last row).
	More bool
}

// InsertResult says what a batch insert did.
type InsertResult struct {
	Inserted int
	// Duplicates were re-sends: an event of equal content (ContentHash)
	// was stored already, or earlier in the batch.
	Duplicates int
	// Reused counts the inserted events whose (Namespace, ID) another
	// stored event already had: stored all the same, never dropped, since
	// anyone can choose a Kubernetes audit id. ReusedIDs names the first
	// MaxReusedIDs of them.
	Reused    int
	ReusedIDs []EventRef
}

// MaxReusedIDs bounds InsertResult.ReusedIDs.
const MaxReusedIDs = 16

// EventRef names a stored event.
type EventRef struct {
	Namespace string
	ID        string
	Seq       int64
}

// Add adds o, the result of another part of one batch, to r.
func (r *InsertResult) Add(o InsertResult) {
	r.Inserted += o.Inserted
	r.Duplicates += o.Duplicates
	r.Reused += o.Reused
	for _, ref := range o.ReusedIDs {
		if len(r.ReusedIDs) < MaxReusedIDs {
			r.ReusedIDs = append(r.ReusedIDs, ref)
		}
	}
}

// AddReused records that the event ref reused a stored id.
func (r *InsertResult) AddReused(ref EventRef) {
	r.Reused++
	if len(r.ReusedIDs) < MaxReusedIDs {
		r.ReusedIDs = append(r.ReusedIDs, ref)
	}
}

// Store is the audit-event store.
type Store interface {
	// Insert stores a batch in one transaction: all of it or none of it.
	// Events whose content is already stored (a retried batch: the same
	// namespace, id, time and every other field) are skipped; an event that
	// only shares its (Namespace, ID) with a stored one is stored and
	// counted in InsertResult.Reused.
	Insert(ctx context.Context, events []Event) (InsertResult, error)
	// InsertParts is Insert of a batch too large to hold in memory (a
	// spooled request body): next returns its parts in order, nil after
	// the last, and every part is stored in the one transaction, all or
	// nothing (spec/API.md 2). An error of next fails the insert.
	InsertParts(ctx context.Context, next func() ([]Event, error)) (InsertResult, error)
	// Summary returns one page of the namespace-users summary.
	Summary(ctx context.Context, q SummaryQuery) (SummaryPage, error)
	// Events returns one page of a tenant's events in (time, seq) order.
	Events(ctx context.Context, q EventQuery) (EventPage, error)
	// UserLogs returns one page of a user's events, newest first.
	UserLogs(ctx context.Context, q UserLogsQuery) (UserLogsPage, error)
	// UserExists reports whether the tenant holds any event of the user.
	UserExists(ctx context.Context, namespace, user string) (bool, error)
	// DeleteBefore deletes events older than t (retention), except those
	// of the namespaces in keep, and says how many.
	DeleteBefore(ctx context.Context, t time.Time, keep ...string) (int64, error)
	// Ping checks the store is reachable (readyz).
	Ping(ctx context.Context) error
	Close() error
}

// Maintainer is a store with upkeep that one writer does on a schedule (the
// leader, before retention): PostgreSQL makes its day partitions ahead.
type Maintainer interface {
	Maintain(ctx context.Context, now time.Time) error
}

// ErrInvalidToken is wrapped by errors about a page token that is malformed,
// tampered with, or minted for another view, tenant, filter or page size.
// Endpoints answer it with 400.
var ErrInvalidToken = errors.New("invalid page token")

// ErrInvalidQuery is wrapped by errors about a query value that no store can
// compare (see QueryError). Endpoints answer it with 400; they check their
// parameters first (TextProblem), so it is a second line of defense.
var ErrInvalidQuery = errors.New("invalid query")

// QueryError is a query's text value that is not valid UTF-8 or holds a NUL
// character: PostgreSQL's text type holds neither, so it would fail there
// (and match nothing in SQLite), whatever the stored events. Every store
// refuses it before it reads anything. It wraps ErrInvalidQuery.
type QueryError struct {
	// Field is the query's field ("namespace", "user", "deviceId").
	Field string
	// Problem is what TextProblem said.
	Problem string
}

func (e *QueryError) Error() string { return "invalid query: " + e.Field + " " + e.Problem }

// Unwrap makes errors.Is(err, ErrInvalidQuery) hold.
func (e *QueryError) Unwrap() error { return ErrInvalidQuery }

// ErrUnavailable is wrapped by errors from a store that is down or too busy
// to answer within a bounded wait. Endpoints answer it with 503.
var ErrUnavailable = errors.New("audit store unavailable")
