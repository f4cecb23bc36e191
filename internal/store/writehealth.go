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
// Check fails while a write has run longer than the limit, or while, among
// the newest writes (maxOutcomes) since the first one of the last Window
// that failed for want of the store, more failed than succeeded (a tie:
// while the newest failed). A majority, not the last outcome: on a nearly
// full disk a small write still fits where the large ones do not, and
// readiness must not pass on that one success while most ingest answers
// 503. Once traffic comes back after an outage, successes outnumber the
// failures within moments, and a replica taken out of service by its
// failing probe is tried again at the latest a Window after its last
// failure.
type WriteHealth struct {
	// Limit is how long one write may run before the store counts as
	// stuck; Window how far back Check weighs failed against successful
	// writes.
	Limit, Window time.Duration

	mu       sync.Mutex
	inflight map[*int]time.Time
	// outcomes are the writes that ended within Window since the first
	// failure in it, oldest first (at most maxOutcomes of them).
	outcomes []writeOutcome
	failure  error
}

type writeOutcome struct {
	at     time.Time
	failed bool
}

// maxOutcomes is how many of the newest outcomes are weighed: enough that
// one small write fitting on a full disk does not outvote the failures
// around it, few enough that thousands of successes after a blip cannot
// hide an outage that follows (it shows after about as many failures).
const maxOutcomes = 64

// Begin records the start of a write; the returned func records its end
// with the outcome of each request it carried (nil for a success; a write
// of one request passes one error).
func (h *WriteHealth) Begin() (end func(errs ...error)) {
	tok := new(int)
	h.mu.Lock()
	if h.inflight == nil {
		h.inflight = map[*int]time.Time{}
	}
	h.inflight[tok] = time.Now()
	h.mu.Unlock()
	return func(errs ...error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.inflight, tok)
		now := time.Now()
		// A group's failures first: its successes then weigh against
		// them, whatever order the requests came in.
		for _, err := range errs {
			if errors.Is(err, ErrUnavailable) {
				h.record(writeOutcome{at: now, failed: true})
				h.failure = err
			}
		}
		for _, err := range errs {
			if err == nil {
				h.record(writeOutcome{at: now})
			}
		}
	}
}

func (h *WriteHealth) record(o writeOutcome) {
	if !o.failed && len(h.outcomes) == 0 {
		return // the common case: nothing is failing, nothing to weigh
	}
	h.outcomes = append(h.outcomes, o)
	if len(h.outcomes) > maxOutcomes {
		h.outcomes = h.outcomes[1:]
	}
	h.trim(o.at)
}

// trim drops the outcomes older than Window, and the successes before the
// first failure still in it: they would only delay noticing an outage
// that has just begun.
func (h *WriteHealth) trim(now time.Time) {
	drop := 0
	for drop < len(h.outcomes) && (now.Sub(h.outcomes[drop].at) >= h.Window || !h.outcomes[drop].failed) {
		drop++
	}
	h.outcomes = h.outcomes[drop:]
	if len(h.outcomes) == 0 {
		h.outcomes = nil
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
	h.trim(now)
	failed := 0
	var last time.Time
	for _, o := range h.outcomes {
		if o.failed {
			failed++
			last = o.at
		}
	}
	// A tie goes to the newest outcome.
	ok := len(h.outcomes) - failed
	if failed > ok || failed > 0 && failed == ok && h.outcomes[len(h.outcomes)-1].failed {
		return fmt.Errorf("%d of the last %d writes failed, the last %s ago: %w",
			failed, len(h.outcomes), now.Sub(last).Round(time.Millisecond), h.failure)
	}
	return nil
}
