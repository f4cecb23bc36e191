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
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// outage is a store that can be made to fail and come back.
type outage struct {
	storeUnderTest
	begin, end func(t *testing.T)
	// readsFail is set when the outage fails reads too: a report running
	// through it must go Retrying, then finish with the same bytes.
	readsFail bool
}

// sqliteFullDisk puts the SQLite database on a small tmpfs of its own and
// fills it: the real ENOSPC of a full volume, not a simulated error.
func sqliteFullDisk(t *testing.T) outage {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=512m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mounting a tmpfs to fill (the fault suite runs as root, as CI does): %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	st := sqliteAt(filepath.Join(dir, "audit.db"))
	filler := filepath.Join(dir, "filler")
	return outage{
		storeUnderTest: st,
		begin: func(t *testing.T) {
			f, err := os.Create(filler)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			chunk := make([]byte, 1<<20)
			for {
				if _, err := f.Write(chunk); err != nil {
					if errors.Is(err, syscall.ENOSPC) {
						return
					}
					t.Fatalf("filling the disk: %v", err)
				}
			}
		},
		end: func(t *testing.T) {
			if err := os.Remove(filler); err != nil {
				t.Fatal(err)
			}
		},
	}
}

// sqliteLocked holds the database's write lock from another connection,
// as a long transaction of another program (or a disk that takes 20 s per
// sync) does: commits wait, then fail.
func sqliteLocked(t *testing.T) outage {
	path := filepath.Join(t.TempDir(), "audit.db")
	st := sqliteAt(path)
	st.name = "sqlite-locked"
	var db *sql.DB
	var tx *sql.Tx
	return outage{
		storeUnderTest: st,
		begin: func(t *testing.T) {
			var err error
			if db, err = sql.Open("sqlite", path+"?_txlock=immediate&_busy_timeout=30000"); err != nil {
				t.Fatal(err)
			}
			if tx, err = db.Begin(); err != nil {
				t.Fatalf("taking the write lock: %v", err)
			}
		},
		end: func(t *testing.T) {
			_ = tx.Rollback()
			_ = db.Close()
		},
	}
}

// postgresStopped runs a PostgreSQL server of its own (durable: fsync and
// synchronous commit on) and stops it the way a crash does (pg_ctl -m
// immediate), then starts it again on the same port.
func postgresStopped(t *testing.T) outage {
	o, _ := postgresOwn(t)
	o.begin = func(t *testing.T) { o.pg(t, "stop") }
	o.end = func(t *testing.T) { o.pg(t, "start") }
	o.readsFail = true
	return o.outage
}

// postgresFrozen freezes every process of its own PostgreSQL server
// (SIGSTOP): connections stay open and commits take as long as the freeze,
// the slow store of a stalled disk or a paused VM.
func postgresFrozen(t *testing.T) outage {
	o, dir := postgresOwn(t)
	o.name = "postgres-frozen"
	signal := func(t *testing.T, sig syscall.Signal) {
		raw, err := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid"))
		if err != nil {
			t.Fatal(err)
		}
		pid, err := strconv.Atoi(strings.SplitN(string(raw), "\n", 2)[0])
		if err != nil {
			t.Fatal(err)
		}
		pids := []int{pid}
		if out, err := exec.Command("pgrep", "-P", strconv.Itoa(pid)).Output(); err == nil {
			for _, f := range strings.Fields(string(out)) {
				if c, err := strconv.Atoi(f); err == nil {
					pids = append(pids, c)
				}
			}
		}
		for _, p := range pids {
			_ = syscall.Kill(p, sig)
		}
	}
	o.begin = func(t *testing.T) { signal(t, syscall.SIGSTOP) }
	o.end = func(t *testing.T) { signal(t, syscall.SIGCONT) }
	t.Cleanup(func() { signal(t, syscall.SIGCONT) })
	return o.outage
}

// ownPostgres is a PostgreSQL server of the test's own.
type ownPostgres struct {
	outage
	pg func(t *testing.T, verb string) string
}

func postgresOwn(t *testing.T) (*ownPostgres, string) {
	dir := t.TempDir()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(env.root, "hack", "postgres.sh")
	pg := func(t *testing.T, verb string) string {
		cmd := exec.Command(script, verb, dir)
		cmd.Env = append(os.Environ(), "PG_DURABLE=1", "PG_PORT="+strconv.Itoa(port))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("hack/postgres.sh %s: %v\n%s", verb, err, stderr.String())
		}
		return strings.TrimSpace(string(out))
	}
	url := pg(t, "start")
	t.Cleanup(func() { _ = exec.Command(script, "stop", dir).Run() })
	st := postgresAt(url)
	st.tokenKey = filepath.Join(t.TempDir(), "token.key")
	return &ownPostgres{outage: outage{storeUnderTest: st}, pg: pg}, dir
}

// TestStoreOutageDuringIngest is scenario 3 of the fault suite, for ingest:
// the store stops taking writes while senders post. Ingest must answer 503
// with Retry-After within the budget wait and the store timeout, /readyz
// must fail, the manager must stay within its container's memory limit and
// its goroutines bounded while the senders keep retrying (large batches
// among them), and after the store is back every acknowledged event must
// be stored exactly once.
func TestStoreOutageDuringIngest(t *testing.T) {
	for _, mk := range []func(*testing.T) outage{sqliteFullDisk, postgresStopped} {
		o := mk(t)
		t.Run(o.name, func(t *testing.T) { outageDuringIngest(t, o) })
	}
}

// TestSlowStoreDuringIngest is scenario 4 of the fault suite: commits that
// do not finish (SQLite's write lock held by another program, PostgreSQL's
// processes frozen). Ingest must still answer within the budget wait and
// the store timeout (503 + Retry-After), readiness must see the stuck
// writer, memory stays within the container's limit and goroutines
// bounded, and nothing acknowledged is lost or doubled once the store moves
// again.
func TestSlowStoreDuringIngest(t *testing.T) {
	for _, mk := range []func(*testing.T) outage{sqliteLocked, postgresFrozen} {
		o := mk(t)
		t.Run(o.name, func(t *testing.T) { outageDuringIngest(t, o) })
	}
}

const (
	// outageStoreTimeout is the manager's --apiserver-store-timeout in an
	// outage: shorter than the default 10 s, so that each sender times out
	// and retries several times while memory is sampled.
	outageStoreTimeout = 3 * time.Second
	// ingestAnswerLimit is the longest a 503 may take: the wait for room
	// in the route's memory budget (ingesthttp.DefaultBudgetWait, which
	// the flood's large batches fill), the store timeout, and some slack
	// for a loaded machine.
	ingestAnswerLimit = 5*time.Second + outageStoreTimeout + 3*time.Second
	// chartMemoryLimitMiB is the manager container's memory limit in the
	// chart (charts/auditops/values.yaml): past it the pod is OOM-killed.
	chartMemoryLimitMiB = 512
)

func outageDuringIngest(t *testing.T, o outage) {
	ns := "faults-outage-" + o.name
	cfg := configFor(t, o.storeUnderTest)
	cfg.extraArgs = append(cfg.extraArgs, "--apiserver-store-timeout="+outageStoreTimeout.String())
	// As the chart runs it: the collector tuned to the container's limit.
	cfg.env = append(cfg.env, fmt.Sprintf("AUDITOPS_MEMORY_LIMIT=%dMi", chartMemoryLimitMiB))
	p := startManager(t, cfg)
	// A report over a fixed, seeded past: undisturbed first, then one
	// that runs into the outage.
	var want []byte
	base := time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour)
	window := [2]time.Time{base.Add(-time.Hour), base.Add(2 * time.Hour)}
	if o.readsFail {
		kubectl(t, "create", "namespace", ns)
		seedReportEvents(t, ns, base, 3000)
		createReportTo(t, ns, "undisturbed", window, "configMap: {namePrefix: undisturbed}", 100)
		want = reportBytes(t, ns, waitReport(t, ns, "undisturbed"))
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	senders := []*sender{
		{name: "webhook-1", ns: ns, webhook: true, size: 100},
		{name: "webhook-2", ns: ns, webhook: true, size: 100},
		{name: "events-1", ns: ns, size: 50},
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, 64)
	start := func(ss []*sender) { startSenders(ctx, cancel, &wg, done, errs, ss) }
	start(senders)
	unavailable := func() (n int64) {
		for _, s := range senders {
			n += s.unavailable.Load()
		}
		return n
	}
	time.Sleep(1500 * time.Millisecond)
	before := sample(t, p)

	if o.readsFail {
		// Small pages: the report is still reading when the store stops.
		createReportTo(t, ns, "through-outage", window, "configMap: {namePrefix: through-outage}", 5)
	}
	o.begin(t)
	began := time.Now()
	// More senders arrive while the store is out, with kube-apiserver's
	// batch size and objects (6.4 MiB a batch), all retrying: memory must
	// not grow with them.
	var flood []*sender
	for i := range 12 {
		flood = append(flood, &sender{name: fmt.Sprintf("flood-%d", i), ns: ns, webhook: true, size: 400, objectBytes: 16 << 10})
	}
	start(flood)
	senders = append(senders, flood...)
	waitUntil(t, ctx, 60*time.Second, "a 503 from ingest", func() bool { return unavailable() > 0 })
	waitUntil(t, ctx, 30*time.Second, "/readyz to fail", func() bool { return !ready(p) })
	t.Logf("%s: first 503 and /readyz failing %s after the outage began", o.name, time.Since(began).Round(time.Millisecond))
	// The senders keep retrying (every 50 ms, more eagerly than
	// Retry-After asks) while the store is down: three store timeouts,
	// each sender's batch given up on and sent again each time. What
	// waits is bounded by the ingest budget, so the manager must stay
	// within its container's limit however long they retry.
	during := sample(t, p)
	most := during
	for end := time.Now().Add(3 * outageStoreTimeout); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		most = most.max(sample(t, p))
	}
	if ready(p) {
		t.Errorf("/readyz passes while the store is down")
	}
	if o.readsFail {
		waitUntil(t, ctx, 60*time.Second, "the report to go Retrying", func() bool {
			return reportCondition(t, ns, "through-outage", "Progressing").Reason == "Retrying"
		})
	}
	o.end(t)
	waitUntil(t, ctx, 60*time.Second, "/readyz to pass again", func() bool { return ready(p) })
	time.Sleep(time.Second)
	close(done)
	waitSenders(t, &wg, senders)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// The report resumes on this manager, within the work queue's capped
	// backoff of its last failed attempt: wait for it before stopping it.
	var through auditReport
	if o.readsFail {
		through = waitReport(t, ns, "through-outage")
	}
	if err := p.stop(); err != nil {
		t.Fatalf("stopping the manager: %v", err)
	}

	var slowest time.Duration
	for _, s := range senders {
		slowest = max(slowest, s.slowest503)
	}
	t.Logf("%s: %d answers 503 (slowest %s); before the outage, at its first 503, at most while senders retried: RSS %.0f, %.0f, %.0f MiB (anonymous %.0f, %.0f, %.0f); Go heap in use %.0f, %.0f, %.0f MiB; goroutines %.0f, %.0f, %.0f",
		o.name, unavailable(), slowest.Round(time.Millisecond), before.rssMiB, during.rssMiB, most.rssMiB, before.anonMiB, during.anonMiB, most.anonMiB,
		before.heapMiB, during.heapMiB, most.heapMiB, before.goroutines, during.goroutines, most.goroutines)
	if slowest > ingestAnswerLimit {
		t.Errorf("a 503 took %s, more than the store timeout allows (%s)", slowest, ingestAnswerLimit)
	}
	t.Logf("%s: at most %.0f MiB held by the Go runtime, so ~%.0f MiB of the anonymous RSS outside it", o.name, most.goMiB, most.anonMiB-most.goMiB)
	if most.anonMiB > chartMemoryLimitMiB {
		t.Errorf("anonymous RSS reached %.0f MiB during the outage, past the chart's limit of %d MiB", most.anonMiB, chartMemoryLimitMiB)
	}
	if most.goroutines > before.goroutines+500 {
		t.Errorf("goroutines grew from %.0f to %.0f during the outage", before.goroutines, most.goroutines)
	}
	rows, err := o.rows(t.Context(), ns)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.check(t.Context()); err != nil {
		t.Fatal(err)
	}
	sent := sentBy(senders, rows)
	acked, lost, doubled := checkExactlyOnce(t, senders, sent)
	t.Logf("%s: %d events acknowledged (%d batches, %d retried), %d stored, %d lost, %d doubled",
		o.name, acked, batchesOf(senders), retriesOf(senders), len(sent), lost, doubled)
	if o.readsFail {
		got := reportBytes(t, ns, through)
		if !bytes.Equal(got, want) {
			t.Errorf("the report that ran through the outage (%d bytes) differs from the undisturbed one (%d bytes)", len(got), len(want))
		}
		t.Logf("%s: a report went Retrying during the outage and finished byte-identical: %v", o.name, bytes.Equal(got, want))
	}
}

func waitUntil(t *testing.T, ctx context.Context, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", limit, what)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ready asks the manager's readiness probe.
func ready(p *managerProc) bool {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + p.probes + "/readyz")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == http.StatusOK
}

// memSample is the manager's resident memory and the anonymous part of it
// (MiB, from /proc: what a container's limit must hold; the rest is the
// executable's pages, which the kernel can drop), its Go heap in use (MiB)
// the memory the Go runtime holds (its sys less what it released) and its
// goroutines (from its metrics). They tell a growth of the Go heap from one
// outside it (SQLite's native memory).
type memSample struct{ rssMiB, anonMiB, heapMiB, goMiB, goroutines float64 }

func (m memSample) max(o memSample) memSample {
	return memSample{max(m.rssMiB, o.rssMiB), max(m.anonMiB, o.anonMiB), max(m.heapMiB, o.heapMiB), max(m.goMiB, o.goMiB), max(m.goroutines, o.goroutines)}
}

func sample(t *testing.T, p *managerProc) memSample {
	t.Helper()
	var m memSample
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Fatalf("reading the manager's memory: %v", err)
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			m.rssMiB = kb / 1024
		}
		if f := strings.Fields(l); len(f) >= 2 && (f[0] == "RssAnon:" || f[0] == "RssShmem:") {
			kb, _ := strconv.ParseFloat(f[1], 64)
			m.anonMiB += kb / 1024
		}
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + p.metrics + "/metrics")
	if err != nil {
		t.Fatalf("reading the manager's metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			m.goroutines, _ = strconv.ParseFloat(v, 64)
		}
		if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_sys_bytes "); ok {
			b, _ := strconv.ParseFloat(v, 64)
			m.goMiB += b / (1 << 20)
		}
		if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_heap_released_bytes "); ok {
			b, _ := strconv.ParseFloat(v, 64)
			m.goMiB -= b / (1 << 20)
		}
		if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_heap_inuse_bytes "); ok {
			b, _ := strconv.ParseFloat(v, 64)
			m.heapMiB = b / (1 << 20)
		}
	}
	if m.rssMiB == 0 || m.anonMiB == 0 || m.goroutines == 0 || m.heapMiB == 0 {
		t.Fatalf("no VmRSS, RssAnon, go_goroutines or go_memstats_heap_inuse_bytes for the manager")
	}
	return m
}
