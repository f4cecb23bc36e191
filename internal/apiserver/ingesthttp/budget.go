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

package ingesthttp

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sync/semaphore"

	"github.com/auditops/auditops/internal/ingest"
)

// Budget bounds what one ingest route holds at once: how many requests read
// and store their bodies, and how much memory they may reserve together. The
// audit webhook route has a budget of its own that callers of the generic
// route cannot take (spec/API.md section 2: kube-apiserver drops what it
// cannot deliver), and neither counts against the API server's shared
// in-flight limit.
type Budget struct {
	// Requests is how many requests of the route are served at once.
	Requests int
	// MemoryBytes is the memory the route's requests in flight may reserve
	// together. A request reserves what ingest may hold for it
	// (ingest.ReserveBytes): a few times its Content-Length when that is
	// small, else the batch memory bound and the spool's buffers (events
	// past the bound spool to disk).
	MemoryBytes int64
}

// Default budgets and timeouts (Options).
var (
	// DefaultKubeAuditBudget is sized for kube-apiserver's batching webhook
	// (batches of at most 400 events, a few MiB, sent by a few goroutines
	// at once) with room for a burst after an outage.
	DefaultKubeAuditBudget = Budget{Requests: 32, MemoryBytes: 128 << 20}
	// DefaultEventsBudget serves application senders; a flood of them waits
	// or gets 503, never the webhook's room.
	DefaultEventsBudget = Budget{Requests: 16, MemoryBytes: 64 << 20}
)

const (
	// DefaultBudgetWait is how long a request waits for room in its
	// route's budget before a 503 with Retry-After.
	DefaultBudgetWait = 5 * time.Second
	// DefaultReadTimeout bounds reading one request body; DefaultIdleTimeout
	// bounds the wait for its next bytes. A slow or stalled sender cannot
	// hold a slot of the budget longer. It stays under the API server's
	// 60 s request timeout, which answers the client but cannot stop a
	// handler blocked in a read.
	DefaultReadTimeout = 45 * time.Second
	DefaultIdleTimeout = 15 * time.Second
)

// limiter enforces one route's Budget.
type limiter struct {
	requests  *semaphore.Weighted
	memory    *semaphore.Weighted
	maxMemory int64
	wait      time.Duration
}

func newLimiter(b Budget, wait time.Duration) *limiter {
	return &limiter{
		requests:  semaphore.NewWeighted(int64(b.Requests)),
		memory:    semaphore.NewWeighted(b.MemoryBytes),
		maxMemory: b.MemoryBytes,
		wait:      wait,
	}
}

// errBudget is a request that found no room within the wait.
var errBudget = errors.New("ingest budget exhausted")

// acquire waits up to l.wait for a request slot and reserve bytes of
// memory; release gives them back.
func (l *limiter) acquire(ctx context.Context, reserve int64) (release func(), err error) {
	reserve = min(max(reserve, 1), l.maxMemory)
	ctx, cancel := context.WithTimeout(ctx, l.wait)
	defer cancel()
	if err := l.requests.Acquire(ctx, 1); err != nil {
		return nil, errBudget
	}
	if err := l.memory.Acquire(ctx, reserve); err != nil {
		l.requests.Release(1)
		return nil, errBudget
	}
	return func() {
		l.memory.Release(reserve)
		l.requests.Release(1)
	}, nil
}

// reserveFor is the memory a request reserves: what ingest may hold for
// it (ingest.ReserveBytes), from its body's length.
func reserveFor(r *http.Request, batchMemory int) int64 {
	return ingest.ReserveBytes(r.ContentLength, batchMemory)
}

// deadlineBody makes each read of a request body wait at most idle for the
// next bytes, and the whole body arrive within the overall deadline, by
// setting the connection's read deadline before each read.
type deadlineBody struct {
	io.ReadCloser
	// ctx is the request's: once it is done, the API server's timeout
	// filter may have answered and the HTTP/2 stream be gone, and
	// x/net/http2's SetReadDeadline dereferences its freed state (a panic
	// the filter logs as "Post-timeout activity", seen under a slow store).
	ctx  context.Context
	rc   *http.ResponseController
	idle time.Duration
	end  time.Time
	// ok is false when the connection does not support read deadlines:
	// reads are then unbounded (the API server's own request timeout
	// still answers the client).
	ok bool
}

func newDeadlineBody(ctx context.Context, w http.ResponseWriter, body io.ReadCloser, total, idle time.Duration) *deadlineBody {
	b := &deadlineBody{ReadCloser: body, ctx: ctx, rc: http.NewResponseController(w), idle: idle, end: time.Now().Add(total)}
	b.ok = b.rc.SetReadDeadline(b.next()) == nil
	return b
}

// setReadDeadline sets the connection's read deadline while the request
// is live; after it, nothing reads the connection for this request.
func (b *deadlineBody) setReadDeadline(t time.Time) {
	if !b.ok || b.ctx.Err() != nil {
		return
	}
	defer func() { _ = recover() }() // the stream went away between the check and the call
	_ = b.rc.SetReadDeadline(t)
}

func (b *deadlineBody) next() time.Time {
	if t := time.Now().Add(b.idle); t.Before(b.end) {
		return t
	}
	return b.end
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	b.setReadDeadline(b.next())
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = &readTimeoutError{err: err}
	}
	return n, err
}

// done lifts the deadline once the body is read, so writing the answer is
// not cut short.
func (b *deadlineBody) done() {
	b.setReadDeadline(time.Time{})
}

// readTimeoutError is a body that did not arrive in time: 408.
type readTimeoutError struct{ err error }

func (e *readTimeoutError) Error() string {
	return "the request body did not arrive in time (each read waits at most --ingest-idle-timeout, the whole body --ingest-read-timeout): " + e.err.Error()
}
func (e *readTimeoutError) Unwrap() error { return e.err }

// AddFlags registers the body limit, budget and timeout flags on fs, with
// the defaults as their values.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	fs.Int64Var(&o.MaxBytes, "max-ingest-bytes", o.MaxBytes, "largest ingest request body accepted; larger ones get 413 (bodies stream: memory does not grow with them)")
	o.KubeAuditBudget = withDefaults(o.KubeAuditBudget, DefaultKubeAuditBudget)
	o.EventsBudget = withDefaults(o.EventsBudget, DefaultEventsBudget)
	fs.IntVar(&o.KubeAuditBudget.Requests, "ingest-webhook-requests", o.KubeAuditBudget.Requests,
		"audit webhook requests (POST /ingest/v1/kube-audit) served at once; room no other caller can take")
	fs.Int64Var(&o.KubeAuditBudget.MemoryBytes, "ingest-webhook-memory", o.KubeAuditBudget.MemoryBytes,
		"memory in bytes the audit webhook's requests in flight may reserve together (each its body's length, at most 16 MiB)")
	fs.IntVar(&o.EventsBudget.Requests, "ingest-events-requests", o.EventsBudget.Requests,
		"generic ingest requests (POST …/events) served at once; more wait up to 5 s, then get 503 with Retry-After")
	fs.Int64Var(&o.EventsBudget.MemoryBytes, "ingest-events-memory", o.EventsBudget.MemoryBytes,
		"memory in bytes the generic ingest requests in flight may reserve together")
	fs.DurationVar(&o.ReadTimeout, "ingest-read-timeout", DefaultReadTimeout,
		"longest time an ingest request body may take to arrive (408 after it); keep it under the API server's 60 s request timeout")
	fs.DurationVar(&o.IdleTimeout, "ingest-idle-timeout", DefaultIdleTimeout,
		"longest wait for the next bytes of an ingest request body (408 after it)")
}
