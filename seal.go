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
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/auditops/auditops/internal/seal"
	"github.com/auditops/auditops/internal/sealkey"
	"github.com/auditops/auditops/internal/sealverify"
	"github.com/auditops/auditops/internal/store/storeopen"
)

// SealKeyFileName is the default seal key file outside a cluster, beside
// the page-token key file.
const SealKeyFileName = "seal.key"

// serviceAccountNamespace is where a pod finds its namespace.
const serviceAccountNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// maxSealInterval is spec/API.md 6's bound on --seal-interval.
const maxSealInterval = 5 * time.Minute

// sealOptions are the flags of the tamper-evident log (spec/API.md 6),
// shared by the manager and 'manager import' (both make leaves).
type sealOptions struct {
	enabled         bool
	keyFile         string
	secretNamespace string
	// origin and interval are the manager's (it seals).
	origin   string
	interval time.Duration
	// verifyInterval is how often the leader verifies the store against
	// its logs (0: never).
	verifyInterval time.Duration
	// acceptUnverifiedHead is seal.Sealer.AcceptUnverifiedHead.
	acceptUnverifiedHead bool
}

func (o *sealOptions) addFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.enabled, "seal", true, "make a tamper-evidence leaf of every stored event (spec/API.md 6); false stores events without leaves, which verify then reports unsealed")
	fs.StringVar(&o.keyFile, "seal-key-file", "", "file holding the seal keyring (signer keys, one per line, the current one first), created when absent; default: Secret "+sealkey.SecretName+" in the pod's namespace in a cluster (or --seal-key-namespace's), else "+SealKeyFileName+" beside the page-token key file")
	fs.StringVar(&o.secretNamespace, "seal-key-namespace", "", "namespace of Secret "+sealkey.SecretName+" (default: the pod's); with --seal-key-file unset, read (or created) there through the kubeconfig")
}

func (o *sealOptions) addManagerFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.origin, "seal-origin", seal.DefaultOriginPrefix, "prefix of each namespace's log origin in checkpoints: <prefix>/<namespace>")
	fs.DurationVar(&o.interval, "seal-interval", time.Minute, "how often the leader seals every log that grew (at most 5m)")
	fs.BoolVar(&o.acceptUnverifiedHead, "seal-accept-unverified-checkpoints", false, "extend logs whose newest checkpoint no key of the seal keyring signed (only after the seal key was lost: once every log has a checkpoint signed by the new key, turn it off). Off, the leader refuses such a log (auditops_seal_altered_logs_total), since anyone could have written its root")
	fs.DurationVar(&o.verifyInterval, "verify-interval", 24*time.Hour, "how often the leader runs manager verify on the store with its own keyring (metrics auditops_verify_*; first run 10 minutes after it leads); 0 never. It reads every event once")
}

func (o *sealOptions) validate() error {
	if o.interval <= 0 || o.interval > maxSealInterval {
		return fmt.Errorf("--seal-interval %s: want more than 0 and at most %s", o.interval, maxSealInterval)
	}
	if o.verifyInterval < 0 {
		return fmt.Errorf("--verify-interval %s: want 0 (never) or more", o.verifyInterval)
	}
	if o.origin == "" || strings.Contains(o.origin, "\n") {
		return fmt.Errorf("--seal-origin %q: want a non-empty single line", o.origin)
	}
	return nil
}

// source returns where the keyring is kept: a file, or the namespace of
// its Secret.
func (o *sealOptions) source(so storeOptions) (file, namespace string, err error) {
	if o.keyFile != "" {
		return o.keyFile, "", nil
	}
	if o.secretNamespace != "" {
		return "", o.secretNamespace, nil
	}
	if ns, err := os.ReadFile(serviceAccountNamespace); err == nil && strings.TrimSpace(string(ns)) != "" {
		return "", strings.TrimSpace(string(ns)), nil
	}
	tokenKeyFile := so.tokenKeyFile
	if tokenKeyFile == "" {
		t, err := storeopen.Parse(so.url)
		if err != nil {
			return "", "", err
		}
		tokenKeyFile = t.TokenKeyFile
	}
	if tokenKeyFile == "" {
		return "", "", errors.New("no seal key: give --seal-key-file (or --seal-key-namespace), the same keyring for every replica")
	}
	return filepath.Join(filepath.Dir(tokenKeyFile), SealKeyFileName), "", nil
}

// keyring loads (or creates) the keyring; nil when sealing is off. The
// returned InCluster is set when it lives in a Secret.
func (o *sealOptions) keyring(ctx context.Context, so storeOptions, restConfig func() (*rest.Config, error)) (*seal.Keyring, *sealkey.InCluster, error) {
	if !o.enabled {
		return nil, nil, nil
	}
	file, ns, err := o.source(so)
	if err != nil {
		return nil, nil, err
	}
	if file != "" {
		kr, err := sealkey.LoadFile(file)
		return kr, nil, err
	}
	cfg, err := restConfig()
	if err != nil {
		return nil, nil, fmt.Errorf("loading kubeconfig for Secret %s/%s: %w", ns, sealkey.SecretName, err)
	}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return nil, nil, fmt.Errorf("a client for Secret %s/%s: %w", ns, sealkey.SecretName, err)
	}
	src := &sealkey.InCluster{Client: c, Namespace: ns}
	kr, err := src.Load(ctx)
	if err != nil {
		return nil, nil, err
	}
	return kr, src, nil
}

// headsPublisher returns sealLoop's publish: it saves the sealer's signed
// heads into the heads ConfigMaps (sealkey.Publisher).
func headsPublisher(h sealkey.Heads, s *seal.Sealer, log logr.Logger) func(context.Context) {
	p := &sealkey.Publisher{Heads: h}
	return func(ctx context.Context) {
		if err := p.Publish(ctx, time.Now(), s.SignedHeads()); err != nil {
			log.Error(err, "publishing the logs' newest checkpoints")
		}
	}
}

// holdToHeads gives the sealer the checkpoints a leader before it
// published (sealkey.Heads), those h.Verifiers (the ring's keys) signed.
func holdToHeads(ctx context.Context, h sealkey.Heads, s *seal.Sealer, log logr.Logger) {
	if h.Verifiers == nil {
		log.Info("no verifier keys: the checkpoints a leader before published are not read")
		return
	}
	cps, bad, err := h.Load(ctx, h.Verifiers)
	if err != nil {
		log.Error(err, "reading the logs' newest checkpoints a leader before published")
		return
	}
	for _, cp := range cps {
		s.Witness(cp)
	}
	if len(bad) > 0 {
		log.Info("published checkpoints that no seal key signed were left out", "namespaces", bad)
	}
}

// leaderWitnesses are the checkpoints kept outside the store that the
// leader holds its logs to: the newest of each log its sealer signed,
// checked or was told of, and every report's status.seal (in etcd), read
// with c. A cut-back log the store alone cannot show then is a rollback
// finding of the leader's own verify runs (AuditopsRecordTampered), not
// only of 'manager verify --trusted-from-reports'. Reports that cannot be
// listed leave the sealer's own.
func leaderWitnesses(c client.Reader, s *seal.Sealer, log logr.Logger) func(context.Context) []seal.Checkpoint {
	return func(ctx context.Context) []seal.Checkpoint {
		out := s.Heads()
		reps, err := reportWitnessesFrom(ctx, c)
		if err != nil {
			log.Error(err, "reading the checkpoints reports read, to hold the logs to")
		}
		return append(out, reps...)
	}
}

// sealLoop seals every log that grew, now and then every interval; the
// leader runs it.
//
// publish, when set, runs after each round, and once more when the loop
// stops (on a context of its own, for a few seconds): a leader stopped
// with SIGTERM hands its newest checkpoints on.
func sealLoop(ctx context.Context, s *seal.Sealer, interval time.Duration, m *seal.Metrics, publish func(context.Context), log logr.Logger) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	if publish != nil {
		defer func() {
			c, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			publish(c)
		}()
	}
	for {
		res, err := s.SealAll(ctx)
		if ctx.Err() != nil {
			return nil
		}
		m.Observe(res, err)
		for ns, r := range res {
			if len(r.Refused) > 0 {
				// The first few name where to look (manager verify lists
				// them all); a flood of forged rows must not flood the log.
				log.Info("leaves refused: their MAC is no seal key's (rows not written by ingest)",
					"namespace", ns, "count", len(r.Refused), "firstSeqs", r.Refused[:min(len(r.Refused), 10)])
			}
		}
		if err != nil {
			log.Error(err, "sealing")
		}
		if publish != nil {
			publish(ctx)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// verifyLoop is the leader's own 'manager verify', every interval (the
// first run after firstAfter): the store read against the logs with the
// manager's keyring, findings logged and counted in the verify metrics.
// It finds what a change behind the manager's back leaves; a CronJob with a
// verifier key pinned outside the cluster checks more (README).
func verifyLoop(ctx context.Context, st sealverify.Store, keys *seal.Keyring, witnesses func(context.Context) []seal.Checkpoint,
	sealInterval, interval, firstAfter time.Duration, m *sealverify.Metrics, log logr.Logger) error {
	wait := firstAfter
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = interval
		vs, err := seal.Verifiers(keys.VerifierKeys()...)
		if err != nil {
			return err
		}
		// The findings are counted, and only the first few of each
		// problem kept to log: a store an intruder rewrote wholesale must
		// not take the leader's memory with it (manager verify lists all).
		const logPerProblem = 5
		var sample []sealverify.Finding
		kept := map[string]int{}
		start := time.Now()
		var ws []seal.Checkpoint
		if witnesses != nil {
			ws = witnesses(ctx)
		}
		sum, err := sealverify.Verify(ctx, st, sealverify.Options{Verifiers: vs, SealInterval: sealInterval, Witnesses: ws},
			func(f sealverify.Finding) {
				if kept[f.Problem] < logPerProblem {
					kept[f.Problem]++
					sample = append(sample, f)
				}
			})
		if ctx.Err() != nil {
			return nil
		}
		m.Observe(sum, err)
		if err != nil {
			log.Error(err, "verifying the store against its logs")
			continue
		}
		for _, f := range sample {
			log.Error(nil, "the record was changed behind the manager's back", "namespace", f.Namespace, "problem", f.Problem,
				"index", f.Index, "seq", f.Seq, "id", f.ID, "detail", f.Detail)
		}
		if len(sample) < sum.Problems() {
			log.Error(nil, "more problems: run manager verify to list them all", "problems", sum.Problems(), "byProblem", sum.ByProblem)
		}
		log.Info("verified the store against its logs", "events", sum.Events, "namespaces", sum.Namespaces,
			"problems", sum.Problems(), "elapsed", time.Since(start).Round(time.Millisecond))
	}
}
