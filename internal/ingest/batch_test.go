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
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/auditops/auditops/internal/store"
)

func spoolEvent(i int) store.Event {
	return store.Event{ID: fmt.Sprintf("ev-%04d", i), Namespace: "ns", User: "u", Time: time.Unix(1, 0).UTC(),
		Status: store.StatusSuccess, Category: store.CategoryData,
		Request: []byte(`{"b":"` + strings.Repeat("x", 1000) + `"}`)}
}

// partsReader is a BatchInserter that reads a spooled batch's parts as the
// store does and hands each to onPart.
type partsReader struct{ onPart func(part []store.Event) }

func (f *partsReader) Insert(_ context.Context, events []store.Event) (store.InsertResult, error) {
	return store.InsertResult{Inserted: len(events)}, nil
}

func (f *partsReader) InsertParts(_ context.Context, next func() ([]store.Event, error)) (store.InsertResult, error) {
	n := 0
	for {
		part, err := next()
		if err != nil {
			return store.InsertResult{}, err
		}
		if part == nil {
			return store.InsertResult{Inserted: n}, nil
		}
		f.onPart(part)
		n += len(part)
	}
}

func heldBytes(events []store.Event) int {
	n := 0
	for i := range events {
		n += eventBytes(&events[i])
	}
	return n
}

// TestSpooledEventsNotRetained: once events are spooled, the batch's
// backing array no longer references them (it was cut, not cleared, and
// kept their objects reachable through InsertParts).
func TestSpooledEventsNotRetained(t *testing.T) {
	b := newBatch(t.TempDir(), 8<<10)
	defer b.close()
	for i := range 3 {
		if err := b.add(spoolEvent(i), 0); err != nil {
			t.Fatal(err)
		}
	}
	if b.spool == nil || len(b.events) != 0 {
		t.Fatalf("setup: want the batch spooled with an empty tail (spool %v, tail %d)", b.spool != nil, len(b.events))
	}
	stale := 0
	for _, e := range b.events[:cap(b.events)] {
		if e.Request != nil {
			stale++
		}
	}
	if stale > 0 {
		t.Errorf("%d spooled events are still referenced by the batch's backing array", stale)
	}
}

// TestSpooledPartsWithinMemoryBound: a spooled batch holds at most its
// memory bound (and one event) while it is stored. The in-memory tail was
// kept while every part was read, and the last part was the spool's
// remainder plus the tail.
func TestSpooledPartsWithinMemoryBound(t *testing.T) {
	ev := spoolEvent(0)
	e := eventBytes(&ev)
	limit := e * 21 / 2 // 10.5 events
	t.Run("tail held beside a part", func(t *testing.T) {
		b := newBatch(t.TempDir(), limit)
		defer b.close()
		for i := range 21 { // 11 spooled, 10 in memory
			if err := b.add(spoolEvent(i), 0); err != nil {
				t.Fatal(err)
			}
		}
		first := true
		_, err := b.insert(t.Context(), &partsReader{onPart: func(part []store.Event) {
			if first {
				first = false
				if held := heldBytes(part) + heldBytes(b.events); held > limit+e {
					t.Errorf("first part (%d events) and tail (%d) hold %d bytes, memory bound %d", len(part), len(b.events), held, limit)
				}
			}
		}})
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Run("last part merges the tail", func(t *testing.T) {
		b := newBatch(t.TempDir(), limit)
		defer b.close()
		// Generic events: the line counts at add (raw), not when parts are
		// read back, so flushes (6 events) and parts (11) do not align.
		for i := range 59 { // 54 spooled, 5 in memory
			if err := b.add(spoolEvent(i), e); err != nil {
				t.Fatal(err)
			}
		}
		most := 0
		if _, err := b.insert(t.Context(), &partsReader{onPart: func(part []store.Event) {
			most = max(most, heldBytes(part))
		}}); err != nil {
			t.Fatal(err)
		}
		if most > limit+e {
			t.Errorf("a part holds %d bytes (%d events), past the memory bound %d plus one event", most, most/e, limit)
		}
	})
}
