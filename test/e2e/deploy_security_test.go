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

// This file's name sorts before e2e_test.go, whose last test stops the
// shared environment: go test runs a package's tests file by file.

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// managerArg returns the value the running manager got for flag (from
// hack/run-local.sh's manager.args, one argument per line).
func managerArg(t *testing.T, flag string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(localDir, "run", "manager.args"))
	if err != nil {
		t.Fatal(err)
	}
	args := strings.Split(strings.TrimSpace(string(raw)), "\n")
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
	}
	t.Fatalf("the manager has no %s argument: %q", flag, args)
	return ""
}

// TestMetricsNeedATokenAllowedToGetMetrics: the manager of hack/run-local.sh
// (AUDITOPS_METRICS_SECURE=true, as run() starts it) serves its metrics the
// way config/manager deploys it: HTTPS only, and only to a bearer token
// that kube-apiserver authenticates and authorizes for get on /metrics,
// which config/rbac's auditops-metrics-reader grants.
func TestMetricsNeedATokenAllowedToGetMetrics(t *testing.T) {
	addr := managerArg(t, "--metrics-bind-address")
	if v := managerArg(t, "--metrics-secure"); v != "true" {
		t.Fatalf("the manager runs with --metrics-secure=%s; run() asks hack/run-local.sh for true", v)
	}

	// The manager makes a TokenReview and a SubjectAccessReview per caller
	// (cached): config/rbac must let the deployed ServiceAccount create
	// them. (Locally the manager is in system:masters.)
	const managerSA = "system:serviceaccount:auditops-system:auditops-manager"
	for _, res := range []string{"tokenreviews.authentication.k8s.io", "subjectaccessreviews.authorization.k8s.io"} {
		if ok, out := canI("create", res, "--as="+managerSA); !ok {
			t.Errorf("config/rbac does not let %s create %s: %s", managerSA, res, out)
		}
	}

	ns := "metrics-" + strconv.FormatInt(time.Now().UnixNano()%1e6, 10)
	k(t, "create", "namespace", ns)
	k(t, "create", "serviceaccount", "scraper", "-n", ns)
	k(t, "create", "serviceaccount", "stranger", "-n", ns)
	k(t, "create", "clusterrolebinding", ns+"-scraper", "--clusterrole=auditops-metrics-reader", "--serviceaccount="+ns+":scraper")
	t.Cleanup(func() { _, _ = kErr("delete", "clusterrolebinding", ns+"-scraper", "--ignore-not-found") })
	// Wait until kube-apiserver's authorizer has the binding: the manager
	// caches a denial for 30 s, so an early first try would stick.
	scraperUser := "system:serviceaccount:" + ns + ":scraper"
	eventually(t, 30*time.Second, "the scraper's binding to take effect", func() (bool, string) {
		return canI("get", "/metrics", "--as="+scraperUser)
	})
	scraper := strings.TrimSpace(k(t, "create", "token", "scraper", "-n", ns))
	stranger := strings.TrimSpace(k(t, "create", "token", "stranger", "-n", ns))

	// The certificate is self-signed (made at start), so it cannot be
	// verified here; the point is that only TLS is served. HTTP/2 is
	// offered by the client and must be refused (rapid reset).
	client := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // self-signed metrics certificate
		ForceAttemptHTTP2: true,
	}}
	get := func(token string) (int, string, *http.Response) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://"+addr+"/metrics", nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET https://%s/metrics: %v", addr, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), resp
	}

	plain, err := (&http.Client{Timeout: 15 * time.Second}).Get("http://" + addr + "/metrics")
	if err == nil {
		body, _ := io.ReadAll(plain.Body)
		plain.Body.Close()
		if plain.StatusCode == http.StatusOK || strings.Contains(string(body), "go_goroutines") {
			t.Errorf("plain HTTP got %d and metrics: %.300s", plain.StatusCode, body)
		}
	}

	for _, tc := range []struct {
		who, token string
		want       []int
	}{
		{"no token", "", []int{http.StatusUnauthorized}},
		// controller-runtime's filter (v0.25.2) answers a TokenReview that
		// comes back with an error, as it does for an unknown token, with
		// 500 "Authentication failed" where kube-apiserver says 401.
		{"a token kube-apiserver does not know", "not-a-token", []int{http.StatusUnauthorized, http.StatusInternalServerError}},
		{"a ServiceAccount without auditops-metrics-reader", stranger, []int{http.StatusForbidden}},
	} {
		code, body, _ := get(tc.token)
		if !slices.Contains(tc.want, code) {
			t.Errorf("%s: %d, want %v: %.300s", tc.who, code, tc.want, body)
		}
		if strings.Contains(body, "go_goroutines") {
			t.Errorf("%s: got metrics with %d", tc.who, code)
		}
		t.Logf("%s: %d %.200s", tc.who, code, strings.TrimSpace(body))
	}

	// The scraper reads real metrics: the process's, and auditops' own ingest
	// counter (every kubectl call above is audited into the manager).
	eventually(t, 30*time.Second, "the scraper to read auditops' metrics", func() (bool, string) {
		code, body, resp := get(scraper)
		if resp.ProtoMajor != 1 {
			t.Fatalf("metrics served over %s; HTTP/2 must stay off", resp.Proto)
		}
		ok := code == http.StatusOK && strings.Contains(body, "go_goroutines ") &&
			strings.Contains(body, `auditops_ingest_events_total{result="stored",source="kube-audit"}`)
		return ok, strconv.Itoa(code) + " " + body[:min(len(body), 300)]
	})
}

// canI asks kube-apiserver whether the request of args would be allowed
// (kubectl auth can-i); out is kubectl's answer.
func canI(args ...string) (bool, string) {
	out, _ := kErr(append([]string{"auth", "can-i"}, args...)...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return lines[len(lines)-1] == "yes", out
}

// TestDocsVerifyThePostgreSQLServer: every deployed PostgreSQL URL in the
// docs and config/ uses sslmode=verify-full. disable and prefer may send
// audit events in clear text, require (and verify-ca) encrypt but let a
// server with any certificate (or any name) in the middle read and change
// them. hack/ is exempt: its throwaway test PostgreSQL listens on loopback.
func TestDocsVerifyThePostgreSQLServer(t *testing.T) {
	files := []string{filepath.Join(root, "README.md")}
	for _, dir := range []string{"config", "bench"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && (strings.HasSuffix(p, ".md") || strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
				files = append(files, p)
			}
			return nil
		})
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	sslmode := regexp.MustCompile(`sslmode=([a-z-]+)`)
	found := 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(raw), "\n") {
			for _, m := range sslmode.FindAllStringSubmatch(line, -1) {
				found++
				if m[1] != "verify-full" {
					rel, _ := filepath.Rel(root, f)
					t.Errorf("%s:%d: sslmode=%s; a deployed PostgreSQL URL uses sslmode=verify-full: %s", rel, i+1, m[1], strings.TrimSpace(line))
				}
			}
		}
	}
	if found == 0 {
		t.Errorf("no PostgreSQL URL with sslmode in README.md or config/: the docs lost their example")
	}
}

// renderedObjects are the objects of a rendered config/ variant that the
// manager's hardening is made of.
type renderedObjects struct {
	deployment   *appsv1.Deployment
	services     map[string]*corev1.Service
	policies     []*networkingv1.NetworkPolicy
	pdbs         []*policyv1.PodDisruptionBudget
	clusterRoles map[string]*rbacv1.ClusterRole
}

func parseRendered(t *testing.T, rendered string) renderedObjects {
	t.Helper()
	objs := renderedObjects{services: map[string]*corev1.Service{}, clusterRoles: map[string]*rbacv1.ClusterRole{}}
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(rendered)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Fatal(err)
		}
		into := func(obj any) {
			if err := yaml.UnmarshalStrict(doc, obj); err != nil {
				t.Fatalf("%s: %v\n%s", tm.Kind, err, doc)
			}
		}
		switch tm.Kind {
		case "Deployment":
			var d appsv1.Deployment
			into(&d)
			if d.Name == "auditops-manager" {
				objs.deployment = &d
			}
		case "Service":
			var s corev1.Service
			into(&s)
			objs.services[s.Name] = &s
		case "NetworkPolicy":
			var p networkingv1.NetworkPolicy
			into(&p)
			objs.policies = append(objs.policies, &p)
		case "PodDisruptionBudget":
			var p policyv1.PodDisruptionBudget
			into(&p)
			objs.pdbs = append(objs.pdbs, &p)
		case "ClusterRole":
			var c rbacv1.ClusterRole
			into(&c)
			objs.clusterRoles[c.Name] = &c
		}
	}
	if objs.deployment == nil {
		t.Fatal("no Deployment auditops-manager")
	}
	return objs
}

// checkManagerHardening asserts what config/ promises about the manager
// pod of a rendered variant, by the pod's labels and ports as the
// Deployment has them: a selector or port that drifts from the Deployment
// fails here, not silently in a cluster.
func checkManagerHardening(t *testing.T, variant, rendered string) {
	objs := parseRendered(t, rendered)
	dep := objs.deployment
	pod := dep.Spec.Template
	podLabels := labels.Set(pod.Labels)
	if len(pod.Spec.Containers) != 1 || pod.Spec.Containers[0].Name != "manager" {
		t.Fatalf("want one container named manager: %+v", pod.Spec.Containers)
	}
	c := pod.Spec.Containers[0]
	ports := map[string]corev1.ContainerPort{}
	for _, p := range c.Ports {
		ports[p.Name] = p
	}
	api, metricsPort := ports["api"], ports["metrics"]
	if api.ContainerPort != 8443 || metricsPort.ContainerPort == 0 || metricsPort.ContainerPort == api.ContainerPort {
		t.Fatalf("container ports %+v: want api on 8443 and metrics on another port", c.Ports)
	}
	// resolves reports whether a Service or NetworkPolicy port names the
	// container port p (by name or number).
	resolves := func(port intstr.IntOrString, p corev1.ContainerPort) bool {
		if port.Type == intstr.String {
			return port.StrVal == p.Name
		}
		return port.IntVal == p.ContainerPort
	}

	// 1. Metrics: HTTPS on the metrics port, a Service for scrapers, and the
	// role a scraper is bound to.
	wantAddr := "--metrics-bind-address=:" + strconv.Itoa(int(metricsPort.ContainerPort))
	if !slices.Contains(c.Args, wantAddr) || !slices.Contains(c.Args, "--metrics-secure=true") || slices.Contains(c.Args, "--metrics-secure=false") {
		t.Errorf("manager args %q: want %s and --metrics-secure=true", c.Args, wantAddr)
	}
	if svc := objs.services["auditops-metrics"]; svc == nil {
		t.Errorf("no Service auditops-metrics")
	} else {
		if !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) || len(svc.Spec.Selector) == 0 {
			t.Errorf("Service auditops-metrics selects %v, not the manager pods %v", svc.Spec.Selector, pod.Labels)
		}
		if len(svc.Spec.Ports) != 1 || !resolves(svc.Spec.Ports[0].TargetPort, metricsPort) {
			t.Errorf("Service auditops-metrics ports %+v do not reach the metrics port %d", svc.Spec.Ports, metricsPort.ContainerPort)
		}
	}
	if role := objs.clusterRoles["auditops-metrics-reader"]; role == nil ||
		!slices.ContainsFunc(role.Rules, func(r rbacv1.PolicyRule) bool {
			return slices.Contains(r.NonResourceURLs, "/metrics") && slices.Contains(r.Verbs, "get")
		}) {
		t.Errorf("no ClusterRole auditops-metrics-reader allowing get on /metrics: %+v", role)
	}

	// 2. NetworkPolicy: the manager pods take connections on the API port from
	// anywhere, on the metrics port from namespaces labelled metrics=enabled,
	// and on no other port (probes come from the node, always allowed).
	var selecting []*networkingv1.NetworkPolicy
	for _, p := range objs.policies {
		sel, err := metav1.LabelSelectorAsSelector(&p.Spec.PodSelector)
		if err != nil {
			t.Fatal(err)
		}
		if sel.Matches(podLabels) && !sel.Empty() {
			selecting = append(selecting, p)
		}
	}
	if len(selecting) != 1 {
		t.Errorf("%d NetworkPolicies select the manager pods %v, want 1 (of %d)", len(selecting), pod.Labels, len(objs.policies))
	} else {
		p := selecting[0]
		if !slices.Contains(p.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
			t.Errorf("NetworkPolicy %s does not isolate ingress: %v", p.Name, p.Spec.PolicyTypes)
		}
		apiOpen, metricsOnlyLabelled := false, false
		for i, rule := range p.Spec.Ingress {
			if len(rule.Ports) == 0 {
				t.Errorf("NetworkPolicy %s ingress rule %d opens every port", p.Name, i)
			}
			for _, rp := range rule.Ports {
				switch {
				case rp.Port != nil && resolves(*rp.Port, api):
					apiOpen = apiOpen || len(rule.From) == 0
				case rp.Port != nil && resolves(*rp.Port, metricsPort):
					metricsOnlyLabelled = len(rule.From) == 1 && rule.From[0].PodSelector == nil && rule.From[0].IPBlock == nil &&
						rule.From[0].NamespaceSelector != nil &&
						labels.Equals(rule.From[0].NamespaceSelector.MatchLabels, map[string]string{"metrics": "enabled"}) &&
						len(rule.From[0].NamespaceSelector.MatchExpressions) == 0
					if !metricsOnlyLabelled {
						t.Errorf("NetworkPolicy %s lets %+v reach the metrics port; want namespaces labelled metrics=enabled only", p.Name, rule.From)
					}
				default:
					t.Errorf("NetworkPolicy %s opens port %v, which is neither the API's (%d) nor the metrics' (%d)", p.Name, rp.Port, api.ContainerPort, metricsPort.ContainerPort)
				}
			}
		}
		if !apiOpen {
			t.Errorf("NetworkPolicy %s does not open the API port %d to every source (kube-apiserver cannot be selected)", p.Name, api.ContainerPort)
		}
		if !metricsOnlyLabelled {
			t.Errorf("NetworkPolicy %s does not open the metrics port %d to namespaces labelled metrics=enabled", p.Name, metricsPort.ContainerPort)
		}
	}

	// PodDisruptionBudgets: select the manager pods and leave a drain room
	// to evict one; a replicated variant has one.
	replicas := int32(1)
	if dep.Spec.Replicas != nil {
		replicas = *dep.Spec.Replicas
	}
	for _, b := range objs.pdbs {
		sel, err := metav1.LabelSelectorAsSelector(b.Spec.Selector)
		if err != nil {
			t.Fatal(err)
		}
		if sel.Empty() || !sel.Matches(podLabels) {
			t.Errorf("PodDisruptionBudget %s selects %v, not the manager pods %v", b.Name, b.Spec.Selector, pod.Labels)
		}
		if b.Spec.MinAvailable == nil || b.Spec.MinAvailable.Type != intstr.Int || b.Spec.MinAvailable.IntVal < 1 || b.Spec.MinAvailable.IntVal >= replicas {
			t.Errorf("PodDisruptionBudget %s minAvailable %v with %d replicas: want at least 1 and fewer than the replicas (a drain must be able to evict one)", b.Name, b.Spec.MinAvailable, replicas)
		}
		if b.Spec.UnhealthyPodEvictionPolicy == nil || *b.Spec.UnhealthyPodEvictionPolicy != policyv1.AlwaysAllow {
			t.Errorf("PodDisruptionBudget %s: unhealthyPodEvictionPolicy %v, want AlwaysAllow (a store outage makes every replica unready, which would block drains)", b.Name, b.Spec.UnhealthyPodEvictionPolicy)
		}
	}
	if replicas > 1 && len(objs.pdbs) == 0 {
		t.Errorf("config/%s runs %d replicas without a PodDisruptionBudget", variant, replicas)
	}

	// 3. The Go runtime's soft memory limit: the container's limit reaches the
	// manager (which sets 90% of it) and no GOMEMLIMIT overrides that.
	if c.Resources.Limits.Memory().IsZero() {
		t.Errorf("the manager container has no memory limit")
	}
	var memEnv *corev1.EnvVar
	for i, e := range c.Env {
		switch e.Name {
		case "AUDITOPS_MEMORY_LIMIT":
			memEnv = &c.Env[i]
		case "GOMEMLIMIT":
			t.Errorf("GOMEMLIMIT is set (%+v): it would replace the 90%% of the container's limit", e)
		}
	}
	if memEnv == nil || memEnv.ValueFrom == nil || memEnv.ValueFrom.ResourceFieldRef == nil {
		t.Errorf("no AUDITOPS_MEMORY_LIMIT from the container's resources: %+v", c.Env)
	} else if ref := memEnv.ValueFrom.ResourceFieldRef; ref.Resource != "limits.memory" ||
		(ref.ContainerName != "" && ref.ContainerName != c.Name) || ref.Divisor.Cmp(resource.MustParse("1")) != 0 {
		t.Errorf("AUDITOPS_MEMORY_LIMIT comes from %+v; want limits.memory of %s in bytes (divisor 1)", ref, c.Name)
	}

	// Every volume is mounted and every mount has its volume (a patch that
	// drops a mount leaves the serving certificate or /tmp out silently:
	// the root file system is read-only).
	volumes := map[string]bool{}
	for _, v := range pod.Spec.Volumes {
		volumes[v.Name] = true
	}
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m.Name
		if !volumes[m.Name] {
			t.Errorf("mount %s names no volume %q", m.MountPath, m.Name)
		}
		delete(volumes, m.Name)
	}
	for v := range volumes {
		t.Errorf("volume %q is not mounted (mounts: %v)", v, mounts)
	}
	if mounts["/tmp"] == "" {
		t.Errorf("no writable /tmp (mounts: %v)", mounts)
	}

	// 4. PostgreSQL: the URL config/postgres documents verifies the server
	// against a CA file that the Deployment mounts.
	if variant == "postgres" {
		raw, err := os.ReadFile(filepath.Join(root, "config", "postgres", "kustomization.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`postgres://[^'"\s]+`).FindString(string(raw))
		u, err := url.Parse(m)
		if m == "" || err != nil {
			t.Fatalf("config/postgres/kustomization.yaml documents no store URL (%q): %v", m, err)
		}
		q := u.Query()
		if q.Get("sslmode") != "verify-full" || q.Get("sslrootcert") == "" {
			t.Errorf("documented store URL %s: want sslmode=verify-full and sslrootcert", m)
		} else if dir := path.Dir(q.Get("sslrootcert")); mounts[dir] == "" {
			t.Errorf("sslrootcert %s is not in a mounted volume (mounts: %v)", q.Get("sslrootcert"), mounts)
		}
	}
}
