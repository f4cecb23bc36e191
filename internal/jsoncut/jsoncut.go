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

// Package jsoncut replaces, as a JSON stream goes by, each value of the
// named fields of its items that is larger than a limit with a marker that
// gives the value's size and SHA-256 (spec/API.md 2). A decoder reading the
// stream after it then never holds such a value: an audit event with a
// response object of hundreds of MiB costs the limit, not its size.
//
// A value nested deeper than encoding/json decodes inside its item is cut
// too, whatever its size, when it is a JSON document encoding/json takes
// on its own (at most 10,000 levels): kube-apiserver takes a patch body
// 10,000 deep and logs it as the event's requestObject, one level below
// the item, and one such event must not cost its batch.
//
// What comes out decodes as what went in would after the values were
// replaced: the same fields match as encoding/json matches them to a Go
// struct's (case-insensitively; the last of a repeated field counts), null
// is never cut, and a value is cut only when it is valid JSON, which
// jsoncut checks as it hashes it (an *Error when it is not). Everything
// else passes through unchanged, for the decoder to judge: every byte is
// checked by the one or the other. After invalid JSON the decoder refuses
// (in the stream's structure, or in a value kept), what follows may still
// be cut; the decoder stops at the first error, so it makes no
// difference.
package jsoncut

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"math/bits"
	"strconv"
)

// TruncatedKey marks a value that was too large to keep.
const TruncatedKey = "auditops.dev/truncated"

// Marker is what takes the place of a value of n bytes with the given
// SHA-256: {"auditops.dev/truncated":true,"bytes":N,"sha256":"<hex>"}.
func Marker(n int64, sum [sha256.Size]byte) []byte {
	b := make([]byte, 0, 128)
	b = append(b, `{"`+TruncatedKey+`":true,"bytes":`...)
	b = strconv.AppendInt(b, n, 10)
	b = append(b, `,"sha256":"`...)
	b = hex.AppendEncode(b, sum[:])
	return append(b, `"}`...)
}

// Layout is where a stream's items are.
type Layout uint8

const (
	// Lines: each line is one item, an object (NDJSON, audit log files).
	// The caller calls Reset before each line.
	Lines Layout = iota
	// Array: the stream is an array of items.
	Array
	// List: the stream is an object whose "items" array holds the items
	// (a Kubernetes list, as kube-apiserver's audit webhook sends).
	List
)

// Options says what to cut.
type Options struct {
	Layout Layout
	// Fields are the keys of an item whose values are cut, spelled as the
	// Go struct's JSON tags: they match keys as encoding/json matches them,
	// whatever their case.
	Fields []string
	// Max is the largest value kept, in bytes.
	Max int
	// NameField, when set, is one of Fields whose cut value's
	// metadata.name Item reports, as encoding/json would decode it.
	NameField string
	// UTF8 refuses a cut value holding invalid UTF-8 (the decoder never
	// sees it to refuse it).
	UTF8 bool
	// MaxItem, when set, is the longest item, in bytes once its values are
	// cut: a longer one is an *Error with TooLong set as soon as it is
	// seen, so that neither the Cutter nor the decoder holds it.
	MaxItem int64
}

// Item is what was cut from one item.
type Item struct {
	// Cuts is the number of fields whose value was replaced by a marker.
	// A field given more than once counts for its last value, which is the
	// one encoding/json keeps.
	Cuts int
	// NameCut says the item's last NameField value was cut; Name is then
	// its metadata.name, "" where encoding/json would fail to decode it
	// into struct{ Metadata struct{ Name string } }.
	NameCut bool
	Name    string
}

// Error is a value being cut that is not valid JSON (nested deeper than
// encoding/json takes a document, or with Options.UTF8 not valid UTF-8),
// or an item longer than Options.MaxItem.
type Error struct {
	// Field is the field's name as in Options.Fields.
	Field string
	// Offset is the byte of the value at which it went wrong.
	Offset int64
	Msg    string
	// TooLong says the item is longer than Options.MaxItem.
	TooLong bool
}

func (e *Error) Error() string {
	if e.TooLong {
		return e.Msg
	}
	return fmt.Sprintf("%s at byte %d of the value", e.Msg, e.Offset)
}

// maxDepth is encoding/json's nesting limit.
const maxDepth = 10000

// maxKey bounds the bytes of a key kept to match: the longest field, each
// byte escaped as \u00XX.
const maxKey = 6*32 + 2

// maxName bounds the metadata.name kept from a cut value (a Kubernetes
// name is at most 253 bytes, and kube-apiserver validates the objects it
// creates); a longer one is reported as "", where encoding/json would give
// it whole.
const maxName = 64 << 10

type state uint8

const (
	sValue      state = iota // a value is expected
	sArrFirst                // a value or ']'
	sKeyFirst                // a key or '}'
	sKey                     // a key
	sColon                   // ':'
	sObjAfter                // ',' or '}'
	sArrAfter                // ',' or ']'
	sEnd                     // after the top-level value
	sString                  // in a string
	sEsc                     // after '\' in a string
	sHex                     // in \uXXXX
	sNeg                     // after '-'
	sZero                    // after a leading 0
	sInt                     // in the integer part
	sDot                     // after '.'
	sFrac                    // in the fraction
	sE                       // after 'e'
	sESign                   // after the exponent's sign
	sExp                     // in the exponent
	sLit                     // in true, false or null
	sSkip                    // in a container followed, not checked
	sSkipStr                 // in a string followed, not checked
	sSkipScalar              // in a number or literal followed, not checked
)

// role is what a container means to the cutter.
type role uint8

const (
	rNone     role = iota
	rItem          // an item object: its keys are matched against Fields
	rItems         // the array of items
	rTop           // List's top object: its "items" key
	rNameRoot      // the NameField value being checked
	rMeta          // its metadata object
)

// meaning is what the value about to start is.
type meaning uint8

const (
	vNone    meaning = iota
	vItem            // an item
	vItems           // the array of items
	vCut             // a value of a field in Fields (field index in cutField)
	vMeta            // metadata in a NameField value
	vName            // metadata.name
	vTopItem         // the top-level value
)

type frame struct {
	obj  bool
	role role
}

// Cutter cuts one stream (or, with Lines, one line at a time).
//
// It follows the stream's structure down to its items' fields, checking
// each byte there; the values inside items are followed by their
// brackets and strings only, for their end, since the decoder checks
// them. A value that grows past Max is checked byte by byte from its start
// by a second Cutter, a checker, as it is hashed: the decoder will not see
// it.
type Cutter struct {
	opts      Options
	nameField int  // index in opts.Fields, -1 when none
	checking  bool // a checker: one value, every byte checked
	named     bool // a checker of a NameField value

	st      state
	stack   []frame
	lit     string // the rest of a literal
	hexLeft int
	inKey   bool
	next    meaning // of the value that starts next
	dumb    bool    // passing the rest through
	err     error

	// A container followed, not checked.
	skipDepth int
	skipStr   bool
	skipEsc   bool

	// The chunk being written, and where its pending spans start.
	dst      []byte
	p        []byte
	base     int64 // bytes written before p
	out      int   // output not yet appended to dst
	capFrom  int   // bytes of the cut value not yet fed
	keyFrom  int
	nameFrom int

	key   []byte // the key being read, when it may matter
	keyOn bool

	// The value that may be cut.
	capOn    bool
	cutField int
	capDepth int // stack depth outside the value
	capBuf   []byte
	deep     bool // nested deeper than the decoder takes it in its item
	hashing  bool
	h        hash.Hash
	n        int64   // bytes of the value
	check    *Cutter // checks it once it is hashed

	// A checker's UTF-8 and metadata.name.
	u8need   int
	u8lo     byte
	u8hi     byte
	u8bad    bool
	u8at     int64 // where the first invalid UTF-8 is
	nameOn   bool  // reading the name's string
	nameBuf  []byte
	name     string
	nameFail bool

	item  int // ordinal of the current item, -1 before the first
	items []entry

	// The current item's length, for MaxItem.
	inItem    bool
	itemDepth int   // stack depth outside it
	itemStart int64 // where it starts in the stream
	itemCut   int64 // bytes its cuts took out
}

type entry struct {
	ord  int
	cut  uint8 // fields whose last value was cut
	name string
}

// New returns a Cutter for opts, which names at most 8 fields.
func New(opts Options) *Cutter {
	if len(opts.Fields) > 8 {
		panic("jsoncut: more than 8 fields")
	}
	c := &Cutter{opts: opts, nameField: -1, h: sha256.New()}
	for i, f := range opts.Fields {
		if f != "" && f == opts.NameField {
			c.nameField = i
		}
	}
	c.Reset()
	return c
}

// Reset starts a new stream (with Lines, a new line) and forgets its items.
func (c *Cutter) Reset() {
	c.st, c.stack, c.next, c.dumb, c.err = sValue, c.stack[:0], vTopItem, false, nil
	c.inKey, c.keyOn, c.capOn, c.nameOn = false, false, false, false
	c.base, c.u8need, c.u8bad, c.name, c.nameFail = 0, 0, false, "", false
	c.item, c.items, c.inItem = -1, c.items[:0], false
	if c.opts.Layout == Lines && !c.checking {
		// The item is the whole line, its whitespace included (MaxItem).
		c.item, c.inItem, c.itemDepth, c.itemStart, c.itemCut = 0, true, -1, 0, 0
	}
}

// space takes whitespace at p[i]. Outside items (of Array and List) it is
// dropped: it means nothing, and a decoder holds what it reads before a
// value, so megabytes of it between items would be held where MaxItem does
// not count.
func (c *Cutter) space(i int) {
	if c.inItem || c.checking || c.capOn || c.opts.Layout == Lines {
		return
	}
	c.dst = append(c.dst, c.p[c.out:i]...)
	c.out = i + 1
}

// Take returns what was cut from the item of ordinal ord (0-based, in
// the order items start; 0 with Lines) and forgets it and the items before it.
func (c *Cutter) Take(ord int) Item {
	var it Item
	k := 0
	for ; k < len(c.items) && c.items[k].ord <= ord; k++ {
		if e := c.items[k]; e.ord == ord {
			it.Cuts = bits.OnesCount8(e.cut)
			if c.nameField >= 0 && e.cut&(1<<c.nameField) != 0 {
				it.NameCut, it.Name = true, e.name
			}
		}
	}
	c.items = c.items[:copy(c.items, c.items[k:])]
	return it
}

// mark records whether the last value of the current field was cut.
func (c *Cutter) mark(cut bool) {
	bit := uint8(1) << c.cutField
	n := len(c.items)
	if n == 0 || c.items[n-1].ord != c.item {
		if !cut {
			return
		}
		c.items = append(c.items, entry{ord: c.item})
		n++
	}
	if cut {
		c.items[n-1].cut |= bit
	} else {
		c.items[n-1].cut &^= bit
	}
}

// Write appends to dst what p becomes. An *Error is a value being cut that
// is not valid JSON (or, with Options.UTF8, not valid UTF-8); Write then
// takes nothing more until Reset.
func (c *Cutter) Write(dst, p []byte) ([]byte, error) {
	if c.err != nil {
		return dst, c.err
	}
	if c.dumb {
		return append(dst, p...), nil
	}
	c.dst, c.p, c.out, c.capFrom, c.keyFrom, c.nameFrom = dst, p, 0, 0, 0, 0
	for i := 0; i < len(p) && !c.dumb && c.err == nil; i++ {
		i = c.step(i)
	}
	dst, c.dst, c.p = c.dst, nil, nil
	c.base += int64(len(p))
	switch {
	case c.err != nil:
		return dst, c.err
	case c.dumb:
		return append(dst, p[c.out:]...), nil
	}
	if c.keyOn {
		c.key = appendBounded(c.key, p[c.keyFrom:], maxKey+1)
	}
	if c.nameOn {
		c.nameBuf = appendBounded(c.nameBuf, p[c.nameFrom:], maxName+1)
	}
	if c.capOn {
		c.feed(p[c.capFrom:])
	}
	if c.inItem && c.err == nil {
		held := c.base - c.itemStart - c.itemCut
		if c.hashing && c.capOn {
			held -= c.n
		}
		c.checkItem(held)
	}
	if c.capOn || c.err != nil {
		return dst, c.err
	}
	if c.checking {
		return dst, nil
	}
	return append(dst, p[c.out:]...), nil
}

// End ends the stream (with Lines, the line) and appends what is left.
func (c *Cutter) End(dst []byte) ([]byte, error) {
	switch {
	case c.err != nil:
		return dst, c.err
	case c.checking:
		switch {
		case c.st != sEnd && (len(c.stack) > 0 || (c.st != sZero && c.st != sInt && c.st != sFrac && c.st != sExp)):
			c.err = &Error{Offset: c.base, Msg: "invalid JSON: unexpected end of JSON input"}
		case c.u8bad:
			c.err = &Error{Offset: c.u8at, Msg: "invalid UTF-8"}
		}
		return dst, c.err
	case c.dumb || !c.capOn:
		return dst, nil
	case c.hashing:
		c.err = &Error{Field: c.opts.Fields[c.cutField], Offset: c.n, Msg: "invalid JSON: unexpected end of JSON input"}
		return dst, c.err
	}
	// Incomplete, and not long enough to cut: the decoder says what is
	// wrong.
	c.capOn = false
	return append(dst, c.capBuf...), nil
}

// step takes p[i] (and, in a string or a followed container, the bytes
// after it that need nothing more) and returns the index of the last byte
// it took.
func (c *Cutter) step(i int) int {
	p := c.p
	b := p[i]
	for {
		switch c.st {
		case sSkip:
			return c.skip(i)
		case sSkipStr:
			for ; i < len(p); i++ {
				switch {
				case c.skipEsc:
					c.skipEsc = false
				case p[i] == '\\':
					c.skipEsc = true
				case p[i] == '"':
					c.valueEnd(i + 1)
					return i
				}
			}
			return i - 1
		case sSkipScalar:
			for ; i < len(p) && !delimiter[p[i]]; i++ {
			}
			if i == len(p) {
				return i - 1
			}
			c.valueEnd(i)
			if c.dumb || c.err != nil {
				return i
			}
			b = p[i]
			continue
		case sString:
			track := c.checking && c.opts.UTF8
			for ; i < len(p); i++ {
				b = p[i]
				if b == '"' || b == '\\' || b < 0x20 || (track && (b >= 0x80 || c.u8need > 0)) {
					break
				}
			}
			if i == len(p) {
				return i - 1
			}
			if track && (c.utf8(b, i) || (b != '"' && b != '\\' && b >= 0x20)) {
				return i
			}
			switch {
			case b == '"':
				c.stringEnd(i)
			case b == '\\':
				c.st = sEsc
			default:
				c.syntax(i, "control character in string")
			}
		case sEsc:
			switch b {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				c.st = sString
			case 'u':
				c.st, c.hexLeft = sHex, 4
			default:
				c.syntax(i, "invalid escape in string")
			}
		case sHex:
			if !isHex(b) {
				c.syntax(i, "invalid \\u escape in string")
			} else if c.hexLeft--; c.hexLeft == 0 {
				c.st = sString
			}
		case sValue, sArrFirst:
			switch {
			case isSpace(b):
				c.space(i)
			case b == ']' && c.st == sArrFirst:
				c.pop(i)
			default:
				c.valueStart(i)
			}
		case sKeyFirst, sKey:
			switch {
			case isSpace(b):
				c.space(i)
			case b == '}' && c.st == sKeyFirst:
				c.pop(i)
			case b != '"':
				c.syntax(i, "object key expected")
			default:
				c.st, c.inKey = sString, true
				if r := c.stack[len(c.stack)-1].role; r != rNone && r != rItems {
					c.keyOn, c.keyFrom, c.key = true, i, c.key[:0]
				}
			}
		case sColon:
			switch {
			case isSpace(b):
				c.space(i)
			case b == ':':
				c.st = sValue
			default:
				c.syntax(i, "':' expected after an object key")
			}
		case sObjAfter:
			switch {
			case isSpace(b):
				c.space(i)
			case b == ',':
				c.st = sKey
			case b == '}':
				c.pop(i)
			default:
				c.syntax(i, "',' or '}' expected after an object value")
			}
		case sArrAfter:
			switch {
			case isSpace(b):
				c.space(i)
			case b == ',':
				c.st, c.next = sValue, c.elementMeaning()
			case b == ']':
				c.pop(i)
			default:
				c.syntax(i, "',' or ']' expected after an array element")
			}
		case sEnd:
			if isSpace(b) {
				c.space(i)
			} else {
				c.syntax(i, "data after the value")
			}
		case sNeg:
			switch {
			case b == '0':
				c.st = sZero
			case b >= '1' && b <= '9':
				c.st = sInt
			default:
				c.syntax(i, "digit expected in number")
			}
		case sZero, sInt, sFrac, sExp:
			switch {
			case b >= '0' && b <= '9' && c.st != sZero:
			case b == '.' && (c.st == sZero || c.st == sInt):
				c.st = sDot
			case (b == 'e' || b == 'E') && c.st != sExp:
				c.st = sE
			default:
				// The number ended at the byte before: take b again.
				c.valueEnd(i)
				if c.dumb || c.err != nil {
					return i
				}
				continue
			}
		case sDot:
			if b < '0' || b > '9' {
				c.syntax(i, "digit expected after decimal point")
			} else {
				c.st = sFrac
			}
		case sE:
			switch {
			case b == '+' || b == '-':
				c.st = sESign
			case b >= '0' && b <= '9':
				c.st = sExp
			default:
				c.syntax(i, "digit expected in exponent")
			}
		case sESign:
			if b < '0' || b > '9' {
				c.syntax(i, "digit expected in exponent")
			} else {
				c.st = sExp
			}
		case sLit:
			if b != c.lit[0] {
				c.syntax(i, "invalid literal")
			} else if c.lit = c.lit[1:]; c.lit == "" {
				c.valueEnd(i + 1)
			}
		}
		return i
	}
}

// delimiter are the bytes that can end a number or literal in valid JSON.
var delimiter = [256]bool{',': true, '}': true, ']': true, ' ': true, '\t': true, '\n': true, '\r': true}

// skipInteresting are the bytes that matter in a followed container,
// outside its strings.
var skipInteresting = [256]bool{'"': true, '{': true, '[': true, '}': true, ']': true}

// skip follows a container from p[i] to its end, or to the end of p; it
// returns the index of the last byte it took.
func (c *Cutter) skip(i int) int {
	p := c.p
	for ; i < len(p); i++ {
		if c.skipStr {
			for ; i < len(p) && c.skipStr; i++ {
				switch {
				case c.skipEsc:
					c.skipEsc = false
				case p[i] == '\\':
					c.skipEsc = true
				case p[i] == '"':
					c.skipStr = false
				}
			}
			i-- // the loop's i++ takes the byte after
			continue
		}
		for i < len(p) && !skipInteresting[p[i]] {
			i++
		}
		if i == len(p) {
			break
		}
		switch p[i] {
		case '"':
			c.skipStr = true
		case '{', '[':
			// A field's value is one level below its item, from which
			// encoding/json counts: at maxDepth in the value, the decoder
			// would refuse the item.
			if c.skipDepth++; c.skipDepth >= maxDepth && c.capOn {
				c.deep = true
			}
		default:
			if c.skipDepth--; c.skipDepth == 0 {
				c.valueEnd(i + 1)
				return i
			}
		}
	}
	return len(p) - 1
}

// utf8 checks one byte of a string in a checked value, and says whether
// it was taken (a byte of a multi-byte character, valid or not).
func (c *Cutter) utf8(b byte, i int) bool {
	if c.u8need > 0 {
		if b >= c.u8lo && b <= c.u8hi {
			c.u8need, c.u8lo, c.u8hi = c.u8need-1, 0x80, 0xBF
			return true
		}
		c.badUTF8(i)
		c.u8need = 0
	}
	if b < 0x80 {
		return false
	}
	c.u8lo, c.u8hi = 0x80, 0xBF
	switch {
	case b >= 0xC2 && b <= 0xDF:
		c.u8need = 1
	case b == 0xE0:
		c.u8need, c.u8lo = 2, 0xA0
	case b == 0xED:
		c.u8need, c.u8hi = 2, 0x9F
	case b >= 0xE1 && b <= 0xEF:
		c.u8need = 2
	case b == 0xF0:
		c.u8need, c.u8lo = 3, 0x90
	case b == 0xF4:
		c.u8need, c.u8hi = 3, 0x8F
	case b >= 0xF1 && b <= 0xF3:
		c.u8need = 3
	default:
		c.badUTF8(i)
	}
	return true
}

func (c *Cutter) badUTF8(i int) {
	if !c.u8bad {
		c.u8bad, c.u8at = true, c.base+int64(i)
	}
}

func (c *Cutter) stringEnd(i int) {
	if c.inKey {
		c.inKey = false
		c.st = sColon
		c.keyDone(i)
		return
	}
	if c.nameOn {
		c.nameOn = false
		c.nameBuf = appendBounded(c.nameBuf, c.p[c.nameFrom:i+1], maxName+1)
		// A name too long to keep is "" (a later one still counts, as
		// encoding/json keeps the last); a valid string always decodes.
		var s string
		if len(c.nameBuf) <= maxName && json.Unmarshal(c.nameBuf, &s) != nil {
			c.nameFail = true
		}
		c.name = s
	}
	c.valueEnd(i + 1)
}

// keyDone decides what the value after the key at p[..i] is.
func (c *Cutter) keyDone(i int) {
	c.next = vNone
	if !c.keyOn {
		return
	}
	c.keyOn = false
	c.key = appendBounded(c.key, c.p[c.keyFrom:i+1], maxKey+1)
	if len(c.key) > maxKey {
		return
	}
	// An ASCII key folds to a field only if it is as long (encoding/json
	// folds K and ſ, longer in UTF-8, to k and s).
	key, plain := c.key[1:len(c.key)-1], ascii(c.key)
	if !plain || bytes.IndexByte(key, '\\') >= 0 {
		var s string
		if json.Unmarshal(c.key, &s) != nil {
			return
		}
		key, plain = []byte(s), false
	}
	switch c.stack[len(c.stack)-1].role {
	case rItem:
		for k, f := range c.opts.Fields {
			if (!plain || len(key) == len(f)) && bytes.EqualFold(key, []byte(f)) {
				c.next, c.cutField = vCut, k
			}
		}
	case rTop:
		if string(key) == "items" {
			c.next = vItems
		}
	case rNameRoot:
		if bytes.EqualFold(key, []byte("metadata")) {
			c.next = vMeta
		}
	case rMeta:
		if bytes.EqualFold(key, []byte("name")) {
			c.next = vName
		}
	}
}

// valueStart takes the first byte of a value.
func (c *Cutter) valueStart(i int) {
	b := c.p[i]
	m := c.next
	c.next = vNone
	switch m {
	case vItem:
		c.item++
		c.itemBegin(i)
	case vCut:
		if b == 'n' {
			c.mark(false) // null is no value, whatever the limit
			m = vNone
			break
		}
		c.dst = append(c.dst, c.p[c.out:i]...)
		c.capOn, c.capFrom, c.capDepth = true, i, len(c.stack)
		c.capBuf, c.hashing, c.n, c.deep = c.capBuf[:0], false, 0, false
		c.h.Reset()
	case vTopItem:
		if c.named {
			c.nameFail = b != '{' && b != 'n'
		}
	case vMeta:
		if b != '{' && b != 'n' {
			c.nameFail = true
		}
	case vName:
		switch b {
		case '"':
			c.nameOn, c.nameFrom, c.nameBuf = true, i, c.nameBuf[:0]
		case 'n':
		default:
			c.nameFail = true
		}
	}
	switch {
	case (b == '{' || b == '[') && (m == vNone || m == vCut) && !c.checking:
		c.st, c.skipDepth, c.skipStr, c.skipEsc = sSkip, 1, false, false
	case b == '"' && m == vCut:
		c.st, c.skipEsc = sSkipStr, false
	case m == vCut:
		c.st = sSkipScalar
	case b == '{' || b == '[':
		if len(c.stack) >= maxDepth {
			c.syntax(i, "exceeded max depth")
			return
		}
		c.stack = append(c.stack, frame{obj: b == '{', role: c.roleOf(m, b)})
		if b == '{' {
			c.st = sKeyFirst
		} else {
			c.st, c.next = sArrFirst, c.elementMeaning()
		}
	case b == '"':
		c.st, c.inKey = sString, false
	case b == '-':
		c.st = sNeg
	case b == '0':
		c.st = sZero
	case b >= '1' && b <= '9':
		c.st = sInt
	case b == 't':
		c.st, c.lit = sLit, "rue"
	case b == 'f':
		c.st, c.lit = sLit, "alse"
	case b == 'n':
		c.st, c.lit = sLit, "ull"
	default:
		c.syntax(i, "invalid character looking for the beginning of a value")
	}
}

// roleOf is the role of a container starting with b whose meaning is m.
func (c *Cutter) roleOf(m meaning, b byte) role {
	obj := b == '{'
	if c.checking {
		switch {
		case m == vTopItem && obj && c.named:
			return rNameRoot
		case m == vMeta && obj:
			return rMeta
		}
		return rNone
	}
	switch {
	case m == vTopItem && c.opts.Layout == Lines && obj,
		m == vItem && obj:
		return rItem
	case m == vTopItem && c.opts.Layout == Array && !obj,
		m == vItems && !obj:
		return rItems
	case m == vTopItem && c.opts.Layout == List && obj:
		return rTop
	}
	return rNone
}

// elementMeaning is what an element of the current array is.
func (c *Cutter) elementMeaning() meaning {
	if c.stack[len(c.stack)-1].role == rItems {
		return vItem
	}
	return vNone
}

// pop takes the closing byte p[i] of the current container.
func (c *Cutter) pop(i int) {
	c.stack = c.stack[:len(c.stack)-1]
	c.valueEnd(i + 1)
}

// valueEnd follows a value that ended before p[end].
func (c *Cutter) valueEnd(end int) {
	d := len(c.stack)
	switch {
	case d == 0:
		c.st = sEnd
	case c.stack[d-1].obj:
		c.st = sObjAfter
	default:
		c.st = sArrAfter
	}
	if c.inItem && d == c.itemDepth {
		c.inItem = false
		c.checkItem(c.base + int64(end) - c.itemStart - c.itemCut)
	}
	if !c.capOn || d != c.capDepth {
		return
	}
	c.feed(c.p[c.capFrom:end])
	c.capOn, c.out = false, end
	if c.err != nil {
		return
	}
	if !c.hashing {
		c.dst = append(c.dst, c.capBuf...)
		c.mark(false)
		return
	}
	if _, err := c.check.End(nil); err != nil {
		c.fail(err)
		return
	}
	var sum [sha256.Size]byte
	c.h.Sum(sum[:0])
	m := Marker(c.n, sum)
	c.dst = append(c.dst, m...)
	c.itemCut += c.n - int64(len(m))
	c.mark(true)
	if c.cutField == c.nameField {
		e := &c.items[len(c.items)-1]
		e.name = ""
		if !c.check.nameFail {
			e.name = c.check.name
		}
	}
}

func (c *Cutter) itemBegin(i int) {
	c.inItem, c.itemDepth, c.itemStart, c.itemCut = true, len(c.stack), c.base+int64(i), 0
}

// checkItem ends the stream when the current item, of length n once cut,
// is longer than MaxItem.
func (c *Cutter) checkItem(n int64) {
	if c.opts.MaxItem > 0 && n > c.opts.MaxItem && c.err == nil {
		c.err = &Error{TooLong: true, Msg: fmt.Sprintf("longer than %d bytes with its values over %d bytes cut", c.opts.MaxItem, c.opts.Max)}
	}
}

// feed takes bytes of the value that may be cut: it is kept up to Max
// (unless too deep to decode), then hashed and checked.
func (c *Cutter) feed(seg []byte) {
	c.n += int64(len(seg))
	if !c.hashing {
		if len(c.capBuf)+len(seg) <= c.opts.Max && !c.deep {
			c.capBuf = append(c.capBuf, seg...)
			return
		}
		c.hashing = true
		if c.check == nil {
			// A value cut is checked as a document of its own: the
			// decoder never sees it, so the item's levels above it do
			// not count.
			c.check = &Cutter{opts: Options{UTF8: c.opts.UTF8}, checking: true}
		}
		c.check.named = c.cutField == c.nameField
		c.check.Reset()
		c.h.Write(c.capBuf)
		if _, err := c.check.Write(nil, c.capBuf); err != nil {
			c.fail(err)
			return
		}
	}
	c.h.Write(seg)
	if _, err := c.check.Write(nil, seg); err != nil {
		c.fail(err)
	}
}

// fail ends the stream with the checker's error, naming the field.
func (c *Cutter) fail(err error) {
	e := *err.(*Error)
	e.Field = c.opts.Fields[c.cutField]
	c.err = &e
}

// syntax handles invalid JSON at p[i]: a checker's error, else the rest
// passes through for the decoder to refuse.
func (c *Cutter) syntax(i int, msg string) {
	if c.checking {
		c.err = &Error{Offset: c.base + int64(i), Msg: "invalid JSON: " + msg}
		return
	}
	// Never while a value that may be cut is held (capOn): such a value
	// is only followed, by skip, sSkipStr and sSkipScalar, which refuse
	// nothing.
	c.dumb = true
}

func appendBounded(dst, src []byte, limit int) []byte {
	if room := limit - len(dst); room < len(src) {
		src = src[:max(room, 0)]
	}
	return append(dst, src...)
}

func ascii(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// Reader is r with its values cut by c.
type Reader struct {
	r   io.Reader
	c   *Cutter
	buf []byte
	out []byte
	off int
	err error
}

// NewReader returns r's bytes as c cuts them.
func NewReader(r io.Reader, c *Cutter) *Reader {
	return &Reader{r: r, c: c, buf: make([]byte, 32<<10)}
}

func (r *Reader) Read(p []byte) (int, error) {
	for r.off == len(r.out) {
		if r.err != nil {
			return 0, r.err
		}
		n, err := r.r.Read(r.buf)
		var cerr error
		r.out, cerr = r.c.Write(r.out[:0], r.buf[:n])
		r.off = 0
		switch {
		case cerr != nil:
			r.err = cerr
		case err == io.EOF:
			if r.out, cerr = r.c.End(r.out); cerr != nil {
				r.err = cerr
			} else {
				r.err = io.EOF
			}
		case err != nil:
			r.err = err
		}
	}
	n := copy(p, r.out[r.off:])
	r.off += n
	return n, nil
}
