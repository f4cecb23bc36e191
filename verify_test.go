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

package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	_ "modernc.org/sqlite"

	"github.com/auditops/auditops/internal/seal"
	"github.com/auditops/auditops/internal/sealkey"
	"github.com/auditops/auditops/internal/sealverify"
	"github.com/auditops/auditops/internal/store/storeopen"
)

// sealedImport imports n kube-audit events of team-a into a new SQLite
// store (import makes leaves with the keyring it creates beside the
// database) and seals them as the leader would; it returns the database
// file, the store URL and the keyring.
func sealedImport(t *testing.T, n int) (db, storeURL string, kr *seal.Keyring) {
	t.Helper()
	return sealedImportIn(t, n, "team-a")
}

// sealedImportIn is sealedImport with n events in each of namespaces;
// the first namespace's ids are a-0, a-1, …, the next's b-0, ….
func sealedImportIn(t *testing.T, n int, namespaces ...string) (db, storeURL string, kr *seal.Keyring) {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	var log bytes.Buffer
	for k, ns := range namespaces {
		for i := range n {
			fmt.Fprintf(&log, `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"%c-%d","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/%s/pods","verb":"delete","user":{"username":"alice"},"objectRef":{"resource":"pods","namespace":"%s","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":"2026-11-22T08:00:%02d.000001Z","stageTimestamp":"2026-11-22T08:00:%02d.000002Z"}`+"\n", 'a'+k, i, ns, ns, i, i)
		}
	}
	logFile := filepath.Join(dir, "audit.log")
	if err := os.WriteFile(logFile, log.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	db = filepath.Join(dir, "audit.db")
	storeURL = "sqlite://" + db
	if err := importFiles(ctx, []string{"--store", storeURL, logFile}, io.Discard, os.Stderr); err != nil {
		t.Fatal(err)
	}
	kr, err := sealkey.LoadFile(filepath.Join(dir, SealKeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	// The leader's part.
	st, err := storeopen.Open(ctx, storeURL, storeopen.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	logs, _ := storeopen.Logs(st)
	res, err := (&seal.Sealer{Store: logs, Keys: kr, Origin: seal.DefaultOriginPrefix, Now: time.Now}).SealAll(ctx)
	if err != nil {
		t.Fatalf("sealing: %v", err)
	}
	for _, ns := range namespaces {
		if res[ns].Sealed != n {
			t.Fatalf("sealed %+v; want %d leaves of %s", res, n, ns)
		}
	}
	return db, storeURL, kr
}

// TestImportSealVerify runs the commands as an operator would on a SQLite
// store: import makes leaves with the keyring it creates beside the
// database, the leader's sealer seals them, verify exits 0; after a row is
// edited with SQL, verify prints the finding as a JSON line and exits 1;
// verifier-key prints the key that verifies; bad flags exit 2.
func TestImportSealVerify(t *testing.T) {
	ctx := context.Background()
	db, storeURL, kr := sealedImport(t, 40)

	verify := func(args ...string) (int, string) {
		var stdout, stderr bytes.Buffer
		code := runVerify(ctx, append([]string{"--store", storeURL}, args...), &stdout, &stderr)
		t.Logf("verify %v: exit %d\n%s%s", args, code, stdout.String(), stderr.String())
		return code, stdout.String()
	}
	if code, out := verify(); code != verifyClean || !strings.Contains(out, "verified 40 events in 1 namespaces: 0 problems") {
		t.Fatalf("a clean store: exit %d, %q", code, out)
	}

	var keys bytes.Buffer
	if err := runVerifierKey(ctx, []string{"--store", storeURL}, &keys, os.Stderr); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(keys.String()); got != kr.Current.Verifier() {
		t.Fatalf("verifier-key printed %q, want %q", got, kr.Current.Verifier())
	}

	conn, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Exec("UPDATE events SET status = 'failure' WHERE id = 'a-7'"); err != nil {
		t.Fatal(err)
	}
	code, got := verify("--verifier-key", keys.String())
	if code != verifyProblems {
		t.Fatalf("an edited row: exit %d", code)
	}
	var f sealverify.Finding
	if err := json.Unmarshal([]byte(strings.SplitN(got, "\n", 2)[0]), &f); err != nil || f.Problem != sealverify.Altered || f.ID != "a-7" {
		t.Fatalf("the first line %q: %+v, %v", got, f, err)
	}
	if !strings.Contains(got, "verified 40 events in 1 namespaces: 1 problems") {
		t.Fatalf("summary: %q", got)
	}
	// Someone else's key verifies nothing.
	other, _ := seal.NewKeyring(strings.NewReader(strings.Repeat("x", 64)))
	if code, _ := verify("--verifier-key", other.Current.Verifier()); code != verifyProblems {
		t.Fatalf("another key: exit %d", code)
	}
	if code, _ := verify("--trusted-checkpoint", filepath.Join(filepath.Dir(db), "absent")); code != verifyFailed {
		t.Fatalf("a missing trusted checkpoint file: exit %d", code)
	}
	// A store it cannot read to the end: exit 2, and no line saying it
	// verified anything.
	if _, err := conn.Exec("ALTER TABLE tree_hashes RENAME TO tree_hashes_gone"); err != nil {
		t.Fatal(err)
	}
	if code, out := verify("--verifier-key", keys.String()); code != verifyFailed || strings.Contains(out, "verified") || !strings.Contains(out, "verify stopped") {
		t.Fatalf("a store without its tree hashes: exit %d, %q", code, out)
	}
}

// TestVerifyLoopCountsAll runs the leader's periodic verify over a store
// with 12 rows edited behind the manager's back: the metric counts all 12,
// the log names 5 and says how many there are. (The loop keeps only what
// it logs, so a store rewritten wholesale cannot take the leader's memory;
// this test sees that through the log, not the heap.)
func TestVerifyLoopCountsAll(t *testing.T) {
	ctx := context.Background()
	db, storeURL, kr := sealedImport(t, 30)
	st, err := storeopen.Open(ctx, storeURL, storeopen.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	conn, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Exec("UPDATE events SET status = 'failure' WHERE id IN ('a-1','a-2','a-3','a-4','a-5','a-6','a-7','a-8','a-9','a-10','a-11','a-12')"); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var lines []string
	log := funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, args)
	}, funcr.Options{})
	reg := prometheus.NewRegistry()
	m := sealverify.NewMetrics(reg)
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- verifyLoop(lctx, st.(sealverify.Store), kr, nil, time.Minute, time.Hour, 0, m, log) }()
	altered := func() float64 { return problemGauge(t, reg, sealverify.Altered) }
	deadline := time.Now().Add(30 * time.Second)
	for altered() != 12 {
		if time.Now().After(deadline) {
			t.Fatalf("auditops_verify_problems{problem=altered} = %v, want 12", altered())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	named, more := 0, 0
	for _, l := range lines {
		switch {
		case strings.Contains(l, "the record was changed behind the manager's back"):
			named++
		case strings.Contains(l, "more problems") && strings.Contains(l, `"problems"=12`):
			more++
		}
	}
	if named != 5 || more != 1 {
		t.Fatalf("logged %d findings and %d summaries, want 5 and 1:\n%s", named, more, strings.Join(lines, "\n"))
	}
}

// problemGauge reads auditops_verify_problems{problem} from reg (-1: not
// there).
func problemGauge(t *testing.T, reg *prometheus.Registry, problem string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "auditops_verify_problems" {
			continue
		}
		for _, s := range mf.GetMetric() {
			if s.GetLabel()[0].GetValue() == problem {
				return s.GetGauge().GetValue()
			}
		}
	}
	return -1
}

// TestVerifyLoopHoldsTheLogToWitnesses: a namespace wiped whole (events,
// leaves, checkpoints) leaves a store that agrees with itself; the leader's
// verify runs, given the checkpoints kept outside it (leaderWitnesses: its
// sealer's heads, the reports' status.seal), count the rollback.
func TestVerifyLoopHoldsTheLogToWitnesses(t *testing.T) {
	ctx := t.Context()
	db, storeURL, kr := sealedImport(t, 30)
	st, err := storeopen.Open(ctx, storeURL, storeopen.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	logs, _ := storeopen.Logs(st)
	sealer := &seal.Sealer{Store: logs, Keys: kr, Origin: seal.DefaultOriginPrefix, Now: time.Now}
	head, err := sealer.SealNow(ctx, "team-a")
	if err != nil || head.Size != 30 {
		t.Fatalf("the log's head: %+v, %v", head, err)
	}
	conn, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, table := range []string{"events", "leaves", "checkpoints"} {
		if _, err := conn.Exec("DELETE FROM " + table + " WHERE namespace = 'team-a'"); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name      string
		witnesses func(context.Context) []seal.Checkpoint
		want      float64
	}{
		{"no witnesses", nil, 0},
		{"the sealer's heads", func(context.Context) []seal.Checkpoint { return sealer.Heads() }, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m := sealverify.NewMetrics(reg)
			lctx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() {
				done <- verifyLoop(lctx, st.(sealverify.Store), kr, tc.witnesses, time.Minute, time.Hour, 0, m, funcr.New(func(string, string) {}, funcr.Options{}))
			}()
			deadline := time.Now().Add(30 * time.Second)
			for problemGauge(t, reg, sealverify.Rollback) == -1 {
				if time.Now().After(deadline) {
					t.Fatal("the verify run did not end in 30 s")
				}
				time.Sleep(20 * time.Millisecond)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if got := problemGauge(t, reg, sealverify.Rollback); got != tc.want {
				t.Fatalf("auditops_verify_problems{problem=rollback} = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestExpireBindsTheCutoffFirst: the upkeep's retention signs each log's
// newest checkpoint again with the cutoff before it deletes (the log of
// team-a is quiet: nothing seals it again), so manager verify finds
// nothing; a bind that fails keeps the events; without the bind, each
// expired event would be a finding.
func TestExpireBindsTheCutoffFirst(t *testing.T) {
	cut := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		bind    func(*seal.Sealer) func(context.Context, time.Time) ([]string, error)
		deleted int64
		exit    int
	}{
		{"bound", func(s *seal.Sealer) func(context.Context, time.Time) ([]string, error) {
			return func(ctx context.Context, cut time.Time) ([]string, error) {
				unbound, err := s.BindRetention(ctx, cut)
				if len(unbound) > 0 {
					return nil, fmt.Errorf("unbound: %v", unbound)
				}
				return nil, err
			}
		}, 5, verifyClean},
		{"bind fails", func(*seal.Sealer) func(context.Context, time.Time) ([]string, error) {
			return func(context.Context, time.Time) ([]string, error) { return nil, errors.New("store unavailable") }
		}, 0, verifyClean},
		{"not bound", func(*seal.Sealer) func(context.Context, time.Time) ([]string, error) { return nil }, 5, verifyProblems},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, storeURL, kr := sealedImport(t, 5)
			st, err := storeopen.Open(t.Context(), storeURL, storeopen.Options{})
			if err != nil {
				t.Fatal(err)
			}
			logs, _ := storeopen.Logs(st)
			sealer := &seal.Sealer{Store: logs, Keys: kr, Origin: seal.DefaultOriginPrefix, Now: time.Now}
			n, err := expire(t.Context(), st, cut, tc.bind(sealer))
			st.Close()
			if n != tc.deleted || (err != nil) != (tc.deleted == 0) {
				t.Fatalf("expire: %d deleted, %v; want %d", n, err, tc.deleted)
			}
			var stdout, stderr bytes.Buffer
			if code := runVerify(t.Context(), []string{"--store", storeURL}, &stdout, &stderr); code != tc.exit {
				t.Fatalf("manager verify: exit %d, want %d\n%s%s", code, tc.exit, stdout.String(), stderr.String())
			}
		})
	}
}

// TestExpireKeepsAnUnboundLog: team-a's newest checkpoint was edited
// behind the manager's back, so the upkeep cannot sign it again with the
// retention cutoff. Its expired events stay, as evidence; team-b's go.
// manager verify names what was edited and no team-a event `missing`:
// deleted, each would read as deleted by hand beside the edit.
func TestExpireKeepsAnUnboundLog(t *testing.T) {
	cut := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	db, storeURL, kr := sealedImportIn(t, 5, "team-a", "team-b")
	conn, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Exec("UPDATE checkpoints SET note = replace(note, 'auditops/team-a', 'auditops/team-z') WHERE namespace = 'team-a'"); err != nil {
		t.Fatal(err)
	}
	st, err := storeopen.Open(t.Context(), storeURL, storeopen.Options{})
	if err != nil {
		t.Fatal(err)
	}
	logs, _ := storeopen.Logs(st)
	sealer := &seal.Sealer{Store: logs, Keys: kr, Origin: seal.DefaultOriginPrefix, Now: time.Now}
	n, err := expire(t.Context(), st, cut, sealer.BindRetention)
	st.Close()
	if err != nil || n != 5 {
		t.Fatalf("expire: %d deleted, %v; want team-b's 5", n, err)
	}
	var left []string
	rows, err := conn.Query("SELECT namespace || '/' || id FROM events ORDER BY 1")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		left = append(left, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if want := []string{"team-a/a-0", "team-a/a-1", "team-a/a-2", "team-a/a-3", "team-a/a-4"}; !slices.Equal(left, want) {
		t.Fatalf("events left %v, want %v", left, want)
	}
	var stdout, stderr bytes.Buffer
	if code := runVerify(t.Context(), []string{"--store", storeURL}, &stdout, &stderr); code != verifyProblems {
		t.Fatalf("manager verify: exit %d, want %d\n%s%s", code, verifyProblems, stdout.String(), stderr.String())
	}
	var problems []string
	for line := range strings.Lines(stdout.String()) {
		var f sealverify.Finding
		if json.Unmarshal([]byte(line), &f) == nil && f.Problem != "" {
			problems = append(problems, f.Namespace+" "+f.Problem)
		}
	}
	if len(problems) == 0 || slices.ContainsFunc(problems, func(p string) bool {
		return !strings.HasPrefix(p, "team-a ") || strings.HasSuffix(p, " "+sealverify.Missing)
	}) {
		t.Fatalf("findings %q; want team-a's edited checkpoint named, nothing missing\n%s", problems, stdout.String())
	}
}
