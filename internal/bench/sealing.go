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

package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime/pprof"
	"slices"
	"sync"
	"time"

	"github.com/auditops/auditops/internal/seal"
	"github.com/auditops/auditops/internal/sealverify"
	"github.com/auditops/auditops/internal/store"
)

// sealInterval is how often the benchmark's leader seals beside ingest
// (the manager's --seal-interval; its default is a minute, which would
// only make the lag figure a minute larger).
const sealInterval = time.Second

// sealBeside seals t's logs every sealInterval while ingest runs, as the
// leader does. stop ends it after a last seal, so every leaf has its lag;
// lags returns each sealed leaf's seal lag.
func (r *runner) sealBeside(ctx context.Context, t *target, st store.Store) (stop func() error, lags func() []time.Duration) {
	if t.keys == nil || r.cfg.NoSealer {
		return func() error { return nil }, func() []time.Duration { return nil }
	}
	var mu sync.Mutex
	var observed []time.Duration
	sealer := &seal.Sealer{Store: st.(seal.Log), Keys: t.keys, Origin: seal.DefaultOriginPrefix, Now: time.Now,
		ObserveLag: func(d time.Duration) {
			mu.Lock()
			observed = append(observed, d)
			mu.Unlock()
		}}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		pprof.SetGoroutineLabels(pprof.WithLabels(sctx, pprof.Labels("phase", "seal")))
		tick := time.NewTicker(sealInterval)
		defer tick.Stop()
		for {
			select {
			case <-sctx.Done():
				_, err := sealer.SealAll(ctx)
				done <- err
				return
			case <-tick.C:
				if _, err := sealer.SealAll(sctx); err != nil && sctx.Err() == nil {
					done <- err
					return
				}
			}
		}
	}()
	return func() error {
			cancel()
			return <-done
		}, func() []time.Duration {
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(observed)
		}
}

// sealing measures, on one store: the seal lag under the webhook ingest
// just run (lags), the same ingest without leaves (what sealing costs it),
// and verify's rate over what that ingest stored.
func (r *runner) sealing(ctx context.Context, kind string, main *target, onRate float64, lags []time.Duration) error {
	lbl := "{store=" + kind + "}"
	if len(lags) == 0 {
		return errors.New("sealing beside the webhook ingest observed no seal lag")
	}
	slices.Sort(lags)
	p99 := lags[int(0.99*float64(len(lags)-1))]
	r.res.add(Metric{Metric: "seal_lag_p99_seconds" + lbl, Value: p99.Seconds(), Unit: "s",
		Note: fmt.Sprintf("per leaf, from ingest writing it to the commit of the checkpoint covering it, %d leaves, sealed every %s while the webhook ingest ran at full rate (median %.2f s, max %.2f s)",
			len(lags), sealInterval, lags[len(lags)/2].Seconds(), lags[len(lags)-1].Seconds())})
	r.logf("%s: seal lag under the webhook ingest: p99 %.2f s over %d leaves", kind, p99.Seconds(), len(lags))

	off, err := r.newTargetLeaves(ctx, kind, "webhook_noseal", false)
	if err != nil {
		return err
	}
	defer off.drop() //nolint:errcheck // best effort
	st, err := off.open(ctx)
	if err != nil {
		return err
	}
	p := r.ph.begin("%s: webhook ingest without leaves (--seal=false)", kind)
	var n int
	var d time.Duration
	pprof.Do(ctx, pprof.Labels("phase", "webhook-noleaves"), func(ctx context.Context) { n, d, err = webhookIngest(ctx, st, r.ds.Log) })
	st.Close()
	if err != nil {
		return fmt.Errorf("webhook ingest without leaves: %w", err)
	}
	offRate := float64(n) / d.Seconds()
	r.res.add(Metric{Metric: "ingest_events_per_s{store=" + kind + ",seal=off}", Value: offRate, Unit: "events/s",
		Note: fmt.Sprintf("the webhook ingest above without tamper-evidence leaves (--seal=false), same run, %.1f s", d.Seconds())})
	r.res.add(Metric{Metric: "seal_ingest_cost" + lbl, Value: 1 - onRate/offRate, Unit: "fraction",
		Note: "1 - (webhook ingest with leaves and sealing beside it) / (without leaves), same run; issue 20's goal: at most 0.10"})
	p.end("%.0f events/s without leaves, %.0f with: sealing costs %.0f%%", offRate, onRate, 100*(1-onRate/offRate))

	st, err = main.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	vs, err := seal.Verifiers(main.keys.VerifierKeys()...)
	if err != nil {
		return err
	}
	p = r.ph.begin("%s: manager verify", kind)
	problems := 0
	start := time.Now()
	var sum sealverify.Summary
	// Labelled, so that a profile of the whole run (AUDITOPS_BENCH_CPUPROFILE)
	// shows verify alone with -tagfocus=phase=verify.
	pprof.Do(ctx, pprof.Labels("phase", "verify"), func(ctx context.Context) {
		sum, err = sealverify.Verify(ctx, st.(sealverify.Store), sealverify.Options{Verifiers: vs}, func(sealverify.Finding) { problems++ })
	})
	d = time.Since(start)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if problems != 0 || sum.Sealed != sum.Events {
		return fmt.Errorf("verify: %d problems, %d of %d events sealed", problems, sum.Sealed, sum.Events)
	}
	r.res.add(Metric{Metric: "verify_events_per_s" + lbl, Value: float64(sum.Events) / d.Seconds(), Unit: "events/s",
		Note: fmt.Sprintf("sealverify.Verify (manager verify) of the webhook ingest's %d events in %d namespaces, every one against its sealed leaf, %.1f s", sum.Events, sum.Namespaces, d.Seconds())})
	p.end("%.0f events/s over %.1f s, 0 problems", float64(sum.Events)/d.Seconds(), d.Seconds())
	return nil
}

// sealCatchUp seals the n leaves the import left in st: a leader's catch-up
// of a backlog.
func (r *runner) sealCatchUp(ctx context.Context, kind string, t *target, st store.Store, n int) error {
	lbl := "{store=" + kind + "}"
	sealer := &seal.Sealer{Store: st.(seal.Log), Keys: t.keys, Origin: seal.DefaultOriginPrefix, Now: time.Now}
	p := r.ph.begin("%s: sealing a backlog of %d leaves", kind, n)
	start := time.Now()
	res, err := sealer.SealAll(ctx)
	d := time.Since(start)
	if err != nil {
		return fmt.Errorf("sealing the imported backlog: %w", err)
	}
	sealed := 0
	for _, r := range res {
		sealed += r.Sealed
	}
	if sealed != n {
		return fmt.Errorf("sealing the imported backlog sealed %d of %d leaves", sealed, n)
	}
	r.res.add(Metric{Metric: "seal_catchup_leaves_per_s" + lbl, Value: float64(n) / d.Seconds(), Unit: "leaves/s",
		Note:  fmt.Sprintf("Sealer.SealAll of the %d leaves manager import left unsealed, %d namespaces, %.1f s; issue 20's goal: at least 3x the webhook ingest rate", n, len(res), d.Seconds()),
		floor: "ingest_events_per_s" + lbl})
	p.end("%.0f leaves/s over %.1f s", float64(n)/d.Seconds(), d.Seconds())
	return nil
}
