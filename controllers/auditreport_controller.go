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

// Package controllers holds the AuditReport reconciler: one-off reports are
// generated from the audit store into a sink (auditreport_run.go), scheduled
// ones create a child report per run (auditreport_schedule.go).
package controllers

import (
	"context"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	reportsv1alpha1 "github.com/auditops/auditops/api/v1alpha1"
	"github.com/auditops/auditops/internal/report"
	"github.com/auditops/auditops/internal/seal"
	"github.com/auditops/auditops/internal/sink"
	"github.com/auditops/auditops/internal/store"
)

// Clock tells the time; tests inject a fixed one so schedules need no sleeping.
type Clock interface {
	Now() time.Time
}

// realClock is the wall clock.
type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// LogSealer seals a tenant's tamper-evident log (seal.Sealer).
type LogSealer interface {
	// SealNow seals ns's log and returns its newest checkpoint.
	SealNow(ctx context.Context, ns string) (seal.Checkpoint, error)
}

// AuditReportReconciler reconciles AuditReport objects.
type AuditReportReconciler struct {
	client.Client
	Scheme   *runtime.Scheme
	Store    store.Store
	Recorder events.EventRecorder
	// AdminNamespace is the only namespace whose reports may read another tenant.
	AdminNamespace string
	// Clock defaults to the wall clock.
	Clock Clock
	// ChunkSize defaults to report.DefaultChunkSize.
	ChunkSize int
	// SettleDelay is how long after its scheduled time a run starts when
	// the parent does not say (spec.settleDelay); 0 starts runs on time.
	SettleDelay time.Duration
	// MaxConcurrentReconciles bounds how many reports are generated at once (default 2).
	MaxConcurrentReconciles int
	// Destinations are the object-store destinations allowed beyond the
	// default (--allowed-output-urls); nil allows only the default.
	Destinations *sink.Destinations
	// Metrics default to an unserved registry; main passes ones registered
	// with the manager's metrics endpoint.
	Metrics *Metrics
	// Identity names this manager in status.holder (default, set by
	// SetupWithManager: the host name); managers that may run at once
	// need different ones.
	Identity string
	// HoldFor is how long another manager's hold on a running report is
	// honoured after its last status write before this one takes the
	// report over. Zero takes over at once: right under leader election,
	// where a new leader starts only after the old one stopped.
	HoldFor time.Duration
	// Sealer, when set, seals the tenant's log before a report reads it;
	// the report then reads exactly that checkpoint's events (status.seal,
	// spec/API.md 6). Nil when the manager does not seal.
	Sealer LogSealer

	// checkpointed, when set, is called after every stored checkpoint: tests
	// use it to stop a manager in the middle of a report.
	checkpointed func(ctx context.Context, records int64)
}

// +kubebuilder:rbac:groups=reports.auditops.dev,resources=auditreports,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=reports.auditops.dev,resources=auditreports/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=reports.auditops.dev,resources=auditreports/finalizers,verbs=update
// ConfigMaps and Secrets are read uncached (ManagerClientOptions), so the
// manager never lists or watches Secrets: it reads one only by name (the
// credentials Secret a report names, the shards of output.secret) and
// writes only the shards of output.secret, which it owns.
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// reconcile moves an AuditReport towards its declared report (a scheduled
// parent towards its runs, any other report towards its output) if want
// says it is this controller's: the predicates filter events, and an
// object whose schedule changed between the event and the read is left to
// the other controller.
func (r *AuditReportReconciler) reconcile(ctx context.Context, req ctrl.Request, want func(*reportsv1alpha1.AuditReport) bool) (ctrl.Result, error) {
	var report reportsv1alpha1.AuditReport
	if err := r.Get(ctx, req.NamespacedName, &report); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !report.DeletionTimestamp.IsZero() || !want(&report) {
		return ctrl.Result{}, nil
	}
	ctx = logf.IntoContext(ctx, logf.FromContext(ctx).WithValues("auditreport", req.NamespacedName.String()))
	var res ctrl.Result
	var err error
	if isScheduled(&report) {
		res, err = r.reconcileSchedule(ctx, &report)
	} else {
		res, err = r.reconcileRun(ctx, &report)
	}
	if apierrors.IsConflict(err) {
		// The cache had an older copy than the API server: look again, quietly.
		return ctrl.Result{RequeueAfter: 100 * time.Millisecond}, nil
	}
	return res, err
}

// maxRetryDelay caps the growing wait between a failing report's
// attempts: controller-runtime's default grows to 1000 s, so a report that
// failed through a store outage of a few minutes would wait up to a
// quarter of an hour after the store came back.
const maxRetryDelay = 30 * time.Second

// retryLimiter is the work queue's backoff of a failing report: from 5 ms,
// doubling, to maxRetryDelay.
func retryLimiter() workqueue.TypedRateLimiter[reconcile.Request] {
	return workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](5*time.Millisecond, maxRetryDelay)
}

// tenantOf is the audited namespace: spec.namespace, or the report's own.
func tenantOf(report *reportsv1alpha1.AuditReport) string {
	if report.Spec.Namespace != "" {
		return report.Spec.Namespace
	}
	return report.Namespace
}

// ManagerClientOptions keep ConfigMaps and Secrets out of the manager's
// cache: report shards are up to 900 KiB each and a cluster-wide cache of
// them (and of every Secret) would cost memory for nothing; the sinks read
// and write them directly.
func ManagerClientOptions() client.Options {
	return client.Options{Cache: &client.CacheOptions{
		DisableFor: []client.Object{&corev1.ConfigMap{}, &corev1.Secret{}},
	}}
}

func isScheduled(rep *reportsv1alpha1.AuditReport) bool { return rep.Spec.Schedule != "" }

// SetupWithManager registers two controllers and the owner index that lets
// a scheduled parent list its children. Scheduling has its own controller
// and workers: generating a report can take minutes, and with one shared
// queue two long reports held every schedule in the cluster up.
//   - auditreport generates reports (MaxConcurrentReconciles workers);
//   - auditreport-schedule starts the runs of scheduled parents, and hears
//     of their children's progress (Owns).
func (r *AuditReportReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Client == nil {
		r.Client = mgr.GetClient()
	}
	if r.Scheme == nil {
		r.Scheme = mgr.GetScheme()
	}
	if r.Clock == nil {
		r.Clock = realClock{}
	}
	if r.Identity == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "auditops-manager"
		}
		r.Identity = host
	}
	if r.ChunkSize <= 0 {
		r.ChunkSize = report.DefaultChunkSize
	}
	if r.MaxConcurrentReconciles <= 0 {
		r.MaxConcurrentReconciles = 2
	}
	if r.Metrics == nil {
		// Unserved: main passes metrics registered with the manager's registry.
		r.Metrics = NewMetrics(prometheus.NewRegistry())
	}
	if r.Recorder == nil {
		r.Recorder = mgr.GetEventRecorder("auditops-controller")
	}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &reportsv1alpha1.AuditReport{}, ownerKey, indexOwner); err != nil {
		return err
	}
	scheduled := predicate.NewPredicateFuncs(func(o client.Object) bool {
		rep, ok := o.(*reportsv1alpha1.AuditReport)
		return ok && isScheduled(rep)
	})
	if err := ctrl.NewControllerManagedBy(mgr).
		For(&reportsv1alpha1.AuditReport{}, builder.WithPredicates(predicate.Not(scheduled))).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles, RateLimiter: retryLimiter()}).
		Named("auditreport").
		Complete(reconcile.Func(func(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
			return r.reconcile(ctx, req, func(rep *reportsv1alpha1.AuditReport) bool { return !isScheduled(rep) })
		})); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&reportsv1alpha1.AuditReport{}, builder.WithPredicates(scheduled)).
		Owns(&reportsv1alpha1.AuditReport{}).
		WithOptions(controller.Options{MaxConcurrentReconciles: 2}).
		Named("auditreport-schedule").
		Complete(reconcile.Func(func(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
			return r.reconcile(ctx, req, isScheduled)
		}))
}
