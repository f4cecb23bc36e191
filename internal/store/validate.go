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

package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/auditops/auditops/internal/jsonshape"
)

// ErrInvalidEvent is wrapped by errors about an event that does not fit the
// model (spec/API.md section 1): a missing id or user, an unknown status or
// category, invalid JSON, a time out of range. Insert stores nothing of a
// batch holding one; ingest answers it with 400.
var ErrInvalidEvent = errors.New("invalid event")

// Size limits of the indexed string fields, in bytes. They keep every index
// entry well inside PostgreSQL's B-tree limit, so both stores accept the
// same events.
const (
	MaxNamespaceLen = 253
	// MaxIDLen is the longest id kept whole (spec/API.md section 1). Ids
	// are not indexed as text (see IDHash), so they need not fit a B-tree
	// entry.
	MaxIDLen   = 4096
	MaxUserLen = 512
	MaxAPILen  = 1024
)

// Event times: [MinEventTime, MaxEventTime). A time is stored as int64 Unix
// nanoseconds (and a Merkle leaf pins it as a big-endian int64 of Unix ns,
// spec/API.md 6), so no later time fits; the largest int64 itself is
// excluded because it is the open end of every unbounded range (an event
// there would match no query). Times before the Unix epoch are refused too:
// no audit source produces them but a broken clock, and day arithmetic
// stays on non-negative numbers.
var (
	MinEventTime = time.Unix(0, 0).UTC()
	MaxEventTime = time.Unix(0, math.MaxInt64).UTC() // 2262-04-11T23:47:16.854775807Z, excluded
)

// EventTimeRange is the accepted range as messages say it.
var EventTimeRange = "[" + MinEventTime.Format(time.RFC3339Nano) + ", " + MaxEventTime.Format(time.RFC3339Nano) + ")"

// EventTimeProblem says why t cannot be an event's time ("" when it can).
func EventTimeProblem(t time.Time) string {
	if t.Before(MinEventTime) || !t.Before(MaxEventTime) {
		return fmt.Sprintf("%s is outside the accepted range %s (times are stored as int64 Unix nanoseconds)",
			t.UTC().Format(time.RFC3339Nano), EventTimeRange)
	}
	return ""
}

// NormalizeBatch normalizes every event of a batch (NormalizeEvent) into a
// new slice; the error names the first bad event by index and id.
func NormalizeBatch(events []Event) ([]Event, error) {
	norm := make([]Event, len(events))
	for i, e := range events {
		n, err := NormalizeEvent(e)
		if err != nil {
			return nil, fmt.Errorf("event %d (id %q): %w", i, e.ID, err)
		}
		norm[i] = n
	}
	return norm, nil
}

// NormalizeEvent checks e against the model and returns it as the store
// keeps it: Category defaulted to "data", Time in UTC, Seq cleared, empty
// JSON fields as nil. Errors wrap ErrInvalidEvent and name the field.
func NormalizeEvent(e Event) (Event, error) {
	bad := func(format string, args ...any) (Event, error) {
		return Event{}, fmt.Errorf("%w: %s", ErrInvalidEvent, fmt.Sprintf(format, args...))
	}
	if e.ID == "" {
		return bad("id is required")
	}
	if e.Namespace == "" {
		return bad("namespace is required")
	}
	if e.User == "" {
		return bad("user is required")
	}
	for _, f := range []struct {
		name, value string
		max         int
	}{
		{"id", e.ID, MaxIDLen},
		{"namespace", e.Namespace, MaxNamespaceLen},
		{"user", e.User, MaxUserLen},
		{"api", e.API, MaxAPILen},
	} {
		if len(f.value) > f.max {
			return bad("%s is %d bytes long, at most %d are allowed", f.name, len(f.value), f.max)
		}
	}
	if e.Time.IsZero() {
		return bad("time is required")
	}
	if p := EventTimeProblem(e.Time); p != "" {
		return bad("time %s", p)
	}
	switch e.Status {
	case StatusSuccess, StatusFailure:
	default:
		return bad("status %q is neither %q nor %q", e.Status, StatusSuccess, StatusFailure)
	}
	switch e.Category {
	case "":
		e.Category = CategoryData
	case CategoryAccess, CategoryUser, CategoryData:
	default:
		return bad("category %q is not one of %q, %q, %q", e.Category, CategoryAccess, CategoryUser, CategoryData)
	}
	strs := []struct{ name, value string }{
		{"id", e.ID}, {"namespace", e.Namespace}, {"user", e.User}, {"method", e.Method},
		{"api", e.API}, {"entityKind", e.EntityKind}, {"entityId", e.EntityID},
		{"message", e.Message}, {"deviceId", e.DeviceID},
		{"certificateSerialNumber", e.CertificateSerialNumber}, {"issuerDN", e.IssuerDN},
		{"details", e.Details},
	}
	if e.Error != nil {
		strs = append(strs, struct{ name, value string }{"error", *e.Error})
	}
	for _, s := range strs {
		if p := TextProblem(s.value); p != "" {
			return bad("%s %s", s.name, p)
		}
	}
	for _, j := range []struct {
		name  string
		value *json.RawMessage
	}{
		{"principal", &e.Principal}, {"request", &e.Request}, {"response", &e.Response},
		{"previousState", &e.PreviousState}, {"currentState", &e.CurrentState},
	} {
		if len(*j.value) == 0 {
			*j.value = nil
			continue
		}
		if !validJSON(*j.value) {
			return bad("%s is not valid JSON", j.name)
		}
	}
	e.Time = e.Time.UTC()
	e.Seq = 0
	return e, nil
}

// TextProblem says why v cannot be kept or compared as text by every store,
// "" when it can: PostgreSQL's text type holds neither invalid UTF-8 nor the
// NUL character. Events (NormalizeEvent), query values (QueryError) and the
// endpoints' parameters are all held to it.
func TextProblem(v string) string {
	if !utf8.ValidString(v) {
		return "is not valid UTF-8"
	}
	if strings.IndexByte(v, 0) >= 0 {
		return "holds a NUL character"
	}
	return ""
}

// validJSON is json.Valid, by jsonshape's validator: payloads are most of
// an event's bytes, and encoding/json's scanner validating them was a large
// share of webhook ingest's CPU; jsonshape's takes a fraction of it,
// allocating nothing (bench/README.md). TestValidJSONAgreesWithEncodingJSON
// and jsonshape's fuzz target hold them to the same answers.
func validJSON(b []byte) bool { return jsonshape.Valid(b) }
