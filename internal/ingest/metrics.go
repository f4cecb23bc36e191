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

package ingest

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts what ingest did, by source (kube-audit, events, import).
// A nil *Metrics counts nothing.
type Metrics struct {
	events    *prometheus.CounterVec
	reused    *prometheus.CounterVec
	truncated *prometheus.CounterVec
	throttled *prometheus.CounterVec
	requests  *prometheus.CounterVec
	commit    *prometheus.HistogramVec
}

// NewMetrics registers the ingest metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditops_ingest_events_total",
			Help: "Audit events received, by source and result: stored, duplicate (a re-send of a stored event), skipped (a Kubernetes stage that is not stored).",
		}, []string{"source", "result"}),
		reused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditops_ingest_id_reuse_total",
			Help: "Events stored although another stored event of their namespace has the same id (a client-chosen Audit-ID: a security signal).",
		}, []string{"source"}),
		truncated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditops_ingest_truncated_objects_total",
			Help: "Object fields larger than --max-event-object-bytes stored as truncation markers.",
		}, []string{"source"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditops_ingest_throttled_requests_total",
			Help: "Ingest requests answered 503 because their route's budget (--ingest-*-requests, --ingest-*-memory) had no room within the wait; the sender retries.",
		}, []string{"source"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditops_ingest_requests_total",
			Help: "Ingest requests answered, by source and HTTP status code (200 stored; 400 and 413 refused, never retried by kube-apiserver; 503 retry later).",
		}, []string{"source", "code"}),
		commit: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "auditops_store_insert_duration_seconds",
			Help:    "Time the audit store took to commit one ingest batch (or one part of a large one), by source.",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}, []string{"source"}),
	}
	reg.MustRegister(m.events, m.reused, m.truncated, m.throttled, m.requests, m.commit)
	return m
}

func (m *Metrics) observe(source string, r Result) {
	if m == nil {
		return
	}
	m.events.WithLabelValues(source, "stored").Add(float64(r.Stored))
	m.events.WithLabelValues(source, "duplicate").Add(float64(r.Duplicates))
	m.events.WithLabelValues(source, "skipped").Add(float64(r.Skipped))
	m.reused.WithLabelValues(source).Add(float64(r.Reused))
	m.truncated.WithLabelValues(source).Add(float64(r.Truncated))
}

// Throttle counts a request its route's budget had no room for.
func (m *Metrics) Throttle(source string) {
	if m == nil {
		return
	}
	m.throttled.WithLabelValues(source).Inc()
}

// Request counts one ingest request's answer.
func (m *Metrics) Request(source string, code int) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(source, strconv.Itoa(code)).Inc()
}

// observeCommit records how long one store commit took.
func (m *Metrics) observeCommit(source string, d time.Duration) {
	if m == nil {
		return
	}
	m.commit.WithLabelValues(source).Observe(d.Seconds())
}
