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
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
)

// DefaultSchemaCheckInterval is Options.SchemaCheckInterval's default.
const DefaultSchemaCheckInterval = 30 * time.Second

// SchemaGate fails ingest while a store's schema is changed behind the
// manager's back (SchemaChecker). A trigger that deletes events and their
// leaves as they are written leaves every count right, and each event it
// took would be acknowledged and lost; the leader's sealer stops at the
// change, but ingest runs on every replica. Failing with ErrUnavailable
// (503, retry) keeps the events with their senders, whose own drops show,
// until the schema is restored. The check runs at most once an Interval,
// started by the first write after it; the writes that come meanwhile
// wait for that one check, each no longer than its own context allows.
type SchemaGate struct {
	Check    func(ctx context.Context) ([]string, error)
	Interval time.Duration
	// Timeout bounds one check (0: none): a check stuck behind a lock
	// must not hold every write.
	Timeout time.Duration

	mu      sync.Mutex
	checked time.Time
	err     error         // the last check's verdict, kept for Interval
	last    error         // what the last check that ended says, failed or not
	running chan struct{} // closed when the check under way ends
}

// Err returns the error ingest fails with, or nil. A check that cannot run
// fails ingest too (unavailable), and runs again at the next write: an
// intruder who can make it fail (a statement_timeout of the role's, once)
// must not open the gate with it.
func (g *SchemaGate) Err(ctx context.Context) error {
	if g == nil {
		return nil
	}
	g.mu.Lock()
	if !g.checked.IsZero() && time.Since(g.checked) < g.Interval {
		err := g.err
		g.mu.Unlock()
		return err
	}
	running := g.running
	if running == nil {
		running = make(chan struct{})
		g.running = running
		// Not the caller's cancellation: the others wait for it too.
		go g.run(context.WithoutCancel(ctx), running)
	}
	g.mu.Unlock()
	select {
	case <-running:
	case <-ctx.Done():
		return fmt.Errorf("%w: waiting for the check of the store's schema: %w", ErrUnavailable, ctx.Err())
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.last
}

// run checks the schema and closes done.
func (g *SchemaGate) run(ctx context.Context, done chan struct{}) {
	if g.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, g.Timeout)
		defer cancel()
	}
	changes, err := g.Check(ctx)
	g.mu.Lock()
	defer g.mu.Unlock()
	defer close(done)
	g.running = nil
	if err != nil {
		g.last = fmt.Errorf("%w: checking the store's schema: %w", ErrUnavailable, err)
		return
	}
	g.checked = time.Now()
	g.err = nil
	if len(changes) > 0 {
		more := ""
		if len(changes) > 3 {
			more = fmt.Sprintf("; and %d more", len(changes)-3)
		}
		g.err = fmt.Errorf("%w: the store's schema was changed behind the manager's back, so a write may not keep what it is given (ingest stays off until it is restored; manager verify names each change): %s%s",
			ErrUnavailable, strings.Join(changes[:min(len(changes), 3)], "; "), more)
	}
	g.last = g.err
}
