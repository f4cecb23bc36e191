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
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestReadReplica (issue 16.3) runs the manager with --store on a
// PostgreSQL primary and --store-read-url on its streaming hot standby
// (hack/postgres-replica.sh). With the standby's replay paused, ingest
// still commits on the primary, the audit API shows the standby's lag,
// and a report waits (Retrying, naming the read replica) instead of
// missing what the primary acknowledged; once replay resumes, the report
// finishes byte-identical to one a manager reading the primary writes.
// A read URL that is not a standby stops the manager at start.
func TestReadReplica(t *testing.T) {
	began := time.Now()
	ctx := t.Context()
	dir := filepath.Join(t.TempDir(), "pg")
	script := filepath.Join(env.root, "hack", "postgres-replica.sh")
	var stderr bytes.Buffer
	cmd := exec.Command(script, "start", dir)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	t.Cleanup(func() { _ = exec.Command(script, "stop", dir).Run() })
	urls := strings.Fields(string(out))
	if err != nil || len(urls) != 2 {
		t.Fatalf("hack/postgres-replica.sh start: %v %q\n%s", err, out, stderr.String())
	}
	primary, standby := urls[0], urls[1]
	t.Logf("primary and standby started in %s", time.Since(began).Round(time.Millisecond))
	// sqlOn runs in cleanups too, after t.Context() is done.
	sqlOn := func(url, sql string, dest ...any) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		if err := c.QueryRow(ctx, sql).Scan(dest...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}

	st := postgresAt(primary)
	st.tokenKey = filepath.Join(t.TempDir(), "token.key")

	// The primary named as its own standby: the manager refuses to start.
	bad := configFor(t, st)
	bad.extraArgs = []string{"--store-read-url", primary}
	p := startManagerNoWait(t, bad)
	select {
	case <-p.exited:
		if p.err == nil || !strings.Contains(tail(bad.logPath), "is not in recovery") {
			t.Fatalf("with the primary as --store-read-url the manager exited with %v; want a refusal saying it is not in recovery\n%s", p.err, tail(bad.logPath))
		}
	case <-time.After(time.Minute):
		t.Fatal("with the primary as --store-read-url the manager still runs after a minute")
	}

	cfg := configFor(t, st)
	cfg.extraArgs = []string{"--store-read-url", standby, "--store-read-replay-wait", "2s"}
	p = startManager(t, cfg)
	t.Logf("%s: refused, then started with the standby", time.Since(began).Round(time.Millisecond))
	ns := "faults-read-replica"
	kubectl(t, "create", "namespace", ns)
	base := time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour)
	window := [2]time.Time{base.Add(-time.Hour), base.Add(3 * time.Hour)}
	const before, after = 600, 1000
	seedReportEvents(t, ns, base, before)
	admin := clientAs("admin")
	apiRows := func() []string {
		t.Helper()
		ids, _, err := walkAuditDetails(ctx, admin, ns, window)
		if err != nil {
			t.Fatalf("walking audit-details: %v", err)
		}
		return ids
	}
	waitUntil(t, ctx, 30*time.Second, "the standby to show the first events", func() bool { return len(apiRows()) == before })

	sqlOn(standby, "SELECT pg_wal_replay_pause()::text", new(string))
	paused := true
	t.Cleanup(func() {
		if paused {
			sqlOn(standby, "SELECT pg_wal_replay_resume()::text", new(string))
		}
	})
	// Ids 0..599 again (their content is the same: re-sends, stored
	// nothing) and 400 new ones: acknowledged by the primary.
	seedReportEvents(t, ns, base, after)
	var onPrimary int
	// The seeded ones: the API's reads are audited in the namespace too.
	sqlOn(primary, "SELECT count(*) FROM events WHERE namespace = '"+ns+"' AND id LIKE 'seed-%'", &onPrimary)
	lagging := apiRows()
	if onPrimary != after || len(lagging) != before {
		t.Fatalf("with replay paused the primary holds %d events (want %d) and the API shows %d (want the standby's %d)", onPrimary, after, len(lagging), before)
	}
	t.Logf("%s: replay paused: ingest acknowledged %d events on the primary; the audit API shows the standby's %d", time.Since(began).Round(time.Millisecond), onPrimary, len(lagging))

	createShardReport(t, ns, "read-replica", window, "configMap")
	var retrying string
	// Each attempt waits out the replay wait, and the next sets the
	// condition back to Generating at once: the Retrying events stay.
	waitUntil(t, ctx, time.Minute, "the report to wait for the standby", func() bool {
		if phase := reportPhase(t, ns, "read-replica"); phase == "Succeeded" {
			t.Fatal("the report finished while the standby it read lagged the primary")
		}
		retrying = kubectl(t, "get", "events", "-n", ns, "--field-selector", "reason=Retrying,involvedObject.name=read-replica",
			"-o", "jsonpath={.items[*].message}")
		return strings.Contains(retrying, "read replica")
	})
	if phase := reportPhase(t, ns, "read-replica"); phase != "Running" {
		t.Fatalf("the report is %s while the standby lags; want Running", phase)
	}
	t.Logf("%s: the report waits: %s", time.Since(began).Round(time.Millisecond), retrying)
	resumed := time.Now()
	sqlOn(standby, "SELECT pg_wal_replay_resume()::text", new(string))
	paused = false
	got := reportBytes(t, ns, waitReport(t, ns, "read-replica"))
	t.Logf("%s: replay resumed: the report finished %s later, %d bytes", time.Since(began).Round(time.Millisecond), time.Since(resumed).Round(time.Millisecond), len(got))
	if err := exactlyTheSeeded(apiRows(), after); err != nil {
		t.Fatalf("the audit API after the standby caught up: %v", err)
	}

	// The same report by a manager that reads the primary.
	if err := p.stop(); err != nil {
		t.Fatalf("stopping the manager: %v", err)
	}
	t.Logf("%s: stopped", time.Since(began).Round(time.Millisecond))
	p = startManager(t, configFor(t, st))
	t.Logf("%s: started on the primary alone", time.Since(began).Round(time.Millisecond))
	createShardReport(t, ns, "from-primary", window, "configMap")
	want := reportBytes(t, ns, waitReport(t, ns, "from-primary"))
	if !bytes.Equal(got, want) {
		t.Fatalf("the report read from the standby (%d bytes) differs from the one read from the primary (%d bytes)", len(got), len(want))
	}
	if err := p.stop(); err != nil {
		t.Fatalf("stopping the manager: %v", err)
	}
	t.Logf("the report read from the standby is byte-identical to the primary's (%d bytes, %d events); scenario took %s",
		len(want), after, time.Since(began).Round(time.Millisecond))
}
