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

// Package memtune sets the Go runtime's memory knobs from the container's
// memory limit: the manager and `make bench` (which measures what the
// manager does) both call Apply.
package memtune

import (
	"fmt"
	"runtime/debug"

	"k8s.io/apimachinery/pkg/api/resource"
)

// LimitEnv carries the container's memory limit in bytes: config/manager
// sets it from the downward API (resourceFieldRef limits.memory). Without a
// limit on the container the downward API gives the node's allocatable
// memory, which still bounds the heap sensibly.
const LimitEnv = "AUDITOPS_MEMORY_LIMIT"

// GCPercentUnderLimit is the GOGC that Apply sets with the soft memory
// limit. The default (100) collects whenever the heap doubles, however far
// below the limit it is: garbage collection was ~23% of a report's CPU.
// Under a soft limit a larger GOGC is safe (the collector works harder as
// the heap nears the limit, whatever GOGC says), and 300 measured faster
// ingest, import, verify and reports for a larger peak RSS, still well
// under the container's limit (bench/README.md).
const GCPercentUnderLimit = 300

// Settings is what Apply set; zero values for what it left alone.
type Settings struct {
	// Limit is the soft memory limit in bytes.
	Limit int64
	// GCPercent is the GOGC set.
	GCPercent int
}

// SoftLimit returns the soft memory limit the Go runtime should get, 90% of
// the container's limit less reserve (memory the process holds outside the
// Go heap: SQLite's page caches), at least a quarter of the container's;
// or 0 when none is to be set: GOMEMLIMIT is set (the runtime read it at
// start, and an operator's explicit value, "off" included, wins) or the
// container's limit is unknown.
//
// Why not GOMEMLIMIT straight from resourceFieldRef: the downward API can
// only hand over the limit itself (or a divisor of it), and a soft limit
// equal to the hard one leaves the GC no room. Memory the runtime does not
// count still counts against the cgroup: SQLite's page cache (modernc's
// libc maps its own pages), the kernel's page cache of the pod's files, and
// the heap's growth between the GC noticing the limit and finishing a
// cycle. 10% keeps those below the OOM killer at 512 MiB and above.
func SoftLimit(getenv func(string) string, reserve int64) (int64, error) {
	if getenv("GOMEMLIMIT") != "" {
		return 0, nil
	}
	raw := getenv(LimitEnv)
	if raw == "" {
		return 0, nil
	}
	q, err := resource.ParseQuantity(raw)
	if err != nil {
		return 0, fmt.Errorf("%s=%q: want the container's memory limit in bytes: %w", LimitEnv, raw, err)
	}
	limit := q.Value()
	if limit <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive number of bytes", LimitEnv, raw)
	}
	return max(limit-limit/10-reserve, limit/4), nil
}

// Apply sets the Go runtime's soft memory limit from the environment (see
// SoftLimit; reserve is what the process holds outside the Go heap) and,
// with it, GOGC to GCPercentUnderLimit unless GOGC is set (an operator's
// value wins). It returns what it set.
//
// With GOGC=300 the heap grows to the soft limit at a third of the live
// data GOGC=100 needed to, so memory outside the heap that the limit does
// not leave room for would meet the OOM killer sooner: reserve matters.
func Apply(getenv func(string) string, reserve int64) (Settings, error) {
	limit, err := SoftLimit(getenv, reserve)
	if err != nil || limit == 0 {
		return Settings{}, err
	}
	debug.SetMemoryLimit(limit)
	set := Settings{Limit: limit}
	if getenv("GOGC") == "" {
		debug.SetGCPercent(GCPercentUnderLimit)
		set.GCPercent = GCPercentUnderLimit
	}
	return set, nil
}
