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
	stdjson "encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	json "github.com/goccy/go-json"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"

	"github.com/auditops/auditops/internal/jsoncut"
	"github.com/auditops/auditops/internal/jsonshape"
	"github.com/auditops/auditops/internal/store"
)

// FieldError is a missing or invalid field of one event.
type FieldError struct {
	// Field is the JSON name (a dotted path for nested fields), "" when the
	// event as a whole is bad.
	Field string
	Msg   string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return fmt.Sprintf("field %q: %s", e.Field, e.Msg)
}

// InputError is a malformed body or file: where the first bad event is and
// what is wrong with it. The ingest handlers answer it with 400.
type InputError struct {
	// Where locates the event: "index 3" (JSON array, 0-based), "line 5"
	// (NDJSON, 1-based), "items[3]" (EventList), prefixed by the file name
	// on import; "" for the body as a whole.
	Where string
	Err   error
}

func (e *InputError) Error() string {
	if e.Where == "" {
		return e.Err.Error()
	}
	return e.Where + ": " + e.Err.Error()
}

func (e *InputError) Unwrap() error { return e.Err }

func atIndex(i int) string { return "index " + strconv.Itoa(i) }
func atLine(n int) string  { return "line " + strconv.Itoa(n) }
func atItem(i int) string  { return "items[" + strconv.Itoa(i) + "]" }
func inputErr(where string, err error) error {
	return &InputError{Where: where, Err: err}
}

// readErrRecorder remembers the first error of the underlying reader, so a
// decoder failure can be told apart from a body that is too large (413) or a
// file that cannot be read (not the input's fault).
type readErrRecorder struct {
	r   io.Reader
	err error
}

func (rr *readErrRecorder) Read(p []byte) (int, error) {
	n, err := rr.r.Read(p)
	if err != nil && err != io.EOF && rr.err == nil {
		rr.err = err
	}
	return n, err
}

// describe turns a decoding error of one event into a *FieldError. timeField
// names the field whose Unmarshaler failed when the error is not one of
// encoding/json's own (encoding/json does not say which field a custom
// Unmarshaler failed on; the only ones that can fail are timestamps).
func describe(err error, timeField string) *FieldError {
	// Bodies are decoded with goccy/go-json; encoding/json's errors can
	// still come from the Unmarshalers of Kubernetes types.
	var syn *json.SyntaxError
	var stdSyn *stdjson.SyntaxError
	var typ *json.UnmarshalTypeError
	var stdTyp *stdjson.UnmarshalTypeError
	var tpe *time.ParseError
	switch {
	case errors.As(err, &syn):
		return &FieldError{Msg: "invalid JSON: " + syn.Error()}
	case errors.As(err, &stdSyn):
		return &FieldError{Msg: "invalid JSON: " + stdSyn.Error()}
	case errors.As(err, &typ):
		return typeError(typ.Field, typ.Type, typ.Value)
	case errors.As(err, &stdTyp):
		return typeError(stdTyp.Field, stdTyp.Type, stdTyp.Value)
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return &FieldError{Msg: "unexpected end of JSON"}
	case errors.As(err, &tpe):
		return &FieldError{Field: timeField, Msg: fmt.Sprintf("invalid timestamp %q: RFC 3339 expected", tpe.Value)}
	default:
		return &FieldError{Field: timeField, Msg: err.Error()}
	}
}

func typeError(field string, t reflect.Type, value string) *FieldError {
	return &FieldError{Field: field, Msg: fmt.Sprintf("expected %s, got JSON %s", jsonTypeName(t), value)}
}

// jsonTypeName says in JSON terms what a Go type expects.
func jsonTypeName(t reflect.Type) string {
	if t == nil {
		return "a JSON value"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map, reflect.Pointer:
		return "an object"
	}
	return "a " + t.String()
}

// isSpace is JSON whitespace.
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// peekFirst returns the first non-whitespace byte without consuming it (0 at
// EOF), so a body can be sniffed as a JSON array or NDJSON whatever its
// Content-Type says.
func peekFirst(br *bufio.Reader) (byte, error) {
	for {
		b, err := br.Peek(1)
		if err == io.EOF {
			return 0, nil
		}
		if err != nil {
			return 0, err
		}
		if !isSpace(b[0]) {
			return b[0], nil
		}
		if _, err := br.ReadByte(); err != nil {
			return 0, err
		}
	}
}

// lineReader yields the lines of an NDJSON stream with their 1-based numbers.
// Unlike bufio.Scanner it has no line length limit: a body is already bounded
// by MaxBytesReader, and an audit log line can be megabytes long.
//
// With cut set, a line longer than max has its object fields cut as it is
// read (jsoncut), so that it is held without them: item is then what was
// cut, and bad, when set, says why the line cannot be decoded (a field
// being cut is not valid JSON).
type lineReader struct {
	br   *bufio.Reader
	n    int
	buf  []byte
	done bool

	cut     *jsoncut.Cutter
	max     int
	cutting bool
	out     []byte
	item    jsoncut.Item
	bad     error
}

// next returns the next line without its newline; ok is false at the end.
// The slice is valid until the following call.
func (lr *lineReader) next() (line []byte, n int, ok bool, err error) {
	if lr.done {
		return nil, lr.n, false, nil
	}
	lr.buf, lr.cutting, lr.item, lr.bad = lr.buf[:0], false, jsoncut.Item{}, nil
	for {
		chunk, err := lr.br.ReadSlice('\n')
		lr.take(chunk)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			lr.done = true
			if len(lr.buf) == 0 && !lr.cutting {
				return nil, lr.n, false, nil
			}
			break
		}
		if err != nil {
			return nil, lr.n, false, err
		}
		break
	}
	lr.n++
	line = lr.buf
	if lr.cutting {
		if lr.bad == nil {
			lr.out, lr.bad = lr.cut.End(lr.out)
		}
		lr.item, line = lr.cut.Take(0), lr.out
		if lr.bad != nil {
			lr.bad = cutError(lr.bad)
		}
	}
	return bytes.TrimRight(line, "\r\n"), lr.n, true, nil
}

// decode decodes the current line with fn. A line too short to have been
// cut that fn refuses is run through the cutter and decoded again, as the
// array and webhook paths (always cut) would decode it: a value nested
// deeper than the decoder takes is cut whatever its size (jsoncut), and
// such a line is short. When the cutter refuses it too, fn's error stands.
func (lr *lineReader) decode(line []byte, fn func([]byte) error) error {
	err := fn(line)
	if err == nil || lr.cut == nil || lr.cutting {
		return err
	}
	lr.cut.Reset()
	out, cerr := lr.cut.Write(lr.out[:0], line)
	if cerr == nil {
		out, cerr = lr.cut.End(out)
	}
	lr.out = out
	item := lr.cut.Take(0)
	if cerr != nil {
		return err
	}
	lr.cutting, lr.item = true, item
	return fn(out)
}

// take appends a chunk of the current line. A line no longer than max
// cannot hold a value longer than max: it is cut only past that.
func (lr *lineReader) take(chunk []byte) {
	switch {
	case lr.cut == nil || (!lr.cutting && len(lr.buf)+len(chunk) <= lr.max):
		lr.buf = append(lr.buf, chunk...)
		return
	case lr.bad != nil:
		return
	case !lr.cutting:
		lr.cutting = true
		lr.cut.Reset()
		if lr.out, lr.bad = lr.cut.Write(grow(lr.out[:0], len(lr.buf)+lr.max), lr.buf); lr.bad != nil {
			return
		}
	}
	// What a chunk becomes is at most the chunk and a value kept whole.
	lr.out, lr.bad = lr.cut.Write(grow(lr.out, len(chunk)+lr.max+256), chunk)
}

// grow makes room for n more bytes in b, doubling: append grows a large
// slice by a quarter, which for a line of megabytes leaves four times its
// size behind for the collector.
func grow(b []byte, n int) []byte {
	if len(b)+n <= cap(b) {
		return b
	}
	nb := make([]byte, len(b), max(2*cap(b), len(b)+n))
	copy(nb, b)
	return nb
}

// The object fields cut as a body streams in (spec/API.md 2).
var (
	kubeObjectFields  = []string{"requestObject", "responseObject"}
	eventObjectFields = []string{"request", "response", "previousState", "currentState"}
)

// kubeCutter cuts the objects of kube-apiserver's events. Their
// responseObject's metadata.name names what a create made (kubeEntityID).
func kubeCutter(layout jsoncut.Layout, max int) *jsoncut.Cutter {
	return jsoncut.New(jsoncut.Options{Layout: layout, Fields: kubeObjectFields, Max: max, NameField: "responseObject"})
}

// MaxEventBytes bounds a generic event besides its object fields: a
// longer one is refused as soon as it is seen, so that a caller allowed to
// ingest into one namespace cannot make the manager hold hundreds of MiB
// for one event (its text and principal were held whole, a few times
// over). kube-apiserver's events are not held to it: a batch refused is
// lost, and kube-apiserver's own limits keep them far smaller.
const MaxEventBytes = 4 << 20

// eventCutter cuts the objects of generic events, which must be valid
// UTF-8 (decodeEventLine) where they are cut too, and refuses an event
// longer than MaxEventBytes besides its four objects.
func eventCutter(layout jsoncut.Layout, max int) *jsoncut.Cutter {
	return jsoncut.New(jsoncut.Options{Layout: layout, Fields: eventObjectFields, Max: max, UTF8: true,
		MaxItem: MaxEventBytes + int64(len(eventObjectFields)*max)})
}

// cutterHeld is what cutting holds: a value up to the limit, the output
// that flushes it, and the jsoncut.Reader's chunk.
func cutterHeld(maxObject int) int64 { return 2*int64(maxObject) + 64<<10 }

// cutError is a *jsoncut.Error as a *FieldError; other errors pass.
func cutError(err error) error {
	var ce *jsoncut.Error
	switch {
	case errors.As(err, &ce) && ce.TooLong:
		return &FieldError{Msg: fmt.Sprintf("the event is more than %d MiB long besides its object fields (request, response, previousState, currentState; "+
			"each over --max-event-object-bytes is kept as a truncation marker): large data belongs in those", MaxEventBytes>>20)}
	case errors.As(err, &ce):
		return &FieldError{Field: ce.Field, Msg: ce.Error()}
	}
	return err
}

// blank reports whether a line holds only whitespace (skipped in NDJSON).
func blank(line []byte) bool {
	for _, c := range line {
		if !isSpace(c) {
			return false
		}
	}
	return true
}

// validateEvent checks and normalizes one generic event in place. onlyNamespace,
// when set, is the only tenant the event may belong to (and the default for an
// event that names none).
func validateEvent(ev *store.Event, onlyNamespace string) error {
	ev.Seq = 0 // store-assigned; a round-tripped export must not set it
	if ev.ID == "" {
		return &FieldError{Field: "id", Msg: "is required"}
	}
	switch {
	case ev.Namespace == "" && onlyNamespace != "":
		ev.Namespace = onlyNamespace
	case ev.Namespace == "":
		return &FieldError{Field: "namespace", Msg: "is required"}
	case onlyNamespace != "" && ev.Namespace != onlyNamespace:
		return &FieldError{Field: "namespace", Msg: fmt.Sprintf("is %q, but this endpoint takes events of namespace %q only", ev.Namespace, onlyNamespace)}
	}
	if ev.User == "" {
		return &FieldError{Field: "user", Msg: "is required"}
	}
	if ev.Time.IsZero() {
		return &FieldError{Field: "time", Msg: "is required (RFC 3339)"}
	}
	ev.Time = ev.Time.UTC()
	if ev.StatusCode < 0 || ev.StatusCode > 999 {
		return &FieldError{Field: "statusCode", Msg: fmt.Sprintf("must be 0..999, got %d", ev.StatusCode)}
	}
	switch ev.Status {
	case store.StatusSuccess, store.StatusFailure:
	case "":
		// Same rule as for Kubernetes events, so a sender that has only a
		// code need not repeat it.
		ev.Status = store.StatusSuccess
		if ev.StatusCode >= 400 {
			ev.Status = store.StatusFailure
		}
	default:
		return &FieldError{Field: "status", Msg: fmt.Sprintf("must be %q or %q, got %q", store.StatusSuccess, store.StatusFailure, ev.Status)}
	}
	switch ev.Category {
	case store.CategoryAccess, store.CategoryUser, store.CategoryData:
	case "":
		ev.Category = store.CategoryData
	default:
		return &FieldError{Field: "category", Msg: fmt.Sprintf("must be %q, %q or %q, got %q", store.CategoryAccess, store.CategoryUser, store.CategoryData, ev.Category)}
	}
	ev.Principal = nullToNil(ev.Principal)
	if len(ev.Principal) > 0 && ev.Principal[0] != '{' {
		return &FieldError{Field: "principal", Msg: "must be a JSON object"}
	}
	ev.Request = nullToNil(ev.Request)
	ev.Response = nullToNil(ev.Response)
	ev.PreviousState = nullToNil(ev.PreviousState)
	ev.CurrentState = nullToNil(ev.CurrentState)
	return normalize(ev)
}

// normalize applies the store's own checks (sizes, NUL characters, time
// range), so an event the store would refuse is a 400 naming its position
// rather than a failed batch.
func normalize(ev *store.Event) error {
	n, err := store.NormalizeEvent(*ev)
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), store.ErrInvalidEvent.Error()+": ")
		return &FieldError{Msg: msg}
	}
	*ev = n
	return nil
}

// nullToNil makes JSON null and absent the same: the store writes nil as NULL.
func nullToNil(m json.RawMessage) json.RawMessage {
	if string(m) == "null" {
		return nil
	}
	return m
}

// decodeEvents reads generic events, a JSON array or NDJSON (sniffed from the
// first non-whitespace byte), validates each and hands it to fn. The first
// bad event stops decoding with an *InputError; a read error is returned as
// is (wrapped), so *http.MaxBytesError stays recognizable.
//
// An object field longer than maxObject is cut as the body streams in
// (jsoncut): fn is told how many of an event's were, and truncateObjects
// finds nothing more to cut.
func decodeEvents(r io.Reader, onlyNamespace string, maxObject int, fn func(ev store.Event, raw, cuts int) error) error {
	rr := &readErrRecorder{r: r}
	br := bufio.NewReaderSize(rr, 64<<10)
	first, err := peekFirst(br)
	if err != nil {
		return fmt.Errorf("reading events: %w", err)
	}
	if _, err := br.Peek(1); err == io.EOF {
		return nil // empty body: an empty batch (a NUL byte is not empty)
	}
	switch first {
	case '[':
		return decodeEventArray(br, rr, onlyNamespace, maxObject, fn)
	default:
		return decodeEventLines(br, onlyNamespace, maxObject, fn)
	}
}

func decodeEventArray(br *bufio.Reader, rr *readErrRecorder, onlyNamespace string, maxObject int, fn func(store.Event, int, int) error) error {
	// encoding/json, streaming: an imported array file can be larger than
	// memory.
	cut := eventCutter(jsoncut.Array, maxObject)
	dec := stdjson.NewDecoder(jsoncut.NewReader(br, cut))
	if _, err := dec.Token(); err != nil { // '[' (sniffed)
		return bodyErr("", err, rr, "")
	}
	for i := 0; dec.More(); i++ {
		var raw stdjson.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return bodyErr(atIndex(i), err, rr, "time")
		}
		var ev store.Event
		if err := decodeEventLine(raw, &ev); err != nil {
			return inputErr(atIndex(i), err)
		}
		if err := validateEvent(&ev, onlyNamespace); err != nil {
			return inputErr(atIndex(i), err)
		}
		if err := fn(ev, len(raw), cut.Take(i).Cuts); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // ']'
		return bodyErr("", err, rr, "")
	}
	return expectEOF(dec, rr)
}

func decodeEventLines(br *bufio.Reader, onlyNamespace string, maxObject int, fn func(store.Event, int, int) error) error {
	lr := &lineReader{br: br, cut: eventCutter(jsoncut.Lines, maxObject), max: maxObject}
	for {
		line, n, ok, err := lr.next()
		if err != nil {
			return fmt.Errorf("reading events: %w", err)
		}
		if !ok {
			return nil
		}
		if lr.bad != nil {
			return inputErr(atLine(n), lr.bad)
		}
		if blank(line) {
			continue
		}
		var ev store.Event
		if err := lr.decode(line, func(l []byte) error {
			ev, line = store.Event{}, l
			return decodeEventLine(l, &ev)
		}); err != nil {
			return inputErr(atLine(n), err)
		}
		if err := validateEvent(&ev, onlyNamespace); err != nil {
			return inputErr(atLine(n), err)
		}
		if err := fn(ev, len(line), lr.item.Cuts); err != nil {
			return err
		}
	}
}

// decodeEventLine parses one generic event (an NDJSON line or an array
// element). Invalid UTF-8 is refused, not replaced: what a sender meant
// by it is unknown, and encoding/json and goccy/go-json would each keep
// something else.
func decodeEventLine(line []byte, ev *store.Event) error {
	if !utf8.Valid(line) {
		return &FieldError{Msg: "invalid UTF-8"}
	}
	if fastUnmarshal(line, ev, storeEventShape) {
		return nil
	}
	*ev = store.Event{}
	if err := stdjson.Unmarshal(line, ev); err != nil {
		// store.Event's only Unmarshaler that can fail is time.Time.
		return describe(err, "time")
	}
	return nil
}

// bodyErr classifies an error of a streaming decoder: the reader's failure is
// returned wrapped (413 or I/O), anything else is the input's fault.
func bodyErr(where string, err error, rr *readErrRecorder, timeField string) error {
	if rr.err != nil {
		return fmt.Errorf("reading body: %w", rr.err)
	}
	var ce *jsoncut.Error
	if errors.As(err, &ce) {
		return inputErr(where, cutError(ce))
	}
	return inputErr(where, describe(err, timeField))
}

// expectEOF rejects data after the top-level JSON value.
func expectEOF(dec *stdjson.Decoder, rr *readErrRecorder) error {
	if _, err := dec.Token(); err != io.EOF {
		if rr.err != nil {
			return fmt.Errorf("reading body: %w", rr.err)
		}
		return inputErr("", &FieldError{Msg: "unexpected data after the top-level JSON value"})
	}
	return nil
}

// fastUnmarshal decodes data into v with goccy/go-json, and says false
// wherever encoding/json (which decides what is valid, and words the
// errors) might decode it differently, for the caller to decode it again
// with encoding/json. The fuzz targets found where goccy differs:
//   - it accepts some invalid JSON, handing RawMessages and custom
//     Unmarshalers (runtime.Unknown) bytes it has not validated ("A{}", a
//     NUL byte), so jsonshape's validator, held to encoding/json by its tests and
//     fuzz target, checks data first;
//   - it matches some keys only by exact spelling where encoding/json
//     takes any case ("AuditID", "Id"): jsonshape checks the keys in the
//     same pass, against shape, which must be v's;
//   - it keeps invalid UTF-8 in strings where encoding/json puts U+FFFD;
//   - data after the value (jsonshape refuses it).
func fastUnmarshal(data []byte, v any, shape *jsonshape.Shape) bool {
	if _, ok := fastDecodable(data, shape); !ok {
		return false
	}
	return json.Unmarshal(data, v) == nil
}

// fastDecodable says whether goccy/go-json decodes data as encoding/json
// would (fastUnmarshal), and what decoding it allocates
// (jsonshape.Shape.Decoded).
func fastDecodable(data []byte, shape *jsonshape.Shape) (allocated int, ok bool) {
	if !utf8.Valid(data) {
		return 0, false
	}
	return shape.Decoded(data)
}

// The shapes of what fastUnmarshal decodes, built once: building walks the
// types by reflection.
var (
	storeEventShape = jsonshape.Of(reflect.TypeFor[store.Event]())
	kubeEventShape  = jsonshape.Of(reflect.TypeFor[auditv1.Event]())
	eventListShape  = jsonshape.Of(reflect.TypeFor[eventList]())
)

// eventList is what the fast path decodes a webhook body into.
type eventList struct {
	Kind       string          `json:"kind"`
	APIVersion string          `json:"apiVersion"`
	Metadata   json.RawMessage `json:"metadata"`
	Items      []auditv1.Event `json:"items"`
}

// fastPathMaxBytes is the largest body decodeEventList reads whole: a
// webhook batch of 400 events is typically 0.5-3 MiB.
const fastPathMaxBytes = 4 << 20

// decodeEventList reads an audit.k8s.io/v1 EventList (a body bounded by
// the handler's MaxBytes; sizeHint is its Content-Length, or <= 0) and
// calls fn for each item in order. kind and apiVersion are checked when
// present (the webhook always sends them).
//
// Decoding is most of the CPU cost of webhook ingest, so a valid body is
// decoded by goccy/go-json (faster than encoding/json: bench/README.md); a
// body it refuses is decoded again by encoding/json, whose errors name the
// item and the field, and which decides what is valid. fn sees only items
// of a body that decoded whole, so it never runs twice for one item.
//
// The fast path holds the whole body decoded. It is taken only when that
// fits in reserve, the memory the request reserved (ReserveBytes), with
// the spool's buffers beside; else the body streams, one item at a time.
// held is told, before the first item, what the path holds besides the
// events' own bytes, for the batch's memory bound.
//
// The streaming path cuts object fields longer than maxObject as they
// stream in (jsoncut), so an item holds at most maxObject of each value
// (a field given many times, like other fields, is held: only kube-apiserver's
// identity may send this route's items, and it sends no such thing); fn is
// told what was cut of its item.
func decodeEventList(r io.Reader, sizeHint, reserve int64, maxObject int, held func(int64), fn func(i int, ev *auditv1.Event, cut jsoncut.Item) error) error {
	// A body that is large or of unknown length streams, so memory stays
	// bounded whatever its size.
	if sizeHint <= 0 || sizeHint > fastPathMaxBytes {
		held(cutterHeld(maxObject))
		return decodeEventListStd(r, maxObject, fn)
	}
	var buf bytes.Buffer
	buf.Grow(int(sizeHint) + bytes.MinRead) // one read, no regrowth
	if _, err := buf.ReadFrom(r); err != nil {
		return fmt.Errorf("reading body: %w", err)
	}
	body := buf.Bytes()
	items, fastHeld, ok := fastEventList(body, reserve)
	if !ok {
		held(int64(len(body)) + cutterHeld(maxObject))
		return decodeEventListStd(bytes.NewReader(body), maxObject, fn)
	}
	held(fastHeld)
	for i := range items {
		if err := fn(i, &items[i], jsoncut.Item{}); err != nil {
			return err
		}
	}
	return nil
}

// fastEventList decodes body with goccy/go-json; ok is false when the body
// is anything but a well-formed EventList (the caller then takes the slow
// path for its error), or when decoding it whole would hold more than
// reserve allows. One Unmarshal of the whole body is faster than goccy's
// token stream (bench/README.md). Unmarshal keeps the last of repeated
// keys, where the slow path refuses a repeated "items": a body with the
// bytes "items" more than once (a repeat, or an item holding the word)
// takes the slow path, which decides. So does a body with a field the fast
// path does not know. held is what the decoded body holds besides the
// events' own bytes.
func fastEventList(body []byte, reserve int64) (items []auditv1.Event, held int64, ok bool) {
	// Unmarshal takes null for an empty object; the slow path does not.
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '{' || bytes.Count(t, []byte(`"items"`)) > 1 {
		return nil, 0, false
	}
	allocated, ok := fastDecodable(body, eventListShape)
	if !ok {
		return nil, 0, false
	}
	// The events' batch holds their bytes (one of the copies) and at
	// least one more body's worth before it spools.
	held = int64((fastPathCopies-1)*len(body) + allocated)
	if held+int64(2*len(body))+spoolBuffers+decodeBuffer > reserve {
		return nil, 0, false
	}
	var list eventList
	if json.Unmarshal(body, &list) != nil {
		return nil, 0, false
	}
	if (list.Kind != "" && list.Kind != "EventList") || (list.APIVersion != "" && list.APIVersion != auditAPIVersion) {
		return nil, 0, false
	}
	return list.Items, held, true
}

// decodeEventListStd is decodeEventList through encoding/json, streaming
// the items to fn one at a time: the slow path, whose errors say exactly
// which item and field is wrong.
func decodeEventListStd(r io.Reader, maxObject int, fn func(i int, ev *auditv1.Event, cut jsoncut.Item) error) error {
	rr := &readErrRecorder{r: r}
	cut := kubeCutter(jsoncut.List, maxObject)
	dec := stdjson.NewDecoder(jsoncut.NewReader(rr, cut))
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF && rr.err == nil {
			return inputErr("", &FieldError{Msg: "empty body: an audit.k8s.io/v1 EventList is expected"})
		}
		return bodyErr("", err, rr, "")
	}
	if tok != stdjson.Delim('{') {
		return inputErr("", &FieldError{Msg: "an audit.k8s.io/v1 EventList object is expected"})
	}
	var kind, apiVersion string
	seenItems := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return bodyErr("", err, rr, "")
		}
		key, _ := tok.(string)
		switch key {
		case "items":
			if seenItems {
				return inputErr("", &FieldError{Field: "items", Msg: "appears twice"})
			}
			seenItems = true
			tok, err := dec.Token()
			if err != nil {
				return bodyErr("", err, rr, "")
			}
			if tok == nil { // "items": null
				continue
			}
			if tok != stdjson.Delim('[') {
				return inputErr("", &FieldError{Field: "items", Msg: "must be an array"})
			}
			for i := 0; dec.More(); i++ {
				var ev auditv1.Event
				if err := dec.Decode(&ev); err != nil {
					return bodyErr(atItem(i), err, rr, "")
				}
				if err := fn(i, &ev, cut.Take(i)); err != nil {
					return err
				}
			}
			if _, err := dec.Token(); err != nil { // ']'
				return bodyErr("", err, rr, "")
			}
		case "kind", "apiVersion":
			var s string
			if err := dec.Decode(&s); err != nil {
				return bodyErr("", err, rr, "")
			}
			if key == "kind" {
				kind = s
			} else {
				apiVersion = s
			}
		default:
			var skip stdjson.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return bodyErr("", err, rr, "")
			}
		}
	}
	if _, err := dec.Token(); err != nil { // '}'
		return bodyErr("", err, rr, "")
	}
	if err := expectEOF(dec, rr); err != nil {
		return err
	}
	if kind != "" && kind != "EventList" {
		return inputErr("", &FieldError{Field: "kind", Msg: fmt.Sprintf("must be EventList, got %q", kind)})
	}
	if apiVersion != "" && apiVersion != auditAPIVersion {
		return inputErr("", &FieldError{Field: "apiVersion", Msg: fmt.Sprintf("must be %s, got %q", auditAPIVersion, apiVersion)})
	}
	return nil
}

// decodeAuditLine parses one line of a kube-apiserver JSON audit log.
func decodeAuditLine(line []byte, ev *auditv1.Event) error {
	*ev = auditv1.Event{}
	// goccy/go-json first (fast); encoding/json decides, and words the error.
	if !fastUnmarshal(line, ev, kubeEventShape) {
		*ev = auditv1.Event{}
		if err := stdjson.Unmarshal(line, ev); err != nil {
			return describe(err, "")
		}
	}
	if ev.APIVersion != "" && ev.APIVersion != auditAPIVersion {
		return &FieldError{Field: "apiVersion", Msg: fmt.Sprintf("must be %s, got %q", auditAPIVersion, ev.APIVersion)}
	}
	if ev.Kind != "" && ev.Kind != "Event" {
		return &FieldError{Field: "kind", Msg: fmt.Sprintf("must be Event, got %q", ev.Kind)}
	}
	return nil
}
