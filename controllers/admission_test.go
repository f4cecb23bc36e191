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
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	reportsv1alpha1 "github.com/auditops/auditops/api/v1alpha1"
)

// installAdmission creates the ValidatingAdmissionPolicies and bindings of
// config/admission in the test's API server.
func installAdmission(t *testing.T) {
	t.Helper()
	for _, f := range []string{"report_requester_policy.yaml", "payload_configmap_warning.yaml"} {
		raw, err := os.ReadFile(filepath.Join("..", "config", "admission", f))
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range strings.Split(string(raw), "\n---\n") {
			var obj unstructured.Unstructured
			if err := yaml.Unmarshal([]byte(doc), &obj.Object); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if err := k8sClient.Create(context.Background(), &obj); err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatalf("%s: creating %s: %v", f, obj.GetName(), err)
			}
		}
	}
}

// TestReportAdmission checks config/admission on the real kube-apiserver:
// a requester needs, besides create on auditreports, get on the type's
// audit resource in the reported namespace and get on the credentials
// Secret the report names; each user below has one right and not another.
func TestReportAdmission(t *testing.T) {
	installAdmission(t)
	ctx := context.Background()
	ns := createNamespace(t, "admission")
	other := createNamespace(t, "admission-other")
	grant := func(user, namespace string, rules ...rbacv1.PolicyRule) {
		t.Helper()
		name := strings.ReplaceAll(user, ":", "-")
		role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}, Rules: rules}
		if err := k8sClient.Create(ctx, role); err != nil {
			t.Fatal(err)
		}
		rb := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: user}},
		}
		if err := k8sClient.Create(ctx, rb); err != nil {
			t.Fatal(err)
		}
	}
	createReports := rbacv1.PolicyRule{APIGroups: []string{reportsv1alpha1.GroupVersion.Group}, Resources: []string{"auditreports"}, Verbs: []string{"create", "get", "update"}}
	readDetails := rbacv1.PolicyRule{APIGroups: []string{"audit.auditops.dev"}, Resources: []string{"auditdetails"}, Verbs: []string{"get"}}
	readSecret := rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{"s3-creds"}, Verbs: []string{"get"}}

	grant("creator-only", ns, createReports)
	grant("reader", ns, createReports, readDetails)
	grant("reader-and-secret", ns, createReports, readDetails, readSecret)
	grant("reader-elsewhere", ns, createReports)
	grant("reader-elsewhere", other, readDetails)

	as := func(user string) client.Client {
		c := rest.CopyConfig(cfg)
		c.Impersonate = rest.ImpersonationConfig{UserName: user}
		cl, err := client.New(c, client.Options{Scheme: testScheme})
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	report := func(name, tenant string, withSecret bool) *reportsv1alpha1.AuditReport {
		rep := newReport(ns, name, reportsv1alpha1.AuditDetails, day1, day1.Add(time.Hour))
		rep.Spec.Namespace = tenant
		if withSecret {
			rep.Spec.Output = &reportsv1alpha1.ReportOutput{ObjectStore: &reportsv1alpha1.ObjectStoreOutput{
				URL: "s3://bucket/x?region=us-east-1", CredentialsSecretRef: &corev1.LocalObjectReference{Name: "s3-creds"}}}
		}
		return rep
	}
	for _, tc := range []struct {
		name, user string
		rep        *reportsv1alpha1.AuditReport
		deny       string // "" = admitted
	}{
		{"no right to the data", "creator-only", report("a", "", false), "may not get auditdetails.audit.auditops.dev in namespace " + ns},
		{"the right to the data", "reader", report("b", "", false), ""},
		{"the data but not the Secret", "reader", report("c", "", true), "may not get Secret " + ns + "/s3-creds"},
		{"the data and the Secret", "reader-and-secret", report("d", "", true), ""},
		{"the data of another namespace only", "reader-elsewhere", report("e", "", false), "in namespace " + ns},
		{"reporting on the namespace it may read", "reader-elsewhere", report("f", other, false), ""},
		{"reporting on a namespace it may not read", "reader", report("g", other, false), "in namespace " + other},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A new policy takes a moment to be enforced: retry while a
			// create that must be denied is admitted.
			var err error
			eventually(t, 20*time.Second, "the policy to decide", func(ctx context.Context) (bool, error) {
				// Dry runs: admission decides, nothing is stored for the
				// other tests' managers to generate.
				err = as(tc.user).Create(ctx, tc.rep.DeepCopy(), client.DryRunAll)
				if err == nil && tc.deny != "" {
					return false, nil
				}
				return true, nil
			})
			switch {
			case tc.deny == "" && err != nil:
				t.Fatalf("%s was refused: %v", tc.user, err)
			case tc.deny != "" && (err == nil || !strings.Contains(err.Error(), tc.deny)):
				t.Fatalf("%s: got %v, want a denial saying %q", tc.user, err, tc.deny)
			}
		})
	}
	// The Warn binding: a payload-carrying report to ConfigMaps is admitted
	// with a warning for its requester; one to Secrets or object storage
	// without.
	toSecrets := report("not-warned-secret", "", false)
	toSecrets.Spec.Output = &reportsv1alpha1.ReportOutput{Secret: &reportsv1alpha1.SecretOutput{}}
	for _, tc := range []struct {
		rep  *reportsv1alpha1.AuditReport
		warn bool
	}{{report("warned", "", false), true}, {report("not-warned", "", true), false}, {toSecrets, false}} {
		var warnings []string
		c := rest.CopyConfig(cfg)
		c.Impersonate = rest.ImpersonationConfig{UserName: "reader-and-secret"}
		c.WarningHandler = warningRecorder(func(msg string) { warnings = append(warnings, msg) })
		cl, err := client.New(c, client.Options{Scheme: testScheme})
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.Create(ctx, tc.rep, client.DryRunAll); err != nil {
			t.Fatalf("%s: %v", tc.rep.Name, err)
		}
		got := strings.Contains(strings.Join(warnings, "\n"), "holds request and response payloads")
		if got != tc.warn {
			t.Errorf("%s: warnings %q, want the payload warning: %v", tc.rep.Name, warnings, tc.warn)
		}
	}
}

// warningRecorder hands each warning the API server sends to fn.
type warningRecorder func(msg string)

func (w warningRecorder) HandleWarningHeader(_ int, _ string, msg string) { w(msg) }

// TestNamespaceRoles checks config/rbac's roles for namespace users. The
// aggregation into view, edit and admin is done by kube-controller-manager,
// which the test control plane does not run: the labels are checked, and
// users are bound to the roles those built-in roles aggregate. A namespace
// admin (viewer + editor + report reader) creates a report over its own
// namespace and not over another; an editor alone (what edit holds) may not
// create one, since it may not read the data; a viewer lists reports and may
// not create one.
func TestNamespaceRoles(t *testing.T) {
	installAdmission(t)
	ctx := context.Background()
	roles := map[string]*rbacv1.ClusterRole{}
	for _, f := range []string{"auditreport_viewer_role.yaml", "auditreport_editor_role.yaml", "report_reader_role.yaml"} {
		raw, err := os.ReadFile(filepath.Join("..", "config", "rbac", f))
		if err != nil {
			t.Fatal(err)
		}
		var r rbacv1.ClusterRole
		if err := yaml.Unmarshal(raw, &r); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if err := k8sClient.Create(ctx, r.DeepCopy()); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		roles[r.Name] = &r
	}
	aggregated := func(role, into string) bool {
		return roles[role].Labels["rbac.authorization.k8s.io/aggregate-to-"+into] == "true"
	}
	for _, tc := range []struct {
		role string
		into map[string]bool
	}{
		{"auditops-auditreport-viewer", map[string]bool{"view": true, "edit": true, "admin": true}},
		{"auditops-auditreport-editor", map[string]bool{"view": false, "edit": true, "admin": true}},
		{"auditops-report-reader", map[string]bool{"view": false, "edit": false, "admin": true}},
	} {
		for into, want := range tc.into {
			if aggregated(tc.role, into) != want {
				t.Errorf("%s aggregated into %s: %v, want %v", tc.role, into, !want, want)
			}
		}
	}

	ns := createNamespace(t, "roles")
	other := createNamespace(t, "roles-other")
	bind := func(user string, clusterRoles ...string) {
		t.Helper()
		for _, cr := range clusterRoles {
			rb := &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: user + "-" + cr},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: cr},
				Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: user}},
			}
			if err := k8sClient.Create(ctx, rb); err != nil {
				t.Fatal(err)
			}
		}
	}
	bind("ns-admin", "auditops-auditreport-viewer", "auditops-auditreport-editor", "auditops-report-reader")
	bind("ns-editor", "auditops-auditreport-viewer", "auditops-auditreport-editor")
	bind("ns-viewer", "auditops-auditreport-viewer")
	as := func(user string) client.Client {
		c := rest.CopyConfig(cfg)
		c.Impersonate = rest.ImpersonationConfig{UserName: user}
		cl, err := client.New(c, client.Options{Scheme: testScheme})
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	report := func(tenant string) *reportsv1alpha1.AuditReport {
		rep := newReport(ns, "r", reportsv1alpha1.NamespaceUsersSummary, day1, day1.Add(time.Hour))
		rep.Spec.Namespace = tenant
		return rep
	}
	eventually(t, 20*time.Second, "a namespace admin to create a report of its namespace", func(ctx context.Context) (bool, error) {
		return as("ns-admin").Create(ctx, report(ns), client.DryRunAll) == nil, nil
	})
	for _, tc := range []struct {
		user, tenant, want string
	}{
		{"ns-admin", other, "may not get namespaceuserssummaries.audit.auditops.dev in namespace " + other},
		{"ns-editor", ns, "may not get namespaceuserssummaries.audit.auditops.dev in namespace " + ns},
		{"ns-viewer", ns, "forbidden"},
	} {
		err := as(tc.user).Create(ctx, report(tc.tenant), client.DryRunAll)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s creating a report of %s: %v, want a refusal saying %q", tc.user, tc.tenant, err, tc.want)
		}
	}
	var list reportsv1alpha1.AuditReportList
	if err := as("ns-viewer").List(ctx, &list, client.InNamespace(ns)); err != nil {
		t.Errorf("a viewer listing reports: %v", err)
	}
	if err := as("ns-viewer").List(ctx, &list, client.InNamespace(other)); !apierrors.IsForbidden(err) {
		t.Errorf("a viewer of %s listing reports of %s: %v, want Forbidden", ns, other, err)
	}
}
