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
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestMetricsCountAlteredLogs: a SealAll whose namespaces failed counts one
// failed run, and one altered log per namespace that failed with
// ErrLogAltered, not those that failed otherwise.
func TestMetricsCountAlteredLogs(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	altered := func(ns string) error { return fmt.Errorf("sealing %s: %w: at size 20", ns, ErrLogAltered) }
	m.Observe(map[string]SealResult{"a": {Sealed: 3}}, errors.Join(altered("b"), errors.New("sealing c: the database is gone"), altered("d")))
	m.Observe(nil, altered("e"))
	for name, tt := range map[string]struct {
		c    prometheus.Counter
		want float64
	}{"altered": {m.altered, 3}, "failures": {m.failures, 2}, "sealed": {m.sealed, 3}} {
		if got := testutil.ToFloat64(tt.c); got != tt.want {
			t.Errorf("%s: %v, want %v", name, got, tt.want)
		}
	}
}
