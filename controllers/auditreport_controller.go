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

// Package controllers holds the AuditReport reconciler.
package controllers

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	reportsv1alpha1 "github.com/auditops/auditops/api/v1alpha1"
)

// AuditReportReconciler reconciles AuditReport objects.
type AuditReportReconciler struct {
	client.Client
	Scheme *runtime.Scheme
}

// +kubebuilder:rbac:groups=reports.auditops.dev,resources=auditreports,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=reports.auditops.dev,resources=auditreports/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=reports.auditops.dev,resources=auditreports/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile moves an AuditReport towards its declared report. For now it
// records that the report was seen and is waiting to run: Pending, with the
// resolved tenant.
func (r *AuditReportReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := logf.FromContext(ctx)

	var report reportsv1alpha1.AuditReport
	if err := r.Get(ctx, req.NamespacedName, &report); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if report.Status.Phase != "" && report.Status.ObservedGeneration == report.Generation {
		return ctrl.Result{}, nil
	}

	base := report.DeepCopy()
	report.Status.Phase = reportsv1alpha1.PhasePending
	report.Status.ObservedGeneration = report.Generation
	report.Status.Tenant = tenantOf(&report)
	meta.SetStatusCondition(&report.Status.Conditions, metav1.Condition{
		Type:               reportsv1alpha1.ConditionReady,
		Status:             metav1.ConditionFalse,
		Reason:             "Pending",
		Message:            "the report is waiting to run",
		ObservedGeneration: report.Generation,
	})
	if err := r.Status().Patch(ctx, &report, client.MergeFrom(base)); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("patching status of %s: %w", req.NamespacedName, err)
	}
	log.V(1).Info("report pending", "tenant", report.Status.Tenant)
	return ctrl.Result{}, nil
}

// tenantOf is the audited namespace: spec.namespace, or the report's own.
func tenantOf(report *reportsv1alpha1.AuditReport) string {
	if report.Spec.Namespace != "" {
		return report.Spec.Namespace
	}
	return report.Namespace
}

// SetupWithManager registers the reconciler with the manager.
func (r *AuditReportReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&reportsv1alpha1.AuditReport{}).
		Named("auditreport").
		Complete(r)
}
