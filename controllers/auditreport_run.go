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

package controllers

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	reportsv1alpha1 "github.com/auditops/auditops/api/v1alpha1"
	"github.com/auditops/auditops/internal/faultpoint"
	"github.com/auditops/auditops/internal/report"
	"github.com/auditops/auditops/internal/sink"
	"github.com/auditops/auditops/internal/store"
	"github.com/auditops/auditops/internal/urlredact"
)

// permanentError is a failure no retry can mend: the report fails.
type permanentError struct {
	reason string
	err    error
}

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func permanent(reason string, format string, args ...any) error {
	return &permanentError{reason: reason, err: fmt.Errorf(format, args...)}
}

// reconcileRun generates a one-off report (or one run of a schedule).
func (r *AuditReportReconciler) reconcileRun(ctx context.Context, rep *reportsv1alpha1.AuditReport) (ctrl.Result, error) {
	log := logf.FromContext(ctx)
	st := &rep.Status
	finished := st.Phase == reportsv1alpha1.PhaseSucceeded || st.Phase == reportsv1alpha1.PhaseFailed
	if finished && st.ObservedGeneration == rep.Generation {
		// Done, and the spec has not changed since: a manager restart must not re-run it.
		return ctrl.Result{}, nil
	}
	if st.ObservedGeneration != rep.Generation {
		// A new or changed spec: start over.
		*st = reportsv1alpha1.AuditReportStatus{Conditions: st.Conditions, ObservedGeneration: rep.Generation}
	}
	st.Tenant = tenantOf(rep)

	if st.Tenant != rep.Namespace && rep.Namespace != r.AdminNamespace {
		return r.fail(ctx, rep, permanent(ReasonTenantIsolation,
			"spec.namespace %q is not this report's namespace %q: only AuditReports in the admin namespace %q may report on another tenant; nothing was read",
			st.Tenant, rep.Namespace, r.AdminNamespace))
	}

	if st.Range == nil {
		now := r.Clock.Now().UTC()
		st.StartTime = &metav1.Time{Time: now}
		st.Range = resolveRange(rep.Spec.Range, now)
	}
	if st.Phase != reportsv1alpha1.PhaseRunning {
		st.Phase = reportsv1alpha1.PhaseRunning
		r.Recorder.Eventf(rep, nil, corev1.EventTypeNormal, ReasonStarted, "Generate",
			"generating %s report of %s from %s to %s", rep.Spec.Type, st.Tenant, st.Range.From.Format(time.RFC3339), st.Range.To.Format(time.RFC3339))
	}
	if wait := r.heldElsewhere(rep); wait > 0 {
		log.V(1).Info("another manager is generating the report", "holder", st.Holder.Identity, "retryAfter", wait)
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	// Taking the hold is a real write (renewTime has microseconds) made
	// from the resourceVersion read: it conflicts if anyone wrote the
	// status since, and once it lands every other writer's next status
	// write conflicts, so no one else can declare the report done after
	// this manager's Resume deletes the shards past the checkpoint.
	if st.Holder == nil || st.Holder.Identity != r.Identity {
		if st.Holder != nil {
			r.Recorder.Eventf(rep, nil, corev1.EventTypeNormal, ReasonTakenOver, "Generate", "taking the report over from %s (last renewed %s)",
				st.Holder.Identity, st.Holder.RenewTime.UTC().Format(time.RFC3339Nano))
		}
		st.Holder = &reportsv1alpha1.ReportHolder{Identity: r.Identity}
	}
	// A retry keeps saying Retrying (and why) until an attempt succeeds:
	// writing Generating at each attempt, then Retrying again, changed the
	// object twice per attempt, and each change queued the report at once,
	// past the work queue's backoff, so a report failing on every attempt
	// (a store down, an output name taken) retried in a tight loop, each
	// status write audited by kube-apiserver. Unchanged, the writes are
	// no-ops that queue nothing.
	if c := meta.FindStatusCondition(st.Conditions, reportsv1alpha1.ConditionProgressing); c == nil || c.Reason != ReasonRetrying {
		setCondition(rep, reportsv1alpha1.ConditionProgressing, metav1.ConditionTrue, ReasonGenerating, "reading the audit store and writing the report")
	}
	if err := r.updateStatus(ctx, rep); err != nil {
		return ctrl.Result{}, err
	}

	started := time.Now()
	outputs, err := r.generateRecovering(ctx, rep)
	if err != nil {
		var perm *permanentError
		if errors.As(err, &perm) {
			return r.fail(ctx, rep, err)
		}
		if errors.Is(err, store.ErrInvalidQuery) {
			// The spec names what no store can hold (a NUL, invalid
			// UTF-8): every retry would be refused the same way.
			return r.fail(ctx, rep, permanent(ReasonInvalidSpec, "%v", err))
		}
		if ctx.Err() != nil {
			// The manager is stopping: the checkpoint is where the next one resumes.
			return ctrl.Result{}, nil
		}
		setCondition(rep, reportsv1alpha1.ConditionProgressing, metav1.ConditionTrue, ReasonRetrying, "retrying after: "+err.Error())
		r.Recorder.Eventf(rep, nil, corev1.EventTypeWarning, ReasonRetrying, "Generate", "will retry: %v", err)
		if perr := r.updateStatus(ctx, rep); perr != nil {
			log.Error(perr, "recording the retry")
		}
		return ctrl.Result{}, err
	}

	faultpoint.Hit("report-before-status")
	now := r.Clock.Now().UTC()
	st.Phase = reportsv1alpha1.PhaseSucceeded
	st.CompletionTime = &metav1.Time{Time: now}
	st.Outputs = outputs
	st.Checkpoint = ""
	st.Holder = nil
	setCondition(rep, reportsv1alpha1.ConditionProgressing, metav1.ConditionFalse, ReasonSucceeded,
		fmt.Sprintf("%d records written to %s", st.Records, describeOutputs(outputs)))
	meta.RemoveStatusCondition(&st.Conditions, reportsv1alpha1.ConditionFailed)
	if err := r.updateStatus(ctx, rep); err != nil {
		return ctrl.Result{}, err
	}
	r.Recorder.Eventf(rep, nil, corev1.EventTypeNormal, ReasonSucceeded, "Generate", "%d records written to %s", st.Records, describeOutputs(outputs))
	r.Metrics.observe(rep.Spec.Type, "succeeded", time.Since(started), st.Records)
	log.Info("report succeeded", "records", st.Records, "pages", st.Pages)
	return ctrl.Result{}, nil
}

// generateRecovering is generate, failing the report when it panics: a
// panic would otherwise be retried forever, and the next attempt panics
// the same way on the same rows.
func (r *AuditReportReconciler) generateRecovering(ctx context.Context, rep *reportsv1alpha1.AuditReport) (outs []reportsv1alpha1.OutputRef, err error) {
	defer func() {
		if p := recover(); p != nil {
			logf.FromContext(ctx).Error(fmt.Errorf("%v", p), "generating the report panicked", "stack", string(debug.Stack()))
			outs, err = nil, permanent(ReasonInternalError, "generating the report panicked (a bug; the manager log has its stack): %v", p)
		}
	}()
	return r.generate(ctx, rep)
}

// generate runs the report into its sink from the checkpoint (report.Run),
// saving every checkpoint that becomes durable in status.checkpoint.
func (r *AuditReportReconciler) generate(ctx context.Context, rep *reportsv1alpha1.AuditReport) ([]reportsv1alpha1.OutputRef, error) {
	st := &rep.Status
	ext, contentType := report.Format(rep.Spec.Type)
	snk, err := r.newSink(ctx, rep, sink.Report{
		Namespace: rep.Namespace, Name: rep.Name, UID: rep.UID, Type: rep.Spec.Type,
		Ext: ext, ContentType: contentType,
	})
	if err != nil {
		return nil, err
	}
	if closer, ok := snk.(io.Closer); ok {
		defer closer.Close()
	}

	cp := report.Checkpoint{}
	if st.Checkpoint != "" {
		if err := json.Unmarshal([]byte(st.Checkpoint), &cp); err != nil {
			logf.FromContext(ctx).Info("ignoring an unreadable checkpoint; starting the report over", "error", err.Error())
			cp = report.Checkpoint{}
		}
	}
	if cp.Cursor.Pages > 0 {
		r.Recorder.Eventf(rep, nil, corev1.EventTypeNormal, ReasonResumed, "Generate", "resuming after %d records (%d bytes already stored)", cp.Cursor.Records, cp.Sink.Bytes)
	}
	params := report.Params{
		Type: rep.Spec.Type, Namespace: st.Tenant, User: rep.Spec.User,
		Range:    store.TimeRange{From: st.Range.From.Time, To: st.Range.To.Time},
		PageSize: int(rep.Spec.PageSize),
	}
	if params.PageSize == 0 {
		params.PageSize = 500
	}
	if st.Seal == nil && r.Sealer != nil {
		// Sealed and recorded before the first page: a resumed run, by
		// this manager or another, reads the same checkpoint.
		c, err := r.Sealer.SealNow(ctx, st.Tenant)
		if err != nil {
			return nil, fmt.Errorf("sealing the log of %s before reading it: %w", st.Tenant, err)
		}
		st.Seal = &reportsv1alpha1.ReportSeal{Origin: c.Origin, Size: c.Size}
		if c.Size > 0 {
			st.Seal.RootHash = base64.StdEncoding.EncodeToString(c.Root[:])
		}
		if err := r.updateStatus(ctx, rep); err != nil {
			return nil, err
		}
	}
	if st.Seal != nil {
		params.InLog = &st.Seal.Size
	}
	res, err := report.Run(ctx, r.Store, params, snk, cp, report.RunOptions{
		ChunkSize: r.ChunkSize,
		Progress: func(c report.Cursor) {
			st.Records, st.Pages = c.Records, c.Pages
		},
		Checkpointed: func(ctx context.Context, c report.Checkpoint) error {
			if err := r.saveCheckpoint(ctx, rep, c); err != nil {
				return err
			}
			if r.checkpointed != nil {
				r.checkpointed(ctx, c.Cursor.Records)
			}
			return nil
		},
	})
	if err != nil {
		if errors.Is(err, report.ErrStartOver) {
			// The stored output is not the report, or the checkpoint's page
			// token no longer verifies (a new token key): the next attempt
			// generates it again from the start.
			r.clearCheckpoint(ctx, rep)
		}
		return nil, err
	}
	st.Records, st.Pages = res.Records, res.Pages
	return res.Outputs, nil
}

// saveCheckpoint records c in status.checkpoint. status.records and pages
// say how far generation is; the checkpoint, where a restart resumes.
func (r *AuditReportReconciler) saveCheckpoint(ctx context.Context, rep *reportsv1alpha1.AuditReport, c report.Checkpoint) error {
	raw, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encoding the checkpoint: %w", err)
	}
	rep.Status.Checkpoint = string(raw)
	return r.updateStatus(ctx, rep)
}

func (r *AuditReportReconciler) clearCheckpoint(ctx context.Context, rep *reportsv1alpha1.AuditReport) {
	rep.Status.Checkpoint = ""
	if err := r.updateStatus(ctx, rep); err != nil {
		logf.FromContext(ctx).Error(err, "clearing the checkpoint")
	}
}

// newSink opens the report's output.
func (r *AuditReportReconciler) newSink(ctx context.Context, rep *reportsv1alpha1.AuditReport, target sink.Report) (sink.Sink, error) {
	out := reportsv1alpha1.ReportOutput{}
	if rep.Spec.Output != nil {
		out = *rep.Spec.Output
	}
	switch {
	case out.ObjectStore != nil:
		allowed := r.Destinations
		if allowed == nil {
			allowed = &sink.Destinations{}
		}
		if err := allowed.Check(out.ObjectStore.URL, out.ObjectStore.CredentialsSecretRef != nil); err != nil {
			return nil, permanent(ReasonOutputNotAllowed, "%v", err)
		}
		var creds map[string][]byte
		if ref := out.ObjectStore.CredentialsSecretRef; ref != nil {
			var secret corev1.Secret
			if err := r.Get(ctx, client.ObjectKey{Namespace: rep.Namespace, Name: ref.Name}, &secret); err != nil {
				return nil, fmt.Errorf("reading credentials Secret %s/%s: %w", rep.Namespace, ref.Name, err)
			}
			// An empty Secret must not fall through to the manager's own
			// identity (NewObjectStore's path without credentials), which
			// the destination check allowed only because a Secret was named.
			if len(secret.Data) == 0 {
				return nil, fmt.Errorf("credentials Secret %s/%s holds no data: the report waits for its keys", rep.Namespace, ref.Name)
			}
			creds = secret.Data
		}
		s, err := sink.NewObjectStore(ctx, target, *out.ObjectStore, creds)
		if err != nil {
			return nil, permanent(ReasonInvalidOutput, "opening object storage %q: %v", urlredact.Redact(out.ObjectStore.URL), err)
		}
		return s, nil
	case out.Secret != nil:
		return sink.NewSecret(r.Client, target, *out.Secret), nil
	default:
		cm := reportsv1alpha1.ConfigMapOutput{}
		if out.ConfigMap != nil {
			cm = *out.ConfigMap
		}
		return sink.NewConfigMap(r.Client, target, cm), nil
	}
}

// fail records a permanent failure.
func (r *AuditReportReconciler) fail(ctx context.Context, rep *reportsv1alpha1.AuditReport, err error) (ctrl.Result, error) {
	reason := ReasonFailed
	var perm *permanentError
	if errors.As(err, &perm) {
		reason = perm.reason
	}
	st := &rep.Status
	st.Phase = reportsv1alpha1.PhaseFailed
	st.CompletionTime = &metav1.Time{Time: r.Clock.Now().UTC()}
	st.Checkpoint = ""
	st.Holder = nil
	setCondition(rep, reportsv1alpha1.ConditionFailed, metav1.ConditionTrue, reason, err.Error())
	setCondition(rep, reportsv1alpha1.ConditionProgressing, metav1.ConditionFalse, reason, "the report failed")
	if perr := r.updateStatus(ctx, rep); perr != nil {
		return ctrl.Result{}, perr
	}
	r.Recorder.Eventf(rep, nil, corev1.EventTypeWarning, reason, "Generate", "%v", err)
	r.Metrics.observe(rep.Spec.Type, "failed", 0, 0)
	return ctrl.Result{}, nil
}

// heldElsewhere returns how long another manager's hold on rep still
// lasts (0: not held, held by this manager, or expired).
func (r *AuditReportReconciler) heldElsewhere(rep *reportsv1alpha1.AuditReport) time.Duration {
	h := rep.Status.Holder
	if h == nil || h.Identity == r.Identity || r.HoldFor <= 0 {
		return 0
	}
	return max(h.RenewTime.Add(r.HoldFor).Sub(r.Clock.Now()), 0)
}

// renewDue says whether this manager's hold h is renewed by the status
// write about to be made: when it is new, and a third of HoldFor after the
// last renewal. Between renewals the holder's writes leave renewTime as it
// is, so an attempt that changes nothing else (a retry that fails the same
// way) writes nothing and queues no event: the report waits out the work
// queue's backoff. The unchanged write still conflicts when the status
// changed since it was read.
func (r *AuditReportReconciler) renewDue(h *reportsv1alpha1.ReportHolder) bool {
	if h.RenewTime.IsZero() {
		return true
	}
	return r.HoldFor > 0 && r.Clock.Now().Sub(h.RenewTime.Time) >= r.HoldFor/3
}

// updateStatus writes the whole status, Ready derived from the other
// conditions first. It is an update, not a patch, so a report whose spec
// changed meanwhile conflicts and is reconciled afresh.
func (r *AuditReportReconciler) updateStatus(ctx context.Context, rep *reportsv1alpha1.AuditReport) error {
	// A scheduled parent's Ready says whether it schedules (set by
	// reconcileSchedule) unless it failed.
	if !isScheduled(rep) || meta.IsStatusConditionTrue(rep.Status.Conditions, reportsv1alpha1.ConditionFailed) {
		deriveReady(rep)
	}
	if h := rep.Status.Holder; h != nil && h.Identity == r.Identity && r.renewDue(h) {
		h.RenewTime = metav1.NewMicroTime(r.Clock.Now())
	}
	if err := r.Status().Update(ctx, rep); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("patching the status of %s/%s: %w", rep.Namespace, rep.Name, err)
	}
	return nil
}

// resolveRange turns the spec's window into an absolute one; last counts
// back from the run's start, rounded up to a whole second: status.range
// keeps whole seconds (metav1.Time), and a window ending at the start
// rounded down would leave out what was audited in the start's second.
func resolveRange(rg reportsv1alpha1.ReportRange, now time.Time) *reportsv1alpha1.ResolvedRange {
	if rg.Last != nil {
		if t := now.Truncate(time.Second); !t.Equal(now) {
			now = t.Add(time.Second)
		}
		return &reportsv1alpha1.ResolvedRange{
			From: metav1.Time{Time: now.Add(-rg.Last.Duration)},
			To:   metav1.Time{Time: now},
		}
	}
	var out reportsv1alpha1.ResolvedRange
	if rg.From != nil {
		out.From = metav1.Time{Time: rg.From.UTC()}
	}
	if rg.To != nil {
		out.To = metav1.Time{Time: rg.To.UTC()}
	}
	return &out
}

func setCondition(rep *reportsv1alpha1.AuditReport, typ string, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&rep.Status.Conditions, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: rep.Generation,
	})
}

func describeOutputs(outs []reportsv1alpha1.OutputRef) string {
	switch {
	case len(outs) == 0:
		return "no output"
	case outs[0].URL != "":
		return outs[0].URL
	}
	kind, first, last := "ConfigMap", outs[0].ConfigMap, outs[len(outs)-1].ConfigMap
	if outs[0].Secret != "" {
		kind, first, last = "Secret", outs[0].Secret, outs[len(outs)-1].Secret
	}
	if len(outs) == 1 {
		return kind + " " + first
	}
	return fmt.Sprintf("%d %ss %s..%s", len(outs), kind, first, last)
}
