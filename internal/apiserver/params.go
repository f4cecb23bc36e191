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
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/auditops/auditops/internal/report"
	"github.com/auditops/auditops/internal/store"
)

// Page sizes (spec/API.md section 3): defaults and maxima per API family.
const (
	protectoDefaultPageSize = 100
	protectoMaxPageSize     = 1000
	networkDefaultPageSize  = 1000
	networkMaxPageSize      = 10000
	kobilDefaultLimit       = 10
	kobilMaxLimit           = 1000
	// maxOffset keeps offset+limit far from overflowing anywhere.
	maxOffset = 1 << 40
)

// textParam refuses a text value (a query parameter, a path segment, the
// Host's tenant) that no store can compare: invalid UTF-8 or a NUL character
// (store.TextProblem). PostgreSQL fails on either, so without this check a
// client's bytes would be a 500 there (spec/API.md 3: never a 500 because of
// what a client sent).
func textParam(name, v string) error {
	if p := store.TextProblem(v); p != "" {
		return badParam(fmt.Sprintf("%s %s: parameters must be UTF-8 text without NUL characters", name, p))
	}
	return nil
}

// readQuery parses r's query string as url.ParseQuery does, refusing what
// r.URL.Query() would silently drop or pass on: a malformed escape or a ';'
// (a pair dropped that way could be a page token, and the client would get
// the first page instead of a 400), and a name or value that is not UTF-8
// text without NUL characters (textParam). Every error names the parameter.
func readQuery(r *http.Request) (url.Values, error) {
	q := url.Values{}
	raw := r.URL.RawQuery
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" {
			continue
		}
		rawKey, rawValue, _ := strings.Cut(pair, "=")
		key, err := url.QueryUnescape(rawKey)
		if err != nil {
			return nil, badParam(fmt.Sprintf("query parameter name %q is not properly %%-escaped", rawKey))
		}
		if err := textParam("query parameter name "+strconv.Quote(key), key); err != nil {
			return nil, err
		}
		if strings.Contains(rawKey, ";") || strings.Contains(rawValue, ";") {
			return nil, badParam(fmt.Sprintf("%s: ';' does not separate query parameters, '&' does (escape a ';' in a value as %%3B)", key))
		}
		value, err := url.QueryUnescape(rawValue)
		if err != nil {
			return nil, badParam(fmt.Sprintf("%s is not properly %%-escaped: %q", key, rawValue))
		}
		if err := textParam(key, value); err != nil {
			return nil, err
		}
		q[key] = append(q[key], value)
	}
	return q, nil
}

// intParam parses an optional integer parameter within [min, max]. Absent
// or empty means def (seed clients send empty parameters for "none"); any
// other non-integer or out-of-range value is a 400, never clamped.
func intParam(q url.Values, name string, def, min, max int) (int, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			if !(i == 0 && v[i] == '-' && len(v) > 1) {
				return 0, badParam(fmt.Sprintf("%s must be an integer between %d and %d, got %q", name, min, max, v))
			}
		}
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		return 0, badParam(fmt.Sprintf("%s must be an integer between %d and %d, got %q", name, min, max, v))
	}
	return n, nil
}

// Query times: a date parameter is accepted from the Unix epoch up to the
// end of year 9999, [queryMinTime, queryEndTime): the events' own range
// starts at the epoch (store.MinEventTime), and four-digit years end at
// 9999. A bound past the last time the store represents (2262-04-11,
// store.MaxEventTime) excludes no storable event: the store takes it as
// unbounded (sqlstore.Bounds), so such queries work and page as any other.
var (
	queryMinTime = store.MinEventTime
	queryEndTime = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
)

// checkQueryTime refuses a parsed time parameter outside the accepted
// range, saying the range in the parameter's own format.
func checkQueryTime(name, v string, t time.Time, layout string) error {
	if t.Before(queryMinTime) || !t.Before(queryEndTime) {
		return badParam(fmt.Sprintf("%s %q is outside the accepted range %s to %s (UTC)", name, v,
			queryMinTime.Format(layout), queryEndTime.Add(-time.Nanosecond).Format(layout)))
	}
	return nil
}

// parseProtectoTime parses "YYYY-MM-DD HH:MM:SS" (UTC); a run of spaces
// between date and time is accepted, as the seeds print two.
func parseProtectoTime(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, badParam(fmt.Sprintf("%s is required, format \"YYYY-MM-DD HH:MM:SS\" (UTC)", name))
	}
	date, clock, ok := strings.Cut(v, " ")
	if ok {
		clock = strings.TrimLeft(clock, " ")
	}
	t, err := time.Parse(report.ProtectoTimeLayout, date+" "+clock)
	// time.Parse accepts a few variations (e.g. a one-digit hour when the
	// layout's is two); the round trip keeps the format exact.
	if err != nil || !ok || t.Format(report.ProtectoTimeLayout) != date+" "+clock {
		return time.Time{}, badParam(fmt.Sprintf("%s must be a valid date and time \"YYYY-MM-DD HH:MM:SS\" (UTC), got %q", name, v))
	}
	return t, checkQueryTime(name, v, t, report.ProtectoTimeLayout)
}

// protectoRange reads start_date and end_date, both inclusive to the second:
// the store range is [start, end + 1s).
func protectoRange(q url.Values) (store.TimeRange, error) {
	start, err := parseProtectoTime("start_date", q.Get("start_date"))
	if err != nil {
		return store.TimeRange{}, err
	}
	end, err := parseProtectoTime("end_date", q.Get("end_date"))
	if err != nil {
		return store.TimeRange{}, err
	}
	if end.Before(start) {
		return store.TimeRange{}, badParam(fmt.Sprintf("end_date %q is before start_date %q", q.Get("end_date"), q.Get("start_date")))
	}
	return store.TimeRange{From: start, To: end.Add(time.Second)}, nil
}

// parseNetworkTime parses an RFC 3339 date-time, or a bare YYYY-MM-DD as
// midnight UTC (seed 002).
func parseNetworkTime(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, badParam(fmt.Sprintf("%s is required, an RFC 3339 date-time (e.g. 2018-08-30T13:20:01.764Z) or a date YYYY-MM-DD", name))
	}
	if len(v) == len("2006-01-02") {
		t, err := time.Parse(time.DateOnly, v)
		if err == nil {
			return t, checkQueryTime(name, v, t, time.RFC3339Nano)
		}
	}
	s := v
	// An unencoded '+' of a zone offset arrives as a space.
	if n := len(s); n > 6 && s[n-6] == ' ' && s[n-3] == ':' {
		s = s[:n-6] + "+" + s[n-5:]
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, badParam(fmt.Sprintf("%s must be an RFC 3339 date-time (e.g. 2018-08-30T13:20:01.764Z) or a date YYYY-MM-DD, got %q", name, v))
	}
	return t.UTC(), checkQueryTime(name, v, t, time.RFC3339Nano)
}

// networkRange reads fromDate (inclusive) and toDate (exclusive).
func networkRange(q url.Values) (store.TimeRange, error) {
	from, err := parseNetworkTime("fromDate", q.Get("fromDate"))
	if err != nil {
		return store.TimeRange{}, err
	}
	to, err := parseNetworkTime("toDate", q.Get("toDate"))
	if err != nil {
		return store.TimeRange{}, err
	}
	if !to.After(from) {
		return store.TimeRange{}, badParam(fmt.Sprintf("toDate %q must be later than fromDate %q", q.Get("toDate"), q.Get("fromDate")))
	}
	return store.TimeRange{From: from, To: to}, nil
}

// pathNamespace checks that a namespaced path and its query agree on the
// tenant: the path's namespace wins, a different query value is a 400.
func pathNamespace(q url.Values, param, ns string) error {
	if v := q.Get(param); v != "" && v != ns {
		return badParam(fmt.Sprintf("%s %q differs from the namespace %q of the path", param, v, ns))
	}
	return nil
}
