//go:build faultinject

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

// Package faultpoint marks the places where a crash is most telling
// (between a commit and its answer, between a write and its checkpoint).
// This is the faultinject build (test/faults): with
// AUDITOPS_FAULT_KILL_AT=<point>:<n> the process SIGKILLs itself at the nth
// hit of that point, the moment a random kill hits only by luck.
package faultpoint

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// The one fault of this process, from its environment: package state,
// because a process has one environment and dies once.
var (
	target = sync.OnceValues(func() (string, int64) {
		point, n, _ := strings.Cut(os.Getenv("AUDITOPS_FAULT_KILL_AT"), ":")
		count, err := strconv.ParseInt(n, 10, 64)
		if err != nil || count < 1 {
			return "", 0
		}
		return point, count
	})
	hits atomic.Int64
)

// Hit marks the fault point name, killing the process at the configured hit.
func Hit(name string) {
	point, n := target()
	if name != point || hits.Add(1) != n {
		return
	}
	fmt.Fprintf(os.Stderr, "faultpoint: SIGKILL at %s, hit %d\n", name, n)
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal is on its way
}
