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
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/robfig/cron/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	reportsv1alpha1 "github.com/auditops/auditops/api/v1alpha1"
	"github.com/auditops/auditops/internal/report"
	"github.com/auditops/auditops/internal/store"
)

const (
	// ownerKey indexes AuditReports by the name of their controlling parent.
	ownerKey = ".metadata.controller"
	// ScheduledAtAnnotation holds the run time a child was created for.
	ScheduledAtAnnotation = "reports.auditops.dev/scheduled-at"
	// ParentLabel names a child's scheduled parent.
	ParentLabel = "reports.auditops.dev/parent"
	// maxMissedRunsCounted bounds the count of missed runs reported in an event.
	maxMissedRunsCounted = 100
	// LateEventsAnnotation counts, on a finished scheduled run that read a
	// sealed checkpoint, the events of its window stored after it: no run
	// reports them (report.Late).
	LateEventsAnnotation = "reports.auditops.dev/late-events"
)

// indexOwner is the field index of children by parent name.
func indexOwner(obj client.Object) []string {
	owner := metav1.GetControllerOf(obj)
	if owner == nil || owner.APIVersion != reportsv1alpha1.GroupVersion.String() || owner.Kind != "AuditReport" {
		return nil
	}
	return []string{owner.Name}
}

// reconcileSchedule runs a scheduled parent, in the shape of the kubebuilder
// CronJob tutorial: rebuild the status from the children, prune history,
// start the latest missed run unless one is still active (concurrency
// Forbid), and requeue until the next run.
func (r *AuditReportReconciler) reconcileSchedule(ctx context.Context, parent *reportsv1alpha1.AuditReport) (ctrl.Result, error) {
	log := logf.FromContext(ctx)
	st := &parent.Status
	if st.ObservedGeneration != parent.Generation {
		st.ObservedGeneration = parent.Generation
		st.Phase = ""
	}
	st.Tenant = tenantOf(parent)
	if st.Phase == reportsv1alpha1.PhaseFailed {
		return ctrl.Result{}, nil
	}
	if st.Tenant != parent.Namespace && parent.Namespace != r.AdminNamespace {
		return r.fail(ctx, parent, permanent(ReasonTenantIsolation,
			"spec.namespace %q is not this report's namespace %q: only AuditReports in the admin namespace %q may report on another tenant; no run was scheduled",
			st.Tenant, parent.Namespace, r.AdminNamespace))
	}
	loc := time.UTC
	if tz := parent.Spec.TimeZone; tz != nil && *tz != "" {
		l, err := time.LoadLocation(*tz)
		if err != nil {
			return r.fail(ctx, parent, permanent(ReasonInvalidTimeZone, "spec.timeZone %q is not a known IANA time zone: %v", *tz, err))
		}
		loc = l
	}
	sched, err := cron.ParseStandard(parent.Spec.Schedule)
	if err != nil {
		return r.fail(ctx, parent, permanent(ReasonInvalidSchedule, "spec.schedule %q: %v", parent.Spec.Schedule, err))
	}
	if _, ok := nextFire(sched, r.Clock.Now().In(loc)); !ok {
		return r.fail(ctx, parent, permanent(ReasonInvalidSchedule,
			"spec.schedule %q never fires: no time within the next five years matches it (a day the month never has, such as 31 April or 30 February); no run was scheduled",
			parent.Spec.Schedule))
	}

	var children reportsv1alpha1.AuditReportList
	if err := r.List(ctx, &children, client.InNamespace(parent.Namespace), client.MatchingFields{ownerKey: parent.Name}); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing the runs of %s: %w", parent.Name, err)
	}
	var active, succeeded, failed []*reportsv1alpha1.AuditReport
	for i := range children.Items {
		child := &children.Items[i]
		switch child.Status.Phase {
		case reportsv1alpha1.PhaseSucceeded:
			succeeded = append(succeeded, child)
		case reportsv1alpha1.PhaseFailed:
			failed = append(failed, child)
		default:
			active = append(active, child)
		}
		if t, ok := scheduledAt(child); ok && (st.LastScheduleTime == nil || t.After(st.LastScheduleTime.Time)) {
			st.LastScheduleTime = &metav1.Time{Time: t}
		}
	}
	st.Active = nil
	for _, child := range active {
		st.Active = append(st.Active, corev1.ObjectReference{
			APIVersion: reportsv1alpha1.GroupVersion.String(), Kind: "AuditReport",
			Namespace: child.Namespace, Name: child.Name, UID: child.UID,
		})
	}
	succeeded = r.prune(ctx, succeeded, parent.Spec.SuccessfulRunsHistoryLimit, 3)
	r.prune(ctx, failed, parent.Spec.FailedRunsHistoryLimit, 1)

	if parent.Spec.Suspend != nil && *parent.Spec.Suspend {
		st.Phase = reportsv1alpha1.PhaseSuspended
		setCondition(parent, reportsv1alpha1.ConditionReady, metav1.ConditionTrue, ReasonSuspended, "the schedule is suspended: no new runs start")
		return ctrl.Result{}, r.updateStatus(ctx, parent)
	}

	// A run scheduled at t starts at t+settle: what is due is what was
	// scheduled up to now-settle.
	settle := r.SettleDelay
	if parent.Spec.SettleDelay != nil {
		settle = parent.Spec.SettleDelay.Duration
	}
	now := r.Clock.Now().In(loc)
	due := now.Add(-settle)
	earliest := parent.CreationTimestamp.Time
	if st.LastScheduleTime != nil {
		earliest = st.LastScheduleTime.Time
	}
	missedRun, missed := lastMissedRun(sched, earliest.In(loc), due)
	nextRun := sched.Next(due)
	st.Phase = reportsv1alpha1.PhaseScheduled
	next := "next run at " + nextRun.UTC().Format(time.RFC3339)
	if settle > 0 {
		next += fmt.Sprintf(", starting %s later for late events", settle)
	}
	setCondition(parent, reportsv1alpha1.ConditionReady, metav1.ConditionTrue, ReasonScheduled, next)
	requeue := ctrl.Result{RequeueAfter: nextRun.Add(settle).Sub(now)}

	if missed == 0 {
		return requeue, r.updateStatus(ctx, parent)
	}
	if len(active) > 0 {
		// Concurrency Forbid: this run is skipped, as a CronJob skips it.
		r.Recorder.Eventf(parent, nil, corev1.EventTypeNormal, ReasonRunSkipped, "Schedule",
			"run at %s skipped: %s is still running", missedRun.UTC().Format(time.RFC3339), active[0].Name)
		st.LastScheduleTime = &metav1.Time{Time: missedRun}
		return requeue, r.updateStatus(ctx, parent)
	}
	if missed > 1 {
		more := ""
		if missed > maxMissedRunsCounted {
			more = "more than "
			missed = maxMissedRunsCounted
		}
		r.Recorder.Eventf(parent, nil, corev1.EventTypeWarning, ReasonMissedRuns, "Schedule",
			"%s%d runs were missed; starting only the latest, at %s", more, missed, missedRun.UTC().Format(time.RFC3339))
	}

	// Once a run, not on every status write of one: each finished run is
	// counted again, for events that arrived after its settle delay.
	r.flagLateEvents(ctx, parent, succeeded)

	var last time.Duration
	if parent.Spec.Range.Last != nil {
		last = parent.Spec.Range.Last.Duration
	}
	var prev *time.Time
	if st.LastScheduleTime != nil {
		prev = &st.LastScheduleTime.Time
	}
	child, err := r.childFor(parent, missedRun, runStart(missedRun, last, loc, prev))
	if err != nil {
		return ctrl.Result{}, err
	}
	if err := r.Create(ctx, child); err != nil && !apierrors.IsAlreadyExists(err) {
		return ctrl.Result{}, fmt.Errorf("creating run %s: %w", child.Name, err)
	}
	log.Info("started a scheduled run", "run", child.Name, "scheduledAt", missedRun)
	r.Recorder.Eventf(parent, child, corev1.EventTypeNormal, ReasonRunStarted, "Schedule", "created run %s for %s", child.Name, missedRun.UTC().Format(time.RFC3339))
	st.LastScheduleTime = &metav1.Time{Time: missedRun}
	st.Active = append(st.Active, corev1.ObjectReference{
		APIVersion: reportsv1alpha1.GroupVersion.String(), Kind: "AuditReport",
		Namespace: child.Namespace, Name: child.Name, UID: child.UID,
	})
	return requeue, r.updateStatus(ctx, parent)
}

// flagLateEvents counts, for each finished run that read a sealed
// checkpoint, the events of its window stored after it (report.Late). A
// count that changed is written to the run's LateEventsAnnotation, with a
// Warning on the parent: those events are in no run, and an auditor
// reading the series would not know. A failed count is logged; the next
// run counts again.
func (r *AuditReportReconciler) flagLateEvents(ctx context.Context, parent *reportsv1alpha1.AuditReport, runs []*reportsv1alpha1.AuditReport) {
	log := logf.FromContext(ctx)
	for _, run := range runs {
		st := &run.Status
		if st.Seal == nil || st.Range == nil {
			continue
		}
		p := report.Params{Type: run.Spec.Type, Namespace: st.Tenant, User: run.Spec.User,
			Range: store.TimeRange{From: st.Range.From.Time, To: st.Range.To.Time}}
		n, err := report.Late(ctx, r.Store, p, st.Seal.Size)
		if err != nil {
			log.Error(err, "counting the late events of a run", "run", run.Name)
			continue
		}
		count := strconv.FormatInt(n, 10)
		if n == 0 || run.Annotations[LateEventsAnnotation] == count {
			continue
		}
		// The annotation holds what was counted before, across restarts
		// (clamped: whoever may edit the run could write anything there).
		before, _ := strconv.ParseInt(run.Annotations[LateEventsAnnotation], 10, 64)
		before = min(max(before, 0), n)
		// A stale copy from the cache must not count the same events twice.
		patch := client.MergeFromWithOptions(run.DeepCopy(), client.MergeFromWithOptimisticLock{})
		if run.Annotations == nil {
			run.Annotations = map[string]string{}
		}
		run.Annotations[LateEventsAnnotation] = count
		if err := r.Patch(ctx, run, patch); err != nil {
			log.Error(err, "annotating the late events of a run", "run", run.Name)
			continue
		}
		if n > before {
			r.Metrics.late.WithLabelValues(string(run.Spec.Type)).Add(float64(n - before))
		}
		r.Recorder.Eventf(parent, run, corev1.EventTypeWarning, ReasonLateEvents, "Schedule",
			"%d events of run %s's window [%s, %s) were stored after it read the log (a checkpoint of %d leaves): no run reports them; run that window again as a one-off AuditReport, and raise spec.settleDelay if events arrive this late",
			n, run.Name, st.Range.From.UTC().Format(time.RFC3339), st.Range.To.UTC().Format(time.RFC3339), st.Seal.Size)
	}
}

// runStart is where the window of the run scheduled at t starts: last
// before t, but for a series that the schedule's time zone makes
// irregular. Runs a fixed `last` apart on the zone's wall clock (a daily
// run with last 24h) are 23 or 25 hours apart across a DST change, and a
// fixed window left an hour in no run's window each autumn (an attacker
// review). Against the run before, at prev:
//   - runs last apart on the wall clock (not in real time) tile: the
//     window starts where the run before ended;
//   - a fire time the clocks went back over comes twice: the second run's
//     window starts no earlier than the first run;
//   - a fire time the clocks went forward over is skipped by cron, so the
//     run after it, 2*last after the run before on the wall clock, covers
//     the skipped run's window too.
//
// A window is never wider than last otherwise, and never empty.
func runStart(t time.Time, last time.Duration, loc *time.Location, prev *time.Time) time.Time {
	from := t.Add(-last)
	if prev == nil || !prev.Before(t) {
		return from
	}
	p := *prev
	wall := wallOf(t, loc).Sub(wallOf(p, loc))
	switch {
	case wall == last && t.Sub(p) != last:
		return p
	case wall == 0:
		if from.Before(p) {
			return p
		}
	case wall == 2*last && !wallOf(wallAdd(p, last, loc), loc).Equal(wallOf(p, loc).Add(last)):
		return p
	}
	return from
}

// wallOf is t's wall clock in loc, as a UTC time.
func wallOf(t time.Time, loc *time.Location) time.Time {
	l := t.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), l.Nanosecond(), time.UTC)
}

// wallAdd adds d to t on loc's wall clock (a wall time the clocks skip
// comes out moved by the change: wallOf of it differs).
func wallAdd(t time.Time, d time.Duration, loc *time.Location) time.Time {
	w := wallOf(t, loc).Add(d)
	return time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), w.Nanosecond(), loc)
}

// childFor builds the run of parent scheduled at t: the same report over
// the window [from, t).
func (r *AuditReportReconciler) childFor(parent *reportsv1alpha1.AuditReport, t, from time.Time) (*reportsv1alpha1.AuditReport, error) {
	name := fmt.Sprintf("%s-%d", parent.Name, t.Unix())
	out := parent.Spec.Output.DeepCopy()
	// Each run's shards are objects of their own: the second run under
	// the parent's prefix would find the first run's and fail.
	if out != nil && out.ConfigMap != nil && out.ConfigMap.NamePrefix != "" {
		out.ConfigMap.NamePrefix = fmt.Sprintf("%s-%d", out.ConfigMap.NamePrefix, t.Unix())
	}
	if out != nil && out.Secret != nil && out.Secret.NamePrefix != "" {
		out.Secret.NamePrefix = fmt.Sprintf("%s-%d", out.Secret.NamePrefix, t.Unix())
	}
	child := &reportsv1alpha1.AuditReport{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Namespace:   parent.Namespace,
			Labels:      map[string]string{ParentLabel: parent.Name},
			Annotations: map[string]string{ScheduledAtAnnotation: t.UTC().Format(time.RFC3339)},
		},
		Spec: reportsv1alpha1.AuditReportSpec{
			Type:      parent.Spec.Type,
			Namespace: parent.Spec.Namespace,
			User:      parent.Spec.User,
			PageSize:  parent.Spec.PageSize,
			Output:    out,
			Range: reportsv1alpha1.ReportRange{
				From: &metav1.Time{Time: from.UTC()},
				To:   &metav1.Time{Time: t.UTC()},
			},
		},
	}
	if err := ctrl.SetControllerReference(parent, child, r.Scheme); err != nil {
		return nil, fmt.Errorf("owning run %s: %w", name, err)
	}
	return child, nil
}

// prune deletes the oldest finished runs beyond the history limit.
// It returns the runs kept.
func (r *AuditReportReconciler) prune(ctx context.Context, runs []*reportsv1alpha1.AuditReport, limit *int32, def int32) []*reportsv1alpha1.AuditReport {
	keep := def
	if limit != nil {
		keep = *limit
	}
	if int32(len(runs)) <= keep {
		return runs
	}
	sort.Slice(runs, func(i, j int) bool {
		ti, _ := scheduledAt(runs[i])
		tj, _ := scheduledAt(runs[j])
		return ti.Before(tj)
	})
	for _, run := range runs[:len(runs)-int(keep)] {
		if err := r.Delete(ctx, run, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
			logf.FromContext(ctx).Error(err, "pruning an old run", "run", run.Name)
		}
	}
	return runs[len(runs)-int(keep):]
}

func scheduledAt(child *reportsv1alpha1.AuditReport) (time.Time, bool) {
	raw, ok := child.Annotations[ScheduledAtAnnotation]
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, raw)
	return t, err == nil
}

// lastMissedRun finds the latest run time in (earliest, now] and how many
// there were (counted up to maxMissedRunsCounted+1). It never walks every
// missed run: a window ending at now is doubled until it holds a run, so a
// schedule that was down for a year costs a few dozen steps, not a million.
//
// Every walk goes through nextFire, so a schedule that never fires ends
// each loop at once: robfig/cron's Next returns the zero time then, and a
// loop "until after now" on it never ended, pinning a worker for good.
func lastMissedRun(s cron.Schedule, earliest, now time.Time) (last time.Time, missed int) {
	first, ok := nextFire(s, earliest)
	if !ok || first.After(now) {
		return time.Time{}, 0
	}
	for t := first; ok && !t.After(now) && missed <= maxMissedRunsCounted; t, ok = nextFire(s, t) {
		missed++
	}
	window := time.Second
	start := now.Add(-window)
	for start.After(earliest) {
		t, ok := nextFire(s, start)
		if !ok || !t.After(now) {
			break
		}
		window *= 2
		start = now.Add(-window)
	}
	if start.Before(earliest) {
		start = earliest
	}
	for t, ok := nextFire(s, start); ok && !t.After(now); t, ok = nextFire(s, t) {
		last = t
	}
	return last, missed
}

// nextFire is s.Next(t), and false when the schedule has no run after t
// (robfig/cron gives up after five years and returns the zero time).
func nextFire(s cron.Schedule, t time.Time) (time.Time, bool) {
	n := s.Next(t)
	return n, !n.IsZero() && n.After(t)
}
