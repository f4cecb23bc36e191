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
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	reportsv1alpha1 "github.com/auditops/auditops/api/v1alpha1"
)

// Reasons of the conditions and events the controllers record: every one
// is named here, so alerts and dashboards can rely on them.
const (
	// Runs.
	ReasonPending         = "Pending"
	ReasonStarted         = "Started"
	ReasonGenerating      = "Generating"
	ReasonResumed         = "Resumed"
	ReasonTakenOver       = "TakenOver"
	ReasonRetrying        = "Retrying"
	ReasonSucceeded       = "Succeeded"
	ReasonTenantIsolation = "TenantIsolation"
	ReasonInvalidOutput   = "InvalidOutput"
	// ReasonInvalidSpec: the spec names what the store refuses to query
	// (spec.user with a NUL or invalid UTF-8).
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonOutputNotAllowed: the object-store destination is not one the
	// operator allows (--allowed-output-urls); nothing was written.
	ReasonOutputNotAllowed = "OutputNotAllowed"
	ReasonFailed           = "Failed"
	ReasonInternalError    = "InternalError"

	// Scheduled parents.
	ReasonScheduled  = "Scheduled"
	ReasonSuspended  = "Suspended"
	ReasonRunStarted = "RunStarted"
	ReasonRunSkipped = "RunSkipped"
	ReasonMissedRuns = "MissedRuns"
	// ReasonLateEvents: events of a finished run's window were stored
	// after it read the log (LateEventsAnnotation).
	ReasonLateEvents = "LateEvents"
	// ReasonInvalidSchedule: spec.schedule does not parse or never fires.
	ReasonInvalidSchedule = "InvalidSchedule"
	// ReasonInvalidTimeZone: spec.timeZone is not a known IANA zone.
	ReasonInvalidTimeZone = "InvalidTimeZone"
)

// deriveReady sets a run's Ready from its other conditions, so the three
// never disagree: Failed wins, then a finished Progressing (Ready true with
// its message), else not ready for the reason it is still progressing.
func deriveReady(rep *reportsv1alpha1.AuditReport) {
	conds := rep.Status.Conditions
	ready := metav1.Condition{Type: reportsv1alpha1.ConditionReady, ObservedGeneration: rep.Generation,
		Status: metav1.ConditionFalse, Reason: ReasonPending, Message: "the report has not started"}
	failed := meta.FindStatusCondition(conds, reportsv1alpha1.ConditionFailed)
	progressing := meta.FindStatusCondition(conds, reportsv1alpha1.ConditionProgressing)
	switch {
	case failed != nil && failed.Status == metav1.ConditionTrue:
		ready.Reason, ready.Message = failed.Reason, failed.Message
	case progressing != nil && progressing.Status == metav1.ConditionFalse && progressing.Reason == ReasonSucceeded:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionTrue, ReasonSucceeded, progressing.Message
	case progressing != nil:
		ready.Reason = progressing.Reason
		ready.Message = "the report is being generated: " + progressing.Message
	}
	meta.SetStatusCondition(&rep.Status.Conditions, ready)
}
