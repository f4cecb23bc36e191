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
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/auditops/auditops/internal/seal"
	"github.com/auditops/auditops/internal/store"
	"github.com/auditops/auditops/internal/store/storetest"
)

// haltingConn is a connection whose writes stop, as a stopped process's
// do, half way through the first large write after the batch took
// writersLock (lockKey in a Bind): the leaves' write, whatever form it
// takes.
type haltingConn struct {
	net.Conn
	locked   atomic.Bool
	halted   chan struct{}
	resume   chan struct{}
	haltOnce *sync.Once
}

// lockKey is writersLock as a parameter: its length, then the big-endian
// int8 ("auditops").
var lockKey = append([]byte{0, 0, 0, 8}, "auditops"...)

func (c *haltingConn) Write(b []byte) (int, error) {
	if !c.locked.Load() {
		if bytes.Contains(b, lockKey) {
			c.locked.Store(true)
		}
		return c.Conn.Write(b)
	}
	if len(b) < 1024 {
		return c.Conn.Write(b)
	}
	n, err := c.Conn.Write(b[:len(b)/2])
	if err != nil {
		return n, err
	}
	c.haltOnce.Do(func() { close(c.halted) })
	<-c.resume
	return n, errors.New("the process was stopped")
}

// TestPausedMidLeavesLetsIngestOn: a replica stopped in the middle of
// sending its batch's leaves, holding writersLock, stops the others'
// ingest for about twice the busy timeout, not until its connection dies:
// the leaves go in one statement, and PostgreSQL ends a session idle in a
// transaction, half a message read or not. (With the leaves' COPY it did
// not: a session in the middle of COPY's data is active, and its wait for
// the rest is not interrupted, by this timeout nor by statement_timeout.)
// The stopped replica's batch is not stored.
func TestPausedMidLeavesLetsIngestOn(t *testing.T) {
	const busy = 500 * time.Millisecond
	ctx := t.Context()
	url := storetest.PostgresDatabase(t)
	kr, err := seal.NewKeyring(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	opts := store.Options{TokenKey: testKey, BusyTimeout: busy, Leaves: seal.LeafMaker{Keys: kr}}
	halted, resume := make(chan struct{}), make(chan struct{})
	var once sync.Once
	var armed atomic.Bool
	paused, err := openWith(ctx, url, opts, 0, func(cfg *pgxpool.Config) {
		dial := cfg.ConnConfig.DialFunc
		cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dial(ctx, network, addr)
			if err != nil || !armed.Load() {
				return c, err
			}
			return &haltingConn{Conn: c, halted: halted, resume: resume, haltOnce: &once}, nil
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer paused.Close()
	other, err := New(ctx, url, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	// Before the stores close (whose pools wait for the halted write).
	var resumeOnce sync.Once
	resumeAll := func() { resumeOnce.Do(func() { close(resume) }) }
	defer resumeAll()
	// A new connection of the paused store's pool is the halting one.
	paused.pool.Reset()
	armed.Store(true)

	var batch []store.Event
	for i := range 200 {
		batch = append(batch, storetest.BigEvent("stopped", i, time.Unix(1700000000, 0).Add(time.Duration(i)*time.Millisecond)))
	}
	stopped := make(chan error, 1)
	go func() {
		_, err := paused.Insert(ctx, batch)
		stopped <- err
	}()
	select {
	case <-halted:
	case err := <-stopped:
		t.Fatalf("the batch ended before its leaves were written: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the batch never wrote its leaves")
	}
	var held bool
	if err := other.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 AND objid::bigint = $1)",
		writersLock&0xffffffff).Scan(&held); err != nil || !held {
		t.Fatalf("the stopped replica holds the writers' lock: %v, %v", held, err)
	}
	start := time.Now()
	deadline := start.Add(4 * idleInTxTimeout(busy))
	var stored bool
	for i := 0; !stored && time.Now().Before(deadline); i++ {
		actx, cancel := context.WithTimeout(ctx, 2*busy)
		res, err := other.Insert(actx, []store.Event{{ID: fmt.Sprintf("e%d", i), Namespace: "team-a", Time: time.Unix(1700000000, 0), User: "alice",
			API: "/pods", Method: "get", Status: store.StatusSuccess, Category: store.CategoryData}})
		cancel()
		switch {
		case err == nil && res.Inserted == 1:
			stored = true
		case err != nil && !errors.Is(err, store.ErrUnavailable) && !errors.Is(err, context.DeadlineExceeded):
			t.Fatalf("ingest beside the stopped replica: %v; want stored, or unavailable meanwhile", err)
		}
	}
	if !stored {
		t.Fatalf("ingest beside a replica stopped mid-leaves, holding the writers' lock: nothing stored in %s", time.Since(start).Round(time.Millisecond))
	}
	t.Logf("stored after %s", time.Since(start).Round(time.Millisecond))
	resumeAll()
	if err := <-stopped; err == nil {
		t.Fatal("the stopped replica's batch was acknowledged")
	}
	page, err := other.Events(ctx, store.EventQuery{View: "test", Namespace: "stopped", Page: store.Page{Size: 10}})
	if err != nil || len(page.Events) != 0 {
		t.Fatalf("the stopped replica's batch: %d events stored (%v); want none", len(page.Events), err)
	}
}
