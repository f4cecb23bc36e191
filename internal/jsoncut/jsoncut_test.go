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

package jsoncut

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
)

func marker(v string) string {
	return string(Marker(int64(len(v)), sha256.Sum256([]byte(v))))
}

// cutAll runs in through a Cutter in chunks of size n (0: whole).
func cutAll(opts Options, in string, n int) (string, []Item, error) {
	c := New(opts)
	var out []byte
	var err error
	p := []byte(in)
	for len(p) > 0 && err == nil {
		k := len(p)
		if n > 0 && n < k {
			k = n
		}
		out, err = c.Write(out, p[:k])
		p = p[k:]
	}
	if err == nil {
		out, err = c.End(out)
	}
	var items []Item
	for i := 0; i < 4; i++ {
		items = append(items, c.Take(i))
	}
	return string(out), items, err
}

func TestCut(t *testing.T) {
	big := `{"a":"` + strings.Repeat("x", 40) + `","n":[1,2.5e-3,true,null]}`
	named := `{"kind":"Pod","metadata":{"name":"web-7f9","labels":{"name":"x"}},"pad":"` + strings.Repeat("y", 40) + `"}`
	kube := Options{Layout: List, Fields: []string{"requestObject", "responseObject"}, Max: 16, NameField: "responseObject"}
	lines := Options{Layout: Lines, Fields: []string{"request", "response"}, Max: 16, UTF8: true}
	array := lines
	array.Layout = Array
	tests := []struct {
		name  string
		opts  Options
		in    string
		want  string
		items []Item
		err   string
	}{
		{name: "small values stay", opts: lines,
			in: `{"request":{"a":1} , "response":"short"}`, want: `{"request":{"a":1} , "response":"short"}`},
		{name: "a large value is cut", opts: lines,
			in: `{"id":"1","request": ` + big + ` ,"x":2}`, want: `{"id":"1","request": ` + marker(big) + ` ,"x":2}`,
			items: []Item{{Cuts: 1}}},
		{name: "keys match whatever their case and escapes", opts: lines,
			in: `{"REQUEST":` + big + `,"re\u0073ponse":` + big + `}`, want: `{"REQUEST":` + marker(big) + `,"re\u0073ponse":` + marker(big) + `}`,
			items: []Item{{Cuts: 2}}},
		{name: "only item fields are cut", opts: lines,
			in: `{"details":{"request":` + big + `},"requests":` + big + `}`, want: `{"details":{"request":` + big + `},"requests":` + big + `}`},
		{name: "large strings and numbers are values too", opts: lines,
			in:    `{"request":"` + strings.Repeat("z", 30) + `","response":` + strings.Repeat("9", 20) + `}`,
			want:  `{"request":` + marker(`"`+strings.Repeat("z", 30)+`"`) + `,"response":` + marker(strings.Repeat("9", 20)) + `}`,
			items: []Item{{Cuts: 2}}},
		{name: "array items", opts: array,
			in:    `[{"request":1},{"request":` + big + `}, {"response":` + big + `,"request":` + big + `}]`,
			want:  `[{"request":1},{"request":` + marker(big) + `},{"response":` + marker(big) + `,"request":` + marker(big) + `}]`, // space between items dropped
			items: []Item{{}, {Cuts: 1}, {Cuts: 2}, {}}},
		{name: "list items and the name of a cut response", opts: kube,
			in:    `{"kind":"EventList","metadata":{"responseObject":` + big + `},"items":[{"responseObject":` + named + `},{"requestObject":` + big + `}]}`,
			want:  `{"kind":"EventList","metadata":{"responseObject":` + big + `},"items":[{"responseObject":` + marker(named) + `},{"requestObject":` + marker(big) + `}]}`,
			items: []Item{{Cuts: 1, NameCut: true, Name: "web-7f9"}, {Cuts: 1}, {}, {}}},
		{name: "a name encoding/json would not decode is empty", opts: kube,
			in:    `{"items":[{"responseObject":{"metadata":{"name":5},"pad":"` + strings.Repeat("y", 20) + `"}}]}`,
			want:  `{"items":[{"responseObject":` + marker(`{"metadata":{"name":5},"pad":"`+strings.Repeat("y", 20)+`"}`) + `}]}`,
			items: []Item{{Cuts: 1, NameCut: true}, {}, {}, {}}},
		{name: "a later small response is the item's", opts: kube,
			in:    `{"items":[{"responseObject":` + named + `,"responseObject":{}}]}`,
			want:  `{"items":[{"responseObject":` + marker(named) + `,"responseObject":{}}]}`,
			items: []Item{{}, {}, {}, {}}},
		{name: "null is never cut", opts: kube,
			in:    `{"items":[{"responseObject":` + named + `,"responseObject":null}]}`,
			want:  `{"items":[{"responseObject":` + marker(named) + `,"responseObject":null}]}`,
			items: []Item{{}, {}, {}, {}}},
		{name: "invalid JSON in a cut value", opts: lines,
			in: `{"request":{"a":"` + strings.Repeat("x", 20) + `",}}`, err: "invalid JSON: object key expected at byte 28 of the value"},
		{name: "invalid UTF-8 in a cut value", opts: lines,
			in: "{\"request\":\"\xff" + strings.Repeat("x", 20) + "\"}", err: "invalid UTF-8"},
		{name: "a cut value that does not end", opts: lines,
			in: `{"request":` + big[:30], err: "unexpected end of JSON input"},
		{name: "invalid JSON in a kept value is the decoder's to refuse", opts: lines,
			in: `{"request":{"a":tru},"response":` + big + `}`, want: `{"request":{"a":tru},"response":` + marker(big) + `}`, items: []Item{{Cuts: 1}}},
		{name: "invalid JSON outside items passes through", opts: lines,
			in: `{"id":tru,"response":` + big + `}`, want: `{"id":tru,"response":` + big + `}`},
		{name: "an unfinished short value passes through", opts: lines,
			in: `{"request":{"a":1`, want: `{"request":{"a":1`},
		{name: "data after the item passes through", opts: lines,
			in: `{"request":1} x {"request":` + big + `}`, want: `{"request":1} x {"request":` + big + `}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, n := range []int{0, 1, 2, 7} {
				got, items, err := cutAll(tt.opts, tt.in, n)
				if tt.err != "" {
					var ce *Error
					if !errors.As(err, &ce) || !strings.Contains(err.Error(), tt.err) {
						t.Fatalf("chunks of %d: error %v, want one containing %q", n, err, tt.err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("chunks of %d: %v", n, err)
				}
				if got != tt.want {
					t.Fatalf("chunks of %d:\n got %s\nwant %s", n, got, tt.want)
				}
				for i, it := range tt.items {
					if items[i] != it {
						t.Errorf("chunks of %d: item %d = %+v, want %+v", n, i, items[i], it)
					}
				}
			}
		})
	}
}

func TestReaderHoldsOnlyTheLimit(t *testing.T) {
	// A 64 MiB response object, read through the cutter, comes out as its
	// marker; what the Reader holds meanwhile is its buffers and the limit.
	const size = 64 << 20
	obj := func() io.Reader {
		return io.MultiReader(strings.NewReader(`{"a":"`), io.LimitReader(repeatReader('x'), size-8), strings.NewReader(`"}`))
	}
	h := sha256.New()
	n, _ := io.Copy(h, obj())
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	body := io.MultiReader(strings.NewReader(`{"items":[{"responseObject":`), obj(), strings.NewReader(`}]}`))
	c := New(Options{Layout: List, Fields: []string{"responseObject"}, Max: 256 << 10})
	got, err := io.ReadAll(NewReader(body, c))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"items":[{"responseObject":` + string(Marker(n, sum)) + `}]}`
	if string(got) != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	if cap(c.capBuf) > 2*(256<<10) {
		t.Errorf("the cutter held %d bytes of the value", cap(c.capBuf))
	}
}

type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// FuzzChunks: what comes out does not depend on how the input is split,
// and nothing is cut when nothing is over the limit.
func FuzzChunks(f *testing.F) {
	for _, s := range []string{`{"request":{"a":[1,2,{"b":"c"}]},"x":1}`, `[{"request":"\u0041\"x"},{"response":-1.5e+3}]`,
		`{"items":[{"responseObject":{"metadata":{"name":"a\u00e9"}}}]}`, "{\"request\":\"\xc3\xa9\xff\"}"} {
		f.Add(s, uint8(3), uint8(4))
	}
	f.Fuzz(func(t *testing.T, in string, max, chunk uint8) {
		for _, layout := range []Layout{Lines, Array, List} {
			opts := Options{Layout: layout, Fields: []string{"request", "responseObject"}, Max: int(max), NameField: "responseObject", UTF8: true}
			whole, items, err := cutAll(opts, in, 0)
			split, splitItems, splitErr := cutAll(opts, in, int(chunk%16)+1)
			if (err == nil) != (splitErr == nil) || whole != split && err == nil {
				t.Fatalf("layout %d: whole %q (%v), in chunks %q (%v)", layout, whole, err, split, splitErr)
			}
			if err == nil {
				for i := range items {
					if items[i] != splitItems[i] {
						t.Fatalf("layout %d: item %d whole %+v, in chunks %+v", layout, i, items[i], splitItems[i])
					}
				}
			}
			// Nothing over the limit: nothing changes but the whitespace
			// between items (dropped), so a valid input compacts the same.
			opts.Max = len(in)
			same, _, err := cutAll(opts, in, 0)
			var a, b bytes.Buffer
			switch {
			case err != nil || strings.Contains(same, TruncatedKey) && !strings.Contains(in, TruncatedKey):
				t.Fatalf("layout %d: nothing over the limit, got %q (%v)", layout, same, err)
			case layout == Lines && same != in:
				t.Fatalf("lines: nothing over the limit, got %q", same)
			case json.Compact(&a, []byte(in)) == nil && (json.Compact(&b, []byte(same)) != nil || a.String() != b.String()):
				t.Fatalf("layout %d: nothing over the limit, got %q", layout, same)
			}
		}
	})
}

func TestMaxItem(t *testing.T) {
	long := `"` + strings.Repeat("d", 400) + `"`
	big := `{"a":"` + strings.Repeat("x", 1000) + `"}`
	opts := Options{Layout: Array, Fields: []string{"request"}, Max: 16, MaxItem: 300} // a marker is ~110 bytes
	for _, tc := range []struct {
		name, in string
		tooLong  bool
	}{
		{"short items", `[{"details":"a"},{"request":` + big + `}]`, false},
		{"an item long only by a value cut", `[{"id":"1","request":` + big + `,"request":` + big + `}]`, false},
		{"an item long besides its values", `[{"id":"1"},{"details":` + long + `}]`, true},
	} {
		for _, n := range []int{0, 1, 7} {
			_, _, err := cutAll(opts, tc.in, n)
			var ce *Error
			if got := errors.As(err, &ce) && ce.TooLong; got != tc.tooLong {
				t.Errorf("%s, chunks of %d: %v, want too long: %v", tc.name, n, err, tc.tooLong)
			}
		}
	}
	// Whitespace counts too: a line's, or is dropped between items (the
	// decoder would hold it; a review found 12 MiB of it passing).
	pad := strings.Repeat(" ", 1000)
	if _, _, err := cutAll(Options{Layout: Lines, Fields: []string{"request"}, Max: 16, MaxItem: 300}, pad+`{"id":"1"}`+pad, 7); err == nil {
		t.Error("a line long by its whitespace was taken")
	}
	if out, _, err := cutAll(opts, "["+pad+`{"id":"1"},`+pad+`{"id":"2"}`+pad+"]"+pad, 7); err != nil || out != `[{"id":"1"},{"id":"2"}]` {
		t.Errorf("whitespace between items: %q, %v; want it dropped", out, err)
	}
	// A long item is refused as soon as it is seen, not once it is read.
	read := 0
	body := io.MultiReader(strings.NewReader(`{"details":"`), io.LimitReader(repeatReader('d'), 64<<20), strings.NewReader(`"}`))
	r := NewReader(countReader{body, &read}, New(Options{Layout: Lines, Fields: []string{"request"}, Max: 16, MaxItem: 1 << 20}))
	_, err := io.Copy(io.Discard, r)
	var ce *Error
	if !errors.As(err, &ce) || !ce.TooLong || read > 2<<20 {
		t.Errorf("a 64 MiB item: %v after %d bytes read, want too long within 2 MiB", err, read)
	}
}

type countReader struct {
	r io.Reader
	n *int
}

func (c countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += n
	return n, err
}
