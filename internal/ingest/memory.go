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

// What a request holds in memory while ingest decodes and stores it, so
// that its route's memory budget (ingesthttp.Budget) bounds what ingest
// holds, a stuck store included. ingesthttp's
// TestHeldMemoryWithinReservation holds each shape of body to it.
const (
	// heldPerEvent is what an event holds besides its fields' bytes from
	// decoding until its batch is stored: the store.Event (400 bytes), the
	// store's normalized copy of it, its prepared leaf (a SHA-256 state and
	// the canonical encoding's tail), its keys and probes. ~1.5 KiB
	// measured.
	heldPerEvent = 2 << 10
	// fastPathCopies: the fast path holds the body, goccy's copy of it
	// (the decoded strings point into it) and the objects copied out of
	// it, besides the structs it decodes (jsonshape.Shape.Decoded).
	fastPathCopies = 3
	// decodeBuffer is a streaming decoder's read buffer; spoolBuffers are
	// the spool's writer and reader (batch).
	decodeBuffer = 64 << 10
	spoolBuffers = 2 << 20
	// reservePerBodyByte and reserveBase size what a request of a known
	// length reserves: a typical webhook batch takes the fast path and
	// does not spool (400 events of 1.9 KB reserve 8.4 MiB and hold
	// ~3.5); one of many small events, which hold more memory than their
	// bytes, streams and spools what passes its reservation.
	reservePerBodyByte = 6
	reserveBase        = 4 << 20
)

// ReserveBytes is the memory a request whose body is contentLength bytes
// long (< 0: unknown) reserves from its route's budget before its body is
// read, and the most that ingest then holds for it. batchMemory is
// Options.BatchMemoryBytes.
func ReserveBytes(contentLength int64, batchMemory int) int64 {
	if contentLength < 0 || contentLength > fastPathMaxBytes {
		return int64(batchMemory) + spoolBuffers + decodeBuffer
	}
	return reservePerBodyByte*contentLength + reserveBase
}

// batchMemoryFor is what a batch of a request that reserved reserve bytes
// may hold in memory before it spools, when the request holds held bytes
// besides (its body, on the fast path), up to batchMemory.
func batchMemoryFor(reserve, held int64, batchMemory int) int {
	m := reserve - held - spoolBuffers - decodeBuffer
	return int(min(max(m, 64<<10), int64(batchMemory)))
}
