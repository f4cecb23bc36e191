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

// Package v1alpha1 contains the AuditReport API of the reports.auditops.dev group.
// +kubebuilder:object:generate=true
// +groupName=reports.auditops.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is group version used to register these objects.
	GroupVersion = schema.GroupVersion{Group: "reports.auditops.dev", Version: "v1alpha1"}

	// SchemeBuilder adds the types of this group-version to a scheme. It is
	// apimachinery's, not controller-runtime's scheme.Builder (deprecated:
	// an API package should need little more than apimachinery to import).
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the types in this group-version to the given scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// addKnownTypes registers AuditReport and AuditReportList, and the common
// types (ListOptions, Status, ...) for this group-version, as
// controller-runtime's scheme.Builder did.
func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &AuditReport{}, &AuditReportList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
