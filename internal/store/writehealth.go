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
	"errors"
	"fmt"
	"sync"
	"time"
)

// WriteHealth tells readiness what a read ping cannot: whether writes go
// through. A store whose reads answer can still be unable to commit (a full
// disk, a lock held by someone else, a disk that takes 20 s per sync), and
// ingest is what an audit store is for. The store reports each write to it;
// Check fails while a write has run longer than the limit, or when the last
// write failed for want of the store and none has succeeded since, for
// Window after that failure (so a replica taken out of service by its
// failing probe is tried again once traffic comes back).
type WriteHealth struct {
	// Limit is how long one write may run before the store counts as
	// stuck; Window how long a failed write keeps it unready.
	Limit, Window time.Duration

	mu       sync.Mutex
	inflight map[*int]time.Time
	failedAt time.Time
	failure  error
}

// Begin records the start of a write; the returned func records its end
// with the write's error (nil on success).
func (h *WriteHealth) Begin() (end func(err error)) {
	tok := new(int)
	h.mu.Lock()
	if h.inflight == nil {
		h.inflight = map[*int]time.Time{}
	}
	h.inflight[tok] = time.Now()
	h.mu.Unlock()
	return func(err error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.inflight, tok)
		switch {
		case err == nil:
			h.failure = nil
		case errors.Is(err, ErrUnavailable):
			h.failedAt, h.failure = time.Now(), err
		}
	}
}

// Check returns an error wrapping ErrUnavailable when writes are stuck or
// failing (see WriteHealth).
func (h *WriteHealth) Check() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	for _, started := range h.inflight {
		if d := now.Sub(started); d > h.Limit {
			return fmt.Errorf("%w: a write has been running for %s (limit %s)", ErrUnavailable, d.Round(time.Millisecond), h.Limit)
		}
	}
	if h.failure != nil && now.Sub(h.failedAt) < h.Window {
		return fmt.Errorf("the last write failed %s ago: %w", now.Sub(h.failedAt).Round(time.Millisecond), h.failure)
	}
	return nil
}
