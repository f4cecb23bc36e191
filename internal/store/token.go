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
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/auditops/auditops/internal/keyfile"
)

// Page tokens.
//
// A token is base64url (no padding) of
//
//	payload = version(1) | issued-at(8, Unix seconds, big endian) |
//	          scope digest(16) | cursor
//	token   = payload | HMAC-SHA256(key, payload)
//
// The scope digest is the first 16 bytes of SHA-256 over a canonical
// encoding of everything the token is bound to: the view, the tenant, the
// time range, the view's filters and the page size. Decoding recomputes it
// from the query the token came back with, so a token presented with other
// parameters is refused even though its signature is good. The cursor is
// the keyset position, the sort key of the last row served: a time and a
// seq, plus strings for views sorted by strings (the summary).

const (
	tokenVersion    = 1
	tokenDigestSize = 16
	tokenHeaderSize = 1 + 8 + tokenDigestSize
	// MaxTokenLen bounds the length of a token string the codec accepts.
	MaxTokenLen = 8192
	// MinTokenKeySize is the shortest key a TokenCodec accepts.
	MinTokenKeySize = 16
	// TokenKeySize is the size of a generated key.
	TokenKeySize = 32
)

// TokenScope is what a page token is bound to.
type TokenScope struct {
	View      string
	Namespace string
	// From and To are the query's bounds in Unix nanoseconds.
	From, To int64
	// Filters are the view's other parameters, in a fixed order per view.
	Filters  []string
	PageSize int
}

// Cursor is the keyset position carried by a page token.
type Cursor struct {
	Time int64
	Seq  int64
	Keys []string
	// Total, when HasTotal, is the row count of the whole query, computed
	// on the walk's first page and carried to the next ones: a paging
	// client sees one total for the walk, and no later page counts again.
	Total    int64
	HasTotal bool
}

// TokenCodec signs and verifies page tokens.
type TokenCodec struct {
	key    []byte
	maxAge time.Duration
	now    func() time.Time
}

// NewTokenCodec returns a codec signing with key. maxAge > 0 makes older
// tokens invalid.
func NewTokenCodec(key []byte, maxAge time.Duration) (*TokenCodec, error) {
	if len(key) < MinTokenKeySize {
		return nil, fmt.Errorf("page token key is %d bytes, at least %d are needed", len(key), MinTokenKeySize)
	}
	return &TokenCodec{key: bytes.Clone(key), maxAge: maxAge, now: time.Now}, nil
}

// WithClock returns a copy of c reading the time from now (for tests).
func (c *TokenCodec) WithClock(now func() time.Time) *TokenCodec {
	cc := *c
	cc.now = now
	return &cc
}

// Encode returns the token for cursor within scope.
func (c *TokenCodec) Encode(scope TokenScope, cur Cursor) string {
	b := make([]byte, 0, tokenHeaderSize+32+sha256.Size)
	b = append(b, tokenVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(c.now().Unix()))
	b = append(b, scope.digest()...)
	b = binary.AppendVarint(b, cur.Time)
	b = binary.AppendVarint(b, cur.Seq)
	b = binary.AppendUvarint(b, uint64(len(cur.Keys)))
	for _, k := range cur.Keys {
		b = appendString(b, k)
	}
	if cur.HasTotal {
		// Optional and last, so tokens minted before it still decode.
		b = binary.AppendUvarint(b, uint64(cur.Total))
	}
	b = append(b, c.mac(b)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Decode verifies token against scope and returns its cursor. Every error
// wraps ErrInvalidToken.
func (c *TokenCodec) Decode(token string, scope TokenScope) (Cursor, error) {
	invalid := func(why string) (Cursor, error) {
		return Cursor{}, fmt.Errorf("%w: %s", ErrInvalidToken, why)
	}
	if len(token) > MaxTokenLen {
		return invalid("too long")
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil {
		return invalid("not base64url")
	}
	if len(raw) < tokenHeaderSize+sha256.Size {
		return invalid("too short")
	}
	payload, sum := raw[:len(raw)-sha256.Size], raw[len(raw)-sha256.Size:]
	if !hmac.Equal(sum, c.mac(payload)) {
		return invalid("bad signature: altered, or not issued by this server")
	}
	if payload[0] != tokenVersion {
		return invalid(fmt.Sprintf("unknown version %d", payload[0]))
	}
	if !hmac.Equal(payload[9:tokenHeaderSize], scope.digest()) {
		return invalid("issued for another view, tenant, range, filter or page size")
	}
	if c.maxAge > 0 {
		issued := time.Unix(int64(binary.BigEndian.Uint64(payload[1:9])), 0)
		if c.now().Sub(issued) > c.maxAge {
			return invalid("expired")
		}
	}
	r := bytes.NewReader(payload[tokenHeaderSize:])
	var cur Cursor
	if cur.Time, err = binary.ReadVarint(r); err != nil {
		return invalid("malformed cursor")
	}
	if cur.Seq, err = binary.ReadVarint(r); err != nil {
		return invalid("malformed cursor")
	}
	n, err := binary.ReadUvarint(r)
	if err != nil || n > uint64(r.Len()) {
		return invalid("malformed cursor")
	}
	for range n {
		s, err := readString(r)
		if err != nil {
			return invalid("malformed cursor")
		}
		cur.Keys = append(cur.Keys, s)
	}
	if r.Len() != 0 {
		total, err := binary.ReadUvarint(r)
		if err != nil || r.Len() != 0 || total > math.MaxInt64 {
			return invalid("malformed cursor")
		}
		cur.Total, cur.HasTotal = int64(total), true
	}
	return cur, nil
}

func (c *TokenCodec) mac(payload []byte) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte("auditops page token\x00"))
	m.Write(payload)
	return m.Sum(nil)
}

func (s TokenScope) digest() []byte {
	var b []byte
	b = appendString(b, s.View)
	b = appendString(b, s.Namespace)
	b = binary.AppendVarint(b, s.From)
	b = binary.AppendVarint(b, s.To)
	b = binary.AppendUvarint(b, uint64(len(s.Filters)))
	for _, f := range s.Filters {
		b = appendString(b, f)
	}
	b = binary.AppendVarint(b, int64(s.PageSize))
	sum := sha256.Sum256(b)
	return sum[:tokenDigestSize]
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func readString(r *bytes.Reader) (string, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return "", err
	}
	if n > uint64(r.Len()) || n > math.MaxInt32 {
		return "", errors.New("string overruns token")
	}
	b := make([]byte, n)
	if _, err := r.Read(b); err != nil && n > 0 {
		return "", err
	}
	return string(b), nil
}

// LoadOrCreateTokenKey returns the page-token key kept in the file at path.
// When the file does not exist it creates it (mode 0600) holding
// TokenKeySize random bytes; concurrent callers all end up with the same
// key. The file's bytes are the key as they are, so a key file provided by
// an operator (e.g. a mounted Secret) may hold any text of at least
// MinTokenKeySize bytes.
func LoadOrCreateTokenKey(path string) ([]byte, error) {
	key, err := keyfile.LoadOrCreate(path, func() ([]byte, error) {
		key := make([]byte, TokenKeySize)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("generate token key: %w", err)
		}
		return key, nil
	})
	if err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	if len(key) < MinTokenKeySize {
		return nil, fmt.Errorf("token key file %s holds %d bytes, at least %d are needed", path, len(key), MinTokenKeySize)
	}
	return key, nil
}
