// Package ingest turns audit events from outside into store events: the
// Kubernetes audit webhook (an audit.k8s.io/v1 EventList), generic events
// (JSON array or NDJSON of the store model) and audit log files on import
// (spec/API.md sections 1 and 2).
//
// The HTTP side is a plain http.Handler; authentication is the caller's, and
// authorization is delegated per batch through the Authorizer hook, because
// which namespaces a generic batch touches is known only after decoding it.
package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"

	"github.com/auditops/auditops/internal/faultpoint"
	"github.com/auditops/auditops/internal/store"
)

// Routes served by Handler.ServeHTTP.
const (
	KubeAuditPath = "/ingest/v1/kube-audit"
	EventsPath    = "/ingest/v1/events"
)

// Defaults for Options.
const (
	// DefaultMaxBytes is --max-ingest-bytes' default (spec/API.md section
	// 2). kube-apiserver never retries a 4xx, so a refused batch is lost:
	// the limit is far above what a webhook batch of 400 events reaches,
	// and memory does not grow with a body (see batch).
	DefaultMaxBytes int64 = 256 << 20
	// DefaultStoreTimeout bounds how long a request waits for the store;
	// past it the sender gets 503 and retries, instead of piling up.
	DefaultStoreTimeout = 10 * time.Second
	// DefaultRetryAfter is what a 503 tells the sender to wait.
	DefaultRetryAfter = 2 * time.Second
)

// Inserter stores one batch atomically: all of it or none of it, skipping
// events whose (namespace, id) is already stored. store.Store implements it.
//
// It is the seam for coalescing: an implementation may merge concurrent
// batches into one store transaction, as long as each caller still gets
// all-or-nothing and its own InsertResult.
type Inserter interface {
	Insert(ctx context.Context, events []store.Event) (store.InsertResult, error)
}

// Authorizer decides whether the caller of r may create events.
type Authorizer interface {
	// AuthorizeCreate is called once per batch, before anything is stored,
	// with the sorted namespaces the batch touches; nil means cluster-wide
	// (the kube-audit route). A denial is returned as a *ForbiddenError (403);
	// any other error is a failed check (500, or 503 when it wraps
	// store.ErrUnavailable).
	AuthorizeCreate(ctx context.Context, r *http.Request, namespaces []string) error
}

// AuthorizerFunc adapts a function to Authorizer.
type AuthorizerFunc func(ctx context.Context, r *http.Request, namespaces []string) error

// AuthorizeCreate calls f.
func (f AuthorizerFunc) AuthorizeCreate(ctx context.Context, r *http.Request, namespaces []string) error {
	return f(ctx, r, namespaces)
}

// ForbiddenError is an authorization denial.
type ForbiddenError struct {
	// Namespaces are the namespaces denied; nil means cluster-wide.
	Namespaces []string
	// Reason is the authorizer's explanation, may be "".
	Reason string
}

func (e *ForbiddenError) Error() string {
	var b strings.Builder
	b.WriteString("create events.audit.auditops.dev is forbidden")
	if e.Namespaces == nil {
		b.WriteString(" cluster-wide")
	} else {
		b.WriteString(" in namespace")
		if len(e.Namespaces) > 1 {
			b.WriteString("s")
		}
		for i, ns := range e.Namespaces {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(" ")
			b.WriteString(strconv.Quote(ns))
		}
	}
	if e.Reason != "" {
		b.WriteString(": ")
		b.WriteString(e.Reason)
	}
	return b.String()
}

// Options configure a Handler.
type Options struct {
	// MaxBytes bounds a request body (--max-ingest-bytes); 0 means
	// DefaultMaxBytes.
	MaxBytes int64
	// Authorizer, when set, is asked once per batch; nil allows every
	// batch (the caller authorizes by other means).
	Authorizer Authorizer
	// StoreTimeout bounds the wait for the store; 0 means DefaultStoreTimeout.
	StoreTimeout time.Duration
	// RetryAfter is sent with 503; 0 means DefaultRetryAfter.
	RetryAfter time.Duration
	// MaxObjectBytes is --max-event-object-bytes: a larger object field
	// is stored as a truncation marker; 0 means DefaultMaxObjectBytes.
	MaxObjectBytes int
	// BatchMemoryBytes bounds the events of one request held in memory; 0
	// means DefaultBatchMemoryBytes.
	BatchMemoryBytes int
	// SpoolDir holds the spool files of larger batches; "" is os.TempDir().
	SpoolDir string
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
	// Metrics, when set, counts what ingest stored, skipped and found.
	Metrics *Metrics
	// Log receives failures that are the server's fault, and ids reused by
	// different events (a security signal).
	Log logr.Logger
}

// Handler serves the ingest routes.
type Handler struct {
	ins  Inserter
	opts Options
	// kubeAudit and events enforce the routes' budgets.
	kubeAudit, events *limiter
}

// NewHandler returns a Handler storing through ins.
func NewHandler(ins Inserter, opts Options) *Handler {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.StoreTimeout <= 0 {
		opts.StoreTimeout = DefaultStoreTimeout
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = DefaultRetryAfter
	}
	if opts.MaxObjectBytes <= 0 {
		opts.MaxObjectBytes = DefaultMaxObjectBytes
	}
	if opts.BatchMemoryBytes <= 0 {
		opts.BatchMemoryBytes = DefaultBatchMemoryBytes
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
		ins: ins, opts: opts,
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

// Result is the body of a 200: what the batch held and what it did.
type Result struct {
	// Received is the number of events in the body.
	Received int `json:"received"`
	// Stored is the number of events newly stored.
	Stored int `json:"stored"`
	// Duplicates were already stored (or repeated in the batch) and skipped.
	Duplicates int `json:"duplicates"`
	// Reused were stored although another event had their id (ids are not
	// trusted to be unique).
	Reused int `json:"reused,omitempty"`
	// Truncated counts object fields stored as truncation markers.
	Truncated int `json:"truncated,omitempty"`
	// Skipped were not stored by rule: Kubernetes stages other than
	// ResponseComplete and Panic.
	Skipped int `json:"skipped"`
}

// ServeHTTP routes KubeAuditPath and EventsPath. A caller mounting the
// handler under a prefix strips it, or calls HandleKubeAudit and
// HandleEvents directly.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case KubeAuditPath:
		h.HandleKubeAudit(w, r)
	case EventsPath:
		h.HandleEvents(w, r, "")
	default:
		writeMessage(w, http.StatusNotFound, fmt.Sprintf("no ingest route %s", r.URL.Path))
	}
}

// Sources, as metrics and logs name them.
const (
	SourceKubeAudit = "kube-audit"
	SourceEvents    = "events"
	SourceImport    = "import"
)

// HandleKubeAudit serves POST /ingest/v1/kube-audit: an audit.k8s.io/v1
// EventList, authorized cluster-wide before its body is read.
func (h *Handler) HandleKubeAudit(w http.ResponseWriter, r *http.Request) {
	if !h.precheck(w, r) {
		return
	}
	if !h.authorize(w, r, nil) {
		return
	}
	release, ok := h.admit(w, r, h.kubeAudit, SourceKubeAudit)
	if !ok {
		return
	}
	defer release()
	var res Result
	b := newBatch(h.opts.SpoolDir, h.opts.BatchMemoryBytes)
	defer b.close()
	err := decodeEventList(r.Body, r.ContentLength, func(i int, ev *auditv1.Event) error {
		res.Received++
		out, ok, err := MapKubeAudit(ev)
		if err != nil {
			return inputErr(atItem(i), err)
		}
		if !ok {
			res.Skipped++
			return nil
		}
		res.Truncated += truncateObjects(&out, h.opts.MaxObjectBytes)
		return b.add(out)
	})
	r.Body.(*deadlineBody).done()
	if !h.decodeFailed(w, err) {
		h.insert(w, r, SourceKubeAudit, b, res)
	}
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
	if !h.precheck(w, r) {
		return
	}
	var allowed func(ns string) error
	switch {
	case onlyNamespace != "":
		if !h.authorize(w, r, []string{onlyNamespace}) {
			return
		}
	case h.opts.Authorizer == nil:
	default:
		err := h.opts.Authorizer.AuthorizeCreate(r.Context(), r, nil)
		var fe *ForbiddenError
		switch {
		case err == nil:
		case errors.As(err, &fe):
			// Not cluster-wide: namespace by namespace, as they come.
			seen := map[string]bool{}
			allowed = func(ns string) error {
				if seen[ns] {
					return nil
				}
				if err := h.opts.Authorizer.AuthorizeCreate(r.Context(), r, []string{ns}); err != nil {
					return err
				}
				seen[ns] = true
				return nil
			}
		default:
			h.authorizeFailed(w, err, nil)
			return
		}
	}
	release, ok := h.admit(w, r, h.events, SourceEvents)
	if !ok {
		return
	}
	defer release()
	var res Result
	b := newBatch(h.opts.SpoolDir, h.opts.BatchMemoryBytes)
	defer b.close()
	var denied error
	err := decodeEvents(r.Body, onlyNamespace, func(ev store.Event) error {
		if allowed != nil {
			if err := allowed(ev.Namespace); err != nil {
				denied = err
				return err
			}
		}
		res.Truncated += truncateObjects(&ev, h.opts.MaxObjectBytes)
		return b.add(ev)
	})
	r.Body.(*deadlineBody).done()
	if denied != nil {
		h.authorizeFailed(w, denied, nil)
		return
	}
	if h.decodeFailed(w, err) {
		return
	}
	res.Received = b.len()
	h.insert(w, r, SourceEvents, b, res)
}

// admit waits for room in the route's budget, answering 503 with
// Retry-After when none comes, and bounds the time the body may take to
// arrive. It runs after authorization, so only callers allowed to ingest
// can take room, and before the body is read.
func (h *Handler) admit(w http.ResponseWriter, r *http.Request, l *limiter, source string) (release func(), ok bool) {
	release, err := l.acquire(r.Context(), reserveFor(r, h.opts.BatchMemoryBytes))
	if err != nil {
		h.opts.Metrics.throttle(source)
		h.unavailable(w, "too many ingest requests in flight, retry later")
		return nil, false
	}
	r.Body = newDeadlineBody(w, r.Body, h.opts.ReadTimeout, h.opts.IdleTimeout)
	return release, true
}

// precheck enforces method, content type and size before any decoding, and
// installs the body limit.
func (h *Handler) precheck(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeMessage(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s is not allowed, use POST", r.Method))
		return false
	}
	if ce := r.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		writeMessage(w, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Encoding %q is not supported", ce))
		return false
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || !acceptedMediaTypes[mt] {
			writeMessage(w, http.StatusUnsupportedMediaType,
				fmt.Sprintf("Content-Type %q is not supported, use application/json or application/x-ndjson", ct))
			return false
		}
	}
	if r.ContentLength > h.opts.MaxBytes {
		writeMessage(w, http.StatusRequestEntityTooLarge, tooLargeMessage(h.opts.MaxBytes))
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

// decodeFailed answers a decoding error; false when there was none.
func (h *Handler) decodeFailed(w http.ResponseWriter, err error) bool {
	if err == nil {
		return false
	}
	var tooLarge *http.MaxBytesError
	var bad *InputError
	var slow *readTimeoutError
	switch {
	case errors.As(err, &slow):
		writeMessage(w, http.StatusRequestTimeout, slow.Error())
	case errors.As(err, &tooLarge):
		writeMessage(w, http.StatusRequestEntityTooLarge, tooLargeMessage(tooLarge.Limit))
	case errors.As(err, &bad):
		writeMessage(w, http.StatusBadRequest, bad.Error())
	default:
		// The body could not be read: the client went away or was too slow.
		writeMessage(w, http.StatusBadRequest, err.Error())
	}
	return true
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
	var fe *ForbiddenError
	switch {
	case errors.As(err, &fe):
		writeMessage(w, http.StatusForbidden, fe.Error())
	case errors.Is(err, store.ErrUnavailable):
		h.unavailable(w, "authorization check unavailable, retry later")
	default:
		h.opts.Log.Error(err, "authorizing ingest", "namespaces", namespaces)
		writeMessage(w, http.StatusInternalServerError, "authorization check failed")
	}
}

// insert stores the batch, each part within StoreTimeout, and answers 200
// only after the store committed it.
func (h *Handler) insert(w http.ResponseWriter, r *http.Request, source string, b *batch, res Result) {
	ir, err := b.insert(r.Context(), func(ctx context.Context, events []store.Event) (store.InsertResult, error) {
		ctx, cancel := context.WithTimeout(ctx, h.opts.StoreTimeout)
		defer cancel()
		return h.ins.Insert(ctx, events)
	})
	if err != nil {
		switch {
		case errors.Is(err, store.ErrInvalidEvent):
			// Validation runs the store's own checks first; this is
			// only a guard against the two drifting apart.
			writeMessage(w, http.StatusBadRequest, err.Error())
		case errors.Is(err, store.ErrUnavailable), errors.Is(err, context.DeadlineExceeded),
			errors.Is(err, context.Canceled):
			// A timeout may have hit after the commit; the sender's
			// retry is then a no-op, by idempotency.
			h.opts.Log.V(1).Info("store unavailable for ingest", "events", b.len(), "error", err.Error())
			h.unavailable(w, "audit store unavailable or busy, retry later")
		default:
			// A valid batch the store failed to commit: the one useful
			// answer for the sender is to retry later (503 +
			// Retry-After), never a drop. Logged as an error because it
			// is not a known unavailability.
			h.opts.Log.Error(err, "storing ingest batch", "events", b.len())
			h.unavailable(w, "storing the batch failed, retry later")
		}
		return
	}
	faultpoint.Hit("ingest-after-commit")
	res.Stored, res.Duplicates, res.Reused = ir.Inserted, ir.Duplicates, ir.Reused
	h.opts.Metrics.observe(source, res)
	logReused(h.opts.Log, source, ir)
	writeJSON(w, http.StatusOK, res)
}

// logReused logs the events that reused another's id: both are stored,
// and who sent them is in kube-apiserver's audit of the second.
func logReused(log logr.Logger, source string, ir store.InsertResult) {
	for _, ref := range ir.ReusedIDs {
		kv := []any{"source", source, "namespace", ref.Namespace, "id", ref.ID}
		if ref.Seq != 0 {
			kv = append(kv, "seq", ref.Seq)
		}
		log.Info("an event reused the id of a stored event; both are kept", kv...)
	}
	if n := ir.Reused - len(ir.ReusedIDs); n > 0 {
		log.Info("more events of the batch reused stored ids", "source", source, "more", n)
	}
}

func (h *Handler) unavailable(w http.ResponseWriter, msg string) {
	secs := int((h.opts.RetryAfter + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	writeMessage(w, http.StatusServiceUnavailable, msg)
}

// errorBody is the error shape of spec/API.md section 2 (as the network
// endpoints': {"message": …}).
type errorBody struct {
	Message string `json:"message"`
}

func writeMessage(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorBody{Message: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own small structs are written; this cannot fail.
		b = []byte(`{"message":"internal error encoding the response"}`)
		code = http.StatusInternalServerError
	}
	b = append(b, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	_, _ = w.Write(b)
}
