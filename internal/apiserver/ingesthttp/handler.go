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

// Package ingesthttp serves the ingest routes (spec/API.md section 2) over
// HTTP for the audit API server: method, media type and size checks,
// authorization before a body is read, each route's budget and read
// deadlines, and the answers (a Result, or an error in the {"message"}
// shape with the right status and Retry-After). Decoding, validating and
// storing are internal/ingest's Service.
package ingesthttp

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"github.com/auditops/auditops/internal/apiserver/httpbody"
	"github.com/auditops/auditops/internal/ingest"
	"github.com/auditops/auditops/internal/store"
)

// Defaults for Options.
const (
	// DefaultMaxBytes is --max-ingest-bytes' default (spec/API.md section
	// 2). kube-apiserver never retries a 4xx, so a refused batch is lost:
	// the limit is far above what a webhook batch of 400 events reaches,
	// and memory does not grow with a body (bodies stream and spool).
	DefaultMaxBytes int64 = 256 << 20
	// DefaultRetryAfter is what a 503 tells the sender to wait.
	DefaultRetryAfter = 2 * time.Second
)

// Authorizer decides whether the caller of r may create events.
type Authorizer interface {
	// AuthorizeCreate is called before anything is stored, with the
	// namespaces asked for; nil means cluster-wide. A denial is an
	// *ingest.ForbiddenError (403); any other error is a failed check
	// (500, or 503 when it wraps store.ErrUnavailable).
	AuthorizeCreate(ctx context.Context, r *http.Request, namespaces []string) error
}

// AuthorizerFunc adapts a function to Authorizer.
type AuthorizerFunc func(ctx context.Context, r *http.Request, namespaces []string) error

// AuthorizeCreate calls f.
func (f AuthorizerFunc) AuthorizeCreate(ctx context.Context, r *http.Request, namespaces []string) error {
	return f(ctx, r, namespaces)
}

// Options configure a Handler.
type Options struct {
	// MaxBytes bounds a request body (--max-ingest-bytes); 0 means
	// DefaultMaxBytes.
	MaxBytes int64
	// Authorizer, when set, is asked before a body is read; nil allows
	// every batch (the caller authorizes by other means).
	Authorizer Authorizer
	// RetryAfter is sent with 503; 0 means DefaultRetryAfter.
	RetryAfter time.Duration
	// KubeAuditBudget and EventsBudget bound what each route holds at once
	// (zero fields take DefaultKubeAuditBudget's and DefaultEventsBudget's);
	// BudgetWait is how long a request waits for room before a 503 (0
	// means DefaultBudgetWait).
	KubeAuditBudget Budget
	EventsBudget    Budget
	BudgetWait      time.Duration
	// ReadTimeout bounds reading a whole body, IdleTimeout the wait for
	// its next bytes (0 means DefaultReadTimeout, DefaultIdleTimeout).
	ReadTimeout time.Duration
	IdleTimeout time.Duration
	// Log receives failures that are the server's fault.
	Log logr.Logger
}

// Handler serves the ingest routes.
type Handler struct {
	svc  *ingest.Service
	opts Options
	// kubeAudit and events enforce the routes' budgets.
	kubeAudit, events *limiter
}

// NewHandler returns a Handler serving svc.
func NewHandler(svc *ingest.Service, opts Options) *Handler {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = DefaultRetryAfter
	}
	if opts.Log.GetSink() == nil {
		opts.Log = logr.Discard()
	}
	opts.KubeAuditBudget = withDefaults(opts.KubeAuditBudget, DefaultKubeAuditBudget)
	opts.EventsBudget = withDefaults(opts.EventsBudget, DefaultEventsBudget)
	if opts.BudgetWait <= 0 {
		opts.BudgetWait = DefaultBudgetWait
	}
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = DefaultReadTimeout
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	return &Handler{
		svc: svc, opts: opts,
		kubeAudit: newLimiter(opts.KubeAuditBudget, opts.BudgetWait),
		events:    newLimiter(opts.EventsBudget, opts.BudgetWait),
	}
}

func withDefaults(b, def Budget) Budget {
	if b.Requests <= 0 {
		b.Requests = def.Requests
	}
	if b.MemoryBytes <= 0 {
		b.MemoryBytes = def.MemoryBytes
	}
	return b
}

// ServeHTTP routes ingest.KubeAuditPath and ingest.EventsPath, for tests
// and the benchmark; the audit API server mounts HandleKubeAudit and
// HandleEvents in its own route table.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case ingest.KubeAuditPath:
		h.HandleKubeAudit(w, r)
	case ingest.EventsPath:
		h.HandleEvents(w, r, "")
	default:
		httpbody.Message(w, http.StatusNotFound, fmt.Sprintf("no ingest route %s", r.URL.Path))
	}
}

// HandleKubeAudit serves POST /ingest/v1/kube-audit: an audit.k8s.io/v1
// EventList, authorized cluster-wide before its body is read.
func (h *Handler) HandleKubeAudit(w http.ResponseWriter, r *http.Request) {
	w = h.counted(w, ingest.SourceKubeAudit)
	defer w.(*countedWriter).count()
	if !h.precheck(w, r) {
		return
	}
	if !h.authorize(w, r, nil) {
		return
	}
	release, ok := h.admit(w, r, h.kubeAudit, ingest.SourceKubeAudit)
	if !ok {
		return
	}
	defer release()
	res, err := h.svc.KubeAudit(r.Context(), r.Body, r.ContentLength)
	h.answer(w, r, res, err)
}

// HandleEvents serves POST /ingest/v1/events (onlyNamespace "") and its
// namespaced form POST namespaces/{ns}/events (onlyNamespace ns), where an
// event of another namespace is a 400 and an event without one belongs to ns.
//
// Which namespaces a generic batch touches is known only as it decodes,
// so the caller is authorized before the body is read: cluster-wide, or
// for the route's namespace; a caller without cluster-wide rights is then
// asked for each namespace as its first event arrives, and the first
// denial ends the request before anything more is read or stored.
func (h *Handler) HandleEvents(w http.ResponseWriter, r *http.Request, onlyNamespace string) {
	w = h.counted(w, ingest.SourceEvents)
	defer w.(*countedWriter).count()
	if !h.precheck(w, r) {
		return
	}
	var allow func(ns string) error
	var denied error
	switch {
	case onlyNamespace != "":
		if !h.authorize(w, r, []string{onlyNamespace}) {
			return
		}
	case h.opts.Authorizer == nil:
	default:
		err := h.opts.Authorizer.AuthorizeCreate(r.Context(), r, nil)
		var fe *ingest.ForbiddenError
		switch {
		case err == nil:
		case errors.As(err, &fe):
			// Not cluster-wide: namespace by namespace, as they come.
			allow = func(ns string) error {
				denied = h.opts.Authorizer.AuthorizeCreate(r.Context(), r, []string{ns})
				return denied
			}
		default:
			h.authorizeFailed(w, err, nil)
			return
		}
	}
	release, ok := h.admit(w, r, h.events, ingest.SourceEvents)
	if !ok {
		return
	}
	defer release()
	res, err := h.svc.Events(r.Context(), r.Body, r.ContentLength, onlyNamespace, allow)
	if denied != nil {
		h.authorizeFailed(w, denied, nil)
		return
	}
	h.answer(w, r, res, err)
}

// answer writes the Result of a stored batch, or what went wrong.
func (h *Handler) answer(w http.ResponseWriter, r *http.Request, res ingest.Result, err error) {
	if db, ok := r.Body.(*deadlineBody); ok {
		db.done()
	}
	var slow *readTimeoutError
	var tooLarge *http.MaxBytesError
	var bad *ingest.InputError
	switch {
	case err == nil:
		httpbody.JSON(w, http.StatusOK, res)
	case errors.Is(err, ingest.ErrStore):
		switch {
		case errors.Is(err, store.ErrUnavailable), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
			// A timeout may have hit after the commit; the sender's retry
			// is then a no-op, by idempotency.
			h.opts.Log.V(1).Info("store unavailable for ingest", "error", err.Error())
			h.unavailable(w, "audit store unavailable or busy, retry later")
		default:
			// A valid batch the store failed to commit: the one useful
			// answer for the sender is to retry later (503 + Retry-After),
			// never a drop. Logged as an error: not a known unavailability.
			h.opts.Log.Error(err, "storing ingest batch")
			h.unavailable(w, "storing the batch failed, retry later")
		}
	case errors.As(err, &slow):
		httpbody.Message(w, http.StatusRequestTimeout, slow.Error())
	case errors.As(err, &tooLarge):
		httpbody.Message(w, http.StatusRequestEntityTooLarge, tooLargeMessage(tooLarge.Limit))
	case errors.As(err, &bad):
		httpbody.Message(w, http.StatusBadRequest, bad.Error())
	default:
		// The body could not be read: the client went away or was too slow.
		httpbody.Message(w, http.StatusBadRequest, err.Error())
	}
}

// admit waits for room in the route's budget, answering 503 with
// Retry-After when none comes, and bounds the time the body may take to
// arrive. It runs after authorization, so only callers allowed to ingest
// can take room, and before the body is read.
func (h *Handler) admit(w http.ResponseWriter, r *http.Request, l *limiter, source string) (release func(), ok bool) {
	release, err := l.acquire(r.Context(), reserveFor(r, h.svc.BatchMemoryBytes()))
	if err != nil {
		h.svc.Metrics().Throttle(source)
		h.unavailable(w, "too many ingest requests in flight, retry later")
		return nil, false
	}
	r.Body = newDeadlineBody(r.Context(), w, r.Body, h.opts.ReadTimeout, h.opts.IdleTimeout)
	return release, true
}

// precheck enforces method, content type and size before any decoding, and
// installs the body limit.
func (h *Handler) precheck(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		httpbody.Message(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s is not allowed, use POST", r.Method))
		return false
	}
	if ce := r.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		httpbody.Message(w, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Encoding %q is not supported", ce))
		return false
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || !acceptedMediaTypes[mt] {
			httpbody.Message(w, http.StatusUnsupportedMediaType,
				fmt.Sprintf("Content-Type %q is not supported, use application/json or application/x-ndjson", ct))
			return false
		}
	}
	if r.ContentLength > h.opts.MaxBytes {
		httpbody.Message(w, http.StatusRequestEntityTooLarge, tooLargeMessage(h.opts.MaxBytes))
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, h.opts.MaxBytes)
	return true
}

// acceptedMediaTypes are the Content-Types we decode. The body is sniffed
// (array or lines) whatever it says, because senders label NDJSON as JSON
// and vice versa; a type that is clearly something else is refused.
var acceptedMediaTypes = map[string]bool{
	"application/json":         true,
	"application/x-ndjson":     true,
	"application/ndjson":       true,
	"application/jsonl":        true,
	"application/x-jsonlines":  true,
	"application/jsonlines":    true,
	"text/plain":               true,
	"application/octet-stream": true,
}

func tooLargeMessage(limit int64) string {
	return fmt.Sprintf("request body exceeds the limit of %d bytes (--max-ingest-bytes); send smaller batches", limit)
}

// authorize asks the Authorizer, answering a denial or failure itself.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request, namespaces []string) bool {
	if h.opts.Authorizer == nil {
		return true
	}
	err := h.opts.Authorizer.AuthorizeCreate(r.Context(), r, namespaces)
	if err == nil {
		return true
	}
	h.authorizeFailed(w, err, namespaces)
	return false
}

// authorizeFailed answers a denial or a failed check.
func (h *Handler) authorizeFailed(w http.ResponseWriter, err error, namespaces []string) {
	var fe *ingest.ForbiddenError
	switch {
	case errors.As(err, &fe):
		httpbody.Message(w, http.StatusForbidden, fe.Error())
	case errors.Is(err, store.ErrUnavailable):
		h.unavailable(w, "authorization check unavailable, retry later")
	default:
		h.opts.Log.Error(err, "authorizing ingest", "namespaces", namespaces)
		httpbody.Message(w, http.StatusInternalServerError, "authorization check failed")
	}
}

func (h *Handler) unavailable(w http.ResponseWriter, msg string) {
	httpbody.RetryAfter(w, h.opts.RetryAfter)
	httpbody.Message(w, http.StatusServiceUnavailable, msg)
}

// countedWriter remembers the status code of an ingest answer, for
// auditops_ingest_requests_total.
type countedWriter struct {
	http.ResponseWriter
	metrics *ingest.Metrics
	source  string
	code    int
}

func (h *Handler) counted(w http.ResponseWriter, source string) http.ResponseWriter {
	return &countedWriter{ResponseWriter: w, metrics: h.svc.Metrics(), source: source}
}

func (c *countedWriter) WriteHeader(code int) {
	if c.code == 0 {
		c.code = code
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *countedWriter) Write(b []byte) (int, error) {
	if c.code == 0 {
		c.code = http.StatusOK
	}
	return c.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (read
// deadlines).
func (c *countedWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

func (c *countedWriter) count() {
	code := c.code
	if code == 0 {
		code = http.StatusOK
	}
	c.metrics.Request(c.source, code)
}
