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

package jsonshape

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

// validInputs are the edge cases of JSON's grammar; Valid must answer each
// as encoding/json does.
var validInputs = []string{
	`{}`, `[]`, `null`, `true`, `false`, `0`, `-0`, `1.5e10`, `-1.5E-10`, `1E+2`, `"s"`, ` {"a":1} `, "\t[1,2]\n",
	`{"a":{"b":[1,{"c":null}]}}`, `"\u00e9\ud83d\ude00"`, `"\ud800"`, `"\u12"`, `"\u12g4"`, `"\x"`, `"\/"`, `"\"\\\b\f\n\r\t"`,
	`01`, `-01`, `1.`, `.5`, `-`, `--1`, `1e`, `1e+`, `1.5e`, `+1`, `0x10`, `NaN`, `Infinity`, `nul`, `tru`, `fals`, `truex`,
	`[1,]`, `[,1]`, `[1,,2]`, `{"a":1,}`, `{,}`, `{"a"}`, `{"a":}`, `{a:1}`, `{'a':1}`, `[1 2]`, `{"a" 1}`, `{"a":1 "b":2}`,
	`{"a":1}{}`, `{"a":1} x`, `[`, `]`, `{`, `}`, `"`, `"abc`, `"abc\`, ``, ` `, `[[]`, `[]]`, `{"a":[}`,
	"\"a\tb\"", "\"a\nb\"", "\"a\x01b\"", "\"a\x7fb\"", "\"\xff\xfe\"", "\"caf\xc3\xa9\"", "{\"a\":1}\x00", "\x00",
	"\u00a0{}", "{}\u00a0", "\v{}", "\f{}",
	strings.Repeat("[", 5000) + strings.Repeat("]", 5000),
	strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth),
	strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1),
	strings.Repeat(`{"a":`, MaxDepth) + "1" + strings.Repeat("}", MaxDepth),
	strings.Repeat(`{"a":`, MaxDepth+1) + "1" + strings.Repeat("}", MaxDepth+1),
	`[1e400]`, `{"a":1,"a":2}`, `"\u0000"`, `123456789012345678901234567890`,
}

func TestValidAgreesWithEncodingJSON(t *testing.T) {
	for _, in := range validInputs {
		if got, want := Valid([]byte(in)), json.Valid([]byte(in)); got != want {
			t.Errorf("Valid(%.60q) = %v, encoding/json says %v", in, got, want)
		}
	}
}

// FuzzValid holds Valid to encoding/json.Valid on any bytes.
func FuzzValid(f *testing.F) {
	for _, in := range validInputs {
		f.Add(in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if got, want := Valid([]byte(in)), json.Valid([]byte(in)); got != want {
			t.Fatalf("Valid(%q) = %v, encoding/json says %v", in, got, want)
		}
	})
}

type inner struct {
	Name string `json:"name"`
}

type embedded struct {
	Inlined string `json:"inlined"`
}

type node struct {
	Next *node `json:"next,omitempty"`
}

type sample struct {
	embedded
	ID      string `json:"id"`
	NoTag   int    // named by its Go name
	Skipped string `json:"-"`
	//lint:ignore U1000 never set: an unexported field is not a key, which the test shows
	hidden   string
	Inner    inner             `json:"inner"`
	List     []inner           `json:"list"`
	ByName   map[string]inner  `json:"byName"`
	Raw      json.RawMessage   `json:"raw"`
	Any      any               `json:"any"`
	Node     *node             `json:"node"`
	Strings  map[string]string `json:"strings"`
	Pointers map[string]*inner `json:"pointers"`
	Nested   [][]inner         `json:"nested"`
	Arr      [2]inner          `json:"arr"`
	Opaque   map[string][]byte `json:"opaque"`
}

func TestConformsChecksKeysWhereStructsDecode(t *testing.T) {
	shape := Of(reflect.TypeFor[sample]())
	for _, tc := range []struct {
		name string
		in   string
		want bool
	}{
		{"known keys", `{"id":"x","NoTag":1,"inlined":"y","inner":{"name":"n"}}`, true},
		{"unknown top key", `{"ID2":"x"}`, false},
		{"miscased key", `{"Id":"x"}`, false},
		{"escaped key", `{"\u0069d":"x"}`, false},
		{"skipped field", `{"Skipped":"x"}`, false},
		{"unexported field", `{"hidden":"x"}`, false},
		{"struct field", `{"inner":{"name":"n"}}`, true},
		{"struct field unknown key", `{"inner":{"Name":"n"}}`, false},
		{"list element keys", `{"list":[{"name":"a"},{"name":"b"}]}`, true},
		{"list element unknown key", `{"list":[{"name":"a"},{"nom":"b"}]}`, false},
		{"map keys are data", `{"byName":{"ANY key":{"name":"a"}}}`, true},
		{"map value keys", `{"byName":{"k":{"bad":"a"}}}`, false},
		{"raw message any keys", `{"raw":{"X":{"Y":1}}}`, true},
		{"interface any keys", `{"any":{"X":1}}`, true},
		{"recursive type", `{"node":{"next":{"next":{}}}}`, true},
		{"recursive type unknown key", `{"node":{"next":{"nxt":{}}}}`, false},
		{"pointer map values", `{"pointers":{"a":{"name":"x"},"b":null}}`, true},
		{"nested lists", `{"nested":[[{"name":"x"}],[{"bad":1}]]}`, false},
		{"array", `{"arr":[{"name":"x"},{"name":"y"}]}`, true},
		{"bytes are opaque", `{"opaque":{"a":"aGk="}}`, true},
		{"type mismatch only validated", `{"inner":[{"whatever":1}],"list":{"x":{"y":1}}}`, true},
		{"null struct", `{"inner":null}`, true},
		{"invalid JSON", `{"id":"x",}`, false},
		{"trailing data", `{"id":"x"} {}`, false},
		{"top-level non-object", `[1,2]`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := shape.Conforms([]byte(tc.in)); got != tc.want {
				t.Errorf("Conforms(%s) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

// TestDecodedEstimatesAllocations: Decoded counts what decoding allocates
// for structure, however few bytes it takes, and nothing inside opaque
// values.
func TestDecodedEstimatesAllocations(t *testing.T) {
	shape := Of(reflect.TypeFor[sample]())
	top := int(unsafe.Sizeof(sample{}))
	in := int(unsafe.Sizeof(inner{}))
	entry := func(k, v uintptr) int { return int(k+v) + 16 }
	for _, tc := range []struct {
		in   string
		want int
	}{
		{`{}`, top},
		{`{"id":"x","raw":{"a":{"b":[1,2,3]}},"any":[{},{}]}`, top},
		{`{"opaque":{"a":"aGk=","b":""}}`, top + 2*entry(unsafe.Sizeof(""), unsafe.Sizeof([]byte{}))},
		{`{"inner":{"name":"n"}}`, top + in},
		{`{"list":[{},{},{}]}`, top + 3*(in+in)},
		{`{"byName":{"a":{},"b":{}}}`, top + 2*(entry(unsafe.Sizeof(""), unsafe.Sizeof(inner{}))+in)},
		{`{"nested":[[{}],[]]}`, top + 2*int(unsafe.Sizeof([]inner{})) + 2*in},
		{`{"inner":[{"whatever":1}]}`, top}, // a type mismatch decodes nothing
	} {
		got, ok := shape.Decoded([]byte(tc.in))
		if !ok || got != tc.want {
			t.Errorf("Decoded(%s) = %d, %v; want %d, true", tc.in, got, ok, tc.want)
		}
	}
	if n, ok := shape.Decoded([]byte(`{"id":"x",}`)); ok || n != 0 {
		t.Errorf("Decoded of invalid JSON = %d, %v; want 0, false", n, ok)
	}
}

func TestConformsAuditEvent(t *testing.T) {
	shape := Of(reflect.TypeFor[auditv1.Event]())
	ev := `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"a","stage":"ResponseComplete",` +
		`"requestURI":"/api/v1/namespaces/a/configmaps","verb":"create","user":{"username":"u","groups":["g"],"extra":{"k":["v"]}},` +
		`"objectRef":{"resource":"configmaps","namespace":"a"},"responseStatus":{"metadata":{},"code":201,"details":{"causes":[{"field":"x"}]}},` +
		`"requestObject":{"Anything":{"goes":1}},"requestReceivedTimestamp":"2026-11-22T08:15:30.120011Z","annotations":{"Any":"thing"}}`
	if !shape.Conforms([]byte(ev)) {
		t.Fatalf("a well-formed audit event does not conform")
	}
	for _, bad := range []string{
		strings.Replace(ev, `"auditID"`, `"AuditID"`, 1),
		strings.Replace(ev, `"username"`, `"userName"`, 1),
		strings.Replace(ev, `"field":"x"`, `"Field":"x"`, 1),
		strings.Replace(ev, `"code"`, `"newField"`, 1),
	} {
		if shape.Conforms([]byte(bad)) {
			t.Errorf("conforms, though a key is not exact: %s", bad)
		}
	}
}
