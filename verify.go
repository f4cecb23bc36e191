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
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/mod/sumdb/note"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	reportsv1alpha1 "github.com/auditops/auditops/api/v1alpha1"
	"github.com/auditops/auditops/internal/seal"
	"github.com/auditops/auditops/internal/sealkey"
	"github.com/auditops/auditops/internal/sealverify"
	"github.com/auditops/auditops/internal/store"
	"github.com/auditops/auditops/internal/store/storeopen"
)

// Exit codes of 'manager verify' (spec/API.md 6).
const (
	verifyClean    = 0
	verifyProblems = 1
	verifyFailed   = 2
)

// runVerify is 'manager verify': it prints one JSON line per finding, then
// a summary line, and returns the exit code.
func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "report" {
		return runVerifyReport(ctx, args[1:], stdout, stderr)
	}
	fs := pflag.NewFlagSet("manager verify", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: manager verify --store URL [--namespace NS]... [--verifier-key KEY]... [--trusted-checkpoint FILE]... [--trusted-from-reports] [--trusted-from-heads]")
		fmt.Fprintln(stderr, "       manager verify report --store URL --namespace NS --name NAME")
		fs.PrintDefaults()
	}
	var (
		so             storeOptions
		seo            sealOptions
		namespaces     []string
		verifierKeys   []string
		trustedFiles   []string
		adminNamespace string
		fromReports    bool
		fromHeads      bool
	)
	so.addFlags(fs)
	seo.addFlags(fs)
	fs.BoolVar(&fromReports, "trusted-from-reports", false, "trust the checkpoint every AuditReport read (status.seal, kept in etcd: kubeconfig): the log must extend each (else: rollback)")
	fs.BoolVar(&fromHeads, "trusted-from-heads", false, "trust the newest checkpoint of each log the leader published in ConfigMap "+sealkey.HeadsConfigMapName+" (and -1, -2, … past ~3,000 namespaces) of --admin-namespace (kept in etcd: kubeconfig), those a verifier key signed: the log must extend each (else: rollback)")
	fs.DurationVar(&seo.interval, "seal-interval", time.Minute, "the manager's --seal-interval: a leaf still unsealed twice that long after it was written is a finding")
	fs.StringSliceVar(&namespaces, "namespace", nil, "verify only these namespaces (default: every one in the store)")
	fs.StringSliceVar(&verifierKeys, "verifier-key", nil, "verifier keys (<name>+<hash>+<base64>) whose checkpoints are genuine (default: the seal keyring's, from --seal-key-file or its default, else ConfigMap "+sealkey.ConfigMapName+" of --admin-namespace)")
	fs.StringSliceVar(&trustedFiles, "trusted-checkpoint", nil, "files holding signed checkpoints kept outside the store: the log must extend each (else: rollback)")
	fs.StringVar(&adminNamespace, "admin-namespace", "auditops-system", "namespace of ConfigMaps "+sealkey.ConfigMapName+" and "+sealkey.HeadsConfigMapName)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return verifyClean
		}
		return verifyFailed
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "manager verify:", err)
		return verifyFailed
	}
	vs, err := verifiersFor(ctx, verifierKeys, seo, so, adminNamespace)
	if err != nil {
		return fail(err)
	}
	var trusted [][]byte
	for _, f := range trustedFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return fail(fmt.Errorf("--trusted-checkpoint: %w", err))
		}
		trusted = append(trusted, b)
	}
	// One client of the cluster for both kinds of witness, made when
	// first asked for.
	var cluster client.Client
	clusterFor := func(what string) (client.Client, error) {
		if cluster == nil {
			c, err := clusterClient(what)
			if err != nil {
				return nil, err
			}
			cluster = c
		}
		return cluster, nil
	}
	var witnesses []seal.Checkpoint
	if fromReports {
		c, err := clusterFor("reading AuditReports")
		if err == nil {
			witnesses, err = reportWitnessesFrom(ctx, c)
		}
		if err != nil {
			return fail(fmt.Errorf("--trusted-from-reports: %w", err))
		}
		fmt.Fprintf(stderr, "manager verify: %d checkpoints read by reports are trusted\n", len(witnesses))
	}
	if fromHeads {
		// The leader's published heads, those vs verify; bad names the
		// namespaces of the others.
		var heads []seal.Checkpoint
		var bad []string
		c, err := clusterFor(fmt.Sprintf("reading ConfigMap %s/%s", adminNamespace, sealkey.HeadsConfigMapName))
		if err == nil {
			heads, bad, err = sealkey.Heads{Reader: c, Namespace: adminNamespace}.Load(ctx, vs)
		}
		if err != nil {
			return fail(fmt.Errorf("--trusted-from-heads: %w", err))
		}
		if len(bad) > 0 {
			// Not the store's finding: whoever can write those ConfigMaps
			// put them there, or they predate the keys trusted here.
			fmt.Fprintf(stderr, "manager verify: ConfigMaps %s/%s(-N) hold checkpoints no verifier key signed, left out: %s\n",
				adminNamespace, sealkey.HeadsConfigMapName, strings.Join(bad, ", "))
		}
		fmt.Fprintf(stderr, "manager verify: %d checkpoints the leader published are trusted\n", len(heads))
		witnesses = append(witnesses, heads...)
	}
	st, vst, err := openVerified(ctx, so.url)
	if err != nil {
		return fail(err)
	}
	defer st.Close()
	enc := json.NewEncoder(stdout)
	start := time.Now()
	sum, err := sealverify.Verify(ctx, vst, sealverify.Options{Verifiers: vs, Trusted: trusted, Witnesses: witnesses, SealInterval: seo.interval, Namespaces: namespaces},
		func(f sealverify.Finding) { _ = enc.Encode(f) })
	elapsed := time.Since(start)
	if err != nil {
		// Not the last line of a verify that ran: a job reading only
		// stdout must not take a store it could not read for a clean one.
		fmt.Fprintf(stdout, "verify stopped after %d events in %d namespaces (%d problems so far): %v\n", sum.Events, sum.Namespaces, sum.Problems(), err)
		return fail(err)
	}
	fmt.Fprintf(stdout, "verified %d events in %d namespaces: %d problems\n", sum.Events, sum.Namespaces, sum.Problems())
	fmt.Fprintf(stderr, "manager verify: %d events (%d against sealed leaves) in %s (%.0f events/s)\n",
		sum.Events, sum.Sealed, elapsed.Round(time.Millisecond), float64(sum.Events)/max(elapsed.Seconds(), 1e-9))
	if sum.Problems() > 0 {
		return verifyProblems
	}
	return verifyClean
}

// verifiersFor returns the verifiers of the keys given, else of the seal
// keyring where the manager keeps it, else of the published ConfigMap.
func verifiersFor(ctx context.Context, keys []string, seo sealOptions, so storeOptions, adminNamespace string) (note.Verifiers, error) {
	if len(keys) > 0 {
		return seal.Verifiers(keys...)
	}
	file, _, err := seo.source(so)
	if err == nil && file != "" {
		if _, statErr := os.Stat(file); statErr == nil {
			kr, err := sealkey.LoadFile(file)
			if err != nil {
				return nil, err
			}
			return seal.Verifiers(kr.VerifierKeys()...)
		}
	}
	c, err := clusterClient(fmt.Sprintf("no --verifier-key and no seal key file; reading ConfigMap %s/%s", adminNamespace, sealkey.ConfigMapName))
	if err != nil {
		return nil, err
	}
	published, err := sealkey.InCluster{Client: c, PublishNamespace: adminNamespace}.Published(ctx)
	if err != nil {
		return nil, err
	}
	return seal.Verifiers(published...)
}

// runVerifierKey is 'manager verifier-key': the seal keyring's verifier
// keys, the current one first, one per line.
func runVerifierKey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("manager verifier-key", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		so  storeOptions
		seo sealOptions
	)
	so.addFlags(fs)
	seo.addFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	kr, _, err := seo.keyring(ctx, so, ctrl.GetConfig)
	if err != nil {
		return err
	}
	if kr == nil {
		return errors.New("--seal=false: no keyring")
	}
	_, err = fmt.Fprintln(stdout, strings.Join(kr.VerifierKeys(), "\n"))
	return err
}

// openVerified opens the store at url for verify: its events and its logs.
func openVerified(ctx context.Context, url string) (store.Store, sealverify.Store, error) {
	// Page tokens do not outlive the walk: any key signs them.
	key := make([]byte, store.TokenKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, nil, err
	}
	st, err := storeopen.Open(ctx, url, storeopen.Options{Options: store.Options{TokenKey: key}})
	if err != nil {
		return nil, nil, fmt.Errorf("opening the audit store: %w", err)
	}
	logs, ok := storeopen.Logs(st)
	if !ok {
		st.Close()
		return nil, nil, errors.New("the store keeps no tamper-evident log")
	}
	vst, ok := logs.(sealverify.Store)
	if !ok {
		st.Close()
		return nil, nil, errors.New("the store cannot be verified")
	}
	return st, vst, nil
}

// clusterClient is a client of the cluster the kubeconfig names, for the
// built-in kinds and AuditReports; what it is for names the error when
// there is no kubeconfig.
func clusterClient(what string) (client.Client, error) {
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return nil, fmt.Errorf("%s needs a kubeconfig: %w", what, err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := reportsv1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	return client.New(cfg, client.Options{Scheme: scheme})
}

// reportWitnessesFrom lists the AuditReports with c and returns the
// checkpoints they read (status.seal).
func reportWitnessesFrom(ctx context.Context, c client.Reader) ([]seal.Checkpoint, error) {
	var list reportsv1alpha1.AuditReportList
	if err := c.List(ctx, &list); err != nil {
		return nil, fmt.Errorf("listing AuditReports: %w", err)
	}
	var out []seal.Checkpoint
	for _, rep := range list.Items {
		if rep.Status.Seal == nil || rep.Status.Seal.Size == 0 {
			continue
		}
		w, err := sealverify.Witness(*rep.Status.Seal)
		if err != nil {
			return nil, fmt.Errorf("AuditReport %s/%s: %w", rep.Namespace, rep.Name, err)
		}
		out = append(out, w)
	}
	return out, nil
}

// runVerifyReport is 'manager verify report': it regenerates one report
// from the checkpoint it read and compares the digests; it prints the
// result as a JSON line and a sentence, and returns the exit code.
func runVerifyReport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("manager verify report", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		so        storeOptions
		namespace string
		name      string
	)
	so.addFlags(fs)
	fs.StringVar(&namespace, "namespace", "", "the AuditReport's namespace")
	fs.StringVar(&name, "name", "", "the AuditReport's name")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return verifyClean
		}
		return verifyFailed
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "manager verify report:", err)
		return verifyFailed
	}
	if namespace == "" || name == "" {
		return fail(errors.New("--namespace and --name are required: the AuditReport to verify"))
	}
	c, err := clusterClient("reading AuditReports")
	if err != nil {
		return fail(err)
	}
	var rep reportsv1alpha1.AuditReport
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &rep); err != nil {
		return fail(fmt.Errorf("reading AuditReport %s/%s: %w", namespace, name, err))
	}
	st, logs, err := openVerified(ctx, so.url)
	if err != nil {
		return fail(err)
	}
	defer st.Close()
	res, err := sealverify.VerifyReport(ctx, st, logs, &rep)
	if err != nil {
		return fail(err)
	}
	_ = json.NewEncoder(stdout).Encode(res)
	if !res.Equal() {
		fmt.Fprintf(stdout, "report %s/%s differs from checkpoint %s@%d: recorded sha256 %s, regenerated %s (%d records), %d log problems\n",
			namespace, name, res.Seal.Origin, res.Seal.Size, res.Recorded, res.Regenerated, res.Records, len(res.Findings))
		return verifyProblems
	}
	fmt.Fprintf(stdout, "report %s/%s is what checkpoint %s@%d holds: sha256 %s, %d records\n",
		namespace, name, res.Seal.Origin, res.Seal.Size, res.Regenerated, res.Records)
	return verifyClean
}

// runRotateSealKey is 'manager rotate-seal-key': it makes a new current key
// in the seal keyring (the old ones stay, so what they signed and the leaves
// they made still verify and seal), publishes the verifier keys when the
// keyring is a Secret, and prints them, the new one first. Managers sign
// with the new key once restarted.
func runRotateSealKey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("manager rotate-seal-key", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		so             storeOptions
		seo            sealOptions
		adminNamespace string
	)
	so.addFlags(fs)
	seo.addFlags(fs)
	fs.StringVar(&adminNamespace, "admin-namespace", "auditops-system", "namespace of ConfigMap "+sealkey.ConfigMapName+", where the verifier keys are published")
	if err := fs.Parse(args); err != nil {
		return err
	}
	file, ns, err := seo.source(so)
	if err != nil {
		return err
	}
	var kr *seal.Keyring
	if file != "" {
		if kr, err = sealkey.RotateFile(file); err != nil {
			return err
		}
	} else {
		c, err := clusterClient(fmt.Sprintf("rotating Secret %s/%s", ns, sealkey.SecretName))
		if err != nil {
			return err
		}
		src := sealkey.InCluster{Client: c, Namespace: ns, PublishNamespace: adminNamespace}
		if kr, err = src.Rotate(ctx); err != nil {
			return err
		}
		if err := src.Publish(ctx, kr); err != nil {
			return fmt.Errorf("the key was rotated, publishing its verifier failed (the leader publishes it at its next start): %w", err)
		}
	}
	_, err = fmt.Fprintln(stdout, strings.Join(kr.VerifierKeys(), "\n"))
	return err
}
