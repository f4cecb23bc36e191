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
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"

	"github.com/auditops/auditops/internal/store/storetest"
)

// storeUnderTest is one store the scenarios run against.
type storeUnderTest struct {
	name string
	// url is the manager's --store; tokenKey its --token-key-file.
	url, tokenKey string
	// rows returns (id, seq) of every stored event of namespace, by seq.
	rows func(ctx context.Context, namespace string) ([]storedRow, error)
	// check reports damage to the store's files (SQLite's integrity check).
	check func(ctx context.Context) error
	// exec runs a statement on the store as an intruder with its
	// credentials would: plain SQL, behind the manager's back.
	exec func(ctx context.Context, statement string) error
	// value returns the first column of the first row of query as text
	// ("" for no row).
	value func(ctx context.Context, query string) (string, error)
}

type storedRow struct {
	id  string
	seq int64
}

func sqliteUnderTest(t *testing.T) storeUnderTest {
	return sqliteAt(filepath.Join(t.TempDir(), "audit.db"))
}

// sqliteAt is the SQLite database at path.
func sqliteAt(path string) storeUnderTest {
	open := func() (*sql.DB, error) { return sql.Open("sqlite", "file:"+path+"?mode=ro") }
	return storeUnderTest{
		name: "sqlite",
		url:  "sqlite://" + path,
		rows: func(ctx context.Context, ns string) ([]storedRow, error) {
			db, err := open()
			if err != nil {
				return nil, err
			}
			defer db.Close()
			rs, err := db.QueryContext(ctx, "SELECT id, seq FROM events WHERE namespace = ? ORDER BY seq", ns)
			if err != nil {
				return nil, err
			}
			defer rs.Close()
			var out []storedRow
			for rs.Next() {
				var r storedRow
				if err := rs.Scan(&r.id, &r.seq); err != nil {
					return nil, err
				}
				out = append(out, r)
			}
			return out, rs.Err()
		},
		check: func(ctx context.Context) error {
			db, err := open()
			if err != nil {
				return err
			}
			defer db.Close()
			var res string
			if err := db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&res); err != nil {
				return err
			}
			if res != "ok" {
				return fmt.Errorf("PRAGMA integrity_check: %s", res)
			}
			return nil
		},
		value: func(ctx context.Context, query string) (string, error) {
			db, err := open()
			if err != nil {
				return "", err
			}
			defer db.Close()
			var v sql.NullString
			if err := db.QueryRowContext(ctx, query).Scan(&v); err != nil && !errors.Is(err, sql.ErrNoRows) {
				return "", err
			}
			return v.String, nil
		},
		exec: func(ctx context.Context, statement string) error {
			db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
			if err != nil {
				return err
			}
			defer db.Close()
			_, err = db.ExecContext(ctx, statement)
			return err
		},
	}
}

func postgresUnderTest(t *testing.T) storeUnderTest {
	st := postgresAt(storetest.PostgresDatabase(t))
	st.tokenKey = filepath.Join(t.TempDir(), "token.key")
	return st
}

// postgresAt is the PostgreSQL database at url.
func postgresAt(url string) storeUnderTest {
	return storeUnderTest{
		name: "postgres",
		url:  url,
		rows: func(ctx context.Context, ns string) ([]storedRow, error) {
			conn, err := pgx.Connect(ctx, url)
			if err != nil {
				return nil, err
			}
			defer conn.Close(ctx)
			rs, err := conn.Query(ctx, "SELECT id, seq FROM events WHERE namespace = $1 ORDER BY seq", ns)
			if err != nil {
				return nil, err
			}
			return pgx.CollectRows(rs, func(r pgx.CollectableRow) (storedRow, error) {
				var s storedRow
				err := r.Scan(&s.id, &s.seq)
				return s, err
			})
		},
		check: func(context.Context) error { return nil },
		value: func(ctx context.Context, query string) (string, error) {
			conn, err := pgx.Connect(ctx, url)
			if err != nil {
				return "", err
			}
			defer conn.Close(ctx)
			var v *string
			if err := conn.QueryRow(ctx, query).Scan(&v); err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return "", err
			}
			if v == nil {
				return "", nil
			}
			return *v, nil
		},
		exec: func(ctx context.Context, statement string) error {
			conn, err := pgx.Connect(ctx, url)
			if err != nil {
				return err
			}
			defer conn.Close(ctx)
			_, err = conn.Exec(ctx, statement)
			return err
		},
	}
}

// eachStore runs fn as a subtest against a fresh database of each store.
func eachStore(t *testing.T, fn func(t *testing.T, st storeUnderTest)) {
	for _, mk := range []func(*testing.T) storeUnderTest{sqliteUnderTest, postgresUnderTest} {
		st := mk(t)
		t.Run(st.name, func(t *testing.T) { fn(t, st) })
	}
}

// configFor is the manager's configuration for st; the end of its log is
// printed when the test fails.
func configFor(t *testing.T, st storeUnderTest) managerConfig {
	cfg := managerConfig{store: st.url, tokenKeyFile: st.tokenKey, logPath: filepath.Join(t.TempDir(), "manager.log")}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(tail(cfg.logPath))
		}
	})
	return cfg
}

// TestKillDuringIngest is scenario 1 of the fault suite: senders post
// webhook batches and generic events, each retrying until it gets a 200,
// while the manager is SIGKILLed at random moments and, through the
// faultinject build's fault point, right after a commit and before its
// answer. Then every acknowledged event must be stored exactly once, in
// commit order, and the store must be intact.
func TestKillDuringIngest(t *testing.T) {
	eachStore(t, killDuringIngest)
}

func killDuringIngest(t *testing.T, st storeUnderTest) {
	n := rounds(t, 2)
	ns := "faults-ingest-" + st.name
	cfg := configFor(t, st)
	p := startManager(t, cfg)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	senders := []*sender{
		{name: "webhook-1", ns: ns, webhook: true, size: 100},
		{name: "webhook-2", ns: ns, webhook: true, size: 100},
		{name: "events-1", ns: ns, size: 50},
	}
	var wg sync.WaitGroup
	done := make(chan struct{}) // closed when senders should finish
	errs := make(chan error, len(senders))
	startSenders(ctx, cancel, &wg, done, errs, senders)

	// Random kills from outside, then kills by the fault point after the
	// Nth commit of a run, each followed by a restart.
	var external, afterCommit int
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for range n {
		time.Sleep(time.Duration(300+rnd.IntN(1200)) * time.Millisecond)
		p.kill()
		external++
		p = startManager(t, cfg)
	}
	for range n {
		p.kill() // the healthy one of the previous round, if it still runs
		c := cfg
		c.env = []string{fmt.Sprintf("AUDITOPS_FAULT_KILL_AT=ingest-after-commit:%d", 3+rnd.IntN(12))}
		p = startManagerNoWait(t, c)
		waitFaultPoint(t, ctx, errs, p, c, fmt.Sprintf("kill %d after a commit", afterCommit+1), 60*time.Second)
		afterCommit++
	}
	p = startManager(t, cfg)
	// Let the senders get a few batches through a healthy manager, then
	// have them finish their current batch.
	time.Sleep(time.Second)
	close(done)
	waitSenders(t, &wg, senders)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := p.stop(); err != nil {
		t.Fatalf("stopping the manager: %v", err)
	}

	rows, err := st.rows(t.Context(), ns)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.check(t.Context()); err != nil {
		t.Fatal(err)
	}
	acked, lost, doubled := checkExactlyOnce(t, senders, rows)
	t.Logf("%s: %d rounds, %d external SIGKILLs, %d after commit; %d events acknowledged (%d batches, %d retried), %d stored, %d lost, %d doubled",
		st.name, n, external, afterCommit, acked, batchesOf(senders), retriesOf(senders), len(rows), lost, doubled)
	if retriesOf(senders) == 0 {
		t.Errorf("no batch was retried: the kills hit nothing, so this run proved nothing")
	}
}

// sender posts batches of new events and retries each until it is
// acknowledged, recording what it sent.
type sender struct {
	name    string
	ns      string
	webhook bool // an EventList to kube-audit, else generic events
	size    int
	// objectBytes, when set, gives each webhook event a request object of
	// about this many bytes (kube-apiserver's RequestResponse level).
	objectBytes int

	batches [][]string // ids of each acknowledged batch, in order
	retries atomic.Int64
	// unavailable counts 503 answers; slowest503 is the longest wait for one.
	unavailable atomic.Int64
	slowest503  time.Duration
}

func (s *sender) run(ctx context.Context, done <-chan struct{}) error {
	c := ingestClient()
	for b := 0; ; b++ {
		select {
		case <-done:
			return nil
		default:
		}
		ids := make([]string, s.size)
		for i := range ids {
			ids[i] = fmt.Sprintf("%s-b%05d-e%03d", s.name, b, i)
		}
		body, path := s.body(ids)
		for attempt := 0; ; attempt++ {
			sent := time.Now()
			code, answer, err := post(ctx, c, path, body)
			if code == http.StatusServiceUnavailable {
				s.unavailable.Add(1)
				s.slowest503 = max(s.slowest503, time.Since(sent))
			}
			if err == nil && code == http.StatusOK {
				var res struct{ Received, Stored, Duplicates int }
				if err := json.Unmarshal(answer, &res); err != nil {
					return fmt.Errorf("batch %d: answer %q: %w", b, answer, err)
				}
				if res.Received != s.size || res.Stored+res.Duplicates != s.size {
					return fmt.Errorf("batch %d: answer %s for %d events", b, answer, s.size)
				}
				if attempt == 0 && res.Duplicates != 0 {
					return fmt.Errorf("batch %d: first attempt found %d duplicates", b, res.Duplicates)
				}
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			switch {
			case err != nil && errors.Is(err, context.Canceled):
				return err
			case err == nil && code != http.StatusServiceUnavailable:
				return fmt.Errorf("batch %d: status %d: %s", b, code, answer)
			}
			// A connection refused or cut by a kill, or a 503: retry.
			s.retries.Add(1)
			c.CloseIdleConnections()
			time.Sleep(50 * time.Millisecond)
		}
		s.batches = append(s.batches, ids)
	}
}

// body is the request for ids: an audit.k8s.io/v1 EventList or generic
// events, all in the sender's namespace.
func (s *sender) body(ids []string) ([]byte, string) {
	now := time.Now().UTC()
	if s.webhook {
		items := make([]map[string]any, len(ids))
		for i, id := range ids {
			// metav1.MicroTime, as kube-apiserver writes it.
			ts := now.Add(time.Duration(i) * time.Microsecond).Format("2006-01-02T15:04:05.000000Z07:00")
			items[i] = map[string]any{
				"level": "Metadata", "auditID": id, "stage": "ResponseComplete",
				"requestURI": "/api/v1/namespaces/" + s.ns + "/configmaps", "verb": "create",
				"user":                     map[string]any{"username": s.name},
				"sourceIPs":                []string{"10.0.0.1"},
				"objectRef":                map[string]any{"resource": "configmaps", "namespace": s.ns, "name": id, "apiVersion": "v1"},
				"responseStatus":           map[string]any{"metadata": map[string]any{}, "code": 201},
				"requestReceivedTimestamp": ts, "stageTimestamp": ts,
			}
			if s.objectBytes > 0 {
				items[i]["level"] = "RequestResponse"
				items[i]["requestObject"] = map[string]any{"kind": "ConfigMap", "apiVersion": "v1",
					"metadata": map[string]any{"name": id}, "data": map[string]string{"blob": strings.Repeat("x", s.objectBytes)}}
			}
		}
		b, _ := json.Marshal(map[string]any{"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": map[string]any{}, "items": items})
		return b, kubeAuditPath
	}
	items := make([]map[string]any, len(ids))
	for i, id := range ids {
		items[i] = map[string]any{
			"id": id, "time": now.Add(time.Duration(i) * time.Microsecond).Format(time.RFC3339Nano),
			"namespace": s.ns, "user": s.name, "status": "success", "method": "mask", "api": "/mask",
		}
	}
	b, _ := json.Marshal(items)
	return b, eventsPath
}

// startSenders runs each sender until done is closed; a sender that fails
// reports it on errs (when there is room) and cancels the scenario.
func startSenders(ctx context.Context, cancel context.CancelFunc, wg *sync.WaitGroup, done <-chan struct{}, errs chan<- error, ss []*sender) {
	for _, s := range ss {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.run(ctx, done); err != nil {
				select {
				case errs <- fmt.Errorf("%s: %w", s.name, err):
				default:
				}
				cancel()
			}
		}()
	}
}

// waitSenders waits for the senders to get their last batch acknowledged.
func waitSenders(t *testing.T, wg *sync.WaitGroup, ss []*sender) {
	t.Helper()
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(2 * time.Minute):
		t.Fatalf("the senders' last batches were not acknowledged within 2 minutes of recovery (%d retries so far)", retriesOf(ss))
	}
}

func batchesOf(ss []*sender) (n int) {
	for _, s := range ss {
		n += len(s.batches)
	}
	return n
}

func retriesOf(ss []*sender) (n int) {
	for _, s := range ss {
		n += int(s.retries.Load())
	}
	return n
}

// checkExactlyOnce asserts that rows hold every acknowledged event once and
// nothing else, with unique seqs in each sender's order: within a batch in
// item order, and every batch after the one acknowledged before it.
func checkExactlyOnce(t *testing.T, senders []*sender, rows []storedRow) (acked, lost, doubled int) {
	t.Helper()
	seqOf := make(map[string]int64, len(rows))
	seqs := make(map[int64]bool, len(rows))
	for _, r := range rows {
		if _, ok := seqOf[r.id]; ok {
			doubled++
			t.Errorf("event %s is stored twice", r.id)
		}
		seqOf[r.id] = r.seq
		if seqs[r.seq] {
			t.Errorf("seq %d is used twice", r.seq)
		}
		seqs[r.seq] = true
	}
	want := map[string]bool{}
	for _, s := range senders {
		var prevMax int64
		for bi, ids := range s.batches {
			var first, last int64
			for i, id := range ids {
				acked++
				want[id] = true
				seq, ok := seqOf[id]
				if !ok {
					lost++
					t.Errorf("acknowledged event %s is not stored", id)
					continue
				}
				if i > 0 && seq <= last {
					t.Errorf("%s batch %d: seq %d of item %d is not after %d", s.name, bi, seq, i, last)
				}
				if i == 0 {
					first = seq
				}
				last = seq
			}
			if bi > 0 && first <= prevMax {
				t.Errorf("%s batch %d starts at seq %d, not after the previous batch's %d", s.name, bi, first, prevMax)
			}
			prevMax = last
		}
	}
	for id := range seqOf {
		if !want[id] {
			// A batch is only ever sent until acknowledged, so the store
			// may hold only acknowledged events.
			t.Errorf("event %s is stored but was never acknowledged", id)
		}
	}
	return acked, lost, doubled
}
