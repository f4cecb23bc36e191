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

package ingest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"

	"github.com/auditops/auditops/internal/jsoncut"
	"github.com/auditops/auditops/internal/store"
)

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func collectEvents(body, onlyNamespace string) ([]store.Event, error) {
	var out []store.Event
	err := decodeEvents(strings.NewReader(body), onlyNamespace, DefaultMaxObjectBytes, func(ev store.Event, _, _ int) error {
		out = append(out, ev)
		return nil
	})
	return out, err
}

const (
	genericA = `{"id":"e1","time":"2024-05-22T23:59:59.900000001+02:00","namespace":"acme","user":"liam","principal":{"userId":"liam"},"method":"mask","api":"/mask","status":"success","statusCode":200,"category":"access","entityKind":"doc","entityId":"d1","message":"liam mask","request":{"text":"x"},"response":null,"error":null,"deviceId":"4184","certificateSerialNumber":"2033460265","issuerDN":"CN=x","details":"key=KS.IP","archived":true,"seq":99}`
	genericB = `{"id":"e2","time":"2024-05-23T00:00:00Z","namespace":"beta","user":"mia","statusCode":500}`
)

func TestDecodeEventsValid(t *testing.T) {
	wantA := store.Event{
		ID: "e1", Time: time.Date(2024, 5, 22, 21, 59, 59, 900000001, time.UTC), Namespace: "acme", User: "liam",
		Principal: json.RawMessage(`{"userId":"liam"}`), Method: "mask", API: "/mask", Status: "success", StatusCode: 200,
		Category: "access", EntityKind: "doc", EntityID: "d1", Message: "liam mask", Request: json.RawMessage(`{"text":"x"}`),
		DeviceID: "4184", CertificateSerialNumber: "2033460265", IssuerDN: "CN=x", Details: "key=KS.IP", Archived: true,
	}
	// Status derived from the code, category defaulted.
	wantB := store.Event{ID: "e2", Time: time.Date(2024, 5, 23, 0, 0, 0, 0, time.UTC), Namespace: "beta", User: "mia",
		Status: "failure", StatusCode: 500, Category: "data"}
	tests := []struct {
		name string
		body string
	}{
		{"array", "[" + genericA + "," + genericB + "]"},
		{"array with whitespace", "\n  [\n" + genericA + ",\n" + genericB + "\n]\n"},
		{"ndjson", genericA + "\n" + genericB + "\n"},
		{"ndjson, CRLF, blank lines, no final newline", "\r\n" + genericA + "\r\n\r\n" + genericB},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := collectEvents(tc.body, "")
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 {
				t.Fatalf("got %d events, want 2", len(got))
			}
			assertEvent(t, got[0], wantA)
			assertEvent(t, got[1], wantB)
		})
	}
	for _, body := range []string{"", "  \n", "[]", "[ ]\n"} {
		got, err := collectEvents(body, "")
		if err != nil || len(got) != 0 {
			t.Errorf("%q: %d events, err %v; want an empty batch", body, len(got), err)
		}
	}
}

func TestDecodeEventsInvalid(t *testing.T) {
	ok := `{"id":"x","time":"2024-05-22T10:00:00Z","namespace":"acme","user":"u"}`
	with := func(kv string) string { return strings.TrimSuffix(ok, "}") + "," + kv + "}" }
	tests := []struct {
		name          string
		body          string
		onlyNamespace string
		want          string // substring of the message, which starts with the location
	}{
		{"array: missing id", "[" + ok + `,{"time":"2024-05-22T10:00:00Z","namespace":"acme","user":"u"}]`, "", `index 1: field "id": is required`},
		{"array: missing user", `[{"id":"x","time":"2024-05-22T10:00:00Z","namespace":"acme"}]`, "", `index 0: field "user": is required`},
		{"array: missing time", "[" + ok + "," + ok + `,{"id":"x","namespace":"acme","user":"u"}]`, "", `index 2: field "time": is required`},
		{"array: null time", `[{"id":"x","time":null,"namespace":"acme","user":"u"}]`, "", `index 0: field "time": is required`},
		{"array: bad time", `[{"id":"x","time":"2024-05-22 10:00:00","namespace":"acme","user":"u"}]`, "", `index 0: field "time"`},
		{"array: time a number", `[{"id":"x","time":1716372000,"namespace":"acme","user":"u"}]`, "", `index 0: field "time"`},
		{"array: missing namespace", `[{"id":"x","time":"2024-05-22T10:00:00Z","user":"u"}]`, "", `index 0: field "namespace": is required`},
		{"array: bad status", "[" + with(`"status":"ok"`) + "]", "", `index 0: field "status": must be "success" or "failure", got "ok"`},
		{"array: bad category", "[" + ok + "," + with(`"category":"admin"`) + "]", "", `index 1: field "category"`},
		{"array: statusCode a string", "[" + with(`"statusCode":"200"`) + "]", "", `index 0: field "statusCode": expected an integer, got JSON string`},
		{"array: statusCode out of range", "[" + with(`"statusCode":1000`) + "]", "", `index 0: field "statusCode": must be 0..999`},
		{"array: principal not an object", "[" + with(`"principal":"liam"`) + "]", "", `index 0: field "principal": must be a JSON object`},
		{"array: element not an object", "[" + ok + ",42]", "", `index 1: expected an object, got JSON number`},
		{"array: syntax error", "[" + ok + ",{\"id\":}]", "", `index 1: invalid JSON`},
		{"array: truncated", "[" + ok + "," + ok[:20], "", `index 1: unexpected end of JSON`},
		{"array: unterminated", "[" + ok, "", `unexpected end of JSON`},
		{"array: trailing data", "[" + ok + "] x", "", `unexpected data after the top-level JSON value`},
		{"ndjson: missing user on line 3", ok + "\n" + ok + "\n" + `{"id":"x","time":"2024-05-22T10:00:00Z","namespace":"acme"}`, "", `line 3: field "user": is required`},
		{"ndjson: blank lines count", ok + "\n\n" + `{"id":"x",` + "\n", "", `line 3: invalid JSON: unexpected end of JSON input`},
		{"ndjson: syntax error", ok + "\n" + `{"id" "x"}`, "", `line 2: invalid JSON`},
		{"ndjson: a line that is an array", ok + "\n" + `[1]`, "", `line 2: expected an object, got JSON array`},
		{"ndjson: bad category", with(`"category":"Access"`), "", `line 1: field "category"`},
		{"ndjson: nested type error", with(`"archived":"yes"`), "", `line 1: field "archived": expected a boolean, got JSON string`},
		{"array: id too long (store limit)", "[" + ok + "," + `{"id":"` + strings.Repeat("x", 4097) + `","time":"2024-05-22T10:00:00Z","namespace":"acme","user":"u"}]`, "", `index 1: id is 4097 bytes long, at most 4096`},
		{"ndjson: NUL in user (store rule)", `{"id":"x","time":"2024-05-22T10:00:00Z","namespace":"acme","user":"a\u0000b"}`, "", `line 1: user holds a NUL character`},
		{"ndjson: time out of range", `{"id":"x","time":"2300-01-01T00:00:00Z","namespace":"acme","user":"u"}`, "", `line 1: time 2300-01-01T00:00:00Z is outside`},
		{"namespaced: other namespace", ok + "\n" + `{"id":"y","time":"2024-05-22T10:00:00Z","namespace":"beta","user":"u"}`, "acme", `line 2: field "namespace": is "beta", but this endpoint takes events of namespace "acme" only`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := collectEvents(tc.body, tc.onlyNamespace)
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("err = %v (%T), want *InputError", err, err)
			}
			if !contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestDecodeEventsNamespaceDefault(t *testing.T) {
	got, err := collectEvents(`{"id":"x","time":"2024-05-22T10:00:00Z","user":"u"}`, "acme")
	if err != nil || len(got) != 1 || got[0].Namespace != "acme" {
		t.Fatalf("got %+v, %v; want one event of namespace acme", got, err)
	}
}

func TestDecodeEventList(t *testing.T) {
	item := func(id string) string {
		return `{"level":"Metadata","auditID":"` + id + `","stage":"ResponseComplete","verb":"get","user":{"username":"a"},"stageTimestamp":"2024-05-22T10:00:00.000001Z"}`
	}
	tests := []struct {
		name  string
		body  string
		items int
		want  string // error substring, "" for success
	}{
		{"webhook list", `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[` + item("1") + "," + item("2") + `]}`, 2, ""},
		{"items first, no kind", `{"items":[` + item("1") + `],"metadata":{"resourceVersion":"1"}}`, 1, ""},
		{"null items", `{"kind":"EventList","items":null}`, 0, ""},
		{"empty body", ``, 0, "empty body"},
		{"not an object", `[` + item("1") + `]`, 0, "EventList object is expected"},
		{"wrong apiVersion", `{"kind":"EventList","apiVersion":"audit.k8s.io/v1beta1","items":[]}`, 0, `field "apiVersion": must be audit.k8s.io/v1`},
		{"wrong kind", `{"kind":"PodList","items":[]}`, 0, `field "kind": must be EventList`},
		{"items not an array", `{"items":{}}`, 0, `field "items": must be an array`},
		{"bad item type", `{"items":[` + item("1") + `,{"verb":7}]}`, 1, `items[1]: field "verb": expected a string, got JSON number`},
		{"bad item timestamp", `{"items":[{"auditID":"x","stageTimestamp":"2024-05-22T10:00:00Z"}]}`, 0, `items[0]: invalid timestamp`},
		{"syntax", `{"items":[` + item("1") + `,{]}`, 1, `items[1]: invalid JSON`},
		{"trailing", `{"items":[]}{}`, 0, `unexpected data after`},
		{"null body", `null`, 0, "EventList object is expected"},
		{"items twice", `{"items":[` + item("1") + `],"items":[]}`, 1, `field "items": appears twice`},
		{"an item holding the word items", `{"items":[` + strings.Replace(item("1"), `"verb":"get"`, `"verb":"items"`, 1) + `]}`, 1, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := 0
			err := decodeEventList(strings.NewReader(tc.body), -1, ReserveBytes(-1, DefaultBatchMemoryBytes), DefaultMaxObjectBytes, func(int64) {}, func(i int, ev *auditv1.Event, _ jsoncut.Item) error {
				if i != n {
					t.Errorf("index %d, want %d", i, n)
				}
				n++
				return nil
			})
			if tc.want == "" && err != nil {
				t.Fatal(err)
			}
			if tc.want != "" {
				var ie *InputError
				if !errors.As(err, &ie) || !contains(err.Error(), tc.want) {
					t.Fatalf("err = %v, want an InputError containing %q", err, tc.want)
				}
			}
			if n != tc.items {
				t.Errorf("%d items decoded, want %d", n, tc.items)
			}
		})
	}
}

func TestLineReaderLongLines(t *testing.T) {
	long := strings.Repeat("x", 300<<10) // longer than any buffer
	lr := &lineReader{br: bufio.NewReaderSize(strings.NewReader("a\n"+long+"\r\n\nb"), 16)}
	var got []string
	var nums []int
	for {
		line, n, ok, err := lr.next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		got = append(got, string(line))
		nums = append(nums, n)
	}
	if len(got) != 4 || got[0] != "a" || got[1] != long || got[2] != "" || got[3] != "b" {
		t.Fatalf("lines = %d %q…", len(got), got[0])
	}
	if nums[3] != 4 {
		t.Errorf("last line number %d, want 4", nums[3])
	}
}

// TestDecodeEventListFastMatchesStd: the goccy/go-json fast path decodes a
// webhook body into exactly what encoding/json does.
func TestDecodeEventListFastMatchesStd(t *testing.T) {
	body := webhookBody(40, "m")
	var fast, std []auditv1.Event
	if err := decodeEventList(bytes.NewReader(body), int64(len(body)), ReserveBytes(int64(len(body)), DefaultBatchMemoryBytes), DefaultMaxObjectBytes, func(int64) {}, func(_ int, ev *auditv1.Event, _ jsoncut.Item) error {
		fast = append(fast, *ev)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := fastEventList(body, ReserveBytes(int64(len(body)), DefaultBatchMemoryBytes)); !ok {
		t.Fatal("the fast path refused a valid webhook body")
	}
	if err := decodeEventListStd(bytes.NewReader(body), DefaultMaxObjectBytes, func(_ int, ev *auditv1.Event, _ jsoncut.Item) error {
		std = append(std, *ev)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fast, std) {
		t.Fatalf("fast and encoding/json decodes differ:\nfast %+v\nstd  %+v", fast[0], std[0])
	}
}
