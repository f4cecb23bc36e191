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

package v1alpha1

import (
	"reflect"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// TestAddToScheme: the scheme knows what controller-runtime's
// scheme.Builder registered: both kinds, and the common option types a
// client sends with them.
func TestAddToScheme(t *testing.T) {
	s := runtime.NewScheme()
	if err := AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	for kind, obj := range map[string]runtime.Object{
		"AuditReport":     &AuditReport{},
		"AuditReportList": &AuditReportList{},
		"ListOptions":     &metav1.ListOptions{},
		"DeleteOptions":   &metav1.DeleteOptions{},
		"WatchEvent":      &metav1.WatchEvent{},
	} {
		gvk := GroupVersion.WithKind(kind)
		if !s.Recognizes(gvk) {
			t.Errorf("the scheme does not recognize %s", gvk)
			continue
		}
		if got, err := s.New(gvk); err != nil || reflect.TypeOf(got) != reflect.TypeOf(obj) {
			t.Errorf("New(%s) = %T, %v; want %T", gvk, got, err, obj)
		}
	}
	kinds, _, err := s.ObjectKinds(&AuditReport{})
	if err != nil || len(kinds) != 1 || kinds[0] != GroupVersion.WithKind("AuditReport") {
		t.Fatalf("ObjectKinds(AuditReport) = %v, %v", kinds, err)
	}
}
