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

// Package seal makes an audit namespace's events into the leaves of an
// append-only Merkle log and signs its checkpoints (spec/API.md section 6):
// the canonical encoding of an event, its leaf, the MAC that only the
// ingest path can make, and the signed checkpoint notes. The tree and its
// proofs are golang.org/x/mod/sumdb/tlog's (RFC 6962 hashing), the notes
// its sumdb/note (C2SP signed-note, Ed25519).
package seal

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/auditops/auditops/internal/jsonshape"
	"github.com/auditops/auditops/internal/store"
)

// EncodingV1 is the first canonical encoding of an event. A leaf records
// the version it was made with, so an encoding that covers a field added
// later is a new version and never changes an old leaf's digest.
const EncodingV1 = 1

// encoder appends an event's encoding to b: out[:split] is the encoding up
// to seq's value, out[split:] what follows it.
type encoder func(b []byte, e *store.Event) (out []byte, split int, err error)

// encodeBuffers are encoders' buffers for Prepare and Digest, which hash
// an encoding and drop it: ingest and verify encode every event, and a
// fresh buffer each time was most of their allocation.
var encodeBuffers = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledBuffer keeps an outsized event's buffer out of the pool.
const maxPooledBuffer = 1 << 20

func putBuffer(p *[]byte, b []byte) {
	if cap(b) <= maxPooledBuffer {
		*p = b[:0]
		encodeBuffers.Put(p)
	}
}

// encodings are the canonical encodings this build knows, by version, and
// currentEncoding the one new leaves are made with. A new field of events
// gets a new version here; old leaves keep theirs and verify as before (a
// test build, tag sealfieldtest, adds a version 2 with a field to show it).
var (
	encodings       = map[int]encoder{EncodingV1: encodeParts}
	currentEncoding = EncodingV1
)

// LeafDataSize is the size of a leaf's data: the event time and its digest.
const LeafDataSize = 8 + sha256.Size

// Encode returns the canonical encoding v1 of e, as stored (truncation
// markers, hashed ids, seq): a JSON object of every field of spec/API.md
// section 1, members sorted by name, no insignificant whitespace (RFC
// 8785). Strings are serialized as RFC 8785 says (only the quote, the backslash and
// control characters escaped); seq and statusCode are integers; time is
// UTC RFC 3339 with nine fractional digits; error and the JSON-valued
// fields (principal, request, response, previousState, currentState) are
// left out when the store holds none (SQL NULL), and a JSON-valued field
// is the exact bytes the store holds: re-serializing it would round a
// number past 2^53 and let two different payloads share a digest.
func Encode(e *store.Event) ([]byte, error) {
	enc, split, err := encodeParts(nil, e)
	if err != nil {
		return nil, err
	}
	out := strconv.AppendInt(slices.Clip(enc[:split]), e.Seq, 10)
	return append(out, enc[split:]...), nil
}

// encodeParts returns the encoding up to seq's value and after it: seq is
// the one member the store assigns, in its write transaction, so the
// prefix is hashed before (Prepare) and only seq and the short suffix in it.
func encodeParts(b []byte, e *store.Event) (out []byte, split int, err error) {
	b = slices.Grow(b[:0], 640+len(e.User)+len(e.Principal)+len(e.Request)+len(e.Response)+len(e.PreviousState)+len(e.CurrentState))
	first := true
	member := func(name string) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendString(b, name, &err)
		b = append(b, ':')
	}
	str := func(name, v string) {
		member(name)
		b = appendString(b, v, &err)
	}
	raw := func(name string, v []byte) {
		if len(v) == 0 {
			return
		}
		member(name)
		b = append(b, v...)
	}
	b = append(b, '{')
	// In RFC 8785 order: by UTF-16 code units, which for these ASCII
	// names is byte order (TestEncodeMembersSorted checks it).
	str("api", e.API)
	member("archived")
	b = strconv.AppendBool(b, e.Archived)
	str("category", e.Category)
	str("certificateSerialNumber", e.CertificateSerialNumber)
	raw("currentState", e.CurrentState)
	str("details", e.Details)
	str("deviceId", e.DeviceID)
	str("entityId", e.EntityID)
	str("entityKind", e.EntityKind)
	if e.Error != nil {
		str("error", *e.Error)
	}
	str("id", e.ID)
	str("issuerDN", e.IssuerDN)
	str("message", e.Message)
	str("method", e.Method)
	str("namespace", e.Namespace)
	raw("previousState", e.PreviousState)
	raw("principal", e.Principal)
	raw("request", e.Request)
	raw("response", e.Response)
	member("seq")
	split = len(b)
	str("status", e.Status)
	member("statusCode")
	b = strconv.AppendInt(b, int64(e.StatusCode), 10)
	str("time", e.Time.UTC().Format("2006-01-02T15:04:05.000000000Z"))
	str("user", e.User)
	b = append(b, '}')
	if err != nil {
		return b, 0, fmt.Errorf("encoding event %d of %s: %w", e.Seq, e.Namespace, err)
	}
	return b, split, nil
}

// Prepared is an event's digest up to its seq.
type Prepared struct {
	state  hash.Cloner
	suffix []byte
	// Version is the encoding's.
	Version int
}

// Prepare hashes e's current encoding up to seq, off the store's write
// path.
func Prepare(e *store.Event) (*Prepared, error) {
	return PrepareVersion(e, 0)
}

// PrepareVersion is Prepare with the encoding of version v (0: current).
func PrepareVersion(e *store.Event, v int) (*Prepared, error) {
	if v == 0 {
		v = currentEncoding
	}
	enc, ok := encodings[v]
	if !ok {
		return nil, fmt.Errorf("canonical encoding version %d is not known (this manager knows %d)", v, currentEncoding)
	}
	buf := encodeBuffers.Get().(*[]byte)
	out, split, err := enc(*buf, e)
	defer putBuffer(buf, out)
	if err != nil {
		return nil, err
	}
	h, ok := sha256.New().(hash.Cloner)
	if !ok {
		return nil, errors.New("crypto/sha256 cannot clone its state")
	}
	h.Write(out[:split])
	return &Prepared{state: h, suffix: slices.Clone(out[split:]), Version: v}, nil
}

// Digest is Digest(e, p.Version) of the prepared event stored as seq.
func (p *Prepared) Digest(seq int64) [sha256.Size]byte {
	c, err := p.state.Clone()
	if err != nil {
		panic(fmt.Sprintf("cloning a sha256 state: %v", err)) // sha256's Clone does not fail
	}
	var buf [20]byte
	c.Write(strconv.AppendInt(buf[:0], seq, 10))
	c.Write(p.suffix)
	var d [sha256.Size]byte
	c.Sum(d[:0])
	return d
}

// errInvalidUTF8 is refused: RFC 8785 serializes strings as UTF-8, and a
// replacement character in place of the bad bytes would give two strings
// one encoding.
var errInvalidUTF8 = errors.New("a string is not valid UTF-8")

// appendString appends s as an RFC 8785 (ECMAScript JSON.stringify) string.
func appendString(b []byte, s string, err *error) []byte {
	if !utf8.ValidString(s) {
		*err = errInvalidUTF8
	}
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, '\\', 'b')
		case '\t':
			b = append(b, '\\', 't')
		case '\n':
			b = append(b, '\\', 'n')
		case '\f':
			b = append(b, '\\', 'f')
		case '\r':
			b = append(b, '\\', 'r')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// Digest is the SHA-256 of the event's canonical encoding of version v.
//
// It checks what the encoding takes on trust (verify reads events the
// store holds, which anyone with the store may have written): each
// JSON-valued field must be one JSON value, as ingest stored it. The
// encoding puts those bytes between its members unquoted, so bytes such as
// `{"user":"a"},"request":{…}` in principal, with request empty, encode
// exactly as the two fields did.
func Digest(e *store.Event, v int) ([sha256.Size]byte, error) {
	enc, ok := encodings[v]
	if !ok {
		return [sha256.Size]byte{}, fmt.Errorf("canonical encoding version %d is not known (this manager knows up to %d)", v, currentEncoding)
	}
	for _, f := range []struct {
		name string
		v    []byte
	}{{"principal", e.Principal}, {"request", e.Request}, {"response", e.Response}, {"previousState", e.PreviousState}, {"currentState", e.CurrentState}} {
		if len(f.v) > 0 && !jsonshape.Valid(f.v) {
			return [sha256.Size]byte{}, fmt.Errorf("its %s is not one JSON value, as ingest stores it", f.name)
		}
	}
	buf := encodeBuffers.Get().(*[]byte)
	out, split, err := enc(*buf, e)
	defer putBuffer(buf, out)
	if err != nil {
		return [sha256.Size]byte{}, err
	}
	h := sha256.New()
	h.Write(out[:split])
	var seq [20]byte
	h.Write(strconv.AppendInt(seq[:0], e.Seq, 10))
	h.Write(out[split:])
	var d [sha256.Size]byte
	h.Sum(d[:0])
	return d, nil
}

// LeafData is a leaf's data: the event time in Unix nanoseconds as a
// big-endian int64, then its digest. The time keeps a leaf checkable
// against a retention cutoff after retention deleted its event.
func LeafData(t time.Time, digest [sha256.Size]byte) [LeafDataSize]byte {
	var d [LeafDataSize]byte
	binary.BigEndian.PutUint64(d[:8], uint64(t.UnixNano()))
	copy(d[8:], digest[:])
	return d
}

// DataTime is the event time a leaf's data holds (Unix ns); false when
// data is not a leaf's.
func DataTime(data []byte) (int64, bool) {
	if len(data) != LeafDataSize {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(data[:8])), true
}

// LeafHash is RFC 6962's leaf hash, SHA-256(0x00 || data).
func LeafHash(data []byte) tlog.Hash { return tlog.RecordHash(data) }
