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

package main

import (
	"fmt"
	"runtime/debug"

	"k8s.io/apimachinery/pkg/api/resource"
)

// memoryLimitEnv carries the container's memory limit in bytes:
// config/manager sets it from the downward API (resourceFieldRef
// limits.memory). Without a limit on the container the downward API gives
// the node's allocatable memory, which still bounds the heap sensibly.
const memoryLimitEnv = "AUDITOPS_MEMORY_LIMIT"

// goMemoryLimit returns the soft memory limit the Go runtime should get,
// 90% of the container's limit, or 0 when none is to be set: GOMEMLIMIT is
// set (the runtime read it at start, and an operator's explicit value, "off"
// included, wins) or the container's limit is unknown.
//
// Why not GOMEMLIMIT straight from resourceFieldRef: the downward API can
// only hand over the limit itself (or a divisor of it), and a soft limit
// equal to the hard one leaves the GC no room. Memory the runtime does not
// count still counts against the cgroup: SQLite's page cache (modernc's
// libc maps its own pages), the kernel's page cache of the pod's files, and
// the heap's growth between the GC noticing the limit and finishing a
// cycle. 10% keeps those below the OOM killer at 512 MiB and above.
func goMemoryLimit(getenv func(string) string) (int64, error) {
	if getenv("GOMEMLIMIT") != "" {
		return 0, nil
	}
	raw := getenv(memoryLimitEnv)
	if raw == "" {
		return 0, nil
	}
	q, err := resource.ParseQuantity(raw)
	if err != nil {
		return 0, fmt.Errorf("%s=%q: want the container's memory limit in bytes: %w", memoryLimitEnv, raw, err)
	}
	limit := q.Value()
	if limit <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive number of bytes", memoryLimitEnv, raw)
	}
	return limit - limit/10, nil
}

// applyMemoryLimit sets the Go runtime's soft memory limit from the
// environment (see goMemoryLimit) and returns what it set, 0 for nothing.
func applyMemoryLimit(getenv func(string) string) (int64, error) {
	limit, err := goMemoryLimit(getenv)
	if err != nil || limit == 0 {
		return 0, err
	}
	debug.SetMemoryLimit(limit)
	return limit, nil
}
