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
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics count what the sealer does (README "Monitoring").
type Metrics struct {
	sealed, refused, checkpoints, failures prometheus.Counter
	lastSeal                               prometheus.Gauge
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
		lastSeal: prometheus.NewGauge(prometheus.GaugeOpts{Name: "auditops_seal_last_success_timestamp_seconds",
			Help: "When the leader last sealed every log that grew; now minus it bounds the seal lag."}),
	}
	reg.MustRegister(m.sealed, m.refused, m.checkpoints, m.failures, m.lastSeal)
	return m
}

// Observe records one SealAll.
func (m *Metrics) Observe(res map[string]SealResult, err error) {
	for _, r := range res {
		m.sealed.Add(float64(r.Sealed))
		m.refused.Add(float64(len(r.Refused)))
		m.checkpoints.Add(float64(r.Checkpoints))
	}
	if err != nil {
		m.failures.Inc()
		return
	}
	m.lastSeal.SetToCurrentTime()
}
