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
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	reportsv1alpha1 "github.com/auditops/auditops/api/v1alpha1"
)

func TestDeriveReady(t *testing.T) {
	cond := func(typ string, status metav1.ConditionStatus, reason, msg string) metav1.Condition {
		return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg}
	}
	tests := []struct {
		name   string
		conds  []metav1.Condition
		status metav1.ConditionStatus
		reason string
	}{
		{"new", nil, metav1.ConditionFalse, ReasonPending},
		{"generating", []metav1.Condition{cond(reportsv1alpha1.ConditionProgressing, metav1.ConditionTrue, ReasonGenerating, "reading")}, metav1.ConditionFalse, ReasonGenerating},
		{"retrying", []metav1.Condition{cond(reportsv1alpha1.ConditionProgressing, metav1.ConditionTrue, ReasonRetrying, "store down")}, metav1.ConditionFalse, ReasonRetrying},
		{"succeeded", []metav1.Condition{cond(reportsv1alpha1.ConditionProgressing, metav1.ConditionFalse, ReasonSucceeded, "6 records")}, metav1.ConditionTrue, ReasonSucceeded},
		{"failed wins", []metav1.Condition{
			cond(reportsv1alpha1.ConditionProgressing, metav1.ConditionFalse, ReasonSucceeded, "6 records"),
			cond(reportsv1alpha1.ConditionFailed, metav1.ConditionTrue, ReasonOutputNotAllowed, "not allowed"),
		}, metav1.ConditionFalse, ReasonOutputNotAllowed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep := &reportsv1alpha1.AuditReport{Status: reportsv1alpha1.AuditReportStatus{Conditions: tc.conds}}
			deriveReady(rep)
			c := meta.FindStatusCondition(rep.Status.Conditions, reportsv1alpha1.ConditionReady)
			if c == nil || c.Status != tc.status || c.Reason != tc.reason || c.Message == "" {
				t.Errorf("Ready = %+v, want %s %s", c, tc.status, tc.reason)
			}
		})
	}
}
