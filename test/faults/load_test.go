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
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestLoad is scenario 5 of the fault suite: for a minute (FAULT_LOAD=…
// to change it) two webhook senders and a generic-event sender post, a
// client walks audit-details page by page, and AuditDetails reports run one
// after another, all against one manager. Nothing may fail, every walk and
// every report must hold exactly the rows of its range, every acknowledged
// event must be stored once; the page latencies under load are logged.
func TestLoad(t *testing.T) {
	eachStore(t, load)
}

func load(t *testing.T, st storeUnderTest) {
	d := time.Minute
	if v := os.Getenv("FAULT_LOAD"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			t.Fatalf("FAULT_LOAD=%q: %v", v, err)
		}
	}
	ns := "faults-load-" + st.name
	kubectl(t, "create", "namespace", ns)
	cfg := configFor(t, st)
	p := startManager(t, cfg)
	// A fixed part of the namespace that the walks and reports read, while
	// the senders add to the present.
	const seeded = 5000
	base := time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour)
	seedReportEvents(t, ns, base, seeded)
	window := [2]time.Time{base.Add(-time.Hour), base.Add(2 * time.Hour)}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	senders := []*sender{
		{name: "webhook-1", ns: ns, webhook: true, size: 400},
		{name: "webhook-2", ns: ns, webhook: true, size: 400},
		{name: "events-1", ns: ns, size: 100},
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, 8)
	fail := func(err error) {
		select {
		case errs <- err:
		default:
		}
		cancel()
	}
	startSenders(ctx, cancel, &wg, done, errs, senders)
	var latencies []time.Duration
	walks := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		c := clientAs("admin")
		for {
			select {
			case <-done:
				return
			default:
			}
			ids, lat, err := walkAuditDetails(ctx, c, ns, window)
			if err != nil {
				fail(fmt.Errorf("walking audit-details: %w", err))
				return
			}
			latencies = append(latencies, lat...)
			if err := exactlyTheSeeded(ids, seeded); err != nil {
				fail(fmt.Errorf("walk %d: %w", walks+1, err))
				return
			}
			walks++
		}
	}()

	reports := 0
	var first []byte
	for end := time.Now().Add(d); time.Now().Before(end) && ctx.Err() == nil; reports++ {
		rep := runReport(t, ns, fmt.Sprintf("load-%d", reports), window)
		b := reportBytes(t, ns, rep)
		var rows []struct {
			InputPayload struct {
				ID string `json:"id"`
			} `json:"input_payload"`
		}
		if err := json.Unmarshal(b, &rows); err != nil {
			t.Fatalf("report load-%d: %v", reports, err)
		}
		ids := make([]string, len(rows))
		for i, r := range rows {
			ids[i] = r.InputPayload.ID
		}
		if err := exactlyTheSeeded(ids, seeded); err != nil {
			t.Fatalf("report load-%d: %v", reports, err)
		}
		if first == nil {
			first = b
		} else if !bytes.Equal(b, first) {
			t.Fatalf("report load-%d (%d bytes) differs from load-0 (%d bytes) over the same range", reports, len(b), len(first))
		}
	}
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
	acked, lost, doubled := checkExactlyOnce(t, senders, sentBy(senders, rows))
	// The record proves itself: manager verify finds nothing to name in
	// what the load stored (leaves the last seal did not reach are not
	// findings within twice the seal interval).
	out, err := exec.Command(env.managerBin, "verify", "--store", st.url, "--token-key-file", st.tokenKey,
		"--namespace", ns, "--seal-interval", "5m").CombinedOutput()
	if err != nil || !strings.Contains(string(out), ": 0 problems") {
		t.Fatalf("manager verify after the load: %v\n%s", err, out)
	}
	t.Logf("manager verify: %s", strings.TrimSpace(string(out)))
	slices.Sort(latencies)
	pct := func(q float64) time.Duration { return latencies[int(q*float64(len(latencies)-1))] }
	if len(latencies) == 0 || walks == 0 || reports == 0 {
		t.Fatalf("%d walks, %d pages, %d reports: the load did not run", walks, len(latencies), reports)
	}
	t.Logf("%s: %s of load: %d events acknowledged (%d retried), %d lost, %d doubled; %d audit-details walks of %d rows (%d pages: p50 %s, p99 %s, max %s); %d reports of %d rows, byte-identical",
		st.name, d, acked, retriesOf(senders), lost, doubled, walks, seeded, len(latencies),
		pct(0.5).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), latencies[len(latencies)-1].Round(time.Microsecond), reports, seeded)
}

// walkAuditDetails reads every page of audit-details over window and
// returns the ids of the seeded rows (input_payload.id) and each page's
// latency.
func walkAuditDetails(ctx context.Context, c *http.Client, ns string, window [2]time.Time) ([]string, []time.Duration, error) {
	var ids []string
	var lat []time.Duration
	token := ""
	for {
		q := url.Values{}
		q.Set("namespace", ns)
		q.Set("start_date", window[0].Format(time.DateTime))
		q.Set("end_date", window[1].Format(time.DateTime))
		q.Set("page_size", "1000")
		if token != "" {
			q.Set("next_page_token", token)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://127.0.0.1:"+strconv.Itoa(env.securePort)+"/namespace/reports/audit-details?"+q.Encode(), nil)
		if err != nil {
			return nil, nil, err
		}
		start := time.Now()
		resp, err := c.Do(req)
		if err != nil {
			return nil, nil, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		lat = append(lat, time.Since(start))
		if err != nil {
			return nil, nil, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, nil, fmt.Errorf("page %d: status %d: %.300s", len(lat), resp.StatusCode, body)
		}
		var page struct {
			Data struct {
				Details []struct {
					InputPayload struct {
						ID string `json:"id"`
					} `json:"input_payload"`
				} `json:"details"`
				Next string `json:"next_page_token"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return nil, nil, fmt.Errorf("page %d: %w", len(lat), err)
		}
		for _, d := range page.Data.Details {
			ids = append(ids, d.InputPayload.ID)
		}
		if page.Data.Next == "" {
			return ids, lat, nil
		}
		token = page.Data.Next
	}
}

// exactlyTheSeeded checks that ids are seed-000000 .. seed-<n-1>, each
// once, in order.
func exactlyTheSeeded(ids []string, n int) error {
	if len(ids) != n {
		return fmt.Errorf("%d rows, want the %d seeded", len(ids), n)
	}
	for i, id := range ids {
		if want := fmt.Sprintf("seed-%06d", i); id != want {
			return fmt.Errorf("row %d is %q, want %q", i, id, want)
		}
	}
	return nil
}

// sentBy keeps the rows whose ids the senders make: the namespace also
// holds the seeded rows and kube-apiserver's own audit of what the test
// does there (creating it, the reports' ConfigMaps).
func sentBy(ss []*sender, rows []storedRow) []storedRow {
	return slices.DeleteFunc(rows, func(r storedRow) bool {
		for _, s := range ss {
			if strings.HasPrefix(r.id, s.name+"-b") {
				return false
			}
		}
		return true
	})
}
