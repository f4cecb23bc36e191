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
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"sync"
)

// An id is not trusted to be unique (spec/API.md section 1): kube-apiserver
// copies a client's Audit-ID header into auditID, so anyone may send a
// request with the id of an action they want hidden. What makes an event a
// re-send of a stored one is its whole content, so the store's idempotency
// key is ContentHash, and IDHash only finds the other events of an id.

// ContentEncodingV1 opens the bytes ContentHash digests; it names the
// encoding, so that a later one can never produce the same bytes.
const ContentEncodingV1 = "auditops.event-content.v1\x00"

// nullLen stands for a NULL value in the encoding: no length of a real
// value reaches it (values are bounded far below 4 GiB).
const nullLen = 0xFFFFFFFF

// ContentHash is the idempotency key of a normalized event (NormalizeEvent):
// SHA-256 over every stored field but Seq, in the column order of the
// store's insert, each as a 4-byte big-endian length and its bytes (a NULL
// JSON value or error as length 0xFFFFFFFF), integers as 8 big-endian bytes,
// Archived as one byte. Two events are the same event (a retried batch)
// exactly when their hashes are equal.
//
// The PostgreSQL migration that keys stored events by it computes the same
// bytes in SQL; TestContentHashMigration in both stores holds them equal.
//
// A field added to Event later must be appended to the encoding only when
// it is set, so that every stored event keeps its hash: a re-send of an
// event stored before the field existed is then still a duplicate, and the
// events table needs no second re-keying. (This is the idempotency key, not
// the tamper-evidence leaf digest of spec/API.md 6, which covers seq too,
// is versioned per leaf, and lives in tables of its own.)
func ContentHash(e *Event) [32]byte {
	bp := contentBuffers.Get().(*[]byte)
	b := (*bp)[:0]
	str := func(s string) {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	raw := func(v []byte) {
		if v == nil {
			b = binary.BigEndian.AppendUint32(b, nullLen)
			return
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
		b = append(b, v...)
	}
	b = append(b, ContentEncodingV1...)
	str(e.Namespace)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Time.UnixNano()))
	str(e.ID)
	str(e.User)
	str(e.API)
	str(e.Status)
	str(e.Category)
	str(e.Method)
	b = binary.BigEndian.AppendUint64(b, uint64(int64(e.StatusCode)))
	str(e.EntityKind)
	str(e.EntityID)
	str(e.DeviceID)
	str(e.CertificateSerialNumber)
	str(e.IssuerDN)
	str(e.Details)
	if e.Archived {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	str(e.Message)
	if e.Error == nil {
		raw(nil)
	} else {
		str(*e.Error)
	}
	for _, j := range [][]byte{e.Principal, e.Request, e.Response, e.PreviousState, e.CurrentState} {
		if len(j) == 0 {
			j = nil
		}
		raw(j)
	}
	sum := sha256.Sum256(b)
	// A buffer grown by a large event is let go rather than kept.
	if cap(b) <= 64<<10 {
		*bp = b
		contentBuffers.Put(bp)
	}
	return sum
}

// contentBuffers are ContentHash's encodings, reused: it runs for every
// event ingest stores and verify reads.
var contentBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// IDHash is the first 8 bytes of SHA-256(id) as a big-endian int64: the
// index key that finds the events of an id (ids may be 4,096 bytes long,
// more than PostgreSQL's B-tree takes in an entry). Equal hashes are
// compared by id, so a collision only costs a row read.
func IDHash(id string) int64 {
	sum := sha256.Sum256([]byte(id))
	return int64(binary.BigEndian.Uint64(sum[:8]))
}

// HashedIDPrefix starts the id kept for a Kubernetes auditID longer than
// MaxIDLen (kube-apiserver does not bound the Audit-ID header): the whole
// id's SHA-256 in hex, never a prefix another id could share.
const HashedIDPrefix = "sha256:"

// HashID returns the id kept for an over-long id.
func HashID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return HashedIDPrefix + hex.EncodeToString(sum[:])
}
