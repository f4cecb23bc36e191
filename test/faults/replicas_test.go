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
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	// leaseName and leaseNamespace are the manager's leader election Lease
	// (main.go's LeaderElectionID) and where the replicas keep it.
	leaseName      = "auditops.reports.auditops.dev"
	leaseNamespace = "auditops-system"
	// masterSeries is controller-runtime's gauge of holding that Lease.
	masterSeries = `leader_election_master_status{name="` + leaseName + `"}`
	// reconcileSeries are the AuditReport controllers' reconciles.
	reconcileSeries = `controller_runtime_reconcile_total{controller="auditreport`
	// sealCheckpointsSeries counts the checkpoints a replica's seal loop
	// signed: only the leader's may.
	sealCheckpointsSeries = "auditops_seal_checkpoints_total"
	// retryPeriod is controller-runtime's default: how often a candidate
	// looks at the Lease (with up to 1.2x jitter added) and the leader renews it.
	retryPeriod = 2 * time.Second
)

// TestReplicasFailover is scenario 6 of the fault suite: three managers
// with leader election on one durable PostgreSQL, each on its own ports,
// behind one address that hands each new connection to the next replica
// that accepts it (what a Service does; the senders, kube-apiserver's audit
// webhook and the APIService all use it). Webhook and generic senders post
// throughout. Then:
//
//   - the leader, found by its metrics (leader_election_master_status) and
//     checked against the Lease's holder, is SIGKILLed in the middle of a
//     multi-shard report: another replica must take the Lease no sooner
//     than its duration (15 s, controller-runtime's default: main.go has
//     no flag for it) after the last renewal, and within that duration and
//     two of the candidates' retry periods of the kill, and resume from
//     status.checkpoint (its Resumed event names the checkpoint; the
//     checkpoint never goes back or is cleared);
//   - all three are restarted in turn with SIGTERM, the leader first, while
//     three reports generate: the same.
//
// Every report must equal an undisturbed one byte for byte, no replica may
// reconcile AuditReports without holding the Lease, every replica must
// have taken events, and every acknowledged event must be stored once.
// The failover times are logged. FAULT_ROUNDS=N runs N kill rounds.
//
// FAULT_REPLICAS_SABOTAGE shows that the test can fail: no-leader-election
// starts the replicas without --leader-elect (every replica generates
// every report), own-token-keys gives each its own page-token key (a new
// leader cannot read the old one's checkpoint and starts the report over).
func TestReplicasFailover(t *testing.T) {
	n := rounds(t, 1)
	sabotage := os.Getenv("FAULT_REPLICAS_SABOTAGE")
	switch sabotage {
	case "", "no-leader-election", "own-token-keys":
	default:
		t.Fatalf("FAULT_REPLICAS_SABOTAGE=%q: want no-leader-election or own-token-keys", sabotage)
	}
	pg, _ := postgresOwn(t)
	st := pg.storeUnderTest
	ns := "faults-replicas"
	kubectl(t, "create", "namespace", ns)

	rs := make([]*replica, 3)
	for i := range rs {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		probe, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		cfg := managerConfig{store: st.url, tokenKeyFile: st.tokenKey, logPath: filepath.Join(t.TempDir(), fmt.Sprintf("manager-%d.log", i)),
			securePort: port, probes: "127.0.0.1:" + strconv.Itoa(probe),
			// Day partitions, made by the leader's upkeep: the reports and
			// exactly-once checks below read through them.
			extraArgs: []string{"--store-day-partitions"}}
		if sabotage != "no-leader-election" {
			cfg.extraArgs = append(cfg.extraArgs, "--leader-elect", "--leader-election-namespace", leaseNamespace)
		}
		if sabotage == "own-token-keys" {
			cfg.tokenKeyFile = filepath.Join(t.TempDir(), fmt.Sprintf("token-%d.key", i))
		}
		rs[i] = &replica{name: fmt.Sprintf("r%d", i), cfg: cfg}
		t.Cleanup(func() {
			if t.Failed() {
				t.Log(tail(cfg.logPath))
			}
		})
	}
	svc := startService(t, rs)
	began := time.Now()
	var wg sync.WaitGroup
	for _, r := range rs {
		wg.Add(1)
		go func() { defer wg.Done(); r.p = startManagerNoWait(t, r.cfg) }()
	}
	wg.Wait()
	for _, r := range rs {
		ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
		err := waitIngestReady(ctx, r.p)
		cancel()
		if err != nil {
			// Whether a new connection fares better than the kept-alive one.
			code, answer, perr := postTo(t.Context(), ingestClient(), r.p.port, kubeAuditPath, []byte(`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[]}`))
			t.Fatalf("%s did not become ready: %v; on a new connection: %d %.200s %v", r.name, err, code, answer, perr)
		}
	}
	t.Logf("three replicas ready in %s", time.Since(began).Round(time.Millisecond))
	reports := kubectlWatch(t, "get", "auditreports", "-n", ns)

	// A fixed past the reports read, while the senders add to the present.
	base := time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour)
	window := [2]time.Time{base.Add(-time.Hour), base.Add(3 * time.Hour)}
	// 9000 events, 16 MB of report: enough that the rolling restart's
	// reports are not all done when the leader's graceful shutdown ends.
	seedReportEvents(t, ns, base, 9000)
	began = time.Now()
	createShardReport(t, ns, "undisturbed", window, "configMap")
	sc := &replicaScenario{rs: rs, ns: ns, window: window, reports: reports,
		rnd: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 6))}
	sc.waitRecords(t, t.Context(), "undisturbed", 1)
	// Under way: only one replica may be at it.
	if checkOnlyLeaderReconciles(t, rs); t.Failed() {
		t.FailNow()
	}
	ref := waitReport(t, ns, "undisturbed")
	want := reportBytes(t, ns, ref)
	total := reports.last("undisturbed").records
	if len(ref.Status.Outputs) < 3 {
		t.Fatalf("the reference report has %d shards; the scenario needs several", len(ref.Status.Outputs))
	}
	t.Logf("reference report: %d records, %d bytes in %d ConfigMap shards, %d checkpoints, generated in %s",
		total, len(want), len(ref.Status.Outputs), len(reports.checkpoints("undisturbed")), time.Since(began).Round(time.Millisecond))
	checkOnlyLeaderReconciles(t, rs)
	leader := waitLeader(t, rs, 10*time.Second)
	lease := readLease(t)
	t.Logf("%s leads: Lease %s/%s held by %s, leaseDurationSeconds %d, %d transitions",
		rs[leader].name, leaseNamespace, leaseName, lease.holder, int(lease.duration.Seconds()), lease.transitions)
	leases := kubectlWatch(t, "get", "lease", "-n", leaseNamespace, leaseName)
	checkDayPartitions(t, st.url)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	senders := []*sender{
		{name: "webhook-1", ns: ns, webhook: true, size: 100},
		{name: "webhook-2", ns: ns, webhook: true, size: 100},
		{name: "webhook-3", ns: ns, webhook: true, size: 100},
		{name: "webhook-4", ns: ns, webhook: true, size: 100},
		{name: "events-1", ns: ns, size: 50},
		{name: "events-2", ns: ns, size: 50},
	}
	done := make(chan struct{})
	errs := make(chan error, len(senders))
	startSenders(ctx, cancel, &wg, done, errs, senders)

	sc.want, sc.total, sc.leases = want, total, leases
	for i := range n {
		sc.killLeader(t, ctx, fmt.Sprintf("failover-%d", i))
		checkOnlyLeaderReconciles(t, rs)
	}
	sc.rollingRestart(t, ctx, "rolling")
	checkOnlyLeaderReconciles(t, rs)

	close(done)
	waitSenders(t, &wg, senders)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, r := range rs {
		r.count()
		if err := r.p.stop(); err != nil {
			t.Errorf("stopping %s: %v", r.name, err)
		}
	}
	rows, err := st.rows(t.Context(), ns)
	if err != nil {
		t.Fatal(err)
	}
	acked, lost, doubled := checkExactlyOnce(t, senders, sentBy(senders, rows))
	// The log stayed one log through every handover: each report pinned
	// the checkpoint its leader of the moment sealed, and the store's log
	// extends all of them (else rollback), with no other problem.
	if code, out := runManagerVerify(t, st, "--namespace", ns, "--trusted-from-reports", "--seal-interval", "5m"); code != 0 || !strings.Contains(out, ": 0 problems") {
		t.Errorf("manager verify --trusted-from-reports after the handovers: exit %d\n%s", code, out)
	} else {
		t.Logf("manager verify after the handovers: %s", strings.TrimSpace(out))
	}
	var spread []string
	for i, r := range rs {
		spread = append(spread, fmt.Sprintf("%s %.0f events over %d connections", r.name, r.stored, svc.connections(i)))
		if r.stored == 0 {
			t.Errorf("%s stored no event: the senders did not reach every replica", r.name)
		}
	}
	t.Logf("%d events acknowledged (%d batches, %d retried), %d lost, %d doubled; stored per replica (with the seeding and kube-apiserver's own audit): %s",
		acked, batchesOf(senders), retriesOf(senders), lost, doubled, strings.Join(spread, ", "))
}

// replica is one of the managers; its process changes at each restart.
type replica struct {
	name string
	cfg  managerConfig
	p    *managerProc
	// stored counts the events its earlier processes stored (metrics
	// start again at zero with each process).
	stored float64
}

// count adds what the running process has stored to r.stored; called just
// before the process is stopped or killed.
func (r *replica) count() {
	m, err := scrape(r.p)
	if err != nil {
		return
	}
	r.stored += sumSeries(m, `auditops_ingest_events_total{`, `result="stored"`)
}

// leads says whether r's running process holds the Lease, by its metrics.
func (r *replica) leads() bool {
	select {
	case <-r.p.exited:
		return false
	default:
	}
	m, err := scrape(r.p)
	return err == nil && m[masterSeries] == 1
}

// leaders returns the replicas that say they lead.
func leaders(rs []*replica) []int {
	var out []int
	for i, r := range rs {
		if r.leads() {
			out = append(out, i)
		}
	}
	return out
}

// waitLeader waits for exactly one replica to lead and returns it; two at
// once fail the test.
func waitLeader(t *testing.T, rs []*replica, limit time.Duration) int {
	t.Helper()
	for deadline := time.Now().Add(limit); ; time.Sleep(100 * time.Millisecond) {
		switch ls := leaders(rs); len(ls) {
		case 1:
			return ls[0]
		case 0:
			if time.Now().After(deadline) {
				t.Fatalf("no replica holds the Lease %s after %s", leaseName, limit)
			}
		default:
			t.Fatalf("replicas %v all say they hold the Lease", ls)
		}
	}
}

// checkOnlyLeaderReconciles fails the test when a replica that does not
// hold the Lease has reconciled AuditReports. A process that lost the
// Lease exits, so a running non-leader never held it.
func checkOnlyLeaderReconciles(t *testing.T, rs []*replica) {
	t.Helper()
	for _, r := range rs {
		m, err := scrape(r.p)
		if err != nil {
			t.Errorf("%s: %v", r.name, err)
			continue
		}
		if n := sumSeries(m, reconcileSeries); m[masterSeries] != 1 && n > 0 {
			t.Errorf("%s reconciled AuditReports (%.0f reconciles) without holding the Lease: more than one replica generates reports", r.name, n)
		}
		if n := m[sealCheckpointsSeries]; m[masterSeries] != 1 && n > 0 {
			t.Errorf("%s signed %.0f checkpoints without holding the Lease: more than one replica seals", r.name, n)
		}
	}
}

// replicaScenario is what the rounds of TestReplicasFailover share.
type replicaScenario struct {
	rs              []*replica
	ns              string
	window          [2]time.Time
	want            []byte
	total           int64
	reports, leases *kubeWatch
	rnd             *rand.Rand
}

// killLeader SIGKILLs the leader once report name is between 20 and 70%
// done, and checks the takeover, the resume and the bytes.
func (sc *replicaScenario) killLeader(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	li := waitLeader(t, sc.rs, 10*time.Second)
	old := sc.rs[li]
	before := readLease(t)
	created := time.Now()
	createShardReport(t, sc.ns, name, sc.window, "configMap")
	sc.waitRecords(t, ctx, name, int64(float64(sc.total)*(0.2+0.5*sc.rnd.Float64())))
	if !old.leads() {
		t.Fatalf("%s: %s no longer leads", name, old.name)
	}
	old.count()
	old.p.kill()
	killed := time.Now()
	// Nobody writes the report now, until a new leader does.
	at := sc.reportNow(t, name)
	if at.phase != "Running" || at.cpRecords <= 0 {
		t.Fatalf("%s: the kill did not land in the middle of the report (phase %q, checkpoint at %d records)", name, at.phase, at.cpRecords)
	}

	// Survivors poll the Lease every retryPeriod (x2.2 at most, with
	// jitter): one sees the last renewal, and takes over once
	// leaseDuration has passed since it saw it.
	bound := before.duration + 2*time.Duration(2.2*float64(retryPeriod))
	var ni int
	for deadline := killed.Add(bound + 10*time.Second); ; time.Sleep(50 * time.Millisecond) {
		ls := leaders(sc.rs)
		if len(ls) > 1 {
			t.Fatalf("%s: replicas %v all say they hold the Lease", name, ls)
		}
		if len(ls) == 1 {
			ni = ls[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no replica took the Lease within %s of the kill (lease duration %s)", name, time.Since(killed).Round(time.Millisecond), before.duration)
		}
	}
	sawLeader := time.Since(killed)
	after := readLease(t)
	lastRenew := sc.leases.lastRenewBy(t, before.holder)
	takeover := after.acquire.Sub(killed)
	if after.holder == before.holder || after.transitions != before.transitions+1 {
		t.Errorf("%s: the Lease went from %s (%d transitions) to %s (%d transitions), want a new holder", name, before.holder, before.transitions, after.holder, after.transitions)
	}
	if early := after.acquire.Sub(lastRenew); early < before.duration {
		t.Errorf("%s: %s took the Lease %s after %s last renewed it, before its %s ran out: two leaders at once", name, after.holder, early, before.holder, before.duration)
	}
	if takeover > bound+2*time.Second {
		t.Errorf("%s: the Lease was taken %s after the kill, more than its duration %s and two retry periods allow", name, takeover.Round(time.Millisecond), before.duration)
	}

	got := waitReport(t, sc.ns, name)
	b := reportBytes(t, sc.ns, got)
	moved, resumed := sc.checkResumed(t, name, at)
	// The new leader says where it resumed.
	said := fmt.Sprintf("resuming after %d records", at.cpRecords)
	if notes := sc.resumedEvents(t, name); !slices.ContainsFunc(notes, func(n string) bool { return strings.HasPrefix(n, said) }) {
		t.Errorf("%s: no Resumed event %q, only %q", name, said, notes)
	}
	if !bytes.Equal(b, sc.want) {
		t.Errorf("%s: the report after the failover (%d bytes) differs from the undisturbed one (%d bytes)", name, len(b), len(sc.want))
	}
	t.Logf("%s: SIGKILLed leader %s (%s) %s after the report was created, at checkpoint %d/%d records; %s took the Lease (%s) %s after the kill (last renewal %s before it; lease duration %s, bound %s), its metrics said so after %s; the report's status moved again after %s, first new checkpoint after %s (event: %s); %d bytes in %d shards in %s, byte-identical: %v",
		name, old.name, before.holder, killed.Sub(created).Round(time.Millisecond), at.cpRecords, sc.total, sc.rs[ni].name, after.holder, takeover.Round(time.Millisecond),
		killed.Sub(lastRenew).Round(time.Millisecond), before.duration, bound, sawLeader.Round(time.Millisecond),
		elapsed(killed, moved), elapsed(killed, resumed), said, len(b), len(got.Status.Outputs),
		time.Since(created).Round(time.Millisecond), bytes.Equal(b, sc.want))
	old.p = startManager(t, old.cfg)
}

// rollingRestart stops each replica with SIGTERM and starts it again, the
// leader first (once one of three reports created at once has a
// checkpoint), then the others; the reports must go on from their
// checkpoints and finish byte-identical. (Three, as the controller's two
// workers keep generating while the leader's API server shuts down, about
// a second, before its reconciles end: one report alone can finish in that
// second.)
func (sc *replicaScenario) rollingRestart(t *testing.T, ctx context.Context, prefix string) {
	t.Helper()
	li := waitLeader(t, sc.rs, 10*time.Second)
	holders := map[int]string{li: readLease(t).holder}
	names := []string{prefix + "-0", prefix + "-1", prefix + "-2"}
	created := time.Now()
	for _, name := range names {
		createShardReport(t, sc.ns, name, sc.window, "configMap")
	}
	waitUntil(t, ctx, 2*time.Minute, "a checkpoint of "+prefix, func() bool {
		for _, name := range names {
			if sc.reports.last(name).cpRecords > 0 {
				return true
			}
		}
		return false
	})
	order := []int{li}
	for i := range sc.rs {
		if i != li {
			order = append(order, i)
		}
	}
	type stop struct {
		at     time.Time
		holder string
		states map[string]reportSeen
	}
	var leaderStops []stop
	began := time.Now()
	for _, i := range order {
		r := sc.rs[i]
		lead := r.leads()
		holder, known := holders[i]
		if lead && !known {
			holder = readLease(t).holder
		}
		r.count()
		stopped := time.Now()
		if err := r.p.stop(); err != nil {
			t.Errorf("%s: SIGTERM: %v", r.name, err)
		}
		took := time.Since(stopped)
		states := map[string]reportSeen{}
		var at []string
		for _, name := range names {
			s := sc.reportNow(t, name)
			states[name] = s
			phase := s.phase
			if phase == "" {
				phase = "not started"
			}
			at = append(at, fmt.Sprintf("%s %s at %d", name, phase, s.cpRecords))
		}
		if lead {
			leaderStops = append(leaderStops, stop{stopped, holder, states})
		}
		r.p = startManager(t, r.cfg)
		t.Logf("%s: %s (leader: %v) stopped in %s by SIGTERM with the reports %s/%d records, ready again %s later",
			prefix, r.name, lead, took.Round(time.Millisecond), strings.Join(at, ", "), sc.total, time.Since(stopped).Round(time.Millisecond))
	}
	rolled := time.Since(began)
	midway := 0
	if len(leaderStops) > 0 {
		for _, s := range leaderStops[0].states {
			if s.phase == "Running" && s.cpRecords > 0 {
				midway++
			}
		}
	}
	if midway == 0 {
		t.Errorf("%s: no report was under way, with a checkpoint, when the leader stopped: the rolling restart proved nothing about the handover", prefix)
	}
	identical := 0
	for _, name := range names {
		got := waitReport(t, sc.ns, name)
		if b := reportBytes(t, sc.ns, got); !bytes.Equal(b, sc.want) {
			t.Errorf("%s: the report after the rolling restart (%d bytes) differs from the undisturbed one (%d bytes)", name, len(b), len(sc.want))
		} else {
			identical++
		}
	}
	// Each stopped leader's handover: the next holder and when it took
	// the Lease, and when each report it left moved again.
	for _, s := range leaderStops {
		next, ok := sc.leases.nextHolder(t, s.holder, s.at)
		if !ok {
			t.Errorf("%s: nobody took the Lease after %s was stopped", prefix, s.holder)
			continue
		}
		var resumes []string
		for _, name := range names {
			if st := s.states[name]; st.phase == "Running" {
				moved, resumed := sc.checkResumed(t, name, st)
				resumes = append(resumes, fmt.Sprintf("%s (at %d records) moved again after %s, first new checkpoint after %s",
					name, st.cpRecords, elapsed(s.at, moved), elapsed(s.at, resumed)))
			}
		}
		t.Logf("%s: leader %s stopped (SIGTERM releases the Lease once its controllers stopped); %s took it %s later; %s",
			prefix, s.holder, next.holder, next.acquire.Sub(s.at).Round(time.Millisecond), strings.Join(resumes, "; "))
	}
	t.Logf("%s: rolling restart of 3 replicas in %s; %d reports done in %s, %d of them byte-identical",
		prefix, rolled.Round(time.Millisecond), len(names), time.Since(created).Round(time.Millisecond), identical)
}

// waitRecords waits for report name to checkpoint target records, or to
// finish, which the caller finds too early.
func (sc *replicaScenario) waitRecords(t *testing.T, ctx context.Context, name string, target int64) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); ; {
		if s := sc.reports.last(name); s.phase == "Succeeded" || s.cpRecords >= target {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not reach %d records within 2 minutes", name, target)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", name, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// resumedEvents returns the notes of report name's Resumed events.
func (sc *replicaScenario) resumedEvents(t *testing.T, name string) []string {
	t.Helper()
	var list struct {
		Items []struct{ Message string }
	}
	raw := kubectl(t, "get", "events", "-n", sc.ns, "--field-selector", "involvedObject.name="+name+",reason=Resumed", "-o", "json")
	if err := json.Unmarshal([]byte(raw), &list); err != nil {
		t.Fatal(err)
	}
	var notes []string
	for _, e := range list.Items {
		notes = append(notes, e.Message)
	}
	return notes
}

// elapsed is how long after from to came, or "never".
func elapsed(from, to time.Time) string {
	if to.IsZero() {
		return "never"
	}
	return to.Sub(from).Round(time.Millisecond).String()
}

// reportNow reads the report's status from kube-apiserver.
func (sc *replicaScenario) reportNow(t *testing.T, name string) reportSeen {
	t.Helper()
	return parseReport([]byte(kubectl(t, "get", "auditreport", "-n", sc.ns, name, "-o", "json")), time.Now())
}

// checkResumed checks, over every status of report name that the watch
// saw after from (the status when its generator went away), that the next
// generator went on from from's checkpoint: no checkpoint before from's,
// none cleared while the report ran (a report that starts over clears
// it), and a first new one past it. It returns when the status first
// changed and when the first new checkpoint came.
func (sc *replicaScenario) checkResumed(t *testing.T, name string, from reportSeen) (moved, resumed time.Time) {
	t.Helper()
	after := false
	for _, s := range sc.reports.states(name) {
		if s.rv == from.rv {
			after = true
			continue
		}
		if !after {
			continue
		}
		if moved.IsZero() {
			moved = s.at
		}
		if s.phase == "Succeeded" {
			if resumed.IsZero() {
				resumed = s.at
			}
			break
		}
		switch {
		case s.cpRecords < 0 && from.cpRecords >= 0:
			t.Errorf("%s: after the leader went, the checkpoint was cleared (phase %s, %d records): the report started over", name, s.phase, s.records)
			return moved, resumed
		case s.cpRecords < from.cpRecords:
			t.Errorf("%s: after the leader went at %d records, a checkpoint at %d: the report started over", name, from.cpRecords, s.cpRecords)
			return moved, resumed
		case s.cpRecords > from.cpRecords && resumed.IsZero():
			resumed = s.at
		}
	}
	if !after || moved.IsZero() {
		t.Errorf("%s: the watch did not see the status at the leader's end (resourceVersion %s) and a later one", name, from.rv)
	}
	return moved, resumed
}

// reportSeen is one state of a report.
type reportSeen struct {
	at         time.Time // when it was seen
	name, rv   string
	phase      string
	records    int64
	cpRecords  int64 // the checkpoint's records; -1 without one
	checkpoint string
}

func parseReport(raw []byte, at time.Time) reportSeen {
	var o struct {
		Metadata struct{ Name, ResourceVersion string }
		Status   struct {
			Phase      string
			Records    int64
			Checkpoint string
		}
	}
	if err := json.Unmarshal(raw, &o); err != nil {
		return reportSeen{at: at, cpRecords: -1}
	}
	s := reportSeen{at: at, name: o.Metadata.Name, rv: o.Metadata.ResourceVersion, phase: o.Status.Phase,
		records: o.Status.Records, checkpoint: o.Status.Checkpoint, cpRecords: -1}
	if s.checkpoint != "" {
		var cp struct {
			Cursor struct{ Records int64 }
		}
		if json.Unmarshal([]byte(s.checkpoint), &cp) == nil {
			s.cpRecords = cp.Cursor.Records
		}
	}
	return s
}

// leaseSeen is one state of the leader election Lease.
type leaseSeen struct {
	at             time.Time
	holder         string
	acquire, renew time.Time
	duration       time.Duration
	transitions    int
}

func parseLease(raw []byte, at time.Time) (leaseSeen, error) {
	var o struct {
		Spec struct {
			HolderIdentity       string
			LeaseDurationSeconds int
			AcquireTime          time.Time
			RenewTime            time.Time
			LeaseTransitions     int
		}
	}
	if err := json.Unmarshal(raw, &o); err != nil {
		return leaseSeen{}, err
	}
	return leaseSeen{at: at, holder: o.Spec.HolderIdentity, acquire: o.Spec.AcquireTime, renew: o.Spec.RenewTime,
		duration: time.Duration(o.Spec.LeaseDurationSeconds) * time.Second, transitions: o.Spec.LeaseTransitions}, nil
}

func readLease(t *testing.T) leaseSeen {
	t.Helper()
	l, err := parseLease([]byte(kubectl(t, "get", "lease", "-n", leaseNamespace, leaseName, "-o", "json")), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// kubeWatch is a 'kubectl get --watch -o json', every object it printed
// kept with the time it came.
type kubeWatch struct {
	mu   sync.Mutex
	seen []watched
}

type watched struct {
	at  time.Time
	raw json.RawMessage
}

func kubectlWatch(t *testing.T, args ...string) *kubeWatch {
	t.Helper()
	w := &kubeWatch{}
	cmd := kubectlCmd(append(args, "--watch", "-o", "json")...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		dec := json.NewDecoder(out)
		for {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return
			}
			now := time.Now()
			var list struct {
				Kind  string
				Items []json.RawMessage
			}
			_ = json.Unmarshal(raw, &list)
			items := []json.RawMessage{raw}
			if strings.HasSuffix(list.Kind, "List") {
				items = list.Items
			}
			w.mu.Lock()
			for _, it := range items {
				w.seen = append(w.seen, watched{now, it})
			}
			w.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-ended
		_ = cmd.Wait()
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("kubectl %s: %s", strings.Join(args, " "), stderr.String())
		}
	})
	return w
}

func (w *kubeWatch) all() []watched {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]watched(nil), w.seen...)
}

// states returns every state of report name the watch saw, in order.
func (w *kubeWatch) states(name string) []reportSeen {
	var out []reportSeen
	for _, x := range w.all() {
		if s := parseReport(x.raw, x.at); s.name == name {
			out = append(out, s)
		}
	}
	return out
}

// last returns the latest state of report name (cpRecords -1 when none).
func (w *kubeWatch) last(name string) reportSeen {
	ss := w.states(name)
	if len(ss) == 0 {
		return reportSeen{cpRecords: -1}
	}
	return ss[len(ss)-1]
}

// checkpoints returns the distinct checkpoints report name went through.
func (w *kubeWatch) checkpoints(name string) []string {
	var out []string
	for _, s := range w.states(name) {
		if s.checkpoint != "" && (len(out) == 0 || out[len(out)-1] != s.checkpoint) {
			out = append(out, s.checkpoint)
		}
	}
	return out
}

func (w *kubeWatch) leases(t *testing.T) []leaseSeen {
	var out []leaseSeen
	for _, x := range w.all() {
		l, err := parseLease(x.raw, x.at)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
	}
	return out
}

// lastRenewBy is holder's last renewal of the Lease (a holder identity is
// one process's, so all of them came before its end).
func (w *kubeWatch) lastRenewBy(t *testing.T, holder string) time.Time {
	var last time.Time
	for _, l := range w.leases(t) {
		if l.holder == holder && l.renew.After(last) {
			last = l.renew
		}
	}
	if last.IsZero() {
		t.Fatalf("the Lease watch saw no renewal by %s", holder)
	}
	return last
}

// nextHolder is the first holder other than holder seen after at.
func (w *kubeWatch) nextHolder(t *testing.T, holder string, at time.Time) (leaseSeen, bool) {
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		for _, l := range w.leases(t) {
			if l.at.After(at) && l.holder != "" && l.holder != holder {
				return l, true
			}
		}
	}
	return leaseSeen{}, false
}

// scrape reads a manager's metrics (plain HTTP on loopback, as make run
// serves them): series (name{labels}) to value.
func scrape(p *managerProc) (map[string]float64, error) {
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + p.metrics + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil, fmt.Errorf("metrics: status %d", resp.StatusCode)
	}
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			m[line[:i]] = v
		}
	}
	return m, sc.Err()
}

// sumSeries adds the series that start with prefix and contain every one
// of labels.
func sumSeries(m map[string]float64, prefix string, labels ...string) (n float64) {
next:
	for k, v := range m {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(k, l) {
				continue next
			}
		}
		n += v
	}
	return n
}

// service listens on the suite's API port (env.securePort: the senders,
// kube-apiserver's audit webhook and the APIService use it) and hands each
// new connection to the next replica that accepts one, as a Service does.
type service struct {
	l     net.Listener
	rs    []*replica
	mu    sync.Mutex
	next  int
	conns []int
	open  map[net.Conn]bool
	wg    sync.WaitGroup
}

func startService(t *testing.T, rs []*replica) *service {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(env.securePort))
	if err != nil {
		t.Fatalf("listening on the API port for the replicas: %v", err)
	}
	s := &service{l: l, rs: rs, conns: make([]int, len(rs)), open: map[net.Conn]bool{}}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(func() {
		_ = l.Close()
		s.mu.Lock()
		for c := range s.open {
			_ = c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *service) serve() {
	defer s.wg.Done()
	for {
		c, err := s.l.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.proxy(c)
		}()
	}
}

func (s *service) proxy(c net.Conn) {
	defer c.Close()
	for range s.rs {
		s.mu.Lock()
		i := s.next % len(s.rs)
		s.next++
		s.mu.Unlock()
		b, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(s.rs[i].cfg.securePort), time.Second)
		if err != nil {
			continue // down or starting: the next one
		}
		s.mu.Lock()
		s.conns[i]++
		s.open[c], s.open[b] = true, true
		s.mu.Unlock()
		ended := make(chan struct{}, 2)
		go func() { _, _ = io.Copy(b, c); ended <- struct{}{} }()
		go func() { _, _ = io.Copy(c, b); ended <- struct{}{} }()
		<-ended
		_ = b.Close()
		_ = c.Close()
		<-ended
		s.mu.Lock()
		delete(s.open, c)
		delete(s.open, b)
		s.mu.Unlock()
		return
	}
}

func (s *service) connections(i int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns[i]
}

// checkDayPartitions: the leader made today's partition and the 7 days'
// after it (--store-day-partitions), on the shared PostgreSQL.
func checkDayPartitions(t *testing.T, url string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	today := time.Now().UTC()
	for d := range 8 {
		name := "events_p" + today.Add(time.Duration(d)*24*time.Hour).Format("20060102")
		var n int
		if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
			WHERE i.inhparent = 'events'::regclass AND c.relname = $1`, name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("partition %s: %d, want the leader to have made it", name, n)
		}
	}
}
