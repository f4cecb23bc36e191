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
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"

	"github.com/auditops/auditops/internal/faultpoint"
	"github.com/auditops/auditops/internal/jsoncut"
	"github.com/auditops/auditops/internal/store"
)

// Routes of the ingest endpoints (spec/API.md section 2), served by
// internal/apiserver.
const (
	KubeAuditPath = "/ingest/v1/kube-audit"
	EventsPath    = "/ingest/v1/events"
)

// DefaultStoreTimeout bounds how long one insert waits for the store when
// Options.StoreTimeout is zero; the server passes --apiserver-store-timeout.
const DefaultStoreTimeout = 10 * time.Second

// Sources, as metrics and logs name them.
const (
	SourceKubeAudit = "kube-audit"
	SourceEvents    = "events"
	SourceImport    = "import"
)

// Inserter stores one batch atomically: all of it or none of it, skipping
// events already stored. store.Store implements it.
//
// It is the seam for coalescing: an implementation may merge concurrent
// batches into one store transaction, as long as each caller still gets
// all-or-nothing and its own InsertResult.
type Inserter interface {
	Insert(ctx context.Context, events []store.Event) (store.InsertResult, error)
}

// BatchInserter is what a Service stores batches with: a request body
// larger than memory holds is stored by InsertParts, in one transaction
// (store.Store's).
type BatchInserter interface {
	Inserter
	InsertParts(ctx context.Context, next func() ([]store.Event, error)) (store.InsertResult, error)
}

// Options configure a Service.
type Options struct {
	// StoreTimeout bounds the wait for the store per insert; 0 means
	// DefaultStoreTimeout.
	StoreTimeout time.Duration
	// MaxObjectBytes is --max-event-object-bytes: a larger object field
	// is stored as a truncation marker; 0 means DefaultMaxObjectBytes.
	MaxObjectBytes int
	// BatchMemoryBytes bounds the events of one batch held in memory; 0
	// means DefaultBatchMemoryBytes.
	BatchMemoryBytes int
	// SpoolDir holds the spool files of larger batches; "" is os.TempDir().
	SpoolDir string
	// Metrics, when set, counts what ingest stored, skipped and found.
	Metrics *Metrics
	// Log receives ids reused by different events (a security signal).
	Log logr.Logger
}

// Service decodes, validates and stores ingest batches, and says what it
// did or why it did not (typed errors). It knows nothing of HTTP:
// internal/apiserver serves it.
type Service struct {
	ins  BatchInserter
	opts Options
}

// NewService returns a Service storing through ins.
func NewService(ins BatchInserter, opts Options) *Service {
	if opts.StoreTimeout <= 0 {
		opts.StoreTimeout = DefaultStoreTimeout
	}
	opts.MaxObjectBytes = maxObjectBytes(opts.MaxObjectBytes)
	if opts.BatchMemoryBytes <= 0 {
		opts.BatchMemoryBytes = DefaultBatchMemoryBytes
	}
	if opts.Log.GetSink() == nil {
		opts.Log = logr.Discard()
	}
	return &Service{ins: ins, opts: opts}
}

// BatchMemoryBytes is the memory one batch may hold before it spools.
func (s *Service) BatchMemoryBytes() int { return s.opts.BatchMemoryBytes }

// Metrics are the service's metrics (nil counts nothing).
func (s *Service) Metrics() *Metrics { return s.opts.Metrics }

// Result is what a batch held and what storing it did.
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

// ErrStore is wrapped by errors of a valid batch the store did not commit:
// the sender retries later (with store.ErrUnavailable, or a timeout, the
// store is busy or down; anything else is logged as a fault).
var ErrStore = errors.New("storing the batch")

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

// KubeAudit decodes an audit.k8s.io/v1 EventList from body (sizeHint is its
// length, or <= 0 when unknown), maps its items (spec/API.md section 1) and
// stores them as one batch. Errors: *InputError for a malformed body (it
// names the item and field), the body's own read error, ErrStore.
func (s *Service) KubeAudit(ctx context.Context, body io.Reader, sizeHint int64) (Result, error) {
	var res Result
	reserve := ReserveBytes(sizeHint, s.opts.BatchMemoryBytes)
	b := newBatch(s.opts.SpoolDir, s.opts.BatchMemoryBytes)
	defer b.close()
	held := func(n int64) { b.memLimit = batchMemoryFor(reserve, n, s.opts.BatchMemoryBytes) }
	err := decodeEventList(body, sizeHint, reserve, s.opts.MaxObjectBytes, held, func(i int, ev *auditv1.Event, cut jsoncut.Item) error {
		res.Received++
		out, ok, err := mapKubeAudit(ev, cut)
		if err != nil {
			return inputErr(atItem(i), err)
		}
		if !ok {
			res.Skipped++
			return nil
		}
		res.Truncated += cut.Cuts + truncateObjects(&out, s.opts.MaxObjectBytes)
		return b.add(out, 0)
	})
	if err != nil {
		return Result{}, err
	}
	return s.insert(ctx, SourceKubeAudit, b, res)
}

// Events decodes generic events (a JSON array or NDJSON) from body (sizeHint
// is its length, or < 0 when unknown) and stores them as one batch. With onlyNamespace set, an event of another
// namespace is an *InputError and one without a namespace belongs to it.
// allow, when set, is asked for each namespace as its first event arrives;
// its error ends the batch before anything more is read or stored, and is
// returned as it is.
func (s *Service) Events(ctx context.Context, body io.Reader, sizeHint int64, onlyNamespace string, allow func(ns string) error) (Result, error) {
	var res Result
	b := newBatch(s.opts.SpoolDir, batchMemoryFor(ReserveBytes(sizeHint, s.opts.BatchMemoryBytes), cutterHeld(s.opts.MaxObjectBytes), s.opts.BatchMemoryBytes))
	defer b.close()
	var denied error
	seen := map[string]bool{}
	err := decodeEvents(body, onlyNamespace, s.opts.MaxObjectBytes, func(ev store.Event, raw, cuts int) error {
		if allow != nil && !seen[ev.Namespace] {
			if err := allow(ev.Namespace); err != nil {
				denied = err
				return err
			}
			seen[ev.Namespace] = true
		}
		res.Truncated += cuts + truncateObjects(&ev, s.opts.MaxObjectBytes)
		return b.add(ev, raw)
	})
	if denied != nil {
		return Result{}, denied
	}
	if err != nil {
		return Result{}, err
	}
	res.Received = b.len()
	return s.insert(ctx, SourceEvents, b, res)
}

// insert stores the batch within StoreTimeout per part of it (a batch
// that fits in memory is one); it returns only after the store committed
// it.
func (s *Service) insert(ctx context.Context, source string, b *batch, res Result) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(b.parts())*s.opts.StoreTimeout)
	defer cancel()
	start := time.Now()
	ir, err := b.insert(ctx, s.ins)
	if err == nil {
		s.opts.Metrics.observeCommit(source, time.Since(start))
	}
	if err != nil {
		if errors.Is(err, store.ErrInvalidEvent) {
			// Validation runs the store's own checks first; this is only a
			// guard against the two drifting apart.
			return Result{}, inputErr("", err)
		}
		return Result{}, fmt.Errorf("%w of %d events: %w", ErrStore, b.len(), err)
	}
	faultpoint.Hit("ingest-after-commit")
	res.Stored, res.Duplicates, res.Reused = ir.Inserted, ir.Duplicates, ir.Reused
	s.opts.Metrics.observe(source, res)
	logReused(s.opts.Log, source, ir)
	return res, nil
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
