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
	stdjson "encoding/json"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/tidwall/gjson"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// exactKeys reports whether every object key of a valid JSON value, at
// the places where t decodes it into a struct, is one of that struct's
// JSON field names spelled exactly. goccy/go-json's Unmarshal takes some
// keys only by their exact spelling where encoding/json takes any case
// ("AuditID" is auditID there: FuzzDecodeEventList found it), and it has
// no option to refuse unknown fields but in its stream Decoder, which is
// slower than Unmarshal on webhook batches (bench/README.md). A value with
// any other key (a miscased one, or a field a newer sender added) takes
// the encoding/json path, which decides.
func exactKeys(v gjson.Result, t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if opaqueTypes[t] {
		return true
	}
	switch t.Kind() {
	case reflect.Struct:
		if !v.IsObject() {
			return true // null or a type error: both paths refuse or agree
		}
		fields := structFields(t)
		ok := true
		v.ForEach(func(k, val gjson.Result) bool {
			ft, known := fields[k.Str]
			if !known || k.Raw[1:len(k.Raw)-1] != k.Str { // unknown, or escaped
				ok = false
				return false
			}
			ok = exactKeys(val, ft)
			return ok
		})
		return ok
	case reflect.Slice, reflect.Array, reflect.Map:
		// Elements (or map values, whose keys are data) decode as t.Elem().
		if t.Kind() == reflect.Map && !v.IsObject() || t.Kind() != reflect.Map && !v.IsArray() {
			return true
		}
		ok := true
		v.ForEach(func(_, val gjson.Result) bool {
			ok = exactKeys(val, t.Elem())
			return ok
		})
		return ok
	}
	return true
}

// opaqueTypes decode from raw bytes or a string, never by field.
var opaqueTypes = map[reflect.Type]bool{
	reflect.TypeFor[runtime.Unknown]():      true,
	reflect.TypeFor[stdjson.RawMessage]():   true,
	reflect.TypeFor[time.Time]():            true,
	reflect.TypeFor[metav1.Time]():          true,
	reflect.TypeFor[metav1.MicroTime]():     true,
	reflect.TypeFor[runtime.RawExtension](): true,
	reflect.TypeFor[[]byte]():               true,
}

var fieldCache sync.Map // reflect.Type -> map[string]reflect.Type

// structFields maps the JSON names of t's fields (inlined embedded
// structs included) to their types.
func structFields(t reflect.Type) map[string]reflect.Type {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m := map[string]reflect.Type{}
	var add func(t reflect.Type)
	add = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			name, _, _ := strings.Cut(tag, ",")
			if name == "-" {
				continue
			}
			if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
				add(f.Type)
				continue
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			m[name] = f.Type
		}
	}
	add(t)
	fieldCache.Store(t, m)
	return m
}
