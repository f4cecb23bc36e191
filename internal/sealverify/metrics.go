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

package sealverify

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics say what the manager's own periodic verify found (README
// "Monitoring"; alert AuditopsRecordTampered).
type Metrics struct {
	problems *prometheus.GaugeVec
	events   prometheus.Gauge
	lastRun  prometheus.Gauge
	failures prometheus.Counter
}

// problemNames are every problem verify names, so each has a series from
// the first run on (an alert on a series that appears only with a problem
// cannot tell "none" from "not run").
var problemNames = []string{Altered, Missing, Unsealed, BadSignature, Inconsistent, Rollback}

// NewMetrics registers verify's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		problems: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "auditops_verify_problems",
			Help: "Problems the last verify run of the manager found in the store, by problem (spec/API.md 6): anything above 0 is a record changed behind the manager's back."}, []string{"problem"}),
		events: prometheus.NewGauge(prometheus.GaugeOpts{Name: "auditops_verify_events",
			Help: "Events the last verify run checked."}),
		lastRun: prometheus.NewGauge(prometheus.GaugeOpts{Name: "auditops_verify_last_run_timestamp_seconds",
			Help: "When the last verify run finished."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "auditops_verify_failures_total",
			Help: "Verify runs that could not finish (the store failed)."}),
	}
	reg.MustRegister(m.problems, m.events, m.lastRun, m.failures)
	return m
}

// Observe records a verify run: its summary (findings counted by problem)
// and its error.
func (m *Metrics) Observe(sum Summary, err error) {
	if err != nil {
		m.failures.Inc()
		return
	}
	counts := sum.ByProblem
	for _, p := range problemNames {
		m.problems.WithLabelValues(p).Set(float64(counts[p]))
	}
	m.events.Set(float64(sum.Events))
	m.lastRun.SetToCurrentTime()
}
