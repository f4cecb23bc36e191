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

package ingesthttp

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/auditops/auditops/internal/ingest"
	"github.com/auditops/auditops/internal/ingest/ingesttest"
)

// The helpers shared with internal/ingest's tests.
var (
	newTestStore   = ingesttest.NewStore
	newTestStoreAt = ingesttest.NewStoreAt
	webhookBody    = ingesttest.WebhookBody
	eventsBody     = ingesttest.EventsBody
	storedEvents   = ingesttest.StoredEvents
	kubeItem       = ingesttest.KubeItem
	bigObject      = ingesttest.BigObject
	liveHeap       = ingesttest.LiveHeap
	peakHeap       = ingesttest.PeakHeap
)

// Names of package ingest the tests use unqualified.
const (
	KubeAuditPath = ingest.KubeAuditPath
	EventsPath    = ingest.EventsPath
)

type (
	Result         = ingest.Result
	ForbiddenError = ingest.ForbiddenError
)

// counterValue reads a counter of reg with the given label pairs (0 when
// absent).
func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if got[labels[i]] != labels[i+1] {
					continue metrics
				}
			}
			if h := m.GetHistogram(); h != nil {
				return float64(h.GetSampleCount())
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}
