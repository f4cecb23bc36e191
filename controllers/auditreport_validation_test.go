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
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	reportsv1alpha1 "github.com/auditops/auditops/api/v1alpha1"
)

// decodeReport turns YAML into an unstructured AuditReport in namespace ns.
func decodeReport(t *testing.T, doc, ns string) *unstructured.Unstructured {
	t.Helper()
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &obj.Object); err != nil {
		t.Fatalf("decoding %q: %v", doc, err)
	}
	obj.SetNamespace(ns)
	return obj
}

func TestSamplesAreAccepted(t *testing.T) {
	ctx := context.Background()
	paths, err := filepath.Glob(filepath.Join("..", "config", "samples", "reports_*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no samples found in config/samples (err %v)", err)
	}
	types := map[string]bool{}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			obj := decodeReport(t, string(raw), "")
			// Each sample goes into a namespace of its own, named as in the sample
			// is not needed: what is tested is the schema.
			obj.SetNamespace(createNamespace(t, "samples"))
			if err := k8sClient.Create(ctx, obj); err != nil {
				t.Fatalf("sample rejected: %v", err)
			}
			typ, _, _ := unstructured.NestedString(obj.Object, "spec", "type")
			types[typ] = true
		})
	}
	for _, typ := range []reportsv1alpha1.ReportType{reportsv1alpha1.NamespaceUsersSummary, reportsv1alpha1.AuditDetails, reportsv1alpha1.UserAccess, reportsv1alpha1.Users, reportsv1alpha1.UserLogs} {
		if !types[string(typ)] {
			t.Errorf("config/samples has no sample of type %s", typ)
		}
	}
}

func TestInvalidReportsAreRejected(t *testing.T) {
	ns := createNamespace(t, "invalid")
	const head = "apiVersion: reports.auditops.dev/v1alpha1\nkind: AuditReport\nmetadata: {name: bad}\n"
	cases := []struct {
		name string
		spec string
		want string
	}{
		{"unknown type", "spec: {type: Everything, range: {last: 24h}}", `spec.type: Unsupported value: "Everything"`},
		{"missing type", "spec: {range: {last: 24h}}", "spec.type: Required value"},
		{"to before from", `spec: {type: AuditDetails, range: {from: "2024-05-22T00:00:00Z", to: "2024-05-21T00:00:00Z"}}`, "range.to must be later than range.from"},
		{"to equal to from", `spec: {type: AuditDetails, range: {from: "2024-05-22T00:00:00Z", to: "2024-05-22T00:00:00Z"}}`, "range.to must be later than range.from"},
		{"both absolute and last", `spec: {type: AuditDetails, range: {from: "2024-05-21T00:00:00Z", to: "2024-05-22T00:00:00Z", last: 24h}}`, "range needs exactly one of: from and to (an absolute window), or last"},
		{"empty range", "spec: {type: AuditDetails, range: {}}", "range needs exactly one of: from and to (an absolute window), or last"},
		{"from without to", `spec: {type: AuditDetails, range: {from: "2024-05-21T00:00:00Z"}}`, "range.from and range.to must be set together"},
		{"no range", "spec: {type: AuditDetails}", "spec.range: Required value"},
		{"last not a duration", "spec: {type: AuditDetails, range: {last: 1d}}", "range.last must be a positive duration such as 24h"},
		{"last zero", "spec: {type: AuditDetails, range: {last: 0s}}", "range.last must be a positive duration such as 24h"},
		{"both outputs", "spec: {type: AuditDetails, range: {last: 24h}, output: {configMap: {}, objectStore: {url: 's3://b'}}}", "output must set exactly one of configMap, secret or objectStore"},
		{"no output kind", "spec: {type: AuditDetails, range: {last: 24h}, output: {}}", "output must set exactly one of configMap, secret or objectStore"},
		{"object store url scheme", "spec: {type: AuditDetails, range: {last: 24h}, output: {objectStore: {url: 'ftp://b/x'}}}", "objectStore.url must be an s3://, gs://, azblob:// or file:// URL"},
		{"configmap and secret", "spec: {type: AuditDetails, range: {last: 24h}, output: {configMap: {}, secret: {}}}", "output must set exactly one of configMap, secret or objectStore"},
		{"configmap prefix", "spec: {type: AuditDetails, range: {last: 24h}, output: {configMap: {namePrefix: Team_A}}}", "namePrefix must be a lowercase DNS name"},
		{"secret prefix", "spec: {type: AuditDetails, range: {last: 24h}, output: {secret: {namePrefix: Team_A}}}", "namePrefix must be a lowercase DNS name"},
		{"secret compress", "spec: {type: AuditDetails, range: {last: 24h}, output: {secret: {compress: never}}}", "Unsupported value: \"never\""},
		{"UserLogs without user", "spec: {type: UserLogs, range: {last: 24h}}", "type UserLogs needs spec.user"},
		{"UserLogs with empty user", "spec: {type: UserLogs, user: '', range: {last: 24h}}", "type UserLogs needs spec.user"},
		{"cron with four fields", "spec: {type: AuditDetails, range: {last: 24h}, schedule: '0 6 * *'}", "schedule must be a cron expression of five fields"},
		{"cron gibberish", "spec: {type: AuditDetails, range: {last: 24h}, schedule: 'every morning'}", "schedule must be a cron expression of five fields"},
		{"cron unknown descriptor", "spec: {type: AuditDetails, range: {last: 24h}, schedule: '@fortnightly'}", "schedule must be a cron expression of five fields"},
		{"schedule with absolute range", `spec: {type: AuditDetails, schedule: "0 6 * * *", range: {from: "2024-05-21T00:00:00Z", to: "2024-05-22T00:00:00Z"}}`, "a scheduled report needs range.last"},
		{"timeZone without schedule", "spec: {type: AuditDetails, range: {last: 24h}, timeZone: UTC}", "timeZone applies only to a scheduled report"},
		{"pageSize zero", "spec: {type: AuditDetails, range: {last: 24h}, pageSize: 0}", "spec.pageSize: Invalid value: 0: spec.pageSize in body should be greater than or equal to 1"},
		{"pageSize too large", "spec: {type: AuditDetails, range: {last: 24h}, pageSize: 10001}", "spec.pageSize: Invalid value: 10001: spec.pageSize in body should be less than or equal to 10000"},
		{"settleDelay over a day", "spec: {type: AuditDetails, range: {last: 24h}, schedule: '@daily', settleDelay: 25h}", "settleDelay must be a duration from 0s to 24h"},
		{"settleDelay not a duration", "spec: {type: AuditDetails, range: {last: 24h}, schedule: '@daily', settleDelay: 1d}", "settleDelay must be a duration from 0s to 24h"},
		{"settleDelay negative", "spec: {type: AuditDetails, range: {last: 24h}, schedule: '@daily', settleDelay: -5m}", "settleDelay must be a duration from 0s to 24h"},
		{"negative history limit", "spec: {type: AuditDetails, range: {last: 24h}, schedule: '@daily', successfulRunsHistoryLimit: -1}", "spec.successfulRunsHistoryLimit in body should be greater than or equal to 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := decodeReport(t, head+tc.spec, ns)
			err := k8sClient.Create(context.Background(), obj)
			if err == nil {
				_ = k8sClient.Delete(context.Background(), obj)
				t.Fatalf("accepted, want rejection containing %q", tc.want)
			}
			if !apierrors.IsInvalid(err) {
				t.Fatalf("want an Invalid error, got %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("rejection does not say %q:\n%v", tc.want, err)
			}
		})
	}
}

func TestValidEdgeCasesAreAccepted(t *testing.T) {
	ns := createNamespace(t, "edges")
	const head = "apiVersion: reports.auditops.dev/v1alpha1\nkind: AuditReport\nmetadata: {generateName: ok-}\n"
	for name, spec := range map[string]string{
		"cron descriptor":     "spec: {type: AuditDetails, range: {last: 24h}, schedule: '@daily'}",
		"cron every":          "spec: {type: AuditDetails, range: {last: 1h30m}, schedule: '@every 1h30m'}",
		"cron ranges steps":   "spec: {type: Users, range: {last: 24h}, schedule: '*/15 0-6 1,15 JAN-DEC MON-FRI', timeZone: Europe/Berlin}",
		"pageSize bounds low": "spec: {type: AuditDetails, range: {last: 24h}, pageSize: 1}",
		"pageSize bounds hi":  "spec: {type: AuditDetails, range: {last: 24h}, pageSize: 10000}",
		"fractional last":     "spec: {type: AuditDetails, range: {last: 1.5h}}",
		"file object store":   "spec: {type: UserAccess, range: {last: 24h}, output: {objectStore: {url: 'file:///var/reports'}}}",
		"secret output":       "spec: {type: AuditDetails, range: {last: 24h}, output: {secret: {namePrefix: team-a.details, compress: always}}}",
		"one second window":   `spec: {type: AuditDetails, range: {from: "2024-05-21T00:00:00Z", to: "2024-05-21T00:00:01Z"}}`,
		"settleDelay zero":    "spec: {type: AuditDetails, range: {last: 24h}, schedule: '@daily', settleDelay: 0s}",
		"settleDelay a day":   "spec: {type: AuditDetails, range: {last: 24h}, schedule: '@daily', settleDelay: 24h}",
	} {
		t.Run(name, func(t *testing.T) {
			if err := k8sClient.Create(context.Background(), decodeReport(t, head+spec, ns)); err != nil {
				t.Fatalf("rejected: %v", err)
			}
		})
	}
}

func TestDefaultsAreApplied(t *testing.T) {
	ctx := context.Background()
	ns := createNamespace(t, "defaults")
	obj := decodeReport(t, "apiVersion: reports.auditops.dev/v1alpha1\nkind: AuditReport\nmetadata: {name: minimal}\nspec: {type: AuditDetails, range: {last: 24h}}", ns)
	if err := k8sClient.Create(ctx, obj); err != nil {
		t.Fatal(err)
	}
	var got reportsv1alpha1.AuditReport
	if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "minimal"}, &got); err != nil {
		t.Fatal(err)
	}
	if got.Spec.PageSize != 500 {
		t.Errorf("pageSize = %d, want 500", got.Spec.PageSize)
	}
	if got.Spec.SuccessfulRunsHistoryLimit == nil || *got.Spec.SuccessfulRunsHistoryLimit != 3 {
		t.Errorf("successfulRunsHistoryLimit = %v, want 3", got.Spec.SuccessfulRunsHistoryLimit)
	}
	if got.Spec.FailedRunsHistoryLimit == nil || *got.Spec.FailedRunsHistoryLimit != 1 {
		t.Errorf("failedRunsHistoryLimit = %v, want 1", got.Spec.FailedRunsHistoryLimit)
	}
	if got.Spec.Output.ConfigMap == nil || got.Spec.Output.ObjectStore != nil {
		t.Fatalf("output = %+v, want configMap", got.Spec.Output)
	}
	if got.Spec.Output.ConfigMap.Compress != "auto" {
		t.Errorf("output.configMap.compress = %q, want auto", got.Spec.Output.ConfigMap.Compress)
	}
}

// TestPrinterColumns checks what 'kubectl get auditreports' shows, both as the
// Table the API server renders and through the real kubectl.
func TestPrinterColumns(t *testing.T) {
	startManager(t, &AuditReportReconciler{})
	ctx := context.Background()
	ns := createNamespace(t, "columns")
	obj := decodeReport(t, `apiVersion: reports.auditops.dev/v1alpha1
kind: AuditReport
metadata: {name: weekly}
spec: {type: UserAccess, range: {from: "2024-05-21T00:00:00Z", to: "2024-05-28T00:00:00Z"}}`, ns)
	if err := k8sClient.Create(ctx, obj); err != nil {
		t.Fatal(err)
	}
	waitFinished(t, ns, "weekly")

	t.Run("table", func(t *testing.T) {
		rc := restClient(t)
		raw, err := rc.Get().AbsPath("/apis/reports.auditops.dev/v1alpha1/namespaces", ns, "auditreports").
			SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").DoRaw(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var table metav1.Table
		if err := json.Unmarshal(raw, &table); err != nil {
			t.Fatalf("decoding Table: %v\n%s", err, raw)
		}
		var names []string
		for _, c := range table.ColumnDefinitions {
			if c.Priority == 0 {
				names = append(names, c.Name)
			}
		}
		want := "Name,Type,Tenant,From,To,Phase,Records,Age"
		if got := strings.Join(names, ","); got != want {
			t.Errorf("columns = %s, want %s", got, want)
		}
		var wide []string
		for _, c := range table.ColumnDefinitions {
			if c.Priority == 1 {
				wide = append(wide, c.Name)
			}
		}
		if got := strings.Join(wide, ","); got != "Schedule,Last Run,Sealed" {
			t.Errorf("wide columns = %s, want Schedule,Last Run,Sealed", got)
		}
		if len(table.Rows) != 1 {
			t.Fatalf("rows = %d, want 1", len(table.Rows))
		}
		cells := table.Rows[0].Cells
		wantCells := []any{"weekly", "UserAccess", ns, "2024-05-21T00:00:00Z", "2024-05-28T00:00:00Z", "Succeeded", int64(0)}
		for i, w := range wantCells {
			if fmt.Sprint(cells[i]) != fmt.Sprint(w) {
				t.Errorf("cell %s = %v, want %v", table.ColumnDefinitions[i].Name, cells[i], w)
			}
		}
	})

	t.Run("kubectl", func(t *testing.T) {
		kubectl := filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl")
		kubeconfig := writeKubeconfig(t)
		for _, tc := range []struct{ args, want []string }{
			{[]string{"get", "auditreports", "-n", ns}, []string{"NAME", "TYPE", "TENANT", "FROM", "TO", "PHASE", "RECORDS", "AGE", "weekly", "UserAccess", "2024-05-21T00:00:00Z", "Succeeded"}},
			{[]string{"get", "ar", "-n", ns, "-o", "wide"}, []string{"SCHEDULE", "LAST RUN", "weekly"}},
			{[]string{"get", "auditops", "-n", ns}, []string{"weekly", "UserAccess"}}, // the category
		} {
			cmd := exec.CommandContext(ctx, kubectl, append([]string{"--kubeconfig", kubeconfig}, tc.args...)...)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Run(); err != nil {
				t.Fatalf("kubectl %v: %v\n%s", tc.args, err, out.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("kubectl %v output lacks %q:\n%s", tc.args, w, out.String())
				}
			}
		}
	})
}

func restClient(t *testing.T) *rest.RESTClient {
	t.Helper()
	c := rest.CopyConfig(cfg)
	c.GroupVersion = &reportsv1alpha1.GroupVersion
	c.APIPath = "/apis"
	c.NegotiatedSerializer = clientgoscheme.Codecs.WithoutConversion()
	rc, err := rest.RESTClientFor(c)
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

// writeKubeconfig writes the test control plane's admin credentials for kubectl.
func writeKubeconfig(t *testing.T) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin"}
	kc.CurrentContext = "envtest"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}
