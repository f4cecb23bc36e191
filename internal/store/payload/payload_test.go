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

package payload

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"
)

func newCodec(t testing.TB, dicts Dicts) *Codec {
	c, err := NewCodec(t.Context(), dicts, func(err error) { t.Errorf("making a dictionary: %v", err) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func equal(a, b Values) bool {
	sameError := (a.Text.Error == nil) == (b.Text.Error == nil) && (a.Text.Error == nil || *a.Text.Error == *b.Text.Error)
	at, bt := a.Text, b.Text
	at.Error, bt.Error = nil, nil
	return bytes.Equal(a.Principal, b.Principal) && bytes.Equal(a.Request, b.Request) &&
		bytes.Equal(a.Response, b.Response) && bytes.Equal(a.PreviousState, b.PreviousState) &&
		bytes.Equal(a.CurrentState, b.CurrentState) && a.HasText == b.HasText && at == bt && sameError
}

// auditValues is event i's values, shaped like a Kubernetes write.
func auditValues(i int) Values {
	obj := fmt.Appendf(nil, `{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"web-%d","namespace":"team-%d","uid":"6a2b9f3e-%08x","resourceVersion":"%d","labels":{"app":"web","tier":"frontend"}},`+
		`"spec":{"replicas":%d,"template":{"spec":{"containers":[{"name":"web","image":"registry.example.com/team/web:1.%d.0","ports":[{"containerPort":8080,"protocol":"TCP"}]}]}}}}`, i%97, i%7, i, 1000+i, i%5, i%30)
	return Values{Principal: fmt.Appendf(nil, `{"user":{"username":"user-%d@example.com","groups":["system:authenticated"]}}`, i%40),
		Request: obj, Response: obj, CurrentState: obj}
}

var errText, empty = "forbidden: ✗ nope", ""

func withText(v Values, t Text) Values {
	v.Text, v.HasText = t, true
	return v
}

// TestRoundTrip: every value and text field comes back byte for byte,
// absent stays absent, and the encoding is smaller than the values where
// they repeat.
func TestRoundTrip(t *testing.T) {
	obj := []byte(`{"kind":"Pod","apiVersion":"v1","metadata":{"name":"web-1","namespace":"team-a","labels":{"app":"web"}},"spec":{"containers":[{"name":"web","image":"registry.example.com/web:1.0"}]}}`)
	other := []byte(`{"kind":"Pod","apiVersion":"v1","metadata":{"name":"web-2"}}`)
	tests := []struct {
		name string
		v    Values
		// smaller: the encoding must be at most half the values' bytes.
		smaller bool
	}{
		{name: "principal only", v: Values{Principal: []byte(`{"user":{"username":"alice"}}`)}},
		{name: "tiny request, stored raw", v: Values{Request: []byte(`{}`)}},
		{name: "response is the current state", v: Values{Request: obj, Response: obj, CurrentState: obj}, smaller: true},
		{name: "response differs from the current state", v: Values{Response: other, CurrentState: obj}},
		{name: "current state without a response", v: Values{CurrentState: obj}},
		{name: "every value", v: Values{Principal: other, Request: obj, Response: other, PreviousState: obj, CurrentState: obj}, smaller: true},
		{name: "JSON null and strings", v: Values{Request: []byte(`null`), Response: []byte(`"s"`), PreviousState: []byte(`"日本語 ✓"`)}},
		{name: "large object", v: Values{Request: []byte(`{"data":"` + strings.Repeat("x", 300<<10) + `"}`)}, smaller: true},
		{name: "incompressible", v: Values{Request: bytes.Repeat([]byte{0, 255, 7, 13, 99, 1, 42, 200, 3, 77, 31}, 9)}},
		{name: "text fields", v: withText(Values{Request: obj, Response: obj, CurrentState: obj}, Text{
			EntityKind: "pods", EntityID: "team-a/web-1", CertificateSerialNumber: "X509SHA256=ab", IssuerDN: "CN=x",
			Details: "kubectl/v1.37", Message: "create pods/web-1 in team-a ✓", Error: &errText, Archived: true})},
		{name: "text fields only", v: withText(Values{}, Text{Message: "get namespaces"})},
		{name: "an empty error is not a nil one", v: withText(Values{}, Text{Error: &empty})},
		{name: "archived alone", v: withText(Values{}, Text{Archived: true})},
		{name: "text fields after every value", v: withText(Values{Principal: other, Request: obj, Response: other, PreviousState: obj, CurrentState: obj},
			Text{Message: strings.Repeat("日本語", 100), Details: "d"})},
	}
	c := newCodec(t, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := c.Encode(tt.v)
			got, err := c.Decode(t.Context(), p)
			if err != nil {
				t.Fatalf("Decode(Encode(v)): %v", err)
			}
			if !equal(got, tt.v) {
				t.Fatalf("Decode(Encode(v)) = %+v, want %+v", got, tt.v)
			}
			raw := len(tt.v.Principal) + len(tt.v.Request) + len(tt.v.Response) + len(tt.v.PreviousState) + len(tt.v.CurrentState)
			if tt.smaller && len(p) > raw/2 {
				t.Errorf("encoded %d bytes of %d: want at most half", len(p), raw)
			}
		})
	}
	// Larger than a reader may decode: stored as it is, still read back.
	huge := Values{Request: bytes.Repeat([]byte(`{"a":1},`), MaxDecoded/8+1)}
	if p := c.Encode(huge); p[0] != formatRaw {
		t.Errorf("a payload over MaxDecoded has format %d, want %d (uncompressed)", p[0], formatRaw)
	} else if got, err := c.Decode(t.Context(), p); err != nil || !equal(got, huge) {
		t.Errorf("a payload over MaxDecoded did not read back: %v", err)
	}
	if p := c.Encode(Values{}); p != nil {
		t.Errorf("Encode(no values) = %x, want nil (NULL)", p)
	}
	if p := c.Encode(Values{HasText: true}); p != nil {
		t.Errorf("Encode(no values, empty text fields) = %x, want nil (NULL)", p)
	}
	if p := c.Encode(Values{Request: []byte{}}); p != nil {
		t.Errorf("Encode(empty values) = %x, want nil (NULL): the stores keep an empty value as absent", p)
	}
	if got, err := c.Decode(t.Context(), nil); err != nil || !got.Empty() {
		t.Errorf("Decode(nil) = %+v, %v; want no values", got, err)
	}
}

// waitDict encodes events until c has a dictionary; it returns how many.
func waitDict(t *testing.T, c *Codec, from int) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	i := from
	for c.current.Load() == nil {
		if time.Now().After(deadline) {
			t.Fatalf("no dictionary after %d payloads", i-from)
		}
		c.Encode(auditValues(i))
		i++
		if i%1000 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	return i
}

// TestDictionary: after its first few thousand payloads a codec makes a
// dictionary, stores it, and encodes with it from then on, far smaller;
// another codec on the same store (a restart, another replica, a reader)
// decodes those payloads, loading the dictionary once.
func TestDictionary(t *testing.T) {
	dicts := &MemDicts{}
	c := newCodec(t, dicts)
	before := c.Encode(auditValues(0))
	if before[0] != formatS2 {
		t.Fatalf("a payload before any dictionary has format %d, want %d (S2 alone)", before[0], formatS2)
	}
	n := waitDict(t, c, 1)
	if dicts.count() != 1 {
		t.Fatalf("%d dictionaries stored, want 1", dicts.count())
	}
	after := c.Encode(auditValues(n))
	if after[0] != formatS2Dict {
		t.Fatalf("a payload after the dictionary has format %d, want %d", after[0], formatS2Dict)
	}
	v := auditValues(n)
	raw := len(v.Principal) + len(v.Request)*2
	if len(after)*4 > len(before) || len(after)*10 > raw {
		t.Errorf("with the dictionary %d bytes, without %d, values %d: want a quarter of without and a tenth of the values", len(after), len(before), raw)
	}

	other := newCodec(t, dicts) // starts with the newest dictionary
	if d := other.current.Load(); d == nil || d.id != c.current.Load().id {
		t.Fatalf("a new codec did not start with the stored dictionary")
	}
	// A reader that starts before the dictionary exists loads it.
	readerDicts := &MemDicts{dicts: dicts.dicts}
	reader := newCodec(t, readerDicts)
	for _, p := range [][]byte{before, after} {
		for _, cd := range []*Codec{c, other, reader} {
			got, err := cd.Decode(t.Context(), p)
			if err != nil || !equal(got, auditValues(map[bool]int{true: 0, false: n}[bytes.Equal(p, before)])) {
				t.Fatalf("decoding a payload: %+v, %v", got, err)
			}
		}
	}
	if readerDicts.loads != 1 {
		t.Errorf("the reader loaded a dictionary %d times, want once", readerDicts.loads)
	}
}

// TestDictionaryNotStored: a dictionary that could not be stored is never
// used: every payload stays decodable from what the store holds.
func TestDictionaryNotStored(t *testing.T) {
	dicts := &MemDicts{fail: errors.New("disk full")}
	var errs []error
	var mu sync.Mutex
	c, err := NewCodec(t.Context(), dicts, func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		p := c.Encode(auditValues(i))
		if p[0] == formatS2Dict {
			t.Fatalf("payload %d names a dictionary the store does not hold", i)
		}
		mu.Lock()
		n := len(errs)
		mu.Unlock()
		if n > 0 && i > 2*firstSampleAfter+sampleEvery*(s2.MaxDictSize+heldOut)/400 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no error heard after %d payloads", i)
		}
	}
	if !strings.Contains(errs[0].Error(), "disk full") {
		t.Fatalf("error heard: %v, want the store's", errs[0])
	}
}

// TestDecodeCorrupt: bytes no Encode made are an error wrapping
// ErrCorrupt, never a panic or wrong values; an unknown dictionary is
// asked of the store once in a while, not for every row.
func TestDecodeCorrupt(t *testing.T) {
	dicts := &MemDicts{}
	c := newCodec(t, dicts)
	good := c.Encode(Values{Request: bytes.Repeat([]byte(`{"a":"b"},`), 40)})
	damaged := append([]byte{}, good...)
	for i := 3; i < len(damaged); i++ {
		damaged[i] ^= 0x5a
	}
	tests := map[string][]byte{
		"one byte":                      {formatRaw},
		"unknown format":                {9, 0, 1, 'x'},
		"unknown flags":                 {formatRaw, 0x80, 0, 0, 0, 0, 0},
		"value overruns":                {formatRaw, 0, 10, 'x'},
		"varint overflows":              {formatRaw, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"too few values":                {formatRaw, 0, 0, 0},
		"bytes after the last value":    {formatRaw, 0, 0, 0, 0, 0, 0, 'x'},
		"same state without a response": {formatRaw, flagSameState, 0, 0, 0, 0},
		"S2 block cut short":            good[:len(good)/2],
		"S2 block damaged":              damaged,
		"S2 block claims 4 GiB":         {formatS2, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 0},
		"S2 block of a wrong body":      append([]byte{formatS2, 0}, s2.Encode(nil, bytes.Repeat([]byte{0x7f}, 100))...),
		"unknown dictionary":            append([]byte{formatS2Dict, 0, 0x7b}, s2.Encode(nil, []byte("x"))...),
		"dictionary id overflows":       {formatS2Dict, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"text field overruns":           {formatRaw, flagText, 0, 0, 0, 0, 0, 3, 'x'},
		"too few text fields":           {formatRaw, flagText, 0, 0, 0, 0, 0, 0, 0},
		"error overruns":                {formatRaw, flagText, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 'x'},
		"no archived byte":              {formatRaw, flagText, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		"archived byte is 2":            {formatRaw, flagText, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2},
		"bytes after the archived byte": {formatRaw, flagText, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 'x'},
	}
	for name, p := range tests {
		t.Run(name, func(t *testing.T) {
			if v, err := c.Decode(t.Context(), p); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Decode(%x) = %+v, %v; want an error wrapping ErrCorrupt", p, v, err)
			}
		})
	}
	for range 100 {
		c.Decode(t.Context(), tests["unknown dictionary"]) //nolint:errcheck // counted below
	}
	if dicts.loads != 1 {
		t.Errorf("the store was asked for an unknown dictionary %d times, want once", dicts.loads)
	}
}

// FuzzDecode: Decode never panics, and what it accepts encodes back to
// the same values.
func FuzzDecode(f *testing.F) {
	c := newCodec(f, nil)
	f.Add(c.Encode(Values{Request: []byte(`{"kind":"Pod"}`), Response: []byte(`{"kind":"Pod"}`), CurrentState: []byte(`{"kind":"Pod"}`)}))
	f.Add(c.Encode(Values{Principal: bytes.Repeat([]byte(`{"user":"u"}`), 20)}))
	f.Add([]byte{formatRaw, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{formatRaw, flagText, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 'x', 1, 'y', 1})
	f.Fuzz(func(t *testing.T, p []byte) {
		v, err := c.Decode(t.Context(), p)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Decode: %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if v.Empty() { // nothing to keep: stored as NULL
			if p := c.Encode(v); p != nil {
				t.Fatalf("re-encoding %+v gave %x, want nil", v, p)
			}
			return
		}
		back, err := c.Decode(t.Context(), c.Encode(v))
		if err != nil || !equal(back, v) {
			t.Fatalf("re-encoding %+v gave %+v, %v", v, back, err)
		}
	})
}
