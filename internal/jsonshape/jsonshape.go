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

// Package jsonshape checks, in one pass over the bytes, that a document is
// valid JSON (as encoding/json.Valid says) and that every object key at a
// place where a Go type decodes the object into a struct is one of that
// struct's JSON field names, spelled exactly and without escapes.
//
// Ingest decodes bodies with goccy/go-json, which is faster than
// encoding/json but accepts some invalid JSON and matches some keys only by
// their exact spelling where encoding/json takes any case (the fuzz targets
// of internal/ingest found both). A body that conforms to its shape is
// decoded the same by both; any other body takes encoding/json, which
// decides. Checking validity and keys together reads each byte once, where
// a validator followed by a key walk read every body twice and re-parsed
// nested values at each level.
package jsonshape

import (
	stdjson "encoding/json"
	"reflect"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// MaxDepth is encoding/json's nesting limit: a deeper document does not
// conform (encoding/json refuses it).
const MaxDepth = 10000

type kind uint8

const (
	anyKind    kind = iota // validated only: scalars, opaque types, interfaces
	structKind             // keys must be fields
	listKind               // elements have elem's shape
	mapKind                // values have elem's shape; keys are data
)

// Shape is what a JSON value decodes into at one place of a Go type.
type Shape struct {
	kind   kind
	fields map[string]*Shape
	elem   *Shape
	// size is what decoding allocates for one struct, one list element or
	// one map entry here (Decoded).
	size int
}

// Any is the shape of a value whose keys are not checked: Conforms is then
// encoding/json.Valid.
var Any = &Shape{}

// opaque types decode from raw bytes or a string, never by field.
func opaque(t reflect.Type) bool {
	switch t {
	case reflect.TypeFor[runtime.Unknown](), reflect.TypeFor[stdjson.RawMessage](),
		reflect.TypeFor[time.Time](), reflect.TypeFor[metav1.Time](),
		reflect.TypeFor[metav1.MicroTime](), reflect.TypeFor[runtime.RawExtension](),
		reflect.TypeFor[[]byte]():
		return true
	}
	return false
}

// Of returns the shape of values that decode into t. Build it once per type
// and keep it: it walks t's fields by reflection.
func Of(t reflect.Type) *Shape {
	return build(t, map[reflect.Type]*Shape{})
}

func build(t reflect.Type, seen map[reflect.Type]*Shape) *Shape {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if opaque(t) {
		return Any
	}
	if s, ok := seen[t]; ok {
		return s // a recursive type: the shape being built
	}
	switch t.Kind() {
	case reflect.Struct:
		s := &Shape{kind: structKind, fields: map[string]*Shape{}, size: int(t.Size())}
		seen[t] = s
		addFields(s, t, seen)
		return s
	case reflect.Slice, reflect.Array:
		s := &Shape{kind: listKind, size: int(t.Elem().Size())}
		seen[t] = s
		s.elem = build(t.Elem(), seen)
		return s
	case reflect.Map:
		// A map entry: its key, its value and the bucket's overhead.
		s := &Shape{kind: mapKind, size: int(t.Key().Size()+t.Elem().Size()) + 16}
		seen[t] = s
		s.elem = build(t.Elem(), seen)
		return s
	}
	return Any
}

// addFields adds the JSON names of t's fields, inlined embedded structs
// included, as encoding/json names them.
func addFields(s *Shape, t reflect.Type, seen map[reflect.Type]*Shape) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			addFields(s, f.Type, seen)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		s.fields[name] = build(f.Type, seen)
	}
}

// Conforms reports whether data is one valid JSON value (surrounding
// whitespace allowed) whose objects at struct places have only exact,
// unescaped field names of the struct. A value of another JSON type than
// the place expects (null, or a type error) is only validated: decoders
// agree on null and both refuse a type error. UTF-8 is not checked, as
// encoding/json.Valid does not.
func (s *Shape) Conforms(data []byte) bool {
	_, ok := s.Decoded(data)
	return ok
}

// Decoded is Conforms, and when data conforms also estimates the bytes
// that decoding it allocates besides its strings' and raw values' bytes:
// each object decoded into a struct (its type's size, counted again when
// it is a list element, as a struct reached through a pointer is), each
// list element and each map entry. These cost memory whatever their bytes
// cost, so the estimate bounds the memory a decoded document takes where
// its length does not ("[{},{},…]" is 3 bytes an element, a 320-byte
// struct decoded). Values inside an opaque place (raw bytes, an interface)
// are not counted: a type meant to be bounded this way has no interface
// fields.
func (s *Shape) Decoded(data []byte) (allocated int, ok bool) {
	sc := scanner{data: data}
	i, ok := sc.value(0, s)
	if !ok || skipSpace(data, i) != len(data) {
		return 0, false
	}
	return sc.allocated, true
}

// Valid is encoding/json.Valid, faster.
func Valid(data []byte) bool { return Any.Conforms(data) }

type scanner struct {
	data  []byte
	depth int
	// allocated is Decoded's estimate.
	allocated int
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(data []byte, i int) int {
	for i < len(data) && isSpace(data[i]) {
		i++
	}
	return i
}

// value scans the value starting at or after i (after whitespace) and
// returns the index just past it.
func (sc *scanner) value(i int, s *Shape) (int, bool) {
	d := sc.data
	i = skipSpace(d, i)
	if i >= len(d) {
		return i, false
	}
	switch c := d[i]; {
	case c == '"':
		end, _, ok := sc.str(i + 1)
		return end, ok
	case c == '{' || c == '[':
		if sc.depth++; sc.depth > MaxDepth {
			return i, false
		}
		var end int
		var ok bool
		if c == '{' {
			end, ok = sc.object(i+1, s)
		} else {
			end, ok = sc.array(i+1, s)
		}
		sc.depth--
		return end, ok
	case c == 't':
		return literal(d, i, "true")
	case c == 'f':
		return literal(d, i, "false")
	case c == 'n':
		return literal(d, i, "null")
	case c == '-' || c >= '0' && c <= '9':
		return number(d, i)
	}
	return i, false
}

func literal(d []byte, i int, lit string) (int, bool) {
	if len(d)-i < len(lit) || string(d[i:i+len(lit)]) != lit {
		return i, false
	}
	return i + len(lit), true
}

// number scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?; what
// follows is the caller's to check.
func number(d []byte, i int) (int, bool) {
	if d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		i = digits(d, i+1)
	default:
		return i, false
	}
	if i < len(d) && d[i] == '.' {
		j := digits(d, i+1)
		if j == i+1 {
			return i, false
		}
		i = j
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		j := digits(d, i)
		if j == i {
			return i, false
		}
		i = j
	}
	return i, true
}

func digits(d []byte, i int) int {
	for i < len(d) && d[i] >= '0' && d[i] <= '9' {
		i++
	}
	return i
}

// str scans a string whose opening quote is at i-1 and returns the index
// past its closing quote, and whether it holds an escape.
func (sc *scanner) str(i int) (end int, escaped, ok bool) {
	d := sc.data
	for i < len(d) {
		// Most bytes of a string are plain: skip them a table look-up each.
		for i < len(d) && plain[d[i]] {
			i++
		}
		if i >= len(d) {
			break
		}
		switch c := d[i]; {
		case c == '"':
			return i + 1, escaped, true
		case c < 0x20:
			return i, escaped, false
		default: // '\\'
			escaped = true
			i++
			if i >= len(d) {
				return i, escaped, false
			}
			switch d[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if len(d)-i < 5 || !hex(d[i+1]) || !hex(d[i+2]) || !hex(d[i+3]) || !hex(d[i+4]) {
					return i, escaped, false
				}
				i += 5
			default:
				return i, escaped, false
			}
		}
	}
	return i, escaped, false
}

// plain are the bytes that stand for themselves inside a string.
var plain = func() (t [256]bool) {
	for c := range t {
		t[c] = c >= 0x20 && c != '"' && c != '\\'
	}
	return t
}()

func hex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// object scans an object whose '{' is at i-1.
func (sc *scanner) object(i int, s *Shape) (int, bool) {
	d := sc.data
	if s.kind == structKind {
		sc.allocated += s.size
	}
	i = skipSpace(d, i)
	if i < len(d) && d[i] == '}' {
		return i + 1, true
	}
	for {
		if i >= len(d) || d[i] != '"' {
			return i, false
		}
		end, escaped, ok := sc.str(i + 1)
		if !ok {
			return end, false
		}
		vs := Any
		switch s.kind {
		case structKind:
			f, known := s.fields[string(d[i+1:end-1])]
			if !known || escaped {
				return i, false
			}
			vs = f
		case mapKind:
			vs = s.elem
			sc.allocated += s.size
		}
		i = skipSpace(d, end)
		if i >= len(d) || d[i] != ':' {
			return i, false
		}
		if i, ok = sc.value(i+1, vs); !ok {
			return i, false
		}
		i = skipSpace(d, i)
		if i >= len(d) {
			return i, false
		}
		switch d[i] {
		case ',':
			i = skipSpace(d, i+1)
		case '}':
			return i + 1, true
		default:
			return i, false
		}
	}
}

// array scans an array whose '[' is at i-1.
func (sc *scanner) array(i int, s *Shape) (int, bool) {
	d := sc.data
	i = skipSpace(d, i)
	if i < len(d) && d[i] == ']' {
		return i + 1, true
	}
	es := Any
	if s.kind == listKind {
		es = s.elem
	}
	for {
		if s.kind == listKind {
			sc.allocated += s.size
		}
		var ok bool
		if i, ok = sc.value(i, es); !ok {
			return i, false
		}
		i = skipSpace(d, i)
		if i >= len(d) {
			return i, false
		}
		switch d[i] {
		case ',':
			i++
		case ']':
			return i + 1, true
		default:
			return i, false
		}
	}
}
