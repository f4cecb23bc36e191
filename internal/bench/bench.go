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

// Package bench is auditops' end-to-end benchmark (make bench): it generates
// a realistic audit log, ingests it into real SQLite and PostgreSQL stores
// through the HTTPS webhook handler and the bulk import, and measures report
// generation and endpoint paging, each beside its floor: the same work done
// the plainest, fastest way through the same driver, without auditops.
package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/auditops/auditops/internal/memtune"
	"github.com/auditops/auditops/internal/seal"
	"github.com/auditops/auditops/internal/store"
	"github.com/auditops/auditops/internal/store/postgres"
	"github.com/auditops/auditops/internal/store/sqlite"
)

// Config selects what Run measures.
type Config struct {
	// Events is the size of the data set.
	Events int
	// Dir holds the data set, SQLite databases and report files.
	Dir string
	// PostgresURL is an admin URL of a PostgreSQL server; Run creates and
	// drops its own databases there. Empty skips PostgreSQL.
	PostgresURL string
	// PageIterations is how many times each page is timed.
	PageIterations int
	// Log receives progress lines.
	Log io.Writer
	// IngestOnly measures the ingest paths and their floors only (a quick
	// A/B loop while tuning ingest; BENCH_ONLY=ingest).
	IngestOnly bool
	// Stores, when set, limits the run to these stores (sqlite, postgres;
	// BENCH_STORES=postgres).
	Stores []string
	// PostgresDayPartitions opens PostgreSQL stores with day partitions
	// (store.Options.DayPartitions; BENCH_PG_PARTITIONS=day).
	PostgresDayPartitions bool
	// NoLeaves opens the stores without tamper-evidence leaves (the
	// manager's --seal=false; BENCH_SEAL=off): A/B against the default,
	// which makes them as the manager does.
	NoLeaves bool
	// NoSealer writes leaves but seals nothing beside the webhook ingest
	// (BENCH_SEAL=unsealed): it splits sealing's ingest cost between
	// making leaves and the leader's seals. Seal lag is not measured.
	NoSealer bool
	// GoRuntime is what memtune.Apply set in this process and the report
	// children (the manager's settings under the chart's memory limit),
	// written into the results.
	GoRuntime memtune.Settings
}

// Metric is one line of results.json.
type Metric struct {
	Metric string  `json:"metric"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	// Note says what exactly was measured, when the name does not.
	Note string `json:"note,omitempty"`

	floor     string // the metric this one is compared with, in the table
	tableOnly bool   // a second comparison row of the table, not in results.json
}

// Results are everything one run measured.
type Results struct {
	Events  int
	Metrics []Metric
	Elapsed time.Duration
}

func (r *Results) add(m Metric) { r.Metrics = append(r.Metrics, m) }

// Get returns the value of metric name.
func (r *Results) Get(name string) (float64, bool) {
	for _, m := range r.Metrics {
		if m.Metric == name {
			return m.Value, true
		}
	}
	return 0, false
}

var tokenKey = bytes.Repeat([]byte("b"), 32)

// Run measures everything Config asks for.
func Run(ctx context.Context, cfg Config) (*Results, error) {
	start := time.Now()
	if cfg.PageIterations <= 0 {
		cfg.PageIterations = 200
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	logf := func(format string, args ...any) {
		fmt.Fprintf(cfg.Log, "%s bench: "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
	}
	res := &Results{Events: cfg.Events}
	rt := "memtune.Apply, as the manager under its container's memory limit (" + memtune.LimitEnv + "=" + os.Getenv(memtune.LimitEnv) + "); 0: left at Go's default"
	res.add(Metric{Metric: "go_soft_memory_limit_mib", Value: float64(cfg.GoRuntime.Limit) / (1 << 20), Unit: "MiB", Note: rt})
	res.add(Metric{Metric: "go_gc_percent", Value: float64(cfg.GoRuntime.GCPercent), Unit: "%", Note: rt + ", or GOGC=" + os.Getenv("GOGC")})

	kinds := []string{"sqlite"}
	if cfg.PostgresURL != "" {
		kinds = append(kinds, "postgres")
	}
	if cfg.Stores != nil {
		kinds = slices.DeleteFunc(kinds, func(k string) bool { return !slices.Contains(cfg.Stores, k) })
	}
	ph := &phases{log: logf, of: phaseCount(len(kinds), slices.Contains(kinds, "postgres"), cfg.IngestOnly, !cfg.NoLeaves, !cfg.NoSealer)}

	gen := ph.begin("generating %d events", cfg.Events)
	ds, err := Generate(cfg.Dir, cfg.Events)
	if err != nil {
		return nil, fmt.Errorf("generating the data set: %w", err)
	}
	gen.end("%d events, %.0f MiB of JSONL, %d in %s", ds.Events, float64(ds.Bytes)/(1<<20), ds.TenantEvents, BigTenant)

	r := &runner{cfg: cfg, ds: ds, res: res, logf: logf, ph: ph}
	for _, kind := range kinds {
		if err := r.runStore(ctx, kind); err != nil {
			return nil, fmt.Errorf("%s: %w", kind, err)
		}
	}
	if !cfg.IngestOnly {
		if err := r.jqFloor(ctx); err != nil {
			return nil, err
		}
	}
	r.summarize()
	res.Elapsed = time.Since(start)
	return res, nil
}

type runner struct {
	cfg  Config
	ds   DataSet
	res  *Results
	logf func(string, ...any)
	ph   *phases
	// summaryRows is the SQL floor's summary row count, checked against jq.
	summaryRows int64
	// worst values across stores, for the store-less metric names
	pageP99 map[string]float64
	peakRSS map[string]float64
	// rawMeasured is set once raw_bytes_per_event is recorded.
	rawMeasured bool
}

// target is one database of one store kind.
type target struct {
	kind string // sqlite | postgres
	dsn  string // file path or postgres URL
	drop func() error
	// dayPartitions: store.Options.DayPartitions (PostgreSQL).
	dayPartitions bool
	// leaves: store.Options.Leaves, nil with Config.NoLeaves; keys made
	// them.
	leaves store.LeafMaker
	keys   *seal.Keyring
}

func (r *runner) newTarget(ctx context.Context, kind, name string) (*target, error) {
	return r.newTargetLeaves(ctx, kind, name, !r.cfg.NoLeaves)
}

// newTargetLeaves is newTarget, with leaves or without.
func (r *runner) newTargetLeaves(ctx context.Context, kind, name string, withLeaves bool) (*target, error) {
	var leaves store.LeafMaker
	var keys *seal.Keyring
	if withLeaves {
		kr, err := seal.NewKeyring(rand.Reader)
		if err != nil {
			return nil, err
		}
		leaves, keys = seal.LeafMaker{Keys: kr}, kr
	}
	if kind == "sqlite" {
		p := filepath.Join(r.cfg.Dir, name+".db")
		for _, suf := range []string{"", "-wal", "-shm"} {
			_ = os.Remove(p + suf)
		}
		return &target{kind: kind, dsn: p, leaves: leaves, keys: keys, drop: func() error {
			for _, suf := range []string{"", "-wal", "-shm"} {
				_ = os.Remove(p + suf)
			}
			return nil
		}}, nil
	}
	u, err := url.Parse(r.cfg.PostgresURL)
	if err != nil {
		return nil, err
	}
	db := "auditops_bench_" + name
	admin, err := pgx.Connect(ctx, r.cfg.PostgresURL)
	if err != nil {
		return nil, err
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)"); err != nil {
		return nil, err
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+db+" TEMPLATE template0 ENCODING 'UTF8'"); err != nil {
		return nil, err
	}
	u.Path = "/" + db
	return &target{kind: kind, dsn: u.String(), drop: func() error {
		c, err := pgx.Connect(context.Background(), r.cfg.PostgresURL)
		if err != nil {
			return err
		}
		defer c.Close(context.Background())
		_, err = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)")
		return err
	}, dayPartitions: r.cfg.PostgresDayPartitions, leaves: leaves, keys: keys}, nil
}

// storeBytes is what t's database holds on disk: the SQLite file (the
// store is closed, so its WAL is checkpointed into it), or every PostgreSQL
// table of it with its indexes and TOAST.
func (t *target) storeBytes(ctx context.Context) (int64, string, error) {
	if t.kind == "sqlite" {
		var total int64
		for _, suf := range []string{"", "-wal"} {
			if fi, err := os.Stat(t.dsn + suf); err == nil {
				total += fi.Size()
			}
		}
		return total, "SQLite database file (and WAL)", nil
	}
	c, err := pgx.Connect(ctx, t.dsn)
	if err != nil {
		return 0, "", err
	}
	defer c.Close(ctx)
	var total int64
	err = c.QueryRow(ctx, "SELECT COALESCE(sum(pg_total_relation_size(relid)), 0)::bigint FROM pg_stat_user_tables").Scan(&total)
	return total, "PostgreSQL tables with indexes and TOAST (pg_total_relation_size)", err
}

// durability says how t's database makes a commit durable: SQLite's
// synchronous setting is the store's own; a PostgreSQL server's is its
// operator's, and make bench's throwaway one skips fsync unless
// BENCH_PG_DURABLE=1 (hack/postgres.sh), which makes its ingest faster
// than a production server's.
func (r *runner) durability(ctx context.Context, t *target) string {
	if t.kind == "sqlite" {
		return "synchronous=FULL (the store's setting)"
	}
	c, err := pgx.Connect(ctx, t.dsn)
	if err != nil {
		return "server settings unknown: " + err.Error()
	}
	defer c.Close(ctx)
	var fsync, commit, fpw string
	if err := c.QueryRow(ctx, "SELECT current_setting('fsync'), current_setting('synchronous_commit'), current_setting('full_page_writes')").Scan(&fsync, &commit, &fpw); err != nil {
		return "server settings unknown: " + err.Error()
	}
	return fmt.Sprintf("server fsync=%s, synchronous_commit=%s, full_page_writes=%s", fsync, commit, fpw)
}

// compactedBytes is what a copy of t's database holds once compacted as
// maintenance would (README, "Store maintenance"): SQLite's VACUUM INTO a
// new file; PostgreSQL's REINDEX of a copy made with CREATE DATABASE …
// TEMPLATE. B-tree pages that an insert splits in the middle of an index
// stay half full, and every namespace's events go in at the end of its own
// key range, in the middle of the index: a copy, so the phases after this
// one read the store as ingest left it. t's store must be closed.
func (r *runner) compactedBytes(ctx context.Context, t *target) (int64, string, error) {
	if t.kind == "sqlite" {
		cp := t.dsn + ".compacted"
		_ = os.Remove(cp)
		defer os.Remove(cp) //nolint:errcheck // best effort
		db, err := sql.Open("sqlite", t.dsn)
		if err != nil {
			return 0, "", err
		}
		defer db.Close()
		if _, err := db.ExecContext(ctx, "VACUUM INTO ?", cp); err != nil {
			return 0, "", fmt.Errorf("VACUUM INTO: %w", err)
		}
		fi, err := os.Stat(cp)
		if err != nil {
			return 0, "", err
		}
		return fi.Size(), "SQLite database file after VACUUM INTO a new one", nil
	}
	u, err := url.Parse(t.dsn)
	if err != nil {
		return 0, "", err
	}
	src := strings.TrimPrefix(u.Path, "/")
	dst := src + "_compacted"
	admin, err := pgx.Connect(ctx, r.cfg.PostgresURL)
	if err != nil {
		return 0, "", err
	}
	defer admin.Close(ctx)
	defer admin.Exec(context.WithoutCancel(ctx), "DROP DATABASE IF EXISTS "+dst+" WITH (FORCE)") //nolint:errcheck // best effort
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+dst+" WITH (FORCE)"); err != nil {
		return 0, "", err
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+dst+" TEMPLATE "+src); err != nil {
		return 0, "", fmt.Errorf("copying the database: %w", err)
	}
	u.Path = "/" + dst
	c, err := pgx.Connect(ctx, u.String())
	if err != nil {
		return 0, "", err
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "REINDEX SCHEMA public"); err != nil {
		return 0, "", fmt.Errorf("REINDEX: %w", err)
	}
	size, _, err := (&target{kind: t.kind, dsn: u.String()}).storeBytes(ctx)
	return size, "PostgreSQL tables with indexes and TOAST after REINDEX SCHEMA public", err
}

// open opens the store of t.
func (t *target) open(ctx context.Context) (store.Store, error) {
	opts := store.Options{TokenKey: tokenKey, Leaves: t.leaves}
	if t.kind == "sqlite" {
		return sqlite.New(ctx, t.dsn, opts)
	}
	opts.DayPartitions = t.dayPartitions
	st, err := postgres.New(ctx, t.dsn, opts)
	if err != nil {
		return nil, err
	}
	// With day partitions (BENCH_PG_PARTITIONS=day), the data's days have
	// theirs, as the leader would have made them on each day.
	for d := time.Duration(0); opts.DayPartitions && d <= DataSpan; d += 24 * time.Hour {
		if err := st.Maintain(ctx, DataStart.Add(d)); err != nil {
			st.Close()
			return nil, err
		}
	}
	return st, nil
}

func (r *runner) runStore(ctx context.Context, kind string) error {
	lbl := "{store=" + kind + "}"

	// 1. Webhook ingest, into the database every later phase reads.
	main, err := r.newTarget(ctx, kind, "webhook")
	if err != nil {
		return err
	}
	defer main.drop() //nolint:errcheck // best effort
	st, err := main.open(ctx)
	if err != nil {
		return err
	}
	p := r.ph.begin("%s: webhook ingest (HTTPS, batches of %d, %d senders)", kind, webhookBatch, webhookSenders)
	// With leaves, the leader seals beside ingest as the manager does
	// (every second here): what its seal lag is under full load.
	stopSealing, lags := r.sealBeside(ctx, main, st)
	var n int
	var d time.Duration
	pprof.Do(ctx, pprof.Labels("phase", "webhook"), func(ctx context.Context) { n, d, err = webhookIngest(ctx, st, r.ds.Log) })
	sealErr := stopSealing()
	st.Close()
	if err != nil {
		return fmt.Errorf("webhook ingest: %w", err)
	}
	if sealErr != nil {
		return fmt.Errorf("sealing beside the webhook ingest: %w", sealErr)
	}
	if n != r.ds.Events {
		return fmt.Errorf("webhook ingest stored %d of %d events", n, r.ds.Events)
	}
	r.res.add(Metric{Metric: "ingest_events_per_s" + lbl, Value: float64(n) / d.Seconds(), Unit: "events/s",
		Note: fmt.Sprintf("POST /ingest/v1/kube-audit over HTTPS (loopback), %d events per EventList, %d concurrent senders, %.1f s; %s",
			webhookBatch, webhookSenders, d.Seconds(), r.durability(ctx, main)),
		floor: "floor_insert_events_per_s" + lbl})
	size, where, err := main.storeBytes(ctx)
	if err != nil {
		return fmt.Errorf("measuring the store: %w", err)
	}
	r.res.add(Metric{Metric: "store_bytes_per_event" + lbl, Value: float64(size) / float64(n), Unit: "bytes",
		Note: fmt.Sprintf("%s after the webhook ingest of %d events: %.1f MiB", where, n, float64(size)/(1<<20))})
	if raw, err := os.Stat(r.ds.Log); err == nil && !r.rawMeasured {
		r.rawMeasured = true
		r.res.add(Metric{Metric: "raw_bytes_per_event", Value: float64(raw.Size()) / float64(r.ds.Events), Unit: "bytes",
			Note: fmt.Sprintf("the audit log's JSON (one audit.k8s.io/v1 event per line), %.1f MiB", float64(raw.Size())/(1<<20))})
	}
	if err := r.addStoreParts(ctx, main, lbl, n); err != nil {
		return err
	}
	p.end("%.0f events/s over %.1f s; the store holds %.0f bytes per event", float64(n)/d.Seconds(), d.Seconds(), float64(size)/float64(n))
	p = r.ph.begin("%s: compacting a copy of the store", kind)
	csize, compaction, err := r.compactedBytes(ctx, main)
	if err != nil {
		return fmt.Errorf("compacting a copy of the store: %w", err)
	}
	r.res.add(Metric{Metric: "store_bytes_per_event" + strings.TrimSuffix(lbl, "}") + ",compacted=true}", Value: float64(csize) / float64(n), Unit: "bytes",
		Note: fmt.Sprintf("%s, on a copy of the store after the webhook ingest: %.1f MiB", compaction, float64(csize)/(1<<20))})
	p.end("%.0f bytes per event", float64(csize)/float64(n))
	if main.keys != nil && !r.cfg.NoSealer {
		if err := r.sealing(ctx, kind, main, float64(n)/d.Seconds(), lags()); err != nil {
			return err
		}
	}

	// 2. Bulk import.
	imp, err := r.newTarget(ctx, kind, "import")
	if err != nil {
		return err
	}
	if st, err = imp.open(ctx); err != nil {
		return err
	}
	p = r.ph.begin("%s: manager import", kind)
	pprof.Do(ctx, pprof.Labels("phase", "import"), func(ctx context.Context) { n, d, err = bulkImport(ctx, st, r.ds.Log) })
	if err != nil {
		st.Close()
		_ = imp.drop()
		return fmt.Errorf("import: %w", err)
	}
	r.res.add(Metric{Metric: "import_events_per_s" + lbl, Value: float64(n) / d.Seconds(), Unit: "events/s",
		Note: fmt.Sprintf("ingest.Import of the JSONL audit log (manager import), %.1f s", d.Seconds()), floor: "floor_insert_events_per_s" + lbl})
	p.end("%.0f events/s over %.1f s", float64(n)/d.Seconds(), d.Seconds())
	if imp.keys != nil {
		// The import left every leaf unsealed: the backlog a leader
		// catches up on (after an outage, or sealing turned on).
		err = r.sealCatchUp(ctx, kind, imp, st, n)
	}
	st.Close()
	_ = imp.drop()
	if err != nil {
		return err
	}

	// 3. Ingest floor.
	fl, err := r.newTarget(ctx, kind, "floor")
	if err != nil {
		return err
	}
	p = r.ph.begin("%s: ingest floor", kind)
	pprof.Do(ctx, pprof.Labels("phase", "floor"), func(ctx context.Context) { n, d, err = floorInsert(ctx, fl, r.ds.Log) })
	_ = fl.drop()
	if err != nil {
		return fmt.Errorf("ingest floor: %w", err)
	}
	how := "prepared INSERTs, 5000 per transaction (same pragmas as the store)"
	if kind == "postgres" {
		how = "COPY FROM STDIN, 5000 rows per COPY"
	}
	r.res.add(Metric{Metric: "floor_insert_events_per_s" + lbl, Value: float64(n) / d.Seconds(), Unit: "events/s",
		Note: how + ", same schema and indexes; events decoded beforehand, only inserts timed"})
	p.end("%.0f events/s over %.1f s of inserts", float64(n)/d.Seconds(), d.Seconds())

	if r.cfg.IngestOnly {
		return nil
	}
	// 4. Reports and their SQL floors.
	if err := r.reports(ctx, main); err != nil {
		return err
	}
	// 5. Endpoint pages.
	if st, err = main.open(ctx); err != nil {
		return err
	}
	defer st.Close()
	var settled string
	if kind == "postgres" {
		if settled, err = awaitAutovacuum(ctx, main.dsn, r.ph); err != nil {
			return err
		}
	}
	return r.pages(ctx, kind, st, settled)
}

// autovacuumWait bounds awaitAutovacuum: past the server's naptime (60 s
// by default) and one visit.
const autovacuumWait = 3 * time.Minute

// awaitAutovacuum waits until autovacuum has visited every partition of
// events that took more than 20,000 inserts since its last visit (migration
// 11's threshold), as it does within a minute in production: the pages'
// counts and the summary are index-only scans, which read the table for
// every page it has not marked all-visible. It says what it waited for.
func awaitAutovacuum(ctx context.Context, dsn string, ph *phases) (string, error) {
	p := ph.begin("postgres: waiting for autovacuum's visit after ingest")
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", err
	}
	defer c.Close(ctx)
	start := time.Now()
	for {
		var pending int64
		// pg_stat_user_tables lags behind by up to a second (PostgreSQL
		// flushes its statistics at most that often).
		// Autovacuum visits a table once its inserts are more than the
		// threshold, not as many.
		if err := c.QueryRow(ctx, "SELECT count(*) FROM pg_stat_user_tables WHERE n_ins_since_vacuum > 20000"+
			" AND relid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = 'events'::regclass)").Scan(&pending); err != nil {
			return "", fmt.Errorf("reading autovacuum's progress: %w", err)
		}
		waited := time.Since(start)
		if pending == 0 {
			p.end("waited %.1f s", waited.Seconds())
			return fmt.Sprintf("no partition past autovacuum's threshold (waited %.0f s)", waited.Seconds()), nil
		}
		if waited > autovacuumWait {
			p.end("%d partitions still unvisited after %.0f s", pending, waited.Seconds())
			return fmt.Sprintf("%d partitions not visited by autovacuum after %.0f s", pending, waited.Seconds()), nil
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// summarize adds the store-less metric names: the worst store.
func (r *runner) summarize() {
	keys := func(m map[string]float64) []string {
		var ks []string
		for k := range m {
			ks = append(ks, k)
		}
		slices.Sort(ks)
		return ks
	}
	for _, k := range keys(r.pageP99) {
		r.res.add(Metric{Metric: k, Value: r.pageP99[k], Unit: "ms", Note: "worst of the stores measured"})
	}
	for _, k := range keys(r.peakRSS) {
		r.res.add(Metric{Metric: k, Value: r.peakRSS[k], Unit: "MiB", Note: "worst of the stores and sinks measured"})
	}
}

func (r *runner) worst(m *map[string]float64, key string, v float64) {
	if *m == nil {
		*m = map[string]float64{}
	}
	(*m)[key] = math.Max((*m)[key], v)
}

// WriteJSON writes results.json.
func (res *Results) WriteJSON(path string) error {
	var ms []Metric
	for _, m := range res.Metrics {
		if !m.tableOnly {
			ms = append(ms, m)
		}
	}
	b, err := json.MarshalIndent(ms, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// WriteTable prints metric, value, floor and ratio.
func (res *Results) WriteTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "metric\tvalue\tunit\tfloor\tratio\t\n")
	for _, m := range res.Metrics {
		if strings.HasPrefix(m.Metric, "floor_") {
			continue
		}
		floor, ratio := "", ""
		if m.floor != "" {
			if f, ok := res.Get(m.floor); ok {
				floor = format(f)
				if f != 0 {
					ratio = fmt.Sprintf("%.2fx", m.Value/f)
				}
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", m.Metric, format(m.Value), m.Unit, floor, ratio)
	}
	tw.Flush()
	fmt.Fprintf(w, "(ratio = value / floor: for events/s and rows/s higher is better, for seconds lower is better)\n")
}

func format(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

// phases numbers the benchmark's phases in its log, "[3/41]": each says
// when it starts and, when it ends, its figure and how long it took, so a
// run of many minutes shows where it is and what it has measured so far.
type phases struct {
	log   func(format string, args ...any)
	n, of int
}

// phaseCount is the number of phases Run goes through: the data set; per
// store the webhook ingest, the import and the ingest floor, and unless
// ingest only, each report type into both sinks and its SQL floor, and
// each endpoint's pages; then the jq floor.
func phaseCount(stores int, postgres, ingestOnly, leaves, sealer bool) int {
	perStore := 4 // with the compacted copy of the webhook ingest's store
	if leaves {
		perStore++ // the backlog's catch-up
		if sealer {
			perStore += 2 // ingest without leaves, verify
		}
		if !ingestOnly {
			perStore++ // the AuditDetails report read pinned
		}
	}
	if !ingestOnly {
		perStore += len(ReportTypes)*3 + len(endpointPages)
	}
	n := 1 + stores*perStore
	if !ingestOnly {
		n++
		if postgres {
			n++ // awaitAutovacuum
		}
	}
	return n
}

// phase is one started phase.
type phase struct {
	ph    *phases
	n     int
	name  string
	start time.Time
	// written is this process's storage writes when the phase began.
	written int64
}

func (ph *phases) begin(format string, args ...any) *phase {
	ph.n++
	p := &phase{ph: ph, n: ph.n, name: fmt.Sprintf(format, args...), start: time.Now(), written: storageWrites()}
	ph.log("[%d/%d] %s ...", p.n, ph.of, p.name)
	return p
}

// end logs the phase's figure, and what the process wrote to storage
// meanwhile (an embedded store's WAL and checkpoints: what its commits cost).
func (p *phase) end(format string, args ...any) {
	p.ph.log("[%d/%d] %s: %s [%.1f s, %.0f MiB written]", p.n, p.ph.of, p.name, fmt.Sprintf(format, args...), time.Since(p.start).Seconds(),
		float64(storageWrites()-p.written)/(1<<20))
}

// storageWrites is the bytes this process has sent to storage
// (/proc/self/io write_bytes), 0 where that is not known.
func storageWrites() int64 {
	v, err := procField("/proc/self/io", "write_bytes:")
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(v, 10, 64)
	return n
}
