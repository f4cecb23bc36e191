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

package seal

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics count what the sealer does (README "Monitoring").
type Metrics struct {
	sealed, refused, checkpoints, failures, altered, schema prometheus.Counter
	lastSeal                                                prometheus.Gauge
	lag                                                     prometheus.Histogram
}

// NewMetrics registers the sealer's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		sealed: prometheus.NewCounter(prometheus.CounterOpts{Name: "auditops_seal_leaves_sealed_total",
			Help: "Leaves the leader appended to their namespace's log."}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{Name: "auditops_seal_leaves_refused_total",
			Help: "Leaves left unsealed because no seal key made their MAC: rows written to the store other than by ingest (a security signal)."}),
		checkpoints: prometheus.NewCounter(prometheus.CounterOpts{Name: "auditops_seal_checkpoints_total",
			Help: "Signed checkpoints written."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "auditops_seal_failures_total",
			Help: "Sealing runs that failed (the next run seals what they left)."}),
		altered: prometheus.NewCounter(prometheus.CounterOpts{Name: "auditops_seal_altered_logs_total",
			Help: "Logs the leader would not extend because their leaves or tree hashes no longer give their newest checkpoint's root: changed behind the manager's back (a security signal)."}),
		schema: prometheus.NewCounter(prometheus.CounterOpts{Name: "auditops_seal_schema_changed_total",
			Help: "Sealing runs refused because the store's schema was not the one its migrations made (triggers, rules, row security, views, collations added or changed behind the manager's back: a security signal)."}),
		lastSeal: prometheus.NewGauge(prometheus.GaugeOpts{Name: "auditops_seal_last_success_timestamp_seconds",
			Help: "When the leader last sealed every log that grew; now minus it bounds the seal lag."}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "auditops_seal_lag_seconds",
			Help:    "Seal lag: from ingest writing a leaf to a signed checkpoint covering it, per leaf.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800}}),
	}
	reg.MustRegister(m.sealed, m.refused, m.checkpoints, m.failures, m.altered, m.schema, m.lastSeal, m.lag)
	return m
}

// ObserveLag records the seal lag of one leaf (Sealer.ObserveLag).
func (m *Metrics) ObserveLag(d time.Duration) { m.lag.Observe(d.Seconds()) }

// Observe records one SealAll.
func (m *Metrics) Observe(res map[string]SealResult, err error) {
	for _, r := range res {
		m.sealed.Add(float64(r.Sealed))
		m.refused.Add(float64(len(r.Refused)))
		m.checkpoints.Add(float64(r.Checkpoints))
	}
	if err != nil {
		m.failures.Inc()
		for _, e := range flatten(err) {
			if errors.Is(e, ErrLogAltered) {
				m.altered.Inc()
			}
			if errors.Is(e, ErrSchemaChanged) {
				m.schema.Inc()
			}
		}
		return
	}
	m.lastSeal.SetToCurrentTime()
}

// flatten returns the errors errors.Join put together in err (SealAll's,
// one per namespace that failed), else err itself.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
