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
	cryptorand "crypto/rand"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditops/auditops/internal/seal"
)

// TestKillDuringSealing is issue 20.4's scenario: while senders ingest, the
// manager seals every second and is SIGKILLed right before a seal's commit,
// right after it, at a random moment, and around a key rotation
// (manager rotate-seal-key, the real binary, on the keyring the manager
// uses). Afterwards every acknowledged event is stored once and sealed
// (manager verify: all events checked against sealed leaves, no problem),
// every checkpoint saved before a kill is extended by the log (given to
// verify as trusted: else rollback), and the last checkpoints are signed
// by the new key.
//
// FAULT_SEAL_SABOTAGE=replace-key shows the test can fail: the "rotation"
// writes a keyring without the old key, so the leaves the old key made are
// never sealed and the old checkpoints no longer verify.
func TestKillDuringSealing(t *testing.T) {
	eachStore(t, killDuringSealing)
}

func killDuringSealing(t *testing.T, st storeUnderTest) {
	sabotage := os.Getenv("FAULT_SEAL_SABOTAGE")
	if sabotage != "" && sabotage != "replace-key" {
		t.Fatalf("FAULT_SEAL_SABOTAGE=%q: want replace-key", sabotage)
	}
	ns := "faults-seal-" + st.name
	cfg := configFor(t, st)
	cfg.extraArgs = append(cfg.extraArgs, "--seal-interval=1s")
	p := startManager(t, cfg)

	ctx := t.Context()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	senders := []*sender{
		{name: "webhook-1", ns: ns, webhook: true, size: 50},
		{name: "events-1", ns: ns, size: 20},
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, len(senders))
	startSenders(sctx, cancel, &wg, done, errs, senders)

	// The newest checkpoint before each kill, kept outside the store.
	dir := t.TempDir()
	var trusted []string
	save := func(what string) string {
		t.Helper()
		note, err := st.value(ctx, "SELECT note FROM checkpoints WHERE namespace = '"+ns+"' ORDER BY size DESC LIMIT 1")
		if err != nil {
			t.Fatal(err)
		}
		if note == "" {
			return ""
		}
		f := filepath.Join(dir, fmt.Sprintf("checkpoint-%d", len(trusted)))
		if err := os.WriteFile(f, []byte(note), 0o600); err != nil {
			t.Fatal(err)
		}
		trusted = append(trusted, f)
		t.Logf("%s: trusted %s", what, strings.SplitN(note, "\n", 3)[1])
		return note
	}
	firstNote := ""
	rotate := func() string {
		t.Helper()
		if sabotage == "replace-key" {
			kr, err := seal.NewKeyring(cryptorand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(sealKeyFile(t, st), []byte(kr.Text()), 0o600); err != nil {
				t.Fatal(err)
			}
			return kr.Current.Verifier()
		}
		code, out := runManagerCommand(t, st, []string{"rotate-seal-key"})
		if code != 0 {
			t.Fatalf("manager rotate-seal-key: exit %d\n%s", code, out)
		}
		return strings.Fields(out)[0]
	}

	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	newKey := ""
	plan := []struct {
		point  string
		rotate bool
	}{
		{"seal-before-append", false}, {"seal-after-append", false},
		{"seal-before-append", true}, {"seal-after-append", false}, {"", false},
	}
	for i, r := range plan {
		time.Sleep(time.Duration(1000+rnd.IntN(1000)) * time.Millisecond)
		note := save(fmt.Sprintf("round %d", i))
		if firstNote == "" {
			firstNote = note
		}
		if r.rotate {
			newKey = rotate()
			t.Logf("round %d: rotated the seal key: %s is current", i, newKey)
		}
		p.kill()
		if r.point == "" {
			p = startManager(t, cfg)
			time.Sleep(time.Duration(rnd.IntN(2000)) * time.Millisecond)
			p.kill()
			p = startManager(t, cfg)
			t.Logf("round %d: killed at a random moment", i)
			continue
		}
		c := cfg
		c.env = []string{fmt.Sprintf("AUDITOPS_FAULT_KILL_AT=%s:%d", r.point, 1+rnd.IntN(2))}
		p = startManagerNoWait(t, c)
		waitFaultPoint(t, sctx, errs, p, c, fmt.Sprintf("round %d", i), 90*time.Second)
		t.Logf("round %d: killed at %s", i, r.point)
		p = startManager(t, cfg)
	}
	time.Sleep(time.Second)
	close(done)
	waitSenders(t, &wg, senders)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// The manager seals what is left within a few intervals.
	waitUntil(t, ctx, 30*time.Second, "every leaf of "+ns+" sealed", func() bool {
		// Sealed: placed below the newest checkpoint's size (SQLite
		// places leaves at ingest, PostgreSQL when it seals).
		n, err := st.value(ctx, "SELECT CAST(count(*) AS TEXT) FROM leaves WHERE namespace = '"+ns+"' AND (place IS NULL OR place >= "+
			"(SELECT coalesce(max(size), 0) FROM checkpoints WHERE namespace = '"+ns+"'))")
		return err == nil && n == "0"
	})
	last := save("the end")
	if err := p.stop(); err != nil {
		t.Fatalf("stopping the manager: %v", err)
	}

	rows, err := st.rows(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	acked, lost, doubled := checkExactlyOnce(t, senders, rows)
	args := []string{"--namespace", ns, "--seal-interval", "1s"}
	for _, f := range trusted {
		args = append(args, "--trusted-checkpoint", f)
	}
	code, out := runManagerVerify(t, st, args...)
	m := regexp.MustCompile(`(\d+) events \((\d+) against sealed leaves\)`).FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("manager verify after the kills: exit %d\n%s", code, out)
	}
	events, _ := strconv.Atoi(m[1])
	sealed, _ := strconv.Atoi(m[2])
	if events != len(rows) || sealed != len(rows) {
		t.Errorf("verify checked %d events, %d against sealed leaves; the store holds %d: every acknowledged event must be sealed", events, sealed, len(rows))
	}
	vs, err := seal.Verifiers(newKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := seal.Open([]byte(last), vs); err != nil {
		t.Errorf("the last checkpoint is not signed by the rotated key %s: %v", newKey, err)
	}
	if _, err := seal.Open([]byte(firstNote), vs); err == nil {
		t.Errorf("the first checkpoint is signed by the rotated key: the rotation changed nothing")
	}
	t.Logf("%s: %d kills, %d events acknowledged (%d retried batches), %d stored, %d lost, %d doubled; %d trusted checkpoints; verify: %s",
		st.name, len(plan)+1, acked, retriesOf(senders), len(rows), lost, doubled, len(trusted), strings.TrimSpace(out))
}

// sealKeyFile is the keyring file the manager uses for st: seal.key beside
// its page-token key (the default outside a cluster).
func sealKeyFile(t *testing.T, st storeUnderTest) string {
	t.Helper()
	if st.tokenKey != "" {
		return filepath.Join(filepath.Dir(st.tokenKey), "seal.key")
	}
	path, ok := strings.CutPrefix(st.url, "sqlite://")
	if !ok {
		t.Fatalf("no token key file for %s", st.url)
	}
	return filepath.Join(filepath.Dir(path), "seal.key")
}
