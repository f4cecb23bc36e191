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
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// recentIDsMax is the SQLite store's bound on ids_recent (its
// recentIDsMax): a merge of the tiers of ids follows the group that
// reaches it.
const recentIDsMax = 1 << 15

// TestKillDuringIDMerge: the SQLite store moves its events' id entries
// (what finds an id's older events) between tables every 32,768 events, in
// a transaction of its own after a group's commit (migrations 12 and 14):
// from ids_recent into ids, or, in a store of 2^21 events or more, a slice
// of ids_mid into ids and ids_recent into ids_mid. The manager is SIGKILLed
// in the middle of the second merge (fault point sqlite-in-merge), when
// the first has filled ids or ids_mid, restarted, and ingest goes on until
// the merge is done. Then every
// acknowledged event is stored once, each has exactly one entry in the
// tiers, and events that reuse ids of batches from before, around and
// after the kill are each counted as reused.
//
// The test fails when a merge is not one transaction: with the delete of
// ids_recent committed before its entries moved (a scratch build), the
// kill leaves the first merge's events without an entry.
func TestKillDuringIDMerge(t *testing.T) {
	for _, tiered := range []bool{false, true} {
		t.Run(fmt.Sprintf("tiered=%v", tiered), func(t *testing.T) { killDuringIDMerge(t, tiered) })
	}
}

func killDuringIDMerge(t *testing.T, tiered bool) {
	st := sqliteUnderTest(t)
	ns := "faults-ids"
	cfg := configFor(t, st)
	ctx := t.Context()
	// A store of 2^21 events, as far as merges go: the store reads ids_mid
	// when it holds an entry at start. This one names no event (seq -1),
	// and goes before the checks.
	const strayEntry = "seq = -1"
	if tiered {
		startManager(t, cfg).kill()
		if err := st.exec(ctx, "INSERT INTO ids_mid (slice, namespace, id_hash, ts, seq) VALUES (0, 'nowhere', 0, 0, -1)"); err != nil {
			t.Fatal(err)
		}
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	senders := []*sender{
		{name: "webhook-1", ns: ns, webhook: true, size: 400},
		{name: "webhook-2", ns: ns, webhook: true, size: 400},
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, len(senders))
	c := cfg
	c.env = []string{"AUDITOPS_FAULT_KILL_AT=sqlite-in-merge:2"}
	p := startManagerNoWait(t, c)
	startSenders(sctx, cancel, &wg, done, errs, senders)
	waitFaultPoint(t, sctx, errs, p, c, "the second merge", 3*time.Minute)
	count := func(q string) int {
		t.Helper()
		v, err := st.value(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("%s: %q: %v", q, v, err)
		}
		return n
	}
	// The fault point is in the merge's transaction, which the kill rolled
	// back: ids_recent is still full, and the first group after the
	// restart merges it. (Not fatal: a merge that is not one transaction
	// fails here, and the checks below say what it cost.)
	if n := count("SELECT count(*) FROM ids_recent"); n < recentIDsMax {
		t.Errorf("ids_recent holds %d entries after the kill, want at least %d", n, recentIDsMax)
	}
	if n := count("SELECT count(*) FROM " + map[bool]string{false: "ids", true: "ids_mid"}[tiered]); n < recentIDsMax {
		t.Errorf("the first merge's tier holds %d entries at the kill, want at least %d", n, recentIDsMax)
	}
	p = startManager(t, cfg)
	waitUntil(t, ctx, time.Minute, "the merge after the restart", func() bool {
		return count("SELECT count(*) FROM ids_recent") < recentIDsMax
	})
	time.Sleep(500 * time.Millisecond)
	close(done)
	waitSenders(t, &wg, senders)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	rows, err := st.rows(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	acked, lost, doubled := checkExactlyOnce(t, senders, rows)

	// Reuses of ids from the first, middle and last batch of each sender:
	// entries in ids or ids_mid, moved around the kill, and in ids_recent.
	var reused []map[string]any
	for _, s := range senders {
		for _, b := range []int{0, len(s.batches) / 2, len(s.batches) - 1} {
			reused = append(reused, map[string]any{"id": s.batches[b][0], "time": time.Now().UTC().Format(time.RFC3339Nano),
				"namespace": ns, "user": "mallory", "status": "success", "method": "get", "api": "/reuse"})
		}
	}
	body, err := json.Marshal(reused)
	if err != nil {
		t.Fatal(err)
	}
	code, answer, err := post(ctx, ingestClient(), eventsPath, body)
	if err != nil || code != http.StatusOK {
		t.Fatalf("posting reuses: %d %s %v", code, answer, err)
	}
	var res struct{ Stored, Reused int }
	if err := json.Unmarshal(answer, &res); err != nil {
		t.Fatal(err)
	}
	if res.Stored != len(reused) || res.Reused != len(reused) {
		t.Errorf("%d events reusing stored ids: answer %s, want each stored and reused", len(reused), answer)
	}
	if err := p.stop(); err != nil {
		t.Fatalf("stopping the manager: %v", err)
	}
	if err := st.check(ctx); err != nil {
		t.Fatal(err)
	}
	if tiered {
		if n := count("SELECT (SELECT count(*) FROM ids WHERE " + strayEntry + ") + (SELECT count(*) FROM ids_mid WHERE " + strayEntry + ")"); n != 1 {
			t.Fatalf("the stray entry of ids_mid: %d of it, want 1", n)
		}
		for _, table := range []string{"ids", "ids_mid"} {
			if err := st.exec(ctx, "DELETE FROM "+table+" WHERE "+strayEntry); err != nil {
				t.Fatal(err)
			}
		}
		if count("SELECT count(*) FROM ids_mid") == 0 {
			t.Error("ids_mid is empty: the merges did not go through it")
		}
	}
	const entries = "(SELECT namespace, id_hash, ts, seq FROM ids UNION ALL SELECT namespace, id_hash, ts, seq FROM ids_mid" +
		" UNION ALL SELECT namespace, id_hash, ts, seq FROM ids_recent)"
	const events = "(SELECT namespace, id_hash, ts, seq FROM events)"
	missing := count("SELECT count(*) FROM (SELECT * FROM " + events + " EXCEPT SELECT * FROM " + entries + ")")
	stray := count("SELECT count(*) FROM (SELECT * FROM " + entries + " EXCEPT SELECT * FROM " + events + ")")
	twice := count("SELECT (SELECT count(*) FROM " + entries + ") - (SELECT count(*) FROM (SELECT DISTINCT * FROM " + entries + "))")
	if missing+stray+twice != 0 {
		t.Errorf("the tiers of ids: %d events without an entry, %d entries without an event, %d entries twice", missing, stray, twice)
	}
	t.Logf("%d events acknowledged (%d batches, %d retried), %d stored, %d lost, %d doubled; %d in ids, %d in ids_mid, %d in ids_recent",
		acked, batchesOf(senders), retriesOf(senders), len(rows), lost, doubled,
		count("SELECT count(*) FROM ids"), count("SELECT count(*) FROM ids_mid"), count("SELECT count(*) FROM ids_recent"))
}
