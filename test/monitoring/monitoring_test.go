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

// Package monitoring checks config/monitoring: every PrometheusRule and
// Grafana panel expression parses as PromQL, and every metric and label it
// names exists, either registered by the manager (its own registry) or
// served by a real kube-apiserver v1.37.1 with an audit webhook.
package monitoring

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/auditops/auditops/controllers"
	"github.com/auditops/auditops/internal/ingest"
	"github.com/auditops/auditops/internal/seal"
	"github.com/auditops/auditops/internal/sealverify"
)

const root = "../.."

// kubeMetrics are the metric families a real kube-apiserver served,
// scraped once by TestMain.
var kubeMetrics map[string]*metricInfo

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "KUBEBUILDER_ASSETS is not set: run with KUBEBUILDER_ASSETS=$PWD/bin/k8s/v1.37.1 (built by hack/build-control-plane.sh)")
		return 1
	}
	var err error
	kubeMetrics, err = scrapeKubeAPIServer()
	if err != nil {
		fmt.Fprintln(os.Stderr, "scraping kube-apiserver:", err)
		return 1
	}
	return m.Run()
}

// metricInfo is what the checks need of a metric: its labels.
type metricInfo struct {
	labels map[string]bool
}

// scrapeKubeAPIServer starts kube-apiserver with an audit policy and a
// webhook backend that cannot be reached (nothing listens on port 1), so
// that it counts audit events and webhook errors as it does when auditops
// is down, and returns the metric families of its /metrics with the labels
// their samples carry.
func scrapeKubeAPIServer() (map[string]*metricInfo, error) {
	dir, err := os.MkdirTemp("", "monitoring-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	policy := filepath.Join(dir, "policy.yaml")
	webhook := filepath.Join(dir, "webhook.kubeconfig")
	if err := os.WriteFile(policy, []byte("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n"), 0o600); err != nil {
		return nil, err
	}
	kubeconfig := `apiVersion: v1
kind: Config
clusters:
- name: auditops
  cluster: {server: "http://127.0.0.1:1/ingest/v1/kube-audit"}
contexts:
- name: auditops
  context: {cluster: auditops, user: auditops}
current-context: auditops
users:
- name: auditops
  user: {}
`
	if err := os.WriteFile(webhook, []byte(kubeconfig), 0o600); err != nil {
		return nil, err
	}
	env := &envtest.Environment{}
	args := env.ControlPlane.GetAPIServer().Configure()
	args.Set("audit-policy-file", policy)
	args.Set("audit-webhook-config-file", webhook)
	args.Set("audit-webhook-mode", "batch")
	args.Set("audit-webhook-batch-max-wait", "200ms")
	args.Set("audit-webhook-initial-backoff", "10ms")
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting the control plane: %w", err)
	}
	defer func() { _ = env.Stop() }()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The webhook fails a batch after its retries; poll until the error
	// counter shows, with a request now and then to make events.
	var last error
	for ctx.Err() == nil {
		_, _ = cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		raw, err := cs.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
		if err != nil {
			return nil, fmt.Errorf("GET /metrics: %w", err)
		}
		tp := expfmt.NewTextParser(model.UTF8Validation)
		families, err := tp.TextToMetricFamilies(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("parsing /metrics: %w", err)
		}
		out := map[string]*metricInfo{}
		for name, f := range families {
			info := &metricInfo{labels: map[string]bool{}}
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					info.labels[l.GetName()] = true
				}
			}
			out[name] = info
		}
		if e, ok := out["apiserver_audit_error_total"]; ok && e.labels["plugin"] {
			return out, nil
		}
		last = fmt.Errorf("no apiserver_audit_error_total{plugin} yet among %d families", len(out))
		time.Sleep(200 * time.Millisecond)
	}
	return nil, fmt.Errorf("waiting for kube-apiserver's audit webhook errors: %w", last)
}

// managerMetrics registers the manager's own metrics (the same
// constructors main.go calls) with a registry that records their
// descriptions: a vector without samples is not gathered, but it is
// described.
func managerMetrics(t *testing.T) map[string]*metricInfo {
	t.Helper()
	rec := &recorder{Registry: prometheus.NewRegistry(), metrics: map[string]*metricInfo{}}
	ingest.NewMetrics(rec)
	controllers.NewMetrics(rec)
	seal.NewMetrics(rec)
	sealverify.NewMetrics(rec)
	if len(rec.metrics) == 0 {
		t.Fatal("the manager registered no metric")
	}
	return rec.metrics
}

type recorder struct {
	*prometheus.Registry
	metrics map[string]*metricInfo
}

var descRE = regexp.MustCompile(`fqName: "([^"]+)".*variableLabels: \{([^}]*)\}`)

func (r *recorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 16)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		m := descRE.FindStringSubmatch(d.String())
		if m == nil {
			return fmt.Errorf("cannot read %s", d)
		}
		info := &metricInfo{labels: map[string]bool{}}
		for l := range strings.SplitSeq(m[2], ",") {
			// Constrained labels print as c(name).
			l = strings.TrimSpace(l)
			if strings.HasPrefix(l, "c(") && strings.HasSuffix(l, ")") {
				l = l[2 : len(l)-1]
			}
			if l != "" {
				info.labels[l] = true
			}
		}
		r.metrics[m[1]] = info
	}
	return r.Registry.Register(c)
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// targetLabels are added by Prometheus (and the prometheus-operator's
// ServiceMonitor relabelling) to every scraped series.
var targetLabels = []string{"job", "instance", "namespace", "pod", "service", "container", "endpoint"}

// expression is one PromQL expression of a rule or a panel.
type expression struct {
	where, expr string
}

type ruleFile struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Metadata   map[string]any `json:"metadata"`
	Spec       struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Alert       string            `json:"alert"`
				Record      string            `json:"record"`
				Expr        string            `json:"expr"`
				For         string            `json:"for"`
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			} `json:"rules"`
		} `json:"groups"`
	} `json:"spec"`
}

type dashboard struct {
	Panels []struct {
		Title   string `json:"title"`
		Type    string `json:"type"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

// ruleExpressions reads the PrometheusRule and checks what Prometheus would
// refuse or an operator would miss: a duration that does not parse, an
// alert without severity or summary, an annotation template that does not
// parse.
func ruleExpressions(t *testing.T) []expression {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "config", "monitoring", "prometheusrule.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var f ruleFile
	// Strict: a misspelt field (annotation:, expresion:) is an error
	// rather than a rule that silently lacks it.
	if err := yaml.UnmarshalStrict(raw, &f); err != nil {
		t.Fatalf("prometheusrule.yaml: %v", err)
	}
	if f.Kind != "PrometheusRule" {
		t.Fatalf("prometheusrule.yaml holds a %q", f.Kind)
	}
	// Prometheus' own template functions, as alert annotations use them.
	funcs := template.FuncMap{}
	for _, name := range []string{"humanize", "humanizeDuration", "humanizePercentage", "humanize1024", "humanizeTimestamp", "title", "toUpper", "toLower", "query", "first", "value", "label"} {
		funcs[name] = func(...any) any { return nil }
	}
	var out []expression
	seen := map[string]bool{}
	for _, g := range f.Spec.Groups {
		for _, r := range g.Rules {
			name := r.Alert + r.Record
			if seen[name] {
				t.Errorf("rule %s appears twice", name)
			}
			seen[name] = true
			if r.For != "" {
				if _, err := model.ParseDuration(r.For); err != nil {
					t.Errorf("rule %s: for %q: %v", name, r.For, err)
				}
			}
			if r.Alert != "" {
				if !slices.Contains([]string{"critical", "warning", "info"}, r.Labels["severity"]) {
					t.Errorf("alert %s: severity %q, want critical, warning or info", name, r.Labels["severity"])
				}
				if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
					t.Errorf("alert %s needs a summary and a description", name)
				}
				for k, v := range r.Annotations {
					if _, err := template.New(k).Funcs(funcs).Parse("{{$labels := .Labels}}{{$value := .Value}}" + v); err != nil {
						t.Errorf("alert %s: annotation %s: %v", name, k, err)
					}
				}
			}
			out = append(out, expression{where: "rule " + g.Name + "/" + name, expr: r.Expr})
		}
	}
	if len(out) == 0 {
		t.Fatal("prometheusrule.yaml has no rule")
	}
	return out
}

// grafanaVar matches a Grafana variable ($__rate_interval, $namespace,
// ${datasource}).
var grafanaVar = regexp.MustCompile(`\$\{?(\w+)\}?`)

func panelExpressions(t *testing.T) []expression {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "config", "monitoring", "dashboards", "auditops.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("dashboards/auditops.json: %v", err)
	}
	var out []expression
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			// Grafana substitutes its variables before Prometheus parses:
			// durations become one, the rest a label value.
			expr := grafanaVar.ReplaceAllStringFunc(tg.Expr, func(v string) string {
				if strings.Contains(v, "interval") {
					return "5m"
				}
				return "x"
			})
			out = append(out, expression{where: fmt.Sprintf("panel %q", p.Title), expr: expr})
		}
	}
	if len(out) == 0 {
		t.Fatal("the dashboard has no panel query")
	}
	return out
}

// TestMonitoringExpressions parses every rule and panel expression with
// Prometheus' own PromQL parser and checks each metric it selects exists
// with the labels it matches or groups by.
func TestMonitoringExpressions(t *testing.T) {
	mgr := managerMetrics(t)
	exprs := append(ruleExpressions(t), panelExpressions(t)...)
	used := map[string]bool{}
	p := parser.NewParser(parser.Options{})
	for _, e := range exprs {
		t.Run(e.where, func(t *testing.T) {
			ast, err := p.ParseExpr(e.expr)
			if err != nil {
				t.Fatalf("%s does not parse: %v", e.expr, err)
			}
			parser.Inspect(ast, func(node parser.Node, _ []parser.Node) error {
				switch n := node.(type) {
				case *parser.VectorSelector:
					labels, err := lookup(n.Name, mgr)
					if err != nil {
						t.Error(err)
						return nil
					}
					used[n.Name] = true
					for _, m := range n.LabelMatchers {
						if m.Name != model.MetricNameLabel && !labels[m.Name] && !slices.Contains(targetLabels, m.Name) {
							t.Errorf("%s has no label %q", n.Name, m.Name)
						}
					}
				case *parser.AggregateExpr:
					// Every grouping label must come from a metric below.
					have := map[string]bool{}
					parser.Inspect(n.Expr, func(node parser.Node, _ []parser.Node) error {
						if vs, ok := node.(*parser.VectorSelector); ok {
							labels, _ := lookup(vs.Name, mgr)
							for l := range labels {
								have[l] = true
							}
						}
						return nil
					})
					for _, l := range n.Grouping {
						if !have[l] && !slices.Contains(targetLabels, l) {
							t.Errorf("%s groups by %q, which no metric of %s has", e.expr, l, n.Expr)
						}
					}
				}
				return nil
			})
		})
	}
	// What an operator was promised: each of these is watched somewhere.
	for _, name := range []string{
		"auditops_ingest_events_total", "auditops_ingest_throttled_requests_total", "auditops_ingest_id_reuse_total",
		"auditops_reports_total", "auditops_report_duration_seconds_bucket", "auditops_report_late_events_total",
		"apiserver_request_duration_seconds_bucket", "apiserver_audit_error_total", "apiserver_audit_event_total",
		"auditops_seal_lag_seconds_bucket", "auditops_seal_leaves_refused_total", "auditops_seal_last_success_timestamp_seconds",
		"auditops_verify_problems", "auditops_verify_failures_total",
	} {
		if !used[name] {
			t.Errorf("no rule or panel uses %s", name)
		}
	}
}

// lookup finds a metric among the manager's and kube-apiserver's (a
// histogram's or summary's _bucket, _sum and _count series included: both
// are known by their family's name) and returns its labels.
func lookup(name string, mgr map[string]*metricInfo) (map[string]bool, error) {
	for _, known := range []map[string]*metricInfo{mgr, kubeMetrics} {
		if m, ok := known[name]; ok {
			return m.labels, nil
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			base, ok := strings.CutSuffix(name, suffix)
			if m, found := known[base]; ok && found {
				labels := maps.Clone(m.labels)
				if suffix == "_bucket" {
					labels["le"] = true
				}
				return labels, nil
			}
		}
	}
	return nil, fmt.Errorf("metric %s is neither registered by the manager nor served by kube-apiserver", name)
}

// TestReadmeListsMetrics checks the README's Monitoring section names every
// metric the manager registers, with each of its labels.
func TestReadmeListsMetrics(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	for name, m := range managerMetrics(t) {
		i := strings.Index(readme, "| `"+name+"`")
		if i < 0 {
			t.Errorf("README lists no row for %s", name)
			continue
		}
		row, _, _ := strings.Cut(readme[i:], "\n")
		for l := range m.labels {
			if !strings.Contains(row, "`"+l+"`") {
				t.Errorf("README's row for %s does not name its label %s", name, l)
			}
		}
	}
}
