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
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	reportsv1alpha1 "github.com/auditops/auditops/api/v1alpha1"
	"github.com/auditops/auditops/internal/report"
	"github.com/auditops/auditops/internal/seal"
	"github.com/auditops/auditops/internal/sink"
	"github.com/auditops/auditops/internal/store"
)

// ReportTypes are measured in this order.
var ReportTypes = []reportsv1alpha1.ReportType{
	reportsv1alpha1.NamespaceUsersSummary, reportsv1alpha1.AuditDetails,
	reportsv1alpha1.UserAccess, reportsv1alpha1.Users, reportsv1alpha1.UserLogs,
}

// reportPageSize is the AuditReport's default spec.pageSize.
const reportPageSize = 500

// reportRange is the whole data set.
func reportRange() store.TimeRange {
	return store.TimeRange{From: DataStart, To: DataStart.Add(DataSpan + 24*time.Hour)}
}

// childEnv carries a report job to a child process.
const childEnv = "AUDITOPS_BENCH_CHILD"

type childJob struct {
	Kind, DSN string
	Type      reportsv1alpha1.ReportType
	Sink      string // configmap | file | pinned (configmap, read pinned to the log's checkpoint)
	Dir       string
}

type childResult struct {
	Rows    int64   `json:"rows"`
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
	// PeakRSSKiB is the child's VmHWM: the peak resident set of its own
	// image. (ru_maxrss from wait4 is no good here: Go starts children with
	// vfork, and the child's maxrss then counts the parent's memory too.)
	PeakRSSKiB int64 `json:"peakRSSKiB"`
}

// peakRSSKiB reads VmHWM from /proc/self/status.
func peakRSSKiB() (int64, error) {
	v, err := procField("/proc/self/status", "VmHWM:")
	if err != nil {
		return 0, err
	}
	var kib int64
	_, err = fmt.Sscanf(v, "%d kB", &kib)
	return kib, err
}

// procField is the value of the line that starts with key in a /proc file
// of "key value" lines, spaces trimmed.
func procField(path, key string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("no %s in %s", key, path)
}

// ChildMain runs a report job when this process is a benchmark child, and
// exits; it returns false in any other process. Call it first in main (and
// in TestMain).
func ChildMain() bool {
	v := os.Getenv(childEnv)
	if v == "" {
		return false
	}
	var job childJob
	if err := json.Unmarshal([]byte(v), &job); err != nil {
		fmt.Fprintln(os.Stderr, "bench child:", err)
		os.Exit(2)
	}
	if p := os.Getenv("AUDITOPS_BENCH_CPUPROFILE"); p != "" {
		// Profiling aid: one profile per child, named after the job.
		f, err := os.Create(fmt.Sprintf("%s-%s-%s-%s.prof", p, job.Kind, job.Type, job.Sink))
		if err == nil {
			_ = pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	res, err := runReport(context.Background(), job)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench child:", err)
		os.Exit(1)
	}
	_ = json.NewEncoder(os.Stdout).Encode(res)
	pprof.StopCPUProfile()
	os.Exit(0)
	return true
}

// runReport generates one report through report.Run, the controller's
// own pipeline, into a discarding shard sink or an object-store sink.
func runReport(ctx context.Context, job childJob) (childResult, error) {
	t := &target{kind: job.Kind, dsn: job.DSN}
	st, err := t.open(ctx)
	if err != nil {
		return childResult{}, err
	}
	defer st.Close()
	ext, ct := report.Format(job.Type)
	r := sink.Report{Namespace: BigTenant, Name: "bench-" + strings.ToLower(string(job.Type)), UID: "bench-uid",
		Type: job.Type, Ext: ext, ContentType: ct}
	var snk sink.Sink
	switch job.Sink {
	case "configmap", "pinned":
		snk = &discardShards{}
	case "file":
		snk, err = sink.NewObjectStore(ctx, r, reportsv1alpha1.ObjectStoreOutput{URL: "file://" + job.Dir}, nil)
		if err != nil {
			return childResult{}, err
		}
	}
	p := report.Params{Type: job.Type, Namespace: BigTenant, Range: reportRange(), PageSize: reportPageSize}
	if job.Type == reportsv1alpha1.UserLogs {
		p.User = BigTenantUser
	}
	if job.Sink == "pinned" {
		// As the controller reads with sealing on: exactly the events of
		// the newest checkpoint (the bench sealed them all).
		logs, ok := st.(seal.Log)
		if !ok {
			return childResult{}, fmt.Errorf("%s keeps no log", job.Kind)
		}
		size, err := logs.LogSize(ctx, BigTenant)
		if err != nil {
			return childResult{}, err
		}
		p.InLog = &size
	}
	start := time.Now()
	res, err := report.Run(ctx, st, p, snk, report.Checkpoint{}, report.RunOptions{})
	if err != nil {
		return childResult{}, err
	}
	out := childResult{Rows: res.Records, Bytes: res.Bytes, Seconds: time.Since(start).Seconds()}
	out.PeakRSSKiB, err = peakRSSKiB()
	return out, err
}

// discardShards lays the report out as the ConfigMap and Secret sinks do
// (sink.ShardWriter: a gzip member per chunk, 900 KiB shards) and discards
// the shards instead of writing them to an API server.
type discardShards struct {
	w      *sink.ShardWriter
	shards int
}

func (s *discardShards) Resume(context.Context, sink.Progress) error {
	s.w = sink.NewShardWriter()
	return nil
}

func (s *discardShards) count(sink.Shard) error {
	s.shards++
	return nil
}

func (s *discardShards) Append(_ context.Context, chunk []byte) (sink.Progress, error) {
	return sink.Progress{}, s.w.Add(chunk, s.count)
}

func (s *discardShards) Finish(_ context.Context, last []byte, _ int64, _ string) ([]reportsv1alpha1.OutputRef, error) {
	return nil, s.w.Close(last, s.count)
}

// reports measures every report type into both sinks, each in a child
// process (for its peak RSS), and each type's SQL floor.
func (r *runner) reports(ctx context.Context, t *target) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	dir := filepath.Join(r.cfg.Dir, "reports-"+t.kind)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, typ := range ReportTypes {
		reportRows := map[string]int64{}
		sinks := []string{"configmap", "file"}
		if typ == reportsv1alpha1.AuditDetails && t.keys != nil {
			sinks = append(sinks, "pinned")
		}
		for _, sk := range sinks {
			p := r.ph.begin("%s: report %s into %s", t.kind, typ, sk)
			job, _ := json.Marshal(childJob{Kind: t.kind, DSN: t.dsn, Type: typ, Sink: sk, Dir: dir})
			cmd := exec.CommandContext(ctx, exe)
			cmd.Env = append(os.Environ(), childEnv+"="+string(job))
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, os.Stderr
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("report %s into %s: %w", typ, sk, err)
			}
			var res childResult
			if err := json.Unmarshal(out.Bytes(), &res); err != nil {
				return fmt.Errorf("report %s into %s: child said %q: %w", typ, sk, out.String(), err)
			}
			rss := float64(res.PeakRSSKiB) / 1024
			lbl := fmt.Sprintf("{type=%s,store=%s", typ, t.kind)
			switch sk {
			case "file":
				lbl += ",sink=" + sk
			case "pinned":
				lbl += ",pinned=true"
			}
			lbl += "}"
			note := fmt.Sprintf("%d rows, %.1f MiB, report.Generate (page size %d) into ", res.Rows, float64(res.Bytes)/(1<<20), reportPageSize)
			switch sk {
			case "configmap":
				note += "report.Run into sink.ShardWriter, the ConfigMap sink's layout (gzip per 512 KiB chunk, 900 KiB shards discarded)"
			case "pinned":
				note += "the ConfigMap sink's layout, read pinned to the log's checkpoint (store.EventQuery.InLog: a leaves probe per row), as reports read with sealing on"
			default:
				note += "sink.NewObjectStore with a file:// URL"
			}
			r.res.add(Metric{Metric: "report_seconds" + lbl, Value: res.Seconds, Unit: "s", Note: note,
				floor: "floor_sql_seconds{type=" + string(typ) + ",store=" + t.kind + "}"})
			r.res.add(Metric{Metric: "report_rows_per_s" + lbl, Value: float64(res.Rows) / res.Seconds, Unit: "rows/s", Note: note})
			r.res.add(Metric{Metric: "report_peak_rss_mib" + lbl, Value: rss, Unit: "MiB",
				Note: "peak RSS (VmHWM) of the child process that opened the store and generated the report"})
			r.worst(&r.peakRSS, "report_peak_rss_mib{type="+string(typ)+"}", rss)
			reportRows[sk] = res.Rows
			p.end("%d rows in %.2f s (%.0f rows/s), peak RSS %.0f MiB", res.Rows, res.Seconds, float64(res.Rows)/res.Seconds, rss)
		}
		p := r.ph.begin("%s: SQL floor %s", t.kind, typ)
		rows, secs, err := sqlFloor(ctx, t, typ)
		if err != nil {
			return fmt.Errorf("SQL floor of %s: %w", typ, err)
		}
		// A floor is only a floor of the same result.
		for sk, n := range reportRows {
			if n != rows {
				return fmt.Errorf("report %s into %s has %d rows, its SQL floor %d", typ, sk, n, rows)
			}
		}
		if typ == reportsv1alpha1.NamespaceUsersSummary {
			r.summaryRows = rows
		}
		r.res.add(Metric{Metric: "floor_sql_seconds{type=" + string(typ) + ",store=" + t.kind + "}", Value: secs, Unit: "s",
			Note: fmt.Sprintf("one hand-written SQL query through the same driver, all %d result rows read", rows)})
		p.end("%d rows in %.2f s", rows, secs)
	}
	return nil
}

// floorSQL is the one query per report type a user would write. It reads
// the JSON values and the text fields no query filters on as they are
// stored (the compressed payload column, internal/store/payload) and does
// not decode them, which a report must.
func floorSQL(typ reportsv1alpha1.ReportType, pg bool) (string, []any) {
	rg := reportRange()
	from, to := rg.From.UnixNano(), rg.To.UnixNano()
	p := func(i int) string {
		if pg {
			return fmt.Sprintf("$%d", i)
		}
		return "?"
	}
	where := " WHERE namespace = " + p(1) + " AND ts >= " + p(2) + " AND ts < " + p(3)
	args := []any{BigTenant, from, to}
	switch typ {
	case reportsv1alpha1.NamespaceUsersSummary:
		return `WITH g AS (SELECT ts / 86400000000000 AS d, user_name, api, status,
       ts - LAG(ts) OVER (PARTITION BY ts / 86400000000000, user_name ORDER BY ts, seq) AS gap
     FROM events` + where + `),
  li AS (SELECT d, user_name, SUM(CASE WHEN gap <= ` + p(4) + ` THEN gap ELSE 0 END) AS li FROM g GROUP BY d, user_name)
SELECT g.d, g.user_name, g.api, g.status, count(*), max(li.li)
FROM g JOIN li ON li.d = g.d AND li.user_name = g.user_name
GROUP BY g.d, g.user_name, g.api, g.status ORDER BY g.d, g.user_name, g.api, g.status`, append(args, int64(store.DefaultSessionGap))
	case reportsv1alpha1.AuditDetails:
		return "SELECT method, user_name, status, payload, ts FROM events" + where + " ORDER BY ts, seq", args
	case reportsv1alpha1.UserAccess, reportsv1alpha1.Users:
		cat := store.CategoryAccess
		if typ == reportsv1alpha1.Users {
			cat = store.CategoryUser
		}
		return "SELECT id, ts, payload FROM events" +
			where + " AND category = " + p(4) + " ORDER BY ts, seq", append(args, cat)
	default: // UserLogs
		return "SELECT method, device_id, payload, seq, ts, status, status_code, user_name FROM events" +
			where + " AND user_name = " + p(4) + " ORDER BY ts DESC, seq DESC", append(args, BigTenantUser)
	}
}

// sqlFloor runs typ's floor query and reads every row's bytes.
func sqlFloor(ctx context.Context, t *target, typ reportsv1alpha1.ReportType) (int64, float64, error) {
	q, args := floorSQL(typ, t.kind == "postgres")
	var rows int64
	if t.kind == "postgres" {
		c, err := pgx.Connect(ctx, t.dsn)
		if err != nil {
			return 0, 0, err
		}
		defer c.Close(ctx)
		start := time.Now()
		rs, err := c.Query(ctx, q, args...)
		if err != nil {
			return 0, 0, err
		}
		for rs.Next() {
			_ = rs.RawValues()
			rows++
		}
		rs.Close()
		return rows, time.Since(start).Seconds(), rs.Err()
	}
	db, err := sql.Open("sqlite", t.dsn+"?_pragma=cache_size(-32768)&_query_only=1")
	if err != nil {
		return 0, 0, err
	}
	defer db.Close()
	start := time.Now()
	rs, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return 0, 0, err
	}
	cols, _ := rs.ColumnTypes()
	dest := make([]any, len(cols))
	for i := range dest {
		dest[i] = new(sql.RawBytes)
	}
	for rs.Next() {
		if err := rs.Scan(dest...); err != nil {
			rs.Close()
			return 0, 0, err
		}
		rows++
	}
	rs.Close()
	return rows, time.Since(start).Seconds(), rs.Err()
}

// jqSummary is the pipeline a user would run over the tenant's JSONL audit
// log to get the namespace-users summary without auditops: project each
// stored event to (date, user, api, status, time), then group, count and
// sum the session spans (gaps <= 30 min) per user and date.
const jqProject = `select(.stage == "ResponseComplete" or .stage == "Panic")
| [ .stageTimestamp[0:10],
    (.impersonatedUser.username // .user.username),
    ("/" + .objectRef.resource + (if .objectRef.subresource then "/" + .objectRef.subresource else "" end)),
    (if .responseStatus.code >= 400 then "failure" else "success" end),
    ((.stageTimestamp[0:19] + "Z" | fromdate) + ("0." + (.stageTimestamp[20:] | rtrimstr("Z")) | tonumber)) ]`

const jqAggregate = `group_by(.[0], .[1])
| map( (sort_by(.[4]) as $s
        | reduce range(1; $s | length) as $i (0; . + (($s[$i][4] - $s[$i-1][4]) as $g | if $g <= 1800 then $g else 0 end))) as $li
       | group_by(.[2], .[3])
       | map({date: .[0][0], api_type: .[0][2], status: .[0][3], user: .[0][1], logged_in_time: $li, count: length}) )
| flatten`

func (r *runner) jqFloor(ctx context.Context) error {
	jq, err := exec.LookPath("jq")
	if err != nil {
		return fmt.Errorf("jq is not installed (make bench installs it with apt-get): %w", err)
	}
	p := r.ph.begin("jq floor: the NamespaceUsersSummary of %s with jq", BigTenant)
	start := time.Now()
	cmd := exec.CommandContext(ctx, "bash", "-o", "pipefail", "-c",
		fmt.Sprintf("%s -c '%s' %s | %s -s -c '%s'", jq, jqProject, r.ds.TenantLog, jq, jqAggregate))
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("jq pipeline: %w", err)
	}
	secs := time.Since(start).Seconds()
	var rows []json.RawMessage
	if err := json.Unmarshal(out, &rows); err != nil {
		return fmt.Errorf("jq pipeline output: %w", err)
	}
	n := fmt.Sprint(len(rows))
	if r.summaryRows > 0 && int64(len(rows)) != r.summaryRows {
		return fmt.Errorf("jq pipeline: %d summary rows, the SQL floor %d", len(rows), r.summaryRows)
	}
	note := fmt.Sprintf("jq over %s's JSONL (%d events): project, then group/count/sessions with jq -s; %s rows", BigTenant, r.ds.TenantEvents, n)
	r.res.add(Metric{Metric: "floor_jq_seconds{type=NamespaceUsersSummary}", Value: secs, Unit: "s", Note: note})
	for _, kind := range []string{"sqlite", "postgres"} {
		name := "report_seconds{type=NamespaceUsersSummary,store=" + kind + "}"
		if v, ok := r.res.Get(name); ok {
			r.res.Metrics = append(r.res.Metrics, Metric{Metric: name + " vs jq", Value: v, Unit: "s",
				floor: "floor_jq_seconds{type=NamespaceUsersSummary}", tableOnly: true})
		}
	}
	p.end("%s rows in %.2f s", n, secs)
	return nil
}
