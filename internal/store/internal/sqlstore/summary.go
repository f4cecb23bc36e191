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

package sqlstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/auditops/auditops/internal/store"
)

// Summary answers store.Store.Summary; db must be one read transaction, so
// that the counts and the session times of a page agree.
//
// Rows are keyed (date, user, api, status) and the date leads, so a page is
// built one UTC date at a time: find the first event at or after the
// position (an index seek), aggregate that date's events within the range
// (an index range scan of one date, of the users at or after the cursor's
// user when the cursor is inside that date), keep the rows after the
// cursor, and go on to the next date holding events until the page is full.
// No page reads events outside its tenant, its range, or the dates it shows
// (plus one seek past them).
func (r *Reader) Summary(ctx context.Context, db Queryer, q store.SummaryQuery) (store.SummaryPage, error) {
	if q.Namespace == "" {
		return store.SummaryPage{}, fmt.Errorf("namespace is required")
	}
	if err := checkText("namespace", q.Namespace, "user", q.User); err != nil {
		return store.SummaryPage{}, err
	}
	if err := checkPage(q.Page); err != nil {
		return store.SummaryPage{}, err
	}
	from, to := Bounds(q.Range)
	scope := store.TokenScope{
		View: SummaryView, Namespace: q.Namespace, From: from, To: to,
		Filters: pinFilters(q.InLog, q.User), PageSize: q.Page.Size,
	}
	pos := from
	var after *store.Cursor
	if q.Page.Token != "" {
		c, err := r.Codec.Decode(q.Page.Token, scope)
		if err != nil {
			return store.SummaryPage{}, err
		}
		if len(c.Keys) != 3 || DayStart(c.Time) != c.Time {
			return store.SummaryPage{}, fmt.Errorf("%w: not a summary cursor", store.ErrInvalidToken)
		}
		after = &c
		pos = max(pos, c.Time)
	}

	var page store.SummaryPage
	// lastDay is the start of the date of the page's last row (its cursor).
	var lastDay int64
	// full says the page can take no more rows: it holds Size of them, or
	// the next would pass the byte cap.
	maxBytes, pageBytes := r.maxPageBytes(), 0
	full := func(next *store.SummaryRow) bool {
		return len(page.Rows) == q.Page.Size || (len(page.Rows) > 0 && pageBytes+store.SummaryRowBytes(next) > maxBytes)
	}
	pin := q.InLog
	for pos < to {
		first, ok, err := r.firstTime(ctx, db, q.Namespace, q.User, pos, to, pin)
		if err != nil {
			return store.SummaryPage{}, err
		}
		if !ok {
			break
		}
		if len(page.Rows) == q.Page.Size {
			// Full, and a date with events (so with rows) follows.
			page.NextToken = r.summaryToken(scope, lastDay, page.Rows[len(page.Rows)-1])
			break
		}
		d := dayOf(first)
		day := dayStart(d)
		lo, hi := max(from, day), min(to, dayStart(d+1))
		var afterKey []string
		if after != nil && after.Time == day {
			afterKey = after.Keys
		}
		rows, err := r.summaryDay(ctx, db, q.Namespace, q.User, afterKey, lo, hi, pin)
		if err != nil {
			return store.SummaryPage{}, err
		}
		date := time.Unix(0, day).UTC().Format(time.DateOnly)
		for _, row := range rows {
			if afterKey != nil && !keyAfter(row, afterKey) {
				continue
			}
			row.Date = date
			if full(&row) {
				page.NextToken = r.summaryToken(scope, lastDay, page.Rows[len(page.Rows)-1])
				return page, nil
			}
			page.Rows = append(page.Rows, row)
			pageBytes += store.SummaryRowBytes(&row)
			lastDay = day
		}
		pos = hi
	}
	return page, nil
}

// summaryToken is the token after row last of the date starting at day
// (DayStart's value, so clamped at the int64 limits).
func (r *Reader) summaryToken(scope store.TokenScope, day int64, last store.SummaryRow) string {
	return r.Codec.Encode(scope, store.Cursor{Time: day, Keys: []string{last.User, last.API, last.Status}})
}

// keyAfter reports whether row's (user, api, status) sorts after key, in
// byte order like both databases' ORDER BY.
func keyAfter(row store.SummaryRow, key []string) bool {
	if row.User != key[0] {
		return row.User > key[0]
	}
	if row.API != key[1] {
		return row.API > key[1]
	}
	return row.Status > key[2]
}

// firstTime returns the time of the first event in [from, to).
func (r *Reader) firstTime(ctx context.Context, db Queryer, ns, user string, from, to int64, pin *int64) (int64, bool, error) {
	a := Args{d: r.Dialect}
	sql := "SELECT ts FROM " + r.summaryWhere(&a, ns, user, nil, from, to, pin) + " ORDER BY ts LIMIT 1"
	rows, err := db.Query(ctx, sql, a.Values()...)
	if err != nil {
		return 0, false, err
	}
	defer rows.Close()
	if !rows.Next() {
		return 0, false, rows.Err()
	}
	var ts int64
	if err := rows.Scan(&ts); err != nil {
		return 0, false, err
	}
	return ts, true, rows.Err()
}

// summaryWhere renders "events ... WHERE ..." for one tenant, an optional
// user, the users at or after the cursor's, and [from, to).
func (r *Reader) summaryWhere(a *Args, ns, user string, afterKey []string, from, to int64, pin *int64) string {
	index := TableOrder
	if user != "" {
		index = IndexUser
	}
	sql := r.Dialect.from(index) + " WHERE namespace = " + a.Add(ns)
	if user != "" {
		sql += " AND user_name = " + a.Add(user)
	}
	if afterKey != nil {
		sql += " AND user_name >= " + a.Add(afterKey[0])
	}
	return sql + " AND ts >= " + a.Add(from) + " AND ts < " + a.Add(to) + r.inLog(a, ns, pin)
}

// summaryDay aggregates the events in [from, to), within one UTC date, into
// rows ordered by (user, api, status), each with the user's logged-in time.
//
// One range scan in time order (SQLite: of the table, clustered by
// (namespace, ts, seq); PostgreSQL: of the primary key's included columns,
// covering) feeds both aggregates, computed here: the database would need
// two passes and a sort per date (a window function for the sessions, a
// GROUP BY for the counts), which measured slower than one hand-written
// query (bench/README.md).
func (r *Reader) summaryDay(ctx context.Context, db Queryer, ns, user string, afterKey []string, from, to int64, pin *int64) ([]store.SummaryRow, error) {
	a := Args{d: r.Dialect}
	sql := "SELECT user_name, api, status, ts FROM " + r.summaryWhere(&a, ns, user, afterKey, from, to, pin) + " ORDER BY ts"
	rows, err := db.Query(ctx, sql, a.Values()...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	type key struct{ user, api, status string }
	type session struct{ last, loggedIn int64 }
	counts := map[key]int64{}
	users := map[string]*session{}
	gap := int64(r.SessionGap)
	var k key
	var ts int64
	for rows.Next() {
		if err := rows.Scan(&k.user, &k.api, &k.status, &ts); err != nil {
			return nil, err
		}
		counts[k]++
		// Logged-in time: the sum of a user's session spans equals the sum
		// of the gaps between consecutive events that do not split a
		// session (a gap of exactly SessionGap does not).
		if s, ok := users[k.user]; ok {
			if d := ts - s.last; d <= gap {
				s.loggedIn += d
			}
			s.last = ts
		} else {
			users[k.user] = &session{last: ts}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]store.SummaryRow, 0, len(counts))
	for k, n := range counts {
		out = append(out, store.SummaryRow{User: k.user, API: k.api, Status: k.status, Count: n,
			LoggedInSeconds: float64(users[k.user].loggedIn) / float64(time.Second)})
	}
	// Byte order, as both databases' ORDER BY (PostgreSQL columns are "C").
	slices.SortFunc(out, func(x, y store.SummaryRow) int {
		return cmp.Or(strings.Compare(x.User, y.User), strings.Compare(x.API, y.API), strings.Compare(x.Status, y.Status))
	})
	return out, nil
}
