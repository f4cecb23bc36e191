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
	"strings"
	"testing"
)

// TestValidJSONAgreesWithEncodingJSON: the fast validator accepts exactly
// what encoding/json does, on the inputs where validators tend to differ.
func TestValidJSONAgreesWithEncodingJSON(t *testing.T) {
	inputs := []string{
		`{}`, `[]`, `null`, `true`, `false`, `0`, `-0`, `1.5e10`, `-1.5E-10`, `"s"`, ` {"a":1} `, "\t[1,2]\n",
		`{"a":{"b":[1,{"c":null}]}}`, `"\u00e9\ud83d\ude00"`, `"\ud800"`, `"\u12"`, `"\x"`, `"\/"`,
		`01`, `1.`, `.5`, `-`, `1e`, `1e+`, `+1`, `0x10`, `NaN`, `Infinity`, `nul`, `tru`, `[1,]`, `{"a":1,}`,
		`{"a"}`, `{a:1}`, `{'a':1}`, `[1 2]`, `{"a":1}{}`, `{"a":1} x`, `[`, `]`, `"`, `"abc`, ``, ` `,
		"\"a\tb\"", "\"a\nb\"", "\"a\x01b\"", "\"a\x7fb\"", "\"\xff\xfe\"", "\"caf\xc3\xa9\"", "{\"a\":1}\x00",
		strings.Repeat("[", 5000) + strings.Repeat("]", 5000), `[1e400]`, `{"a":1,"a":2}`, `"\u0000"`,
	}
	for _, in := range inputs {
		if got, want := validJSON([]byte(in)), json.Valid([]byte(in)); got != want {
			t.Errorf("validJSON(%q) = %v, encoding/json says %v", in, got, want)
		}
	}
}
