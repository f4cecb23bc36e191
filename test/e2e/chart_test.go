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

package e2e

// The Helm chart (charts/auditops) against the kustomize variants of config/:
// the same objects for the same choices, helm lint clean, and a server dry
// run on the suite's kube-apiserver. This file's name sorts before
// e2e_test.go, whose last test stops the shared environment.

import (
	"bufio"
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// chartVariants pairs each config/ variant (the kustomize builds of
// configs, together) with the chart values that give the same objects.
var chartVariants = []struct {
	variant, values string
	configs         []string
}{
	{"default", "", []string{"default"}},
	{"postgres", "ci/postgres-values.yaml", []string{"postgres"}},
	{"certmanager", "ci/certmanager-values.yaml", []string{"certmanager"}},
	// config/monitoring is a component a deployment opts in to.
	{"monitoring", "ci/monitoring-values.yaml", []string{"default", "monitoring"}},
}

// helmBin is the pinned helm that make test passes in HELM (make helm builds
// it into bin/).
func helmBin(t *testing.T) string {
	t.Helper()
	if h := os.Getenv("HELM"); h != "" {
		return h
	}
	found, _ := filepath.Glob(filepath.Join(root, "bin", "helm-v*"))
	if len(found) == 0 {
		t.Fatal("no helm: run 'make helm' (or make test, which sets HELM)")
	}
	slices.Sort(found)
	return found[len(found)-1]
}

func helm(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(helmBin(t), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// helmTemplate renders the chart as release auditops in namespace ns with the
// values file of a variant (relative to the chart), CRDs included.
func helmTemplate(t *testing.T, ns, values string, extra ...string) string {
	t.Helper()
	args := []string{"template", "auditops", filepath.Join(root, "charts", "auditops"), "--namespace", ns, "--include-crds"}
	if values != "" {
		args = append(args, "--values", filepath.Join(root, "charts", "auditops", values))
	}
	return helm(t, append(args, extra...)...)
}

type objKey struct{ kind, namespace, name string }

// parseObjects reads a multi-document manifest into generic objects by kind,
// namespace and name.
func parseObjects(t *testing.T, rendered string) map[objKey]map[string]any {
	t.Helper()
	objs := map[objKey]map[string]any{}
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(rendered)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatal(err)
		}
		var obj map[string]any
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			t.Fatalf("%v\n%s", err, doc)
		}
		if obj == nil {
			continue
		}
		md, _ := obj["metadata"].(map[string]any)
		key := objKey{kind: str(obj["kind"]), namespace: str(md["namespace"]), name: str(md["name"])}
		if _, dup := objs[key]; dup {
			t.Errorf("%v rendered twice", key)
		}
		objs[key] = obj
	}
}

func str(v any) string { s, _ := v.(string); return s }

// withoutHelmMetadata drops what Helm adds and kustomize does not: the
// chart's standard labels and the PVC's keep policy.
func withoutHelmMetadata(obj map[string]any) {
	md, _ := obj["metadata"].(map[string]any)
	for _, field := range []string{"labels", "annotations"} {
		m, _ := md[field].(map[string]any)
		for _, k := range []string{"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance",
			"app.kubernetes.io/version", "helm.sh/resource-policy"} {
			delete(m, k)
		}
		if m != nil && len(m) == 0 {
			delete(md, field)
		}
	}
}

// TestChartRendersTheKustomizeObjects: for each config/ variant, helm
// template with the matching values renders the objects kustomize does,
// field for field, but for what differs by design: kustomize's Namespace
// (helm install --create-namespace makes it), Helm's labels, and the
// generated certificate, which is checked on its own: signed by the
// APIService's caBundle, for auditops-api.<namespace>.svc.
func TestChartRendersTheKustomizeObjects(t *testing.T) {
	// config/default's Secret comes from the generated certificate, which
	// TestDeployManifestsAreValid (later in the run) would make.
	if _, err := os.Stat(filepath.Join(root, "config", "apiservice", "generated", "tls.crt")); err != nil {
		gen := exec.Command(filepath.Join(root, "hack", "gen-apiservice-cert.sh"))
		if out, err := gen.CombinedOutput(); err != nil {
			t.Fatalf("hack/gen-apiservice-cert.sh: %v\n%s", err, out)
		}
	}
	for _, v := range chartVariants {
		t.Run(v.variant, func(t *testing.T) {
			name := "config/" + strings.Join(v.configs, " + config/")
			want := map[objKey]map[string]any{}
			for _, c := range v.configs {
				maps.Copy(want, parseObjects(t, k(t, "kustomize", filepath.Join(root, "config", c))))
			}
			got := parseObjects(t, helmTemplate(t, "auditops-system", v.values))
			delete(want, objKey{"Namespace", "", "auditops-system"})
			if v.variant != "certmanager" {
				checkGeneratedCert(t, got, "auditops-system")
			}
			for _, objs := range []map[objKey]map[string]any{want, got} {
				if s := objs[objKey{"Secret", "auditops-system", "auditops-api-serving-cert"}]; s != nil {
					delete(s, "data")
				}
				if a := objs[objKey{"APIService", "", "v1alpha1.audit.auditops.dev"}]; a != nil {
					delete(a["spec"].(map[string]any), "caBundle")
				}
			}
			for key, w := range want {
				g, ok := got[key]
				if !ok {
					t.Errorf("the chart does not render %v", key)
					continue
				}
				withoutHelmMetadata(g)
				if !reflect.DeepEqual(w, g) {
					wy, _ := yaml.Marshal(w)
					gy, _ := yaml.Marshal(g)
					t.Errorf("%v differs:\n--- %s\n%s--- chart\n%s", key, name, wy, gy)
				}
			}
			for key := range got {
				if _, ok := want[key]; !ok {
					t.Errorf("the chart renders %v, which %s does not", key, name)
				}
			}
			t.Logf("%s and the chart: %d objects each", name, len(want))
		})
	}
}

// checkGeneratedCert checks the chart's generated serving certificate: the
// APIService's caBundle is the Secret's ca.crt, which signed tls.crt for
// the Service's DNS name, and tls.key is its key.
func checkGeneratedCert(t *testing.T, objs map[objKey]map[string]any, ns string) {
	t.Helper()
	secret := objs[objKey{"Secret", ns, "auditops-api-serving-cert"}]
	apisvc := objs[objKey{"APIService", "", "v1alpha1.audit.auditops.dev"}]
	if secret == nil || apisvc == nil {
		t.Fatalf("no serving-cert Secret or APIService in %s", ns)
	}
	data, _ := secret["data"].(map[string]any)
	decode := func(what string, v any) []byte {
		raw, err := base64.StdEncoding.DecodeString(str(v))
		if err != nil || len(raw) == 0 {
			t.Fatalf("%s: %q %v", what, v, err)
		}
		return raw
	}
	caPEM := decode("ca.crt", data["ca.crt"])
	if bundle := decode("caBundle", apisvc["spec"].(map[string]any)["caBundle"]); !bytes.Equal(bundle, caPEM) {
		t.Errorf("the APIService's caBundle is not the Secret's ca.crt")
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("ca.crt holds no certificate")
	}
	block, _ := pem.Decode(decode("tls.crt", data["tls.crt"]))
	if block == nil {
		t.Fatal("tls.crt holds no PEM block")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	dns := "auditops-api." + ns + ".svc"
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: dns, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("tls.crt does not verify for %s against ca.crt: %v", dns, err)
	}
	if block, _ := pem.Decode(decode("tls.key", data["tls.key"])); block == nil || !strings.Contains(block.Type, "PRIVATE KEY") {
		t.Errorf("tls.key holds no private key")
	}
}

// TestChartIsLintCleanAndInSync: helm lint --strict passes for every
// variant's values, and the files the chart copies from config/ (the CRD,
// controller-gen's manager ClusterRole, config/monitoring's rule and
// dashboard) equal their sources (make manifests copies them).
func TestChartIsLintCleanAndInSync(t *testing.T) {
	chart := filepath.Join(root, "charts", "auditops")
	for _, v := range chartVariants {
		args := []string{"lint", "--strict", chart}
		if v.values != "" {
			args = append(args, "--values", filepath.Join(chart, v.values))
		}
		out := helm(t, args...)
		if !strings.Contains(out, "0 chart(s) failed") || strings.Contains(out, "[WARNING]") || strings.Contains(out, "[ERROR]") {
			t.Errorf("helm lint (%s):\n%s", v.variant, out)
		}
	}
	crds, err := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
	if err != nil || len(crds) == 0 {
		t.Fatalf("no CRDs in config/crd/bases: %v", err)
	}
	copies := map[string]string{
		filepath.Join(root, "config", "rbac", "role.yaml"):                         filepath.Join(chart, "templates", "manager_role.yaml"),
		filepath.Join(root, "config", "monitoring", "prometheusrule.yaml"):         filepath.Join(chart, "files", "prometheusrule.yaml"),
		filepath.Join(root, "config", "monitoring", "dashboards", "auditops.json"): filepath.Join(chart, "files", "dashboards", "auditops.json"),
	}
	for _, c := range crds {
		copies[c] = filepath.Join(chart, "crds", filepath.Base(c))
	}
	inChart, _ := filepath.Glob(filepath.Join(chart, "crds", "*"))
	if len(inChart) != len(crds) {
		t.Errorf("charts/auditops/crds holds %d files, config/crd/bases %d", len(inChart), len(crds))
	}
	for src, dst := range copies {
		a, errA := os.ReadFile(src)
		b, errB := os.ReadFile(dst)
		if errA != nil || errB != nil || !bytes.Equal(a, b) {
			t.Errorf("%s is not a copy of %s (run make manifests): %v %v", dst, src, errA, errB)
		}
	}
}

// TestChartDryRunOnTheAPIServer: the chart rendered into a namespace other
// than config/'s passes kube-apiserver's validation (server dry run) with
// SQLite and with PostgreSQL, keeps the manager's hardening, and an upgrade
// keeps the serving certificate a release already has (the chart's lookup,
// answered by the real API server).
func TestChartDryRunOnTheAPIServer(t *testing.T) {
	const ns = "auditops-helm"
	k(t, "create", "namespace", ns)
	t.Cleanup(func() { _, _ = kErr("delete", "namespace", ns, "--wait=false") })
	for _, v := range chartVariants[:2] {
		t.Run(v.variant, func(t *testing.T) {
			rendered := helmTemplate(t, ns, v.values)
			checkManagerHardening(t, v.variant, rendered)
			checkGeneratedCert(t, parseObjects(t, rendered), ns)
			if !strings.Contains(rendered, "system:serviceaccount:"+ns+":auditops-manager") {
				t.Errorf("the admission policy does not exempt the manager's ServiceAccount in %s", ns)
			}
			out := kApply(t, rendered, "--dry-run=server")
			if n := strings.Count(out, "(server dry run)"); n < 25 {
				t.Errorf("the dry run applied %d objects, want 25 or more:\n%s", n, out)
			}
			for _, obj := range []string{"deployment.apps/auditops-manager", "apiservice.apiregistration.k8s.io/v1alpha1.audit.auditops.dev",
				"validatingadmissionpolicy.admissionregistration.k8s.io/auditops-report-requester", "service/auditops-api"} {
				if !strings.Contains(out, obj+" ") {
					t.Errorf("the dry run did not apply %s:\n%s", obj, out)
				}
			}
		})
	}

	// An upgrade renders with the release's Secret in place: the chart must
	// reuse it rather than make a new CA under running clients.
	first := parseObjects(t, helmTemplate(t, ns, ""))
	secret := first[objKey{"Secret", ns, "auditops-api-serving-cert"}]
	raw, err := yaml.Marshal(secret)
	if err != nil {
		t.Fatal(err)
	}
	kApply(t, string(raw))
	// --take-ownership: the suite's environment already holds the CRD and
	// roles, unowned by any release, which an install would refuse; a dry
	// run changes nothing.
	again := parseObjects(t, helmTemplate(t, ns, "", "--dry-run=server", "--take-ownership", "--kubeconfig", kubecfg))
	if !reflect.DeepEqual(again[objKey{"Secret", ns, "auditops-api-serving-cert"}]["data"], secret["data"]) {
		t.Errorf("a second render against the cluster made a new serving certificate instead of reusing Secret %s/auditops-api-serving-cert", ns)
	}
	checkGeneratedCert(t, again, ns)
}

// TestChartRefusesBadValues: a misspelt or impossible value fails the render
// with a message naming it (values.schema.json, the templates' required
// and fail), instead of quietly rendering a default.
func TestChartRefusesBadValues(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  []string
		want string
	}{
		{"unknown store", []string{"--set", "store.type=postgress"}, "/store/type"},
		{"misspelt key", []string{"--set", "stor.type=postgres"}, "'stor' not allowed"},
		{"unknown certificate source", []string{"--set", "apiService.certificate.source=selfSigned"}, "/apiService/certificate/source"},
		{"provided without a certificate", []string{"--set", "apiService.certificate.source=provided"}, "caCrt is required"},
		{"an argument that is no flag", []string{"--set-json", `extraArgs=["store=x"]`}, "/extraArgs/0"},
		{"zero replicas", []string{"--set", "store.type=postgres", "--set", "store.postgres.replicas=0"}, "/store/postgres/replicas"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"template", "auditops", filepath.Join(root, "charts", "auditops"), "--namespace", "auditops-system"}, tc.set...)
			out, err := exec.Command(helmBin(t), args...).CombinedOutput()
			if err == nil || !strings.Contains(string(out), tc.want) {
				t.Errorf("helm template %v: %v, want an error naming %q:\n%.1000s", tc.set, err, tc.want, out)
			}
		})
	}
}
