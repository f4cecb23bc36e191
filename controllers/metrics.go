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

package controllers

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	reportsv1alpha1 "github.com/auditops/auditops/api/v1alpha1"
)

// Metrics are the report metrics served on the manager's metrics endpoint.
type Metrics struct {
	reports  *prometheus.CounterVec
	duration *prometheus.HistogramVec
	rows     *prometheus.CounterVec
	late     *prometheus.CounterVec
}

// NewMetrics creates the report metrics and registers them with reg
// (controller-runtime's metrics.Registry in the manager).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		reports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditops_reports_total",
			Help: "AuditReports finished, by type and result (succeeded, failed).",
		}, []string{"type", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "auditops_report_duration_seconds",
			Help:    "Time to generate a report, by type.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 14),
		}, []string{"type"}),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditops_report_rows_written_total",
			Help: "Rows written into finished reports, by type.",
		}, []string{"type"}),
		late: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditops_report_late_events_total",
			Help: "Events stored after the scheduled run whose window holds them had read the log, so in no run's report, by type.",
		}, []string{"type"}),
	}
	reg.MustRegister(m.reports, m.duration, m.rows, m.late)
	// Each type's series from 0: increase() sees no rise in a series whose
	// first sample is already its first late events, and the alert on it
	// would not fire.
	for _, t := range []reportsv1alpha1.ReportType{reportsv1alpha1.NamespaceUsersSummary, reportsv1alpha1.AuditDetails,
		reportsv1alpha1.UserAccess, reportsv1alpha1.Users, reportsv1alpha1.UserLogs} {
		m.late.WithLabelValues(string(t))
	}
	return m
}

func (m *Metrics) observe(t reportsv1alpha1.ReportType, result string, took time.Duration, rows int64) {
	m.reports.WithLabelValues(string(t), result).Inc()
	if result == "succeeded" {
		m.duration.WithLabelValues(string(t)).Observe(took.Seconds())
		m.rows.WithLabelValues(string(t)).Add(float64(rows))
	}
}
