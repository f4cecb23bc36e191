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
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	reportsv1alpha1 "github.com/auditops/auditops/api/v1alpha1"
	"github.com/auditops/auditops/internal/store"
	"github.com/auditops/auditops/internal/store/postgres"
	"github.com/auditops/auditops/internal/store/sqlite"
	"github.com/auditops/auditops/internal/store/storetest"
)

// restrict is storetest.Restrict: what a store query asking for f returns.
var restrict = storetest.Restrict

// TestEncoderFields holds each encoder's field set to what it shows: the
// set's fields encode exactly as the whole event (no field it shows is left
// unread), and leaving out any one of them changes the bytes (no field is
// read that it does not show).
func TestEncoderFields(t *testing.T) {
	msg := "boom"
	full := store.Event{
		ID: "id-1", Seq: 7, Time: time.Date(2024, 5, 22, 1, 2, 3, 0, time.UTC), Namespace: "ns", User: "sony", Method: "35",
		API: "/mask", Status: store.StatusFailure, StatusCode: 403, Category: store.CategoryAccess,
		EntityKind: "pods", EntityID: "ns/p", Message: "m", Error: &msg,
		Principal: json.RawMessage(`{"u":1}`), Request: json.RawMessage(`{"q":1}`), Response: json.RawMessage(`{"r":1}`),
		PreviousState: json.RawMessage(`{"p":1}`), CurrentState: json.RawMessage(`{"c":1}`),
		DeviceID: "4184", CertificateSerialNumber: "2033", IssuerDN: "CN=x", Details: "d", Archived: true,
	}
	ok := full
	ok.Status = store.StatusSuccess
	for _, enc := range []struct {
		name   string
		fields store.Fields
		append func([]byte, *store.Event) []byte
	}{
		{"audit details", AuditDetailFields, AppendAuditDetail},
		{"csv", CSVFields, AppendCSVRow},
		{"user logs", UserLogFields, AppendUserLogItem},
	} {
		encode := func(f store.Fields) string {
			var b []byte
			for _, e := range []store.Event{full, ok} {
				e := restrict(e, f)
				b = enc.append(b, &e)
			}
			return string(b)
		}
		want := encode(store.AllFields)
		if got := encode(enc.fields); got != want {
			t.Errorf("%s: encoded from its fields %#x:\n%s\nwant (every field)\n%s", enc.name, uint32(enc.fields), got, want)
		}
		for f := store.Fields(1); f <= store.AllFields; f <<= 1 {
			if enc.fields&f != 0 && encode(enc.fields&^f) == want {
				t.Errorf("%s: field %#x is read but does not show", enc.name, uint32(f))
			}
		}
	}
}

// spyStore records the fields every page asks for.
type spyStore struct {
	store.Store
	asked map[store.Fields]bool
}

func (s *spyStore) Events(ctx context.Context, q store.EventQuery) (store.EventPage, error) {
	s.asked[q.Fields] = true
	return s.Store.Events(ctx, q)
}

func (s *spyStore) UserLogs(ctx context.Context, q store.UserLogsQuery) (store.UserLogsPage, error) {
	s.asked[q.Fields] = true
	return s.Store.UserLogs(ctx, q)
}

// TestGenerateReadsShownFields: every report type asks the store for its
// encoder's fields only (a user-logs report read every payload before).
func TestGenerateReadsShownFields(t *testing.T) {
	st := seededStore(t, 50)
	for typ, want := range map[reportsv1alpha1.ReportType]store.Fields{
		reportsv1alpha1.AuditDetails: AuditDetailFields, reportsv1alpha1.UserAccess: CSVFields,
		reportsv1alpha1.Users: CSVFields, reportsv1alpha1.UserLogs: UserLogFields,
	} {
		spy := &spyStore{Store: st, asked: map[store.Fields]bool{}}
		p := Params{Type: typ, Namespace: "team-a", User: "alice", PageSize: 7}
		collect(t, spy, p, Cursor{}, 0)
		if len(spy.asked) != 1 || !spy.asked[want] {
			t.Errorf("%s: pages asked for fields %v, want only %#x", typ, spy.asked, uint32(want))
		}
	}
}

// TestGenerateCappedPages: with a byte cap that ends pages early (rows with
// large payloads), every report is byte-identical to the one an uncapped
// store gives, and no page holds much more than the cap; on both stores.
func TestGenerateCappedPages(t *testing.T) {
	const capBytes = 64 << 10
	payload := func(i, n int) json.RawMessage {
		return json.RawMessage(fmt.Sprintf(`{"i":%d,"p":%q}`, i, strings.Repeat("x", n)))
	}
	var events []store.Event
	for i := range 80 {
		n := []int{20 << 10, 100, 30 << 10, 1 << 10}[i%4]
		if i == 41 {
			n = 200 << 10 // alone more than the cap
		}
		events = append(events, store.Event{
			ID: fmt.Sprint("e", i), Time: t0.Add(time.Duration(i) * time.Minute), Namespace: "team-a",
			User: []string{"alice", "bob"}[i%2], Method: "get", API: "/pods", Status: store.StatusSuccess,
			Category: []string{store.CategoryAccess, store.CategoryUser}[i/2%2], EntityKind: "pods", EntityID: fmt.Sprint("team-a/p", i),
			Principal: payload(i, n/4), Request: payload(i, n), Response: payload(i, n/2), CurrentState: payload(i, n), PreviousState: payload(i, n/3),
			DeviceID: "d",
		})
	}
	open := map[string]func(t *testing.T, maxBytes int) store.Store{
		"sqlite": func(t *testing.T, maxBytes int) store.Store {
			st, err := sqlite.New(t.Context(), filepath.Join(t.TempDir(), "audit.db"), store.Options{TokenKey: []byte("report-test-token-key-0123456789"), MaxPageBytes: maxBytes})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.Close() })
			return st
		},
		"postgres": func(t *testing.T, maxBytes int) store.Store {
			st, err := postgres.New(t.Context(), storetest.PostgresDatabase(t), store.Options{TokenKey: []byte("report-test-token-key-0123456789"), MaxPageBytes: maxBytes})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.Close() })
			return st
		},
	}
	for name, newStore := range open {
		t.Run(name, func(t *testing.T) {
			capped, uncapped := newStore(t, capBytes), newStore(t, 0)
			for _, st := range []store.Store{capped, uncapped} {
				if _, err := st.Insert(t.Context(), events); err != nil {
					t.Fatal(err)
				}
			}
			for _, typ := range []reportsv1alpha1.ReportType{reportsv1alpha1.NamespaceUsersSummary, reportsv1alpha1.AuditDetails,
				reportsv1alpha1.UserAccess, reportsv1alpha1.Users, reportsv1alpha1.UserLogs} {
				p := Params{Type: typ, Namespace: "team-a", Range: store.TimeRange{From: t0, To: t0.Add(24 * time.Hour)}, PageSize: 1000}
				if typ == reportsv1alpha1.UserLogs {
					p.User = "bob"
				}
				run := func(st store.Store) ([]byte, Cursor, int) {
					var out bytes.Buffer
					var last Cursor
					largest := 0
					err := Generate(t.Context(), st, p, Cursor{}, func(_ context.Context, chunk []byte, next Cursor) error {
						out.Write(chunk)
						last, largest = next, max(largest, len(chunk))
						return nil
					})
					if err != nil {
						t.Fatal(err)
					}
					return out.Bytes(), last, largest
				}
				want, wantEnd, _ := run(uncapped)
				got, end, largest := run(capped)
				if !bytes.Equal(got, want) || end.Records != wantEnd.Records {
					t.Errorf("%s: the capped report (%d bytes, %d records) differs from the uncapped one (%d bytes, %d records)",
						typ, len(got), end.Records, len(want), wantEnd.Records)
				}
				// Payload reports take more pages, none much over the cap
				// (its 200 KiB row alone is a page); the others are unchanged.
				payloads := typ == reportsv1alpha1.AuditDetails || typ == reportsv1alpha1.UserAccess || typ == reportsv1alpha1.Users
				if payloads && (end.Pages <= wantEnd.Pages || largest > 2*(200<<10)) {
					t.Errorf("%s: %d pages capped vs %d uncapped, largest page %d bytes", typ, end.Pages, wantEnd.Pages, largest)
				}
				if !payloads && end.Pages != wantEnd.Pages {
					t.Errorf("%s: %d pages capped vs %d uncapped; its rows are small", typ, end.Pages, wantEnd.Pages)
				}
			}
		})
	}
}
