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

package postgres

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/auditops/auditops/internal/store"
	"github.com/auditops/auditops/internal/store/internal/sqlstore"
	"github.com/auditops/auditops/internal/store/storetest"
)

// replicaPair is the primary and streaming standby of
// hack/postgres-replica.sh, started by the first test that needs them and
// shared by the package's tests (each in a database of its own).
var replicaPair struct {
	once             sync.Once
	dir              string
	primary, standby string
	err              error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if replicaPair.dir != "" {
		if out, err := exec.Command("../../../hack/postgres-replica.sh", "stop", replicaPair.dir).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "hack/postgres-replica.sh stop: %v\n%s", err, out)
		}
		// The temporary directory MkdirTemp made, not only its pg/.
		_ = os.RemoveAll(filepath.Dir(replicaPair.dir))
	}
	os.Exit(code)
}

// startReplicaPair starts hack/postgres-replica.sh's primary and standby in
// dir and returns their URLs.
func startReplicaPair(dir string) (primary, standby string, err error) {
	cmd := exec.Command("../../../hack/postgres-replica.sh", "start", dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	lines := strings.Fields(string(out))
	if err != nil || len(lines) != 2 {
		return "", "", fmt.Errorf("hack/postgres-replica.sh start: %v (%q)\n%s", err, out, stderr.String())
	}
	return lines[0], lines[1], nil
}

// replicaDatabase creates a fresh database on the shared primary and
// returns its URL on the primary and on the standby.
func replicaDatabase(t *testing.T) (primary, standby string) {
	t.Helper()
	replicaPair.once.Do(func() {
		replicaPair.dir, replicaPair.err = os.MkdirTemp("", "auditops-pg-replica-")
		if replicaPair.err != nil {
			return
		}
		replicaPair.dir = filepath.Join(replicaPair.dir, "pg")
		replicaPair.primary, replicaPair.standby, replicaPair.err = startReplicaPair(replicaPair.dir)
	})
	if replicaPair.err != nil {
		t.Fatal(replicaPair.err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "auditops_replica_" + hex.EncodeToString(b)
	execOn(t, replicaPair.primary, "CREATE DATABASE "+name+" TEMPLATE template0 ENCODING 'UTF8'")
	// The standby replays the CREATE DATABASE soon after; a store opened
	// before would find no database.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, replicaPair.standby)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	for n := 0; n == 0; {
		if err := c.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
			t.Fatalf("waiting for the standby to replay CREATE DATABASE: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	withDB := func(raw string) string {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		u.Path = "/" + name
		return u.String()
	}
	return withDB(replicaPair.primary), withDB(replicaPair.standby)
}

// execOn runs sql on the server at url.
func execOn(t *testing.T, url, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// replicaEvents are n events of namespace ns, an hour ago and after.
func replicaEvents(ns string, from, n int) []store.Event {
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	evs := make([]store.Event, 0, n)
	for i := from; i < from+n; i++ {
		evs = append(evs, store.Event{ID: fmt.Sprintf("ev-%05d", i), Time: base.Add(time.Duration(i) * time.Millisecond),
			Namespace: ns, User: "alice", Status: store.StatusSuccess, Method: "get", API: "/x"})
	}
	return evs
}

// ids walks every page of ns's events, 7 at a time, from token.
func ids(t *testing.T, s store.Store, ns string, to time.Time) []string {
	t.Helper()
	var out []string
	tok := ""
	for {
		p, err := s.Events(context.Background(), store.EventQuery{View: "audit-details", Namespace: ns,
			Range: store.TimeRange{To: to}, Page: store.Page{Size: 7, Token: tok}})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Events {
			out = append(out, e.ID)
		}
		if tok = p.NextToken; tok == "" {
			return out
		}
	}
}

// TestReplicatedRefuses: a read URL that is not a hot standby of the
// primary's database is refused, saying which way it is not.
func TestReplicatedRefuses(t *testing.T) {
	primary, standby := replicaDatabase(t)
	other := storetest.PostgresDatabase(t) // another cluster: with-postgres.sh's
	sameClusterOtherDB := func() string {
		u, _ := url.Parse(standby)
		u.Path = "/postgres"
		return u.String()
	}()
	ctx := context.Background()
	p, err := New(ctx, primary, store.Options{TokenKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, tc := range []struct {
		name, read, want string
	}{
		{"the primary itself", primary, "is not in recovery"},
		{"another cluster", other, "system identifier"},
		{"another database of the standby", sameClusterOtherDB, `names database "postgres"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewReplicated(ctx, p, tc.read, time.Second)
			if err == nil {
				r.standby.pool.Close()
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrNotStandby) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q: want ErrNotStandby saying %q", err, tc.want)
			}
		})
	}
}

// TestReplicatedLag: writes go to the primary, the audit API's reads to the
// standby (showing its lag while replay is paused), a report's reads wait
// for the standby to replay what the primary acknowledged before the
// window's end (and fail with ErrUnavailable past the replay wait), and
// page tokens pass between the two servers.
func TestReplicatedLag(t *testing.T) {
	primaryURL, standbyURL := replicaDatabase(t)
	ctx := context.Background()
	p, err := New(ctx, primaryURL, store.Options{TokenKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewReplicated(ctx, p, standbyURL, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	const ns = "team-a"
	if _, err := r.Insert(ctx, replicaEvents(ns, 0, 40)); err != nil {
		t.Fatal(err)
	}
	reports := r.ForReports()
	if got := ids(t, reports, ns, time.Time{}); len(got) != 40 {
		t.Fatalf("a report read %d events after 40 were acknowledged", len(got))
	}
	if _, err := r.standby.Insert(ctx, replicaEvents(ns, 100, 1)); err == nil || !strings.Contains(err.Error(), "SQLSTATE 25006") {
		t.Fatalf("an insert on the standby: %v, want a read-only refusal", err)
	}

	execOn(t, standbyURL, "SELECT pg_wal_replay_pause()")
	paused := true
	defer func() {
		if paused {
			execOn(t, standbyURL, "SELECT pg_wal_replay_resume()")
		}
	}()
	if _, err := r.Insert(ctx, replicaEvents(ns, 40, 30)); err != nil {
		t.Fatal(err)
	}
	windowEnd := time.Now()
	if got := ids(t, p, ns, time.Time{}); len(got) != 70 {
		t.Fatalf("the primary holds %d events, want 70", len(got))
	}
	if got := ids(t, r, ns, time.Time{}); len(got) != 40 {
		t.Fatalf("the API's read of a paused standby saw %d events, want the 40 it had replayed", len(got))
	}

	// Past the replay wait, a report's read is unavailable, not short.
	start := time.Now()
	_, err = reports.Events(ctx, store.EventQuery{View: "audit-details", Namespace: ns, Range: store.TimeRange{To: windowEnd}, Page: store.Page{Size: 7}})
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "read replica") {
		t.Fatalf("a report's read of a paused standby: %v, want ErrUnavailable about the read replica", err)
	}
	if waited := time.Since(start); waited < 2*time.Second || waited > 4*time.Second {
		t.Fatalf("it failed after %s, want the 2 s replay wait", waited)
	}

	// Within it, the read waits for the replay and then sees every event.
	type walk struct {
		ids []string
		at  time.Time
	}
	done := make(chan walk, 1)
	go func() { got := ids(t, reports, ns, windowEnd); done <- walk{got, time.Now()} }()
	time.Sleep(500 * time.Millisecond)
	resumed := time.Now()
	execOn(t, standbyURL, "SELECT pg_wal_replay_resume()")
	paused = false
	w := <-done
	if w.at.Before(resumed) {
		t.Fatal("a report's read answered before the standby replayed")
	}
	want := ids(t, p, ns, windowEnd)
	if strings.Join(w.ids, ",") != strings.Join(want, ",") || len(want) != 70 {
		t.Fatalf("a report read %d events from the standby, the primary holds %d; they differ", len(w.ids), len(want))
	}

	// Tokens are signed with the one key: a walk begun on the standby
	// continues on the primary, and the other way round.
	q := store.EventQuery{View: "audit-details", Namespace: ns, Page: store.Page{Size: 30}}
	first, err := r.Events(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	q.Page.Token = first.NextToken
	second, err := p.Events(ctx, q)
	if err != nil || len(second.Events) != 30 || second.Events[0].ID != "ev-00030" {
		t.Fatalf("the primary's page after the standby's token: %d events, %v", len(second.Events), err)
	}
	q.Page.Token = second.NextToken
	third, err := r.Events(ctx, q)
	if err != nil || len(third.Events) != 10 || third.NextToken != "" {
		t.Fatalf("the standby's page after the primary's token: %d events, %v", len(third.Events), err)
	}
}

// replayedWrites is a Replicated whose writes return once the standby has
// replayed them, so that the conformance suite, which reads right after it
// writes, reads every view's rows from the standby.
type replayedWrites struct{ *Replicated }

func (r replayedWrites) sync(ctx context.Context) error {
	lsn, err := r.primary.insertLSN(ctx)
	if err != nil {
		return err
	}
	return r.standby.readAfter(ctx, "sync", lsn, false, func(sqlstore.Queryer) error { return nil })
}

func (r replayedWrites) Insert(ctx context.Context, events []store.Event) (store.InsertResult, error) {
	res, err := r.Replicated.Insert(ctx, events)
	if err != nil {
		return res, err
	}
	return res, r.sync(ctx)
}

func (r replayedWrites) InsertParts(ctx context.Context, next func() ([]store.Event, error)) (store.InsertResult, error) {
	res, err := r.Replicated.InsertParts(ctx, next)
	if err != nil {
		return res, err
	}
	return res, r.sync(ctx)
}

func (r replayedWrites) DeleteBefore(ctx context.Context, t time.Time, keep ...string) (int64, error) {
	n, err := r.Replicated.DeleteBefore(ctx, t, keep...)
	if err != nil {
		return n, err
	}
	return n, r.sync(ctx)
}

// TestReplicatedConformance runs the shared store suite with every read on
// the hot standby: each view's SQL in a read-only repeatable-read
// transaction there, tokens, byte caps, totals.
func TestReplicatedConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		primary, standby := replicaDatabase(t)
		p, err := New(context.Background(), primary, store.Options{TokenKey: testKey})
		if err != nil {
			t.Fatal(err)
		}
		r, err := NewReplicated(context.Background(), p, standby, 10*time.Second)
		if err != nil {
			_ = p.Close()
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close() })
		return replayedWrites{r}
	})
}

// TestReplicatedStandbyDown: with the standby stopped, ingest goes on and
// the store stays ready (readiness is the primary's), while reads fail as
// unavailable (503, a report retries) instead of answering from elsewhere;
// restarted, the standby catches up and reads resume. It stops the
// package's shared standby and starts it again on its port.
func TestReplicatedStandbyDown(t *testing.T) {
	primary, standby := replicaDatabase(t)
	ctx := context.Background()
	p, err := New(ctx, primary, store.Options{TokenKey: testKey, BusyTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewReplicated(ctx, p, standby, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	u, err := url.Parse(standby)
	if err != nil {
		t.Fatal(err)
	}
	standbyDir := filepath.Join(replicaPair.dir, "standby")
	pg := func(verb string) {
		t.Helper()
		cmd := exec.Command("../../../hack/postgres.sh", verb, standbyDir)
		cmd.Env = append(os.Environ(), "PG_PORT="+u.Port())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("hack/postgres.sh %s %s: %v\n%s", verb, standbyDir, err, out)
		}
	}
	pg("stop")
	restarted := false
	defer func() {
		if !restarted {
			pg("start")
		}
	}()
	if err := r.Ping(ctx); err != nil {
		t.Errorf("Ping with the standby down: %v, want ready (the primary takes ingest)", err)
	}
	if res, err := r.Insert(ctx, replicaEvents("team-a", 0, 5)); err != nil || res.Inserted != 5 {
		t.Errorf("Insert with the standby down: %+v, %v", res, err)
	}
	q := store.EventQuery{View: "audit-details", Namespace: "team-a", Page: store.Page{Size: 10}}
	reports := r.ForReports()
	for name, s := range map[string]store.Store{"the API's": r, "a report's": reports} {
		if _, err := s.Events(ctx, q); !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s read with the standby down: %v, want ErrUnavailable", name, err)
		}
	}
	pg("start")
	restarted = true
	// A report's read waits for the replay of what was stored meanwhile
	// (retrying, as a report does, while the pool drops connections to the
	// stopped server).
	deadline := time.Now().Add(20 * time.Second)
	for {
		page, err := reports.Events(ctx, q)
		if err == nil {
			if len(page.Events) != 5 {
				t.Errorf("a report's read after the standby's restart: %d events, want 5", len(page.Events))
			}
			return
		}
		if !errors.Is(err, store.ErrUnavailable) || time.Now().After(deadline) {
			t.Fatalf("a report's read after the standby's restart: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
