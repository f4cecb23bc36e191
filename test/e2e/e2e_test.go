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

// Package e2e brings up the local environment of 'make run' (etcd,
// kube-apiserver with the audit webhook, the manager with SQLite) through
// the same script, acts in a namespace as two users, and checks through
// kube-apiserver that auditops recorded it, reports on it, and that the
// deployment manifests are valid for a real API server.
package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var (
	root      string // the repository
	localDir  string // the environment's state
	kubectl   string
	kubecfg   string
	runScript string
	upOutput  string // what hack/run-local.sh printed
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	wd, _ := os.Getwd()
	root = filepath.Clean(filepath.Join(wd, "..", ".."))
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		fmt.Fprintln(os.Stderr, "KUBEBUILDER_ASSETS is not set: run 'make test', which builds etcd, kube-apiserver and kubectl into bin/k8s")
		return 1
	}
	kubectl = filepath.Join(assets, "kubectl")
	runScript = filepath.Join(root, "hack", "run-local.sh")
	var err error
	localDir, err = os.MkdirTemp("", "auditops-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(localDir)

	// The manager under test is built from this tree, not whatever bin/ holds.
	manager := filepath.Join(localDir, "manager")
	build := exec.Command("go", "build", "-o", manager, ".")
	build.Dir, build.Env = root, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the manager: %v\n%s", err, out)
		return 1
	}
	port, err := freePort()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	up := exec.Command(runScript)
	// Metrics as deployed: HTTPS behind kube-apiserver's authn and authz.
	// With make run's demo (TestDemo checks what it left).
	up.Env = append(os.Environ(), "RUN_LOCAL_DETACH=1", "LOCAL_DIR="+localDir, "MANAGER_BIN="+manager,
		"AUDITOPS_SECURE_PORT="+strconv.Itoa(port), "K8S_VERSION="+filepath.Base(assets),
		"AUDITOPS_METRICS_SECURE=true", "RUN_LOCAL_DEMO=1")
	var upOut bytes.Buffer
	up.Stdout, up.Stderr = &upOut, &upOut
	started := time.Now()
	upErr := up.Run()
	defer stopEnvironment()
	if upErr != nil {
		fmt.Fprintf(os.Stderr, "hack/run-local.sh: %v\n%s", upErr, upOut.String())
		dumpLogs()
		return 1
	}
	if !strings.Contains(upOut.String(), "auditops ready: export KUBECONFIG=") {
		fmt.Fprintf(os.Stderr, "hack/run-local.sh printed no ready line:\n%s", upOut.String())
		return 1
	}
	upOutput = upOut.String()
	fmt.Fprintf(os.Stderr, "local environment up in %s\n", time.Since(started).Round(100*time.Millisecond))
	kubecfg = filepath.Join(localDir, "kubeconfig")
	code := m.Run()
	if code != 0 {
		dumpLogs()
	}
	return code
}

func stopEnvironment() {
	stop := exec.Command(runScript, "stop")
	stop.Env = append(os.Environ(), "LOCAL_DIR="+localDir)
	_ = stop.Run()
}

func dumpLogs() {
	for _, name := range []string{"manager.log", "kube-apiserver.log"} {
		raw, _ := os.ReadFile(filepath.Join(localDir, "run", name))
		if len(raw) > 6000 {
			raw = raw[len(raw)-6000:]
		}
		fmt.Fprintf(os.Stderr, "--- tail of %s\n%s\n", name, raw)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// k runs kubectl against the local environment.
func k(t *testing.T, args ...string) string {
	t.Helper()
	out, err := kErr(args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func kErr(args ...string) (string, error) {
	cmd := exec.Command(kubectl, append([]string{"--kubeconfig", kubecfg}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// kApply applies a manifest given on stdin.
func kApply(t *testing.T, manifest string, args ...string) string {
	t.Helper()
	cmd := exec.Command(kubectl, append([]string{"--kubeconfig", kubecfg, "apply", "-f", "-"}, args...)...)
	cmd.Stdin = strings.NewReader(manifest)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl apply %v: %v\n%s\n%s", args, err, out, manifest)
	}
	return string(out)
}

// auditDetail is one row of the audit-details endpoint.
type auditDetail struct {
	Method  string          `json:"requested_method"`
	User    string          `json:"requested_user"`
	Status  string          `json:"status"`
	Payload json.RawMessage `json:"input_payload"`
}

// auditDetails reads the first page (up to 1,000 rows) of a namespace's
// audit details through kube-apiserver; out is the raw answer.
func auditDetails(ns string) (rows []auditDetail, out string, err error) {
	out, err = kErr("get", "--raw", "/apis/audit.auditops.dev/v1alpha1/namespaces/"+ns+"/auditdetails?"+window+"&page_size=1000")
	if err != nil {
		return nil, out, err
	}
	var body struct {
		Data struct {
			Details []auditDetail `json:"details"`
		} `json:"data"`
		Success bool `json:"success"`
	}
	if err := json.Unmarshal([]byte(out), &body); err != nil {
		return nil, out, err
	}
	if !body.Success {
		return nil, out, fmt.Errorf("audit-details answered success=false")
	}
	return body.Data.Details, out, nil
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; last seen:\n%s", what, last)
}

const window = "start_date=2020-01-01%2000:00:00&end_date=2099-12-31%2023:59:59"

func TestAuditedActionsReachReportsAndEndpoints(t *testing.T) {
	ns := "e2e-" + strconv.FormatInt(time.Now().UnixNano()%1e6, 10)
	k(t, "create", "namespace", ns)
	// Two users who may edit ConfigMaps in the namespace, acting through
	// impersonation. (The aggregated 'edit' role has no rules here: no
	// kube-controller-manager aggregates it.)
	k(t, "create", "role", "configmap-editor", "-n", ns, "--verb=get,list,create,delete", "--resource=configmaps")
	k(t, "create", "rolebinding", "editors", "-n", ns, "--role=configmap-editor", "--user=alice", "--user=bob")
	// RBAC reaches the authorizer through an informer: wait for the binding.
	eventually(t, 30*time.Second, "alice's RoleBinding to take effect", func() (bool, string) {
		out, err := kErr("--as=alice", "create", "configmap", "alice-config", "-n", ns, "--from-literal=k=v")
		return err == nil, out
	})
	k(t, "--as=bob", "create", "configmap", "bob-config", "-n", ns, "--from-literal=k=v")
	k(t, "--as=bob", "delete", "configmap", "alice-config", "-n", ns)
	if out, err := kErr("--as=alice", "get", "secrets", "-n", ns); err == nil {
		t.Fatalf("alice may read secrets? %s", out)
	}

	var details []auditDetail
	eventually(t, 60*time.Second, "the audit webhook to deliver both users' actions", func() (bool, string) {
		var out string
		var err error
		if details, out, err = auditDetails(ns); err != nil {
			return false, out
		}
		seen := map[string]bool{}
		for _, d := range details {
			seen[d.User+" "+d.Method+" "+d.Status] = true
		}
		return seen["alice create success"] && seen["bob create success"] && seen["bob delete success"] && seen["alice list failure"], out
	})

	// The summary counts each user's rows.
	out := k(t, "get", "--raw", "/apis/audit.auditops.dev/v1alpha1/namespaces/"+ns+"/namespaceuserssummaries?"+window)
	var summary struct {
		Data struct {
			Details []struct {
				User   string `json:"user"`
				API    string `json:"api_type"`
				Status string `json:"status"`
				Count  int    `json:"count"`
			} `json:"details"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &summary); err != nil {
		t.Fatalf("summary: %v\n%s", err, out)
	}
	counts := map[string]int{}
	for _, d := range summary.Data.Details {
		counts[d.User+" "+d.API+" "+d.Status] += d.Count
	}
	if counts["alice /configmaps success"] < 1 || counts["bob /configmaps success"] < 2 || counts["alice /secrets failure"] < 1 {
		t.Errorf("summary counts %v; want alice's create, bob's create and delete, alice's denied secrets list\n%s", counts, out)
	}

	// One AuditReport of each type, over the last hour, into ConfigMaps.
	types := map[string]string{
		"NamespaceUsersSummary": "summary", "AuditDetails": "details", "UserAccess": "access", "Users": "users", "UserLogs": "logs",
	}
	for typ, name := range types {
		user := ""
		if typ == "UserLogs" {
			user = "\n  user: bob"
		}
		kApply(t, fmt.Sprintf("apiVersion: reports.auditops.dev/v1alpha1\nkind: AuditReport\nmetadata: {name: %s, namespace: %s}\nspec:\n  type: %s%s\n  range: {last: 1h}\n", name, ns, typ, user))
	}
	for typ, name := range types {
		eventually(t, 60*time.Second, "report "+name+" to succeed", func() (bool, string) {
			phase, _ := kErr("get", "ar", name, "-n", ns, "-o", "jsonpath={.status.phase}")
			return phase == "Succeeded", phase
		})
		key := "report\\.json"
		if typ == "UserAccess" || typ == "Users" {
			key = "report\\.csv"
		}
		data := k(t, "get", "configmap", name+"-0", "-n", ns, "-o", "jsonpath={.data."+key+"}")
		var want []string
		switch typ {
		case "NamespaceUsersSummary":
			want = []string{`"user":"alice"`, `"user":"bob"`, `"api_type":"/configmaps"`}
		case "AuditDetails":
			want = []string{`"requested_user":"alice"`, `"requested_method":"delete"`, `"requested_user":"bob"`}
		case "UserAccess":
			// alice's denied secrets list is an access event.
			want = []string{"MessageKey,EntityKey,EntityId,When,Principal,Message,PreviousState,CurrentState", "secrets"}
		case "Users":
			// editors RoleBinding: a change to a grant.
			want = []string{"MessageKey,EntityKey", "rolebindings", ns + "/editors"}
		case "UserLogs":
			want = []string{`"userId":"bob"`, `"action":"delete"`}
		}
		for _, w := range want {
			if !strings.Contains(data, w) {
				t.Errorf("%s report lacks %q:\n%.2000s", typ, w, data)
			}
		}
	}

	out = k(t, "get", "auditreports", "-n", ns)
	for _, w := range []string{"NAME", "TYPE", "TENANT", "FROM", "TO", "PHASE", "RECORDS", "AGE", "summary", "NamespaceUsersSummary", ns, "Succeeded"} {
		if !strings.Contains(out, w) {
			t.Errorf("kubectl get auditreports lacks %q:\n%s", w, out)
		}
	}
}

func TestDeployManifestsAreValid(t *testing.T) {
	certDir := filepath.Join(root, "config", "apiservice", "generated")
	if _, err := os.Stat(filepath.Join(certDir, "tls.crt")); err != nil {
		gen := exec.Command(filepath.Join(root, "hack", "gen-apiservice-cert.sh"))
		if out, err := gen.CombinedOutput(); err != nil {
			t.Fatalf("hack/gen-apiservice-cert.sh: %v\n%s", err, out)
		}
	}
	for _, variant := range []string{"default", "postgres"} {
		t.Run(variant, func(t *testing.T) {
			rendered := k(t, "kustomize", filepath.Join(root, "config", variant))
			kinds := []string{"CustomResourceDefinition", "Deployment", "APIService", "Service", "ClusterRole", "ServiceAccount", "NetworkPolicy"}
			// The objects of the manager's hardening, as kubectl names them
			// when it applies them.
			applied := []string{"service/auditops-metrics", "networkpolicy.networking.k8s.io/auditops-manager",
				"clusterrole.rbac.authorization.k8s.io/auditops-metrics-reader", "deployment.apps/auditops-manager"}
			if variant == "postgres" {
				kinds = append(kinds, "PodDisruptionBudget")
				applied = append(applied, "poddisruptionbudget.policy/auditops-manager")
			}
			for _, kind := range kinds {
				if !strings.Contains(rendered, "kind: "+kind) {
					t.Errorf("config/%s renders no %s", variant, kind)
				}
			}
			if strings.Contains(rendered, "insecureSkipTLSVerify: true") {
				t.Errorf("config/%s skips TLS verification of the APIService", variant)
			}
			checkManagerHardening(t, variant, rendered)
			out := kApply(t, rendered, "--dry-run=server")
			if strings.Count(out, "(server dry run)") < 10 {
				t.Errorf("dry run applied too little:\n%s", out)
			}
			for _, obj := range applied {
				if !strings.Contains(out, obj+" ") {
					t.Errorf("the dry run did not apply %s:\n%s", obj, out)
				}
			}
		})
	}
	// The cert-manager variant needs cert-manager's CRDs; it must at least render.
	rendered := k(t, "kustomize", filepath.Join(root, "config", "certmanager"))
	if !strings.Contains(rendered, "cert-manager.io/inject-ca-from") {
		t.Errorf("config/certmanager has no inject-ca-from annotation")
	}
}

func TestShutdownLeavesNoProcess(t *testing.T) {
	// Last in this file, so last to run: it stops the shared environment.
	pids, _ := filepath.Glob(filepath.Join(localDir, "run", "*.pid"))
	if len(pids) != 3 {
		t.Fatalf("pid files %v, want etcd, kube-apiserver and manager", pids)
	}
	var procs []int
	for _, p := range pids {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
		procs = append(procs, pid)
	}
	stopEnvironment()
	for _, pid := range procs {
		if alive(pid) {
			t.Errorf("process %d still runs after hack/run-local.sh stop", pid)
		}
	}
}

// alive reports whether pid runs; a zombie waiting for its parent to reap
// it has stopped.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}
