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
	"math"
	"runtime/debug"
	"strings"
	"testing"
)

func TestGoMemoryLimitIsNinetyPercentOfTheContainers(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		want    int64
		wantErr string
	}{
		// What config/manager's resourceFieldRef (divisor 1) gives for 512Mi.
		{name: "bytes", env: map[string]string{memoryLimitEnv: "536870912"}, want: 483183821},
		{name: "quantity", env: map[string]string{memoryLimitEnv: "512Mi"}, want: 483183821},
		{name: "one gibibyte", env: map[string]string{memoryLimitEnv: "1073741824"}, want: 966367642},
		{name: "no overflow", env: map[string]string{memoryLimitEnv: "9223372036854775807"}, want: math.MaxInt64 - math.MaxInt64/10},
		{name: "unset", env: map[string]string{}, want: 0},
		{name: "GOMEMLIMIT wins", env: map[string]string{"GOMEMLIMIT": "300MiB", memoryLimitEnv: "536870912"}, want: 0},
		{name: "GOMEMLIMIT off wins", env: map[string]string{"GOMEMLIMIT": "off", memoryLimitEnv: "536870912"}, want: 0},
		{name: "not a quantity", env: map[string]string{memoryLimitEnv: "lots"}, wantErr: "want the container's memory limit in bytes"},
		{name: "zero", env: map[string]string{memoryLimitEnv: "0"}, wantErr: "want a positive number of bytes"},
		{name: "negative", env: map[string]string{memoryLimitEnv: "-5"}, wantErr: "want a positive number of bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := goMemoryLimit(func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("goMemoryLimit: %d, %v; want an error with %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("goMemoryLimit = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}

func TestApplyMemoryLimitSetsTheRuntimes(t *testing.T) {
	before := debug.SetMemoryLimit(-1) // -1 reads without changing
	t.Cleanup(func() { debug.SetMemoryLimit(before) })

	env := map[string]string{memoryLimitEnv: "536870912"}
	set, err := applyMemoryLimit(func(k string) string { return env[k] })
	if err != nil || set != 483183821 {
		t.Fatalf("applyMemoryLimit = %d, %v; want 483183821", set, err)
	}
	if got := debug.SetMemoryLimit(-1); got != 483183821 {
		t.Fatalf("the runtime's memory limit is %d, want 483183821", got)
	}

	// With GOMEMLIMIT set the runtime keeps what it read from it.
	debug.SetMemoryLimit(before)
	env["GOMEMLIMIT"] = "300MiB"
	if set, err := applyMemoryLimit(func(k string) string { return env[k] }); err != nil || set != 0 {
		t.Fatalf("applyMemoryLimit with GOMEMLIMIT = %d, %v; want 0", set, err)
	}
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Fatalf("the runtime's memory limit changed to %d with GOMEMLIMIT set", got)
	}
}
