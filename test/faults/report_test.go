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

package faults

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestKillDuringReport is scenario 2 of the fault suite, for ConfigMap and
// Secret outputs (Secrets on SQLite, ConfigMaps on PostgreSQL: the two
// share the shard writer, so each store exercises one kind and the suite's
// time does not double): an AuditDetails report of several gzip shards is generated once
// undisturbed, then again while the manager is SIGKILLed at the fault points
// (after a chunk is stored but before its checkpoint, between two shards,
// after the last write but before the status update) and at random moments.
// Every finished output must equal the undisturbed one byte for byte, match
// its status.outputs[].sha256, and leave no stale shard.
func TestKillDuringReport(t *testing.T) {
	eachStore(t, killDuringReport)
}

func killDuringReport(t *testing.T, st storeUnderTest) {
	n := rounds(t, 1)
	ns := "faults-report-" + st.name
	cfg := configFor(t, st)
	kind := "configMap"
	if st.name == "sqlite" {
		kind = "secret"
	}
	kubectl(t, "create", "namespace", ns)
	p := startManager(t, cfg)
	// Recent events: older ones are the retention loop's to delete.
	base := time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour)
	seedReportEvents(t, ns, base, 6000)
	// A namespace no report reads, wiped at the end too: only the
	// checkpoints the leader publishes (sealkey.Heads) witness it.
	unread := ns + "-unread"
	seedReportEvents(t, unread, base, 50)
	window := [2]time.Time{base.Add(-time.Hour), base.Add(3 * time.Hour)}

	createShardReport(t, ns, "undisturbed", window, kind)
	ref := waitReport(t, ns, "undisturbed")
	want := reportBytes(t, ns, ref)
	if len(ref.Status.Outputs) < 3 {
		t.Fatalf("the reference report has %d shards; the scenario needs several to kill between", len(ref.Status.Outputs))
	}
	t.Logf("%s: reference report: %d bytes in %d %s shards", st.name, len(want), len(ref.Status.Outputs), kind)

	type round struct {
		name, point string
		hit         int
	}
	var plan []round
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	for i := range n {
		plan = append(plan,
			round{fmt.Sprintf("after-append-%d", i), "report-after-append", 2 + rnd.IntN(6)},
			round{fmt.Sprintf("between-shards-%d", i), "configmap-between-shards", 1 + rnd.IntN(3)},
			round{fmt.Sprintf("before-status-%d", i), "report-before-status", 1},
			round{fmt.Sprintf("random-%d", i), "", 0},
		)
	}
	for _, r := range plan {
		p.kill()
		if r.point != "" {
			c := cfg
			c.env = []string{fmt.Sprintf("AUDITOPS_FAULT_KILL_AT=%s:%d", r.point, r.hit)}
			p = startManager(t, c)
			createShardReport(t, ns, r.name, window, kind)
			awaitFaultKill(t, p, ns, r.name, r.point, r.hit)
		} else {
			p = startManager(t, cfg)
			createShardReport(t, ns, r.name, window, kind)
			// Once the report is under way, a little later.
			waitUntil(t, t.Context(), time.Minute, r.name+" to start", func() bool { return reportPhase(t, ns, r.name) != "" })
			time.Sleep(time.Duration(rnd.IntN(400)) * time.Millisecond)
			p.kill()
			// Where the kill landed, for the log: a report that had
			// already finished proves nothing about resuming.
			r.point = "a random moment (the report was " + reportPhase(t, ns, r.name) + ")"
		}
		p = startManager(t, cfg)
		got := waitReport(t, ns, r.name)
		b := reportBytes(t, ns, got)
		if !bytes.Equal(b, want) {
			t.Errorf("%s: the report after a kill (%d bytes) differs from the undisturbed one (%d bytes)", r.name, len(b), len(want))
		}
		t.Logf("%s: killed at %s, resumed: %d bytes in %d shards, byte-identical: %v", r.name, orRandom(r.point), len(b), len(got.Status.Outputs), bytes.Equal(b, want))
	}

	// Every report, killed or not, read a checkpoint of the tenant's log
	// (status.seal: the 6000 seeded events, and the audit events of the
	// cluster's own writes in the namespace, outside the window) and is
	// what that checkpoint's events give: manager verify report, the real
	// binary, exit 0; verify with the reports as witnesses finds nothing.
	names := []string{"undisturbed"}
	for _, r := range plan {
		names = append(names, r.name)
	}
	sealed := kubectl(t, "get", "auditreports", "-n", ns, "-o", "jsonpath={range .items[*]}{.status.seal.size}{\" \"}{end}")
	sizes := strings.Fields(sealed)
	if len(sizes) != len(names) || slices.ContainsFunc(sizes, func(s string) bool { n, err := strconv.Atoi(s); return err != nil || n < 6000 }) {
		t.Errorf("status.seal.size of the reports: %q, want at least 6000 for each of %d", sealed, len(names))
	}
	for _, name := range names {
		if code, out := verifyReport(t, st, ns, name); code != 0 || !strings.Contains(out, "is what checkpoint auditops/"+ns+"@") {
			t.Errorf("manager verify report %s: exit %d\n%s", name, code, out)
		}
	}
	if code, out := runManagerVerify(t, st, "--namespace", ns, "--trusted-from-reports", "--seal-interval", "5m"); code != 0 || !strings.Contains(out, ": 0 problems") {
		t.Errorf("manager verify --trusted-from-reports: exit %d\n%s", code, out)
	}
	// The restarts above sealed the unread namespace at their start.
	checkpoints := func(ns string) int {
		v, err := st.value(t.Context(), "SELECT CAST(count(*) AS TEXT) FROM checkpoints WHERE namespace = '"+ns+"'")
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(v)
		return n
	}
	waitUntil(t, t.Context(), 2*time.Minute, unread+" to be sealed", func() bool { return checkpoints(unread) > 0 })
	if err := p.stop(); err != nil {
		t.Fatalf("stopping the manager: %v", err)
	}
	// An intruder edits one row in the window: the reports no longer
	// verify (the check can fail).
	if err := st.exec(t.Context(), "UPDATE events SET user_name = 'intruder' WHERE namespace = '"+ns+"' AND id = 'seed-000042'"); err != nil {
		t.Fatal(err)
	}
	if code, out := verifyReport(t, st, ns, "undisturbed"); code != 1 || !strings.Contains(out, "differs from checkpoint") {
		t.Errorf("manager verify report after an edit: exit %d, want 1\n%s", code, out)
	}

	// The intruder then wipes the namespace's trail: its events, leaves
	// and checkpoints alike. What is left of the store agrees with itself
	// (verify alone finds nothing); the reports' checkpoints, in etcd, do
	// not: verify with them as witnesses finds the rollback, and a leader
	// started since holds the log to them and does not extend it
	// (auditops_seal_altered_logs_total, AuditopsLogAltered).
	for _, table := range []string{"events", "leaves", "checkpoints"} {
		if err := st.exec(t.Context(), "DELETE FROM "+table+" WHERE namespace IN ('"+ns+"', '"+unread+"')"); err != nil {
			t.Fatal(err)
		}
	}
	if code, out := runManagerVerify(t, st, "--namespace", ns, "--seal-interval", "5m"); code != 0 {
		t.Errorf("manager verify of the wiped namespace without witnesses: exit %d, want 0 (the store agrees with itself)\n%s", code, out)
	}
	if code, out := runManagerVerify(t, st, "--namespace", ns, "--trusted-from-reports", "--seal-interval", "5m"); code != 1 || !strings.Contains(out, `"problem":"rollback"`) {
		t.Errorf("manager verify --trusted-from-reports of the wiped namespace: exit %d, want 1 with a rollback\n%s", code, out)
	}
	// No report read the other wiped namespace; the checkpoint the
	// stopped leader published (ConfigMap auditops-seal-heads) is what
	// shows its rollback.
	if code, out := runManagerVerify(t, st, "--namespace", unread, "--trusted-from-reports", "--seal-interval", "5m"); code != 0 {
		t.Errorf("manager verify --trusted-from-reports of the wiped namespace no report read: exit %d, want 0 (no witness)\n%s", code, out)
	}
	if code, out := runManagerVerify(t, st, "--namespace", unread, "--trusted-from-heads", "--seal-interval", "5m"); code != 1 || !strings.Contains(out, `"problem":"rollback"`) {
		t.Errorf("manager verify --trusted-from-heads of the wiped namespace no report read: exit %d, want 1 with a rollback\n%s", code, out)
	}
	c := cfg
	c.extraArgs = append(slices.Clone(cfg.extraArgs), "--seal-interval=1s")
	p = startManager(t, c)
	seedReportEvents(t, ns, base, 1)
	seedReportEvents(t, unread, base, 1)
	altered := func() float64 {
		m, err := scrape(p)
		if err != nil {
			return -1
		}
		return m["auditops_seal_altered_logs_total"]
	}
	waitUntil(t, t.Context(), time.Minute, "the leader to refuse the wiped log", func() bool { return altered() >= 1 })
	// Two more seal rounds, each of which reads every log with unsealed
	// leaves: neither wiped log got a checkpoint.
	from := altered()
	waitUntil(t, t.Context(), time.Minute, "two more seal rounds", func() bool { return altered() >= from+2 })
	for _, wiped := range []string{ns, unread} {
		if n := checkpoints(wiped); n != 0 {
			t.Errorf("the leader signed %d checkpoints of the wiped log of %s", n, wiped)
		}
	}
	if err := p.stop(); err != nil {
		t.Fatalf("stopping the manager: %v", err)
	}
}

// verifyReport runs the real manager verify report on report name.
func verifyReport(t *testing.T, st storeUnderTest, ns, name string) (int, string) {
	t.Helper()
	return runManagerCommand(t, st, []string{"verify", "report"}, "--namespace", ns, "--name", name)
}

// runManagerVerify runs the real manager verify with args on st.
func runManagerVerify(t *testing.T, st storeUnderTest, args ...string) (int, string) {
	t.Helper()
	return runManagerCommand(t, st, []string{"verify"}, args...)
}

// runManagerCommand runs the real manager's command (its words, then
// st's --store and --token-key-file, then args) with the cluster's
// kubeconfig; it returns the exit code and the output.
func runManagerCommand(t *testing.T, st storeUnderTest, command []string, args ...string) (int, string) {
	t.Helper()
	full := append(slices.Clone(command), "--store", st.url)
	if st.tokenKey != "" {
		full = append(full, "--token-key-file", st.tokenKey)
	}
	cmd := exec.Command(env.managerBin, append(full, args...)...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+filepath.Join(env.localDir, "kubeconfig"))
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &exit):
		return exit.ExitCode(), string(out)
	}
	t.Fatalf("manager %v: %v\n%s", full, err, out)
	return 0, ""
}

// awaitFaultKill waits for the manager to die at the fault point while it
// generates report name; it fails the test if the report finishes first.
func awaitFaultKill(t *testing.T, p *managerProc, ns, name, point string, hit int) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); ; {
		select {
		case <-p.exited:
			if !p.diedOfSIGKILL() {
				t.Fatalf("%s: the manager exited without the fault point: %v", name, p.err)
			}
			return
		case <-time.After(500 * time.Millisecond):
			if reportPhase(t, ns, name) == "Succeeded" || time.Now().After(deadline) {
				t.Fatalf("%s: the report finished (or 2 minutes passed) without hitting the fault point %s:%d", name, point, hit)
			}
		}
	}
}

func orRandom(point string) string {
	if point == "" {
		return "a random moment"
	}
	return point
}

// seedReportEvents stores n events with hard-to-compress payloads, so the
// report needs several gzip shards.
func seedReportEvents(t *testing.T, ns string, base time.Time, n int) {
	t.Helper()
	c := ingestClient()
	rnd := rand.New(rand.NewPCG(42, 42))
	blob := make([]byte, 800)
	for start := 0; start < n; start += 200 {
		var items []map[string]any
		for i := start; i < min(n, start+200); i++ {
			for j := range blob {
				blob[j] = byte(rnd.UintN(256))
			}
			items = append(items, map[string]any{
				"id": fmt.Sprintf("seed-%06d", i), "time": base.Add(time.Duration(i) * time.Second).Format(time.RFC3339Nano),
				"namespace": ns, "user": fmt.Sprintf("user-%d", i%7), "status": "success", "method": "mask", "api": "/mask",
				"request": map[string]any{"id": fmt.Sprintf("seed-%06d", i), "blob": hex.EncodeToString(blob)},
			})
		}
		body, _ := json.Marshal(items)
		code, answer, err := post(t.Context(), c, eventsPath, body)
		if err != nil || code != http.StatusOK {
			t.Fatalf("seeding events: %d %s %v", code, answer, err)
		}
	}
}

// auditReport is the part of an AuditReport the scenario reads.
type auditReport struct {
	Status struct {
		Phase   string `json:"phase"`
		Outputs []struct {
			URL       string `json:"url"`
			ConfigMap string `json:"configMap"`
			Secret    string `json:"secret"`
			Key       string `json:"key"`
			Bytes     int64  `json:"bytes"`
			SHA256    string `json:"sha256"`
		} `json:"outputs"`
		Conditions []struct {
			Type, Status, Reason, Message string
		} `json:"conditions"`
	} `json:"status"`
}

func createReport(t *testing.T, ns, name string, window [2]time.Time) {
	t.Helper()
	createShardReport(t, ns, name, window, "configMap")
}

// createShardReport creates a report to kind (configMap or secret) shards.
func createShardReport(t *testing.T, ns, name string, window [2]time.Time, kind string) {
	t.Helper()
	createReportTo(t, ns, name, window, fmt.Sprintf("%s: {namePrefix: %s}", kind, name), 100)
}

// createReportTo creates an AuditDetails report over window with the given
// spec.output (one line of YAML), reading pageSize rows at a time.
func createReportTo(t *testing.T, ns, name string, window [2]time.Time, output string, pageSize int) {
	t.Helper()
	manifest := fmt.Sprintf(`apiVersion: reports.auditops.dev/v1alpha1
kind: AuditReport
metadata: {name: %s, namespace: %s}
spec:
  type: AuditDetails
  range: {from: %q, to: %q}
  pageSize: %d
  output:
    %s
`, name, ns, window[0].Format(time.RFC3339), window[1].Format(time.RFC3339), pageSize, output)
	cmd := kubectlCmd("apply", "-f", "-")
	cmd.Stdin = strings.NewReader(manifest)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("creating AuditReport %s: %v\n%s", name, err, out)
	}
}

func runReport(t *testing.T, ns, name string, window [2]time.Time) auditReport {
	t.Helper()
	createReport(t, ns, name, window)
	return waitReport(t, ns, name)
}

// reportCondition returns the report's condition of type typ (zero when absent).
func reportCondition(t *testing.T, ns, name, typ string) (c struct{ Type, Status, Reason, Message string }) {
	t.Helper()
	var rep auditReport
	if err := json.Unmarshal([]byte(kubectl(t, "get", "auditreport", "-n", ns, name, "-o", "json")), &rep); err != nil {
		t.Fatal(err)
	}
	for _, x := range rep.Status.Conditions {
		if x.Type == typ {
			return x
		}
	}
	return c
}

func reportPhase(t *testing.T, ns, name string) string {
	t.Helper()
	var rep auditReport
	if err := json.Unmarshal([]byte(kubectl(t, "get", "auditreport", "-n", ns, name, "-o", "json")), &rep); err != nil {
		t.Fatal(err)
	}
	return rep.Status.Phase
}

// waitReport waits for the report to succeed.
func waitReport(t *testing.T, ns, name string) auditReport {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var rep auditReport
		if err := json.Unmarshal([]byte(kubectl(t, "get", "auditreport", "-n", ns, name, "-o", "json")), &rep); err != nil {
			t.Fatal(err)
		}
		switch rep.Status.Phase {
		case "Succeeded":
			return rep
		case "Failed":
			t.Fatalf("AuditReport %s failed: %+v", name, rep.Status.Conditions)
		}
		if time.Now().After(deadline) {
			t.Fatalf("AuditReport %s did not succeed within 3 minutes: %+v", name, rep.Status)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// reportBytes reassembles the report's plain bytes from its ConfigMaps or Secrets,
// checks them against status.outputs, and checks that no other shard of
// the report is left.
func reportBytes(t *testing.T, ns string, rep auditReport) []byte {
	t.Helper()
	var joined []byte
	var names []string
	kind := "configmaps"
	for _, o := range rep.Status.Outputs {
		name := o.ConfigMap
		if o.Secret != "" {
			kind, name = "secrets", o.Secret
		}
		// A Secret's data is base64 in JSON, which []byte decodes.
		var obj struct {
			Data       map[string]json.RawMessage `json:"data"`
			BinaryData map[string][]byte          `json:"binaryData"`
		}
		if err := json.Unmarshal([]byte(kubectl(t, "get", kind, "-n", ns, name, "-o", "json")), &obj); err != nil {
			t.Fatal(err)
		}
		var v []byte
		if b, ok := obj.BinaryData[o.Key]; ok {
			v = b
		} else if kind == "secrets" {
			if err := json.Unmarshal(obj.Data[o.Key], &v); err != nil {
				t.Fatalf("Secret %s data[%s]: %v", name, o.Key, err)
			}
		} else {
			var str string
			if err := json.Unmarshal(obj.Data[o.Key], &str); err != nil {
				t.Fatalf("ConfigMap %s data[%s]: %v", name, o.Key, err)
			}
			v = []byte(str)
		}
		joined = append(joined, v...)
		names = append(names, name)
	}
	plain := joined
	if len(rep.Status.Outputs) > 0 && strings.HasSuffix(rep.Status.Outputs[0].Key, ".gz") {
		zr, err := gzip.NewReader(bytes.NewReader(joined))
		if err != nil {
			t.Fatalf("gunzip: %v", err)
		}
		if plain, err = io.ReadAll(zr); err != nil {
			t.Fatalf("gunzip: %v", err)
		}
	}
	sum := sha256.Sum256(plain)
	for _, o := range rep.Status.Outputs {
		if o.SHA256 != hex.EncodeToString(sum[:]) || o.Bytes != int64(len(plain)) {
			t.Errorf("status.outputs says %d bytes, sha256 %s; the %s hold %d bytes, sha256 %x", o.Bytes, o.SHA256, kind, len(plain), sum)
		}
	}
	// Every ConfigMap or Secret of the report's prefix must be one the
	// status lists.
	prefix := strings.TrimSuffix(names[0], "-0") + "-"
	var left []string
	for _, name := range strings.Fields(kubectl(t, "get", kind, "-n", ns, "-o", "jsonpath={.items[*].metadata.name}")) {
		if strings.HasPrefix(name, prefix) && !slices.Contains(names, name) {
			left = append(left, name)
		}
	}
	if len(left) > 0 {
		t.Errorf("stale shards left beside %v: %v", names, left)
	}
	return plain
}

func kubectlCmd(args ...string) *exec.Cmd {
	bin := filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl")
	return exec.Command(bin, append([]string{"--kubeconfig", filepath.Join(env.localDir, "kubeconfig")}, args...)...)
}

func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	var stderr bytes.Buffer
	cmd := kubectlCmd(args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}
