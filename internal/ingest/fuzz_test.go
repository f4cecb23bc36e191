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
	"bytes"
	"context"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"

	"github.com/auditops/auditops/internal/jsoncut"
	"github.com/auditops/auditops/internal/store"
)

// The fuzz targets hold the fast decoders (goccy/go-json) to encoding/json,
// which decides what is valid: the same bodies accepted, the same events
// out, and every refusal an *InputError (a 400 naming the place), never a
// panic. The seeds below are the committed corpus: `make test` runs them as
// ordinary tests, `make fuzz FUZZTIME=60s` explores from them.

// hostileSeeds are the inputs decoders tend to differ on.
var hostileSeeds = []string{
	"",
	"null",
	"{}",
	"[]",
	strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
	`{"items":[` + strings.Repeat(`{"a":`, 5000) + "1" + strings.Repeat("}", 5000) + `]}`,
	"{\"items\":[{\"auditID\":\"a\x00b\",\"stage\":\"ResponseComplete\"}]}",
	"{\"items\":[{\"auditID\":\"\xff\xfe\",\"stage\":\"ResponseComplete\",\"stageTimestamp\":\"2024-05-22T10:00:00Z\"}]}",
	`{"items":[{"auditID":"x","stage":"ResponseComplete","stageTimestamp":"2024-05-22T10:00:00Z","responseStatus":{"code":1e999}}]}`,
	`{"items":[{"auditID":"x","stage":"ResponseComplete","stageTimestamp":"2024-05-22T10:00:00Z","responseStatus":{"code":99999999999999999999}}]}`,
	`{"items":[{"auditID":"x","auditID":"y","stage":"ResponseComplete","stageTimestamp":"2024-05-22T10:00:00Z"}]}`,
	`{"items":[],"items":[]}`,
	`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[{"auditID":"\ud800","stage":"Panic","stageTimestamp":"2024-05-22T10:00:00Z"}]}`,
	`{"items":[{"auditID":"x","stage":"ResponseComplete","stageTimestamp":"9999-12-31T23:59:59Z"}]}`,
	`{"items":[{"auditID":"x","stage":"ResponseComplete","stageTimestamp":"2024-05-22T10:00:00Z","requestObject":{"a":[1,2,{"b":null}]}}]}`,
	`{"items":[{"auditID":"x","stage":"ResponseComplete","stageTimestamp":"2024-05-22T10:00:00Z"}]}trailing`,
}

func FuzzDecodeEventList(f *testing.F) {
	f.Add(string(webhookBody(3, "f")))
	for _, s := range hostileSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		defer watchdog(body)()
		var fast, std []auditv1.Event
		fastErr := decodeEventList(strings.NewReader(body), int64(len(body)), ReserveBytes(int64(len(body)), DefaultBatchMemoryBytes), DefaultMaxObjectBytes, func(int64) {}, func(_ int, ev *auditv1.Event, _ jsoncut.Item) error {
			fast = append(fast, *ev)
			return nil
		})
		stdErr := decodeEventListStd(strings.NewReader(body), DefaultMaxObjectBytes, func(_ int, ev *auditv1.Event, _ jsoncut.Item) error {
			std = append(std, *ev)
			return nil
		})
		if (fastErr == nil) != (stdErr == nil) {
			t.Fatalf("fast path: %v; encoding/json: %v", fastErr, stdErr)
		}
		checkInputError(t, fastErr)
		if fastErr == nil && !sameJSON(fast, std) {
			t.Fatalf("fast and encoding/json decodes differ:\nfast %+v\nstd  %+v", fast, std)
		}
		checkHandler(t, KubeAuditPath, body)
	})
}

func FuzzDecodeEvents(f *testing.F) {
	f.Add(genericA + "\n" + genericB)
	f.Add("[" + genericA + "," + genericB + "]")
	for _, s := range hostileSeeds {
		f.Add(s)
	}
	f.Add("{\"id\":\"a\x00\",\"time\":\"2024-05-22T10:00:00Z\",\"namespace\":\"n\",\"user\":\"u\"}")
	f.Add("{\"id\":\"\xff\",\"time\":\"2024-05-22T10:00:00Z\",\"namespace\":\"n\",\"user\":\"u\"}")
	f.Add(`{"id":"a","id":"b","time":"2024-05-22T10:00:00Z","namespace":"n","user":"u","statusCode":1e400}`)
	f.Add(`{"id":"a","time":"10000-01-01T00:00:00Z","namespace":"n","user":"u"}`)
	f.Add(`{"id":"a","time":"2024-05-22T10:00:00Z","namespace":"n","user":"u","request":` + strings.Repeat("[", 3000) + strings.Repeat("]", 3000) + `}`)
	f.Fuzz(func(t *testing.T, body string) {
		defer watchdog(body)()
		var got []store.Event
		err := decodeEvents(strings.NewReader(body), "", DefaultMaxObjectBytes, func(ev store.Event, _, _ int) error {
			got = append(got, ev)
			return nil
		})
		want, wantErr := decodeEventsStd(body)
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("decoder: %v; encoding/json: %v", err, wantErr)
		}
		checkInputError(t, err)
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("decoder and encoding/json differ:\ngot  %+v\nwant %+v", got, want)
		}
		checkHandler(t, EventsPath, body)
	})
}

// watchdog crashes the fuzz worker, naming the input, when one input takes
// longer than any body of its size should (a decoder gone quadratic is a
// denial of service); the fuzzer then keeps the input as a failure.
func watchdog(body string) (stop func()) {
	t := time.AfterFunc(10*time.Second, func() {
		panic(fmt.Sprintf("input of %d bytes still decoding after 10s: %.300q", len(body), body))
	})
	return func() { t.Stop() }
}

// decodeEventsStd is decodeEvents with encoding/json alone: the reference,
// for arrays and NDJSON alike.
func decodeEventsStd(body string) ([]store.Event, error) {
	var out []store.Event
	t := strings.TrimLeft(body, " \t\r\n")
	if t == "" {
		return nil, nil
	}
	var items []string
	if t[0] == '[' {
		// Each element, as encoding/json alone reads it.
		var raws []stdjson.RawMessage
		if err := stdjson.Unmarshal([]byte(body), &raws); err != nil {
			return nil, err
		}
		for _, r := range raws {
			items = append(items, string(r))
		}
	} else {
		for line := range strings.SplitSeq(body, "\n") {
			items = append(items, strings.TrimRight(line, "\r"))
		}
	}
	for _, line := range items {
		if blank([]byte(line)) {
			continue
		}
		if !utf8.ValidString(line) {
			return nil, errors.New("invalid UTF-8") // refused, not replaced
		}
		var ev store.Event
		if err := stdjson.Unmarshal([]byte(line), &ev); err != nil {
			return nil, err
		}
		if err := validateEvent(&ev, ""); err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, nil
}

// checkInputError: a refused body is the input's fault, said with a place.
func checkInputError(t *testing.T, err error) {
	t.Helper()
	var ie *InputError
	if err != nil && !errors.As(err, &ie) {
		t.Fatalf("refusal %v (%T) is not an *InputError (a 400)", err, err)
	}
}

// sameJSON compares decoded values by their encoding/json form: goccy and
// encoding/json may differ in the representation of equal values.
func sameJSON(a, b any) bool {
	x, err1 := stdjson.Marshal(a)
	y, err2 := stdjson.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// normalizingInserter applies the store's own validation (what Insert
// does before it writes) and stores nothing: the fuzz targets test the
// decoders and the handler, thousands of times a second.
type normalizingInserter struct{}

func (normalizingInserter) Insert(_ context.Context, events []store.Event) (store.InsertResult, error) {
	norm, err := store.NormalizeBatch(events)
	if err != nil {
		return store.InsertResult{}, fmt.Errorf("insert: %w", err)
	}
	return store.InsertResult{Inserted: len(norm)}, nil
}

func (n normalizingInserter) InsertParts(ctx context.Context, next func() ([]store.Event, error)) (store.InsertResult, error) {
	var total store.InsertResult
	for {
		part, err := next()
		if err != nil || part == nil {
			return total, err
		}
		res, err := n.Insert(ctx, part)
		if err != nil {
			return store.InsertResult{}, err
		}
		total.Add(res)
	}
}

// checkHandler: whatever the body, the service stores it or says why in an
// *InputError (the HTTP layer's 400), never anything else (a 500).
func checkHandler(t *testing.T, path, body string) {
	t.Helper()
	svc := NewService(normalizingInserter{}, Options{})
	var err error
	if path == KubeAuditPath {
		_, err = svc.KubeAudit(context.Background(), strings.NewReader(body), int64(len(body)))
	} else {
		_, err = svc.Events(context.Background(), strings.NewReader(body), int64(len(body)), "", nil)
	}
	var bad *InputError
	if err != nil && !errors.As(err, &bad) {
		t.Fatalf("%s: %v is not an input error", path, err)
	}
}
