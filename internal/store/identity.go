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
	h := sha256.New()
	var buf [8]byte
	str := func(s string) {
		binary.BigEndian.PutUint32(buf[:4], uint32(len(s)))
		h.Write(buf[:4])
		h.Write([]byte(s))
	}
	raw := func(b []byte) {
		if b == nil {
			binary.BigEndian.PutUint32(buf[:4], nullLen)
			h.Write(buf[:4])
			return
		}
		binary.BigEndian.PutUint32(buf[:4], uint32(len(b)))
		h.Write(buf[:4])
		h.Write(b)
	}
	i64 := func(v int64) {
		binary.BigEndian.PutUint64(buf[:], uint64(v))
		h.Write(buf[:])
	}
	h.Write([]byte(ContentEncodingV1))
	str(e.Namespace)
	i64(e.Time.UnixNano())
	str(e.ID)
	str(e.User)
	str(e.API)
	str(e.Status)
	str(e.Category)
	str(e.Method)
	i64(int64(e.StatusCode))
	str(e.EntityKind)
	str(e.EntityID)
	str(e.DeviceID)
	str(e.CertificateSerialNumber)
	str(e.IssuerDN)
	str(e.Details)
	if e.Archived {
		h.Write([]byte{1})
	} else {
		h.Write([]byte{0})
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
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

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
