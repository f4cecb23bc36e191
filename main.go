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

// Command manager runs auditops: the AuditReport controller manager and, in
// the same process, the audit API server. 'manager import' loads audit log
// files into the store.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	_ "k8s.io/client-go/plugin/pkg/client/auth"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	reportsv1alpha1 "github.com/auditops/auditops/api/v1alpha1"
	"github.com/auditops/auditops/controllers"
	"github.com/auditops/auditops/internal/apiserver"
	"github.com/auditops/auditops/internal/apiserver/ingesthttp"
	"github.com/auditops/auditops/internal/ingest"
	"github.com/auditops/auditops/internal/memtune"
	"github.com/auditops/auditops/internal/seal"
	"github.com/auditops/auditops/internal/sealkey"
	"github.com/auditops/auditops/internal/sealverify"
	"github.com/auditops/auditops/internal/sink"
	"github.com/auditops/auditops/internal/store"
	"github.com/auditops/auditops/internal/store/postgres"
	"github.com/auditops/auditops/internal/store/sqlite"
	"github.com/auditops/auditops/internal/store/storeopen"
	"github.com/auditops/auditops/internal/urlredact"
)

func main() {
	args := os.Args[1:]
	var err error
	switch {
	case len(args) > 0 && args[0] == "import":
		err = runImport(ctrl.SetupSignalHandler(), args[1:])
	case len(args) > 0 && args[0] == "verify":
		os.Exit(runVerify(ctrl.SetupSignalHandler(), args[1:], os.Stdout, os.Stderr))
	case len(args) > 0 && args[0] == "verifier-key":
		err = runVerifierKey(ctrl.SetupSignalHandler(), args[1:], os.Stdout, os.Stderr)
	case len(args) > 0 && args[0] == "rotate-seal-key":
		err = runRotateSealKey(ctrl.SetupSignalHandler(), args[1:], os.Stdout, os.Stderr)
	default:
		err = runManager(args)
	}
	if err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "manager:", err)
		os.Exit(1)
	}
}

// storeOptions are the flags that open the audit store, shared by the
// manager and 'manager import'.
type storeOptions struct {
	url          string
	tokenKeyFile string
	tokenTTL     time.Duration
	sessionGap   time.Duration
	// readURL and replayWait are the manager's --store-read-url and
	// --store-read-replay-wait ('manager import' only writes).
	readURL    string
	replayWait time.Duration
	// dayPartitions is the manager's --store-day-partitions.
	dayPartitions bool
	// leaves makes the leaf of each stored event (sealing on).
	leaves store.LeafMaker
}

// addManagerFlags adds the store flags only the manager takes: a read
// replica, and the upkeep of day partitions.
func (o *storeOptions) addManagerFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.readURL, "store-read-url", "", "postgres:// URL of a streaming hot standby of --store's database: the audit API and reports read there, ingest and retention write to --store (the API may show the standby's lag; reports wait for it; README \"Read replicas\")")
	fs.BoolVar(&o.dayPartitions, "store-day-partitions", false, "PostgreSQL: keep events in one partition per UTC day, made ahead by the leader, so that retention drops whole days and queries read only their window's days; costs ingest speed (README \"Stores and object storage\")")
	fs.DurationVar(&o.replayWait, "store-read-replay-wait", postgres.DefaultReplayWait, "how long a report waits for the --store-read-url standby to replay what the primary acknowledged before the report's window ended; past it the report retries")
}

func (o *storeOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.url, "store", storeopen.DefaultURL, "audit store URL: sqlite:///path/to/audit.db or sqlite:relative/path.db (embedded, one replica) or postgres://user:pass@host/db")
	fs.StringVar(&o.tokenKeyFile, "token-key-file", "", "file with the key that signs page tokens (default: "+storeopen.TokenKeyName+" in the SQLite database's directory, created when absent; required for PostgreSQL, the same file on every replica)")
	fs.DurationVar(&o.tokenTTL, "page-token-ttl", store.DefaultPageTokenTTL, "how long a page token (next_page_token, nextContinuationToken) stays valid; an older one is a 400 (0: tokens never expire)")
	fs.DurationVar(&o.sessionGap, "session-gap", store.DefaultSessionGap, "longest pause between a user's events that still counts as one session (logged_in_time)")
}

// open opens the store; storeopen reads the URL and knows its defaults.
func (o *storeOptions) open(ctx context.Context) (store.Store, error) {
	st, err := storeopen.Open(ctx, o.url, storeopen.Options{
		Options: store.Options{TokenMaxAge: o.tokenTTL, SessionGap: o.sessionGap, DayPartitions: o.dayPartitions, Leaves: o.leaves,
			OnError: func(err error) { ctrl.Log.WithName("store").Error(err, "background store work failed; ingest goes on") }},
		TokenKeyFile: o.tokenKeyFile,
		ReadURL:      o.readURL,
		ReplayWait:   o.replayWait,
	})
	if errors.Is(err, storeopen.ErrTokenKeyRequired) {
		return nil, fmt.Errorf("--token-key-file is required with --store %s: every replica must sign page tokens with the same key", urlredact.Redact(o.url))
	}
	if err != nil {
		return nil, fmt.Errorf("opening the audit store: %w", err)
	}
	return st, nil
}

func runManager(args []string) error {
	fs := pflag.NewFlagSet("manager", pflag.ContinueOnError)
	var (
		so                   storeOptions
		metricsAddr          string
		secureMetrics        bool
		probeAddr            string
		leaderElect          bool
		leaderElectNamespace string
		adminNamespace       string
		retention            time.Duration
		maxObjectBytes       int
		ingestSpoolDir       string
		settleDelay          time.Duration
		allowedOutputURLs    []string
		identity             string
		reportHold           time.Duration
	)
	so.addFlags(fs)
	so.addManagerFlags(fs)
	var seo sealOptions
	seo.addFlags(fs)
	seo.addManagerFlags(fs)
	// :8444, not kubebuilder's :8443: that is the audit API's --secure-port.
	fs.StringVar(&metricsAddr, "metrics-bind-address", ":8444", "address the metrics endpoint binds to (0 disables it)")
	fs.BoolVar(&secureMetrics, "metrics-secure", true, "serve metrics over HTTPS to callers with a bearer token that kube-apiserver authenticates (TokenReview) and authorizes for get on /metrics (SubjectAccessReview); false serves plain HTTP to anyone who can connect")
	fs.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "address the health and readiness probes bind to")
	fs.BoolVar(&leaderElect, "leader-elect", false, "elect a leader so that only one replica runs the controllers")
	fs.StringVar(&leaderElectNamespace, "leader-election-namespace", "", "namespace of the leader election lease (default: the pod's namespace)")
	fs.StringVar(&identity, "identity", "", "this manager's name in a running report's status.holder (default: the host name, a pod's name); replicas need different ones")
	fs.DurationVar(&reportHold, "report-hold", 15*time.Second, "without --leader-elect: how long after another manager last wrote a running report's status this one waits before taking the report over (with --leader-elect a new leader takes over at once: the old one has stopped)")
	fs.StringVar(&adminNamespace, "admin-namespace", "auditops-system", "the only namespace whose AuditReports may read another tenant")
	fs.DurationVar(&retention, "retention", 90*24*time.Hour, "delete audit events older than this (0 keeps them forever)")
	fs.IntVar(&maxObjectBytes, "max-event-object-bytes", ingest.DefaultMaxObjectBytes, "object fields of an event (request, response, states) larger than this are stored as a truncation marker with their size and SHA-256")
	fs.DurationVar(&settleDelay, "schedule-settle-delay", time.Minute, "how long after its scheduled time a scheduled report's run starts, so that late-arriving events of its window are in it (an AuditReport's spec.settleDelay overrides it)")
	fs.StringSliceVar(&allowedOutputURLs, "allowed-output-urls", nil, "URL prefixes (comma-separated) under which an AuditReport's objectStore output may use the manager's own reach: its cloud identity (no credentialsSecretRef), an endpoint, or file://; e.g. file:///var/lib/auditops-reports,s3://reports/tenants?endpoint=https://minio.internal:9000. Without a listed prefix a report writes to s3://, gs:// or azblob:// only with its own credentials Secret and no endpoint")
	fs.StringVar(&ingestSpoolDir, "ingest-spool-dir", "", "directory for batches too large to hold in memory while they decode (default: the system's temporary directory)")
	var ingestHTTP ingesthttp.Options
	ingestHTTP.AddFlags(fs)
	apiOpts := apiserver.NewOptions()
	apiOpts.AddFlags(fs)
	zapOpts := zap.Options{}
	goFlags := flag.NewFlagSet("zap", flag.ContinueOnError)
	zapOpts.BindFlags(goFlags)
	fs.AddGoFlagSet(goFlags)
	// controller-runtime registers --kubeconfig on the standard flag set.
	fs.AddGoFlagSet(flag.CommandLine)
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	setupLog := ctrl.Log.WithName("setup")
	reserve := offHeapReserve(so.url)
	if set, err := memtune.Apply(os.Getenv, reserve); err != nil {
		return err
	} else if set.Limit > 0 {
		setupLog.Info("Go soft memory limit set to 90% of the container's, less SQLite's memory outside the Go heap", "bytes", set.Limit, "reservedBytes", reserve, "gcPercent", set.GCPercent)
	}
	destinations, err := sink.NewDestinations(allowedOutputURLs)
	if err != nil {
		return fmt.Errorf("--allowed-output-urls: %w", err)
	}
	if err := seo.validate(); err != nil {
		return err
	}
	if err := ingest.CheckMaxObjectBytes(maxObjectBytes); err != nil {
		return err
	}
	ctx := ctrl.SetupSignalHandler()

	keys, keySecret, err := seo.keyring(ctx, so, ctrl.GetConfig)
	if err != nil {
		return fmt.Errorf("loading the seal key: %w", err)
	}
	if keys != nil {
		so.leaves = seal.LeafMaker{Keys: keys}
	}
	st, err := so.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(reportsv1alpha1.AddToScheme(scheme))
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("loading kubeconfig: %w", err)
	}
	metricsOpts := metricsserver.Options{
		BindAddress:   metricsAddr,
		SecureServing: secureMetrics,
		// HTTP/2 stays off: CVE-2023-44487 / CVE-2023-39325 (rapid reset).
		TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }},
	}
	if secureMetrics {
		// Only callers that kube-apiserver authorizes for get on /metrics
		// (config/rbac/metrics_reader_role.yaml) read them: they show the
		// ingest and report volume, the id-reuse security signal and the
		// process's internals. The manager's TokenReviews and
		// SubjectAccessReviews use its system:auth-delegator binding.
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		Client:                  controllers.ManagerClientOptions(),
		Metrics:                 metricsOpts,
		HealthProbeBindAddress:  probeAddr,
		LeaderElection:          leaderElect,
		LeaderElectionID:        "auditops.reports.auditops.dev",
		LeaderElectionNamespace: leaderElectNamespace,
		// A stopping leader gives the Lease back, so a rolling update does
		// not leave reports waiting out the lease (15 s) at each restart
		// (TestReplicasFailover measured 16-20 s without it). Safe: main
		// returns as soon as the manager has stopped.
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}
	var sealer *seal.Sealer
	if keys != nil {
		logs, ok := storeopen.Logs(st)
		if !ok {
			return fmt.Errorf("store %s keeps no tamper-evident log: run with --seal=false", urlredact.Redact(so.url))
		}
		sealer = &seal.Sealer{Store: logs, Keys: keys, Origin: seo.origin, Now: time.Now, AcceptUnverifiedHead: seo.acceptUnverifiedHead}
	}
	// A nil *seal.Sealer must reach the reconciler as a nil interface.
	var reportSealer controllers.LogSealer
	if sealer != nil {
		reportSealer = sealer
	}
	if err := (&controllers.AuditReportReconciler{
		// With --store-read-url, reports read the standby once it holds
		// what the primary acknowledged before their window ended.
		Store:          storeopen.ForReports(st),
		AdminNamespace: adminNamespace,
		SettleDelay:    settleDelay,
		Destinations:   destinations,
		Metrics:        controllers.NewMetrics(metrics.Registry),
		Identity:       identity,
		HoldFor:        holdFor(leaderElect, reportHold),
		Sealer:         reportSealer,
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the AuditReport controller: %w", err)
	}
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		var bind func(context.Context, time.Time) ([]string, error)
		if sealer != nil {
			bind = func(ctx context.Context, cut time.Time) ([]string, error) {
				unbound, err := sealer.BindRetention(ctx, cut)
				if len(unbound) > 0 {
					ctrl.Log.WithName("upkeep").Info("logs whose newest checkpoint cannot be signed again with the retention cutoff (changed behind the manager's back: run manager verify); their expired events are kept",
						"namespaces", unbound[:min(len(unbound), 10)], "count", len(unbound), "cutoff", cut)
				}
				return unbound, err
			}
		}
		return upkeep(ctx, st, retention, bind)
	})); err != nil {
		return fmt.Errorf("adding store upkeep: %w", err)
	}
	if keys != nil {
		sm := seal.NewMetrics(metrics.Registry)
		witnesses := leaderWitnesses(mgr.GetAPIReader(), sealer, ctrl.Log.WithName("seal"))
		sealer.ObserveLag = sm.ObserveLag
		if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
			if keySecret != nil {
				keySecret.PublishNamespace = adminNamespace
				if err := keySecret.Publish(ctx, keys); err != nil {
					ctrl.Log.WithName("seal").Error(err, "publishing the verifier keys")
				}
			}
			// A leader that starts holds each log to the checkpoints
			// reports read, before it extends any.
			for _, w := range witnesses(ctx) {
				sealer.Witness(w)
			}
			// And to those the leader before it published.
			heads := sealkey.Heads{Reader: mgr.GetAPIReader(), Writer: mgr.GetClient(), Namespace: adminNamespace}
			// The ring's keys check the notes a leader before published,
			// and keep a save from putting a log's older note back.
			if vs, err := seal.Verifiers(sealer.Keys.VerifierKeys()...); err != nil {
				ctrl.Log.WithName("seal").Error(err, "reading the ring's verifier keys")
			} else {
				heads.Verifiers = vs
			}
			holdToHeads(ctx, heads, sealer, ctrl.Log.WithName("seal"))
			return sealLoop(ctx, sealer, seo.interval, sm, headsPublisher(heads, sealer, ctrl.Log.WithName("seal")), ctrl.Log.WithName("seal"))
		})); err != nil {
			return fmt.Errorf("adding the sealer: %w", err)
		}
		if vst, ok := sealer.Store.(sealverify.Store); ok && seo.verifyInterval > 0 {
			vm := sealverify.NewMetrics(metrics.Registry)
			if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
				return verifyLoop(ctx, vst, keys, witnesses, seo.interval, seo.verifyInterval, min(10*time.Minute, seo.verifyInterval), vm, ctrl.Log.WithName("verify"))
			})); err != nil {
				return fmt.Errorf("adding the verifier: %w", err)
			}
		}
	}
	// The audit API serves on every replica: it is not gated by leader election.
	apiCfg, err := apiOpts.Config()
	if err != nil {
		return fmt.Errorf("configuring the audit API server: %w", err)
	}
	// The logs are served whenever the store keeps them, also with
	// --seal=false: checkpoints already signed stay checkable.
	apiLogs, _ := storeopen.Logs(st)
	srv, err := apiserver.New(apiCfg, apiserver.Deps{
		Store: st,
		Logs:  apiLogs,
		Ingest: ingest.Options{MaxObjectBytes: maxObjectBytes, SpoolDir: ingestSpoolDir,
			Metrics: ingest.NewMetrics(metrics.Registry), Log: ctrl.Log.WithName("ingest")},
		IngestHTTP: ingestHTTP,
		Log:        ctrl.Log.WithName("apiserver"),
	})
	if err != nil {
		return fmt.Errorf("creating the audit API server: %w", err)
	}
	if err := mgr.Add(srv); err != nil {
		return fmt.Errorf("adding the audit API server: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("adding health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("store", apiserver.StoreCheck(st)); err != nil {
		return fmt.Errorf("adding ready check: %w", err)
	}
	setupLog.Info("starting manager", "store", urlredact.Redact(so.url), "readStore", urlredact.Redact(so.readURL), "adminNamespace", adminNamespace)
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("running manager: %w", err)
	}
	return nil
}

// retentionCut is the start of the UTC day retention before now falls in:
// events before it have expired.
func retentionCut(now time.Time, retention time.Duration) time.Time {
	return now.Add(-retention).UTC().Truncate(24 * time.Hour)
}

// upkeep maintains the store (PostgreSQL's day partitions) and deletes
// expired events once an hour, on the leader only (a RunnableFunc needs
// leader election). Retention cuts at the start of a UTC day, so that
// PostgreSQL drops whole day partitions: an event is kept at most a day
// past --retention. bind, when set (the sealer's BindRetention), runs
// first: the logs' newest checkpoints must bind the cutoff before events
// go, else verify would name them deleted by hand.
func upkeep(ctx context.Context, st store.Store, retention time.Duration, bind func(context.Context, time.Time) ([]string, error)) error {
	log := ctrl.Log.WithName("upkeep")
	tick := time.NewTicker(time.Hour)
	defer tick.Stop()
	for {
		now := time.Now()
		if m, ok := st.(store.Maintainer); ok {
			if err := m.Maintain(ctx, now); err != nil && ctx.Err() == nil {
				log.Error(err, "maintaining the store")
			}
		}
		if retention > 0 {
			cut := retentionCut(now, retention)
			n, err := expire(ctx, st, cut, bind)
			if err != nil && ctx.Err() == nil {
				log.Error(err, "deleting expired audit events")
			} else if n > 0 {
				log.Info("deleted expired audit events", "events", n, "before", cut, "retention", retention.String())
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// expire deletes the events before cut once bind (when set) has made
// every log's newest checkpoint bind cut, except those of the logs bind
// names unbound: a log whose newest checkpoint was changed behind the
// manager's back (or signed by a key no longer in the ring) is not signed
// again, and its expired events would read as deleted by hand beside what
// was changed. They stay, as evidence, until a checkpoint of the log binds
// the cutoff.
func expire(ctx context.Context, st store.Store, cut time.Time, bind func(context.Context, time.Time) ([]string, error)) (int64, error) {
	var unbound []string
	if bind != nil {
		var err error
		if unbound, err = bind(ctx, cut); err != nil {
			return 0, fmt.Errorf("expired events are kept until every log's newest checkpoint binds the retention cutoff %s: %w", cut.Format(time.RFC3339), err)
		}
	}
	return st.DeleteBefore(ctx, cut, unbound...)
}

// holdFor is how long a report held by another manager is left to it.
// Under leader election only the leader generates, and a new leader starts
// once the old one has stopped: waiting would only delay failover.
func holdFor(leaderElect bool, hold time.Duration) time.Duration {
	if leaderElect {
		return 0
	}
	return hold
}

// offHeapReserve is the memory the store at storeURL holds outside the Go
// heap, which the soft memory limit leaves room for: SQLite's page caches
// and the rest modernc's libc maps (sqlite.NativeMemoryBytes). A URL that does not parse reserves nothing;
// opening the store names what is wrong with it.
func offHeapReserve(storeURL string) int64 {
	if t, err := storeopen.Parse(storeURL); err == nil && t.Kind == storeopen.SQLite {
		return sqlite.NativeMemoryBytes
	}
	return 0
}
