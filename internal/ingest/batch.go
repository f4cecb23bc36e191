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
	"context"
	"crypto/sha256"
	stdjson "encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/auditops/auditops/internal/jsoncut"
	"github.com/auditops/auditops/internal/store"
)

// DefaultMaxObjectBytes is --max-event-object-bytes' default: an object
// field larger than this is stored as a truncation marker (spec/API.md 2).
const DefaultMaxObjectBytes = 256 << 10

// MinMaxObjectBytes is the smallest --max-event-object-bytes: a marker
// (at most 136 bytes) must be kept as it is, not cut again.
const MinMaxObjectBytes = 1 << 10

// maxObjectBytes is the limit ingest applies for n: the default for 0, at
// least MinMaxObjectBytes (the flags refuse less; a smaller limit would
// cut the markers again).
func maxObjectBytes(n int) int {
	if n <= 0 {
		return DefaultMaxObjectBytes
	}
	return max(n, MinMaxObjectBytes)
}

// CheckMaxObjectBytes says what is wrong with --max-event-object-bytes.
func CheckMaxObjectBytes(n int) error {
	if n < MinMaxObjectBytes {
		return fmt.Errorf("--max-event-object-bytes is %d: it must be at least %d, room for the truncation marker that replaces a larger object", n, MinMaxObjectBytes)
	}
	return nil
}

// DefaultBatchMemoryBytes bounds the events of one request held in memory;
// a larger batch waits in a spool file and is inserted in parts this size.
const DefaultBatchMemoryBytes = 16 << 20

// TruncatedKey marks an object that was too large to keep.
const TruncatedKey = jsoncut.TruncatedKey

// truncateObject returns raw, or when it is longer than max bytes the
// marker {"auditops.dev/truncated":true,"bytes":N,"sha256":"<hex>"} that
// takes its place (spec/API.md 2): the event is kept, and the digest still
// ties it to the object kube-apiserver saw.
func truncateObject(raw []byte, max int) ([]byte, bool) {
	if max <= 0 || len(raw) <= max {
		return raw, false
	}
	return jsoncut.Marker(int64(len(raw)), sha256.Sum256(raw)), true
}

// truncateObjects applies truncateObject to every object field of e and
// says how many it replaced.
// A Kubernetes event's currentState is its response object (one object,
// counted once).
func truncateObjects(e *store.Event, max int) int {
	sameObject := len(e.Response) > 0 && len(e.CurrentState) == len(e.Response) && &e.CurrentState[0] == &e.Response[0]
	n := 0
	for _, f := range []*[]byte{(*[]byte)(&e.Request), (*[]byte)(&e.Response), (*[]byte)(&e.PreviousState), (*[]byte)(&e.CurrentState)} {
		if sameObject && f == (*[]byte)(&e.CurrentState) {
			e.CurrentState = e.Response
			continue
		}
		var cut bool
		if *f, cut = truncateObject(*f, max); cut {
			n++
		}
	}
	return n
}

// eventBytes estimates what an event holds in memory until its batch is
// stored (heldPerEvent): its fields, and the store's payload encoding of
// its JSON values and free text, which is a second copy of them when they
// do not compress.
func eventBytes(e *store.Event) int {
	payload := len(e.EntityKind) + len(e.EntityID) + len(e.Message) + len(e.CertificateSerialNumber) + len(e.IssuerDN) +
		len(e.Details) + len(e.Principal) + len(e.Request) + len(e.Response) + len(e.PreviousState) + len(e.CurrentState)
	if e.Error != nil {
		payload += len(*e.Error)
	}
	return heldPerEvent + len(e.ID) + len(e.Namespace) + len(e.User) + len(e.Method) + len(e.API) + len(e.DeviceID) + 2*payload
}

// spooled is an event as the spool holds it: its JSON values as bytes
// (base64 in the spool's JSON), so that they come back exactly as they were
// sent. As json.RawMessage, encoding/json would compact them and escape
// <, > and &: the event stored from the spool would not be the one sent,
// and the same event sent again in a smaller batch, or imported, would be
// stored again instead of found a re-send.
type spooled struct {
	Event                                                     store.Event `json:"e"`
	Principal, Request, Response, PreviousState, CurrentState []byte
}

func toSpool(e *store.Event) spooled {
	s := spooled{Event: *e, Principal: e.Principal, Request: e.Request, Response: e.Response,
		PreviousState: e.PreviousState, CurrentState: e.CurrentState}
	s.Event.Principal, s.Event.Request, s.Event.Response, s.Event.PreviousState, s.Event.CurrentState = nil, nil, nil, nil, nil
	return s
}

func (s *spooled) event() store.Event {
	e := s.Event
	e.Principal, e.Request, e.Response, e.PreviousState, e.CurrentState = s.Principal, s.Request, s.Response, s.PreviousState, s.CurrentState
	return e
}

// batch collects the events of one request. Up to memLimit bytes of them
// stay in memory and are inserted in one transaction, as nearly every
// batch is; past it the events go to a spool file as they are decoded, so
// memory does not grow with the body, and once the whole body has decoded
// (a malformed body still stores nothing) they are read back in parts of
// memLimit bytes into one transaction (store.Store.InsertParts): all of
// the batch or none of it, as spec/API.md 2 says.
type batch struct {
	dir      string
	memLimit int

	events []store.Event
	bytes  int
	// spooledBytes are the spooled events' (eventBytes).
	spooledBytes int
	spool        *os.File
	w            *bufio.Writer
	enc          *stdjson.Encoder
	n            int
}

func newBatch(dir string, memLimit int) *batch {
	return &batch{dir: dir, memLimit: memLimit}
}

// len is the number of events added.
func (b *batch) len() int { return b.n + len(b.events) }

// add adds e, which holds raw bytes of its source besides its own (the
// decoder's copy of its line, which its strings point into).
func (b *batch) add(e store.Event, raw int) error {
	b.events = append(b.events, e)
	b.bytes += eventBytes(&e) + raw
	if b.bytes <= b.memLimit {
		return nil
	}
	return b.spoolEvents()
}

// spoolEvents moves the events in memory to the spool file.
func (b *batch) spoolEvents() error {
	if b.spool == nil {
		f, err := os.CreateTemp(b.dir, "auditops-ingest-*.ndjson")
		if err != nil {
			return fmt.Errorf("spooling a large batch: %w", err)
		}
		// Unlinked at once: the file goes with the process, whatever ends it.
		_ = os.Remove(f.Name())
		b.spool, b.w = f, bufio.NewWriterSize(f, 1<<20)
		b.enc = stdjson.NewEncoder(b.w)
	}
	for i := range b.events {
		if err := b.enc.Encode(toSpool(&b.events[i])); err != nil {
			return fmt.Errorf("spooling a large batch: %w", err)
		}
	}
	b.n += len(b.events)
	b.spooledBytes += b.bytes
	// Cleared, not only cut: the backing array would keep the spooled
	// events reachable while the batch is written.
	clear(b.events)
	b.events, b.bytes = b.events[:0], 0
	return nil
}

// parts is how many parts of at most memLimit bytes the batch is stored
// in: 1 when it stayed in memory.
func (b *batch) parts() int {
	return 1 + b.spooledBytes/max(b.memLimit, 1)
}

// insert stores the batch through ins in one transaction: by Insert when
// it fits in memory, else by InsertParts, part by part from the spool (so
// memory does not grow with it). The events still in memory are spooled
// first: kept while the parts are read, they would double what the batch
// holds.
func (b *batch) insert(ctx context.Context, ins BatchInserter) (store.InsertResult, error) {
	if b.spool == nil {
		if len(b.events) == 0 {
			return store.InsertResult{}, nil
		}
		return ins.Insert(ctx, b.events)
	}
	if len(b.events) > 0 {
		if err := b.spoolEvents(); err != nil {
			return store.InsertResult{}, err
		}
	}
	if err := b.w.Flush(); err != nil {
		return store.InsertResult{}, fmt.Errorf("spooling a large batch: %w", err)
	}
	if _, err := b.spool.Seek(0, io.SeekStart); err != nil {
		return store.InsertResult{}, fmt.Errorf("reading a spooled batch: %w", err)
	}
	dec := stdjson.NewDecoder(bufio.NewReaderSize(b.spool, 1<<20))
	read := 0
	return ins.InsertParts(ctx, func() ([]store.Event, error) {
		var part []store.Event
		size := 0
		for read < b.n {
			var s spooled
			if err := dec.Decode(&s); err != nil {
				return nil, fmt.Errorf("reading a spooled batch: %w", err)
			}
			read++
			e := s.event()
			part = append(part, e)
			if size += eventBytes(&e); size > b.memLimit {
				return part, nil
			}
		}
		return part, nil // nil once all are read
	})
}

func (b *batch) close() {
	if b.spool != nil {
		_ = b.spool.Close()
	}
}
