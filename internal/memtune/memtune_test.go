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

package memtune

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
		reserve int64
		want    int64
		wantErr string
	}{
		// What config/manager's resourceFieldRef (divisor 1) gives for 512Mi.
		{name: "bytes", env: map[string]string{LimitEnv: "536870912"}, want: 483183821},
		{name: "quantity", env: map[string]string{LimitEnv: "512Mi"}, want: 483183821},
		{name: "one gibibyte", env: map[string]string{LimitEnv: "1073741824"}, want: 966367642},
		{name: "no overflow", env: map[string]string{LimitEnv: "9223372036854775807"}, want: math.MaxInt64 - math.MaxInt64/10},
		// 512Mi less SQLite's page caches (sqlite.PageCacheBytes, 192 MiB).
		{name: "less a reserve", env: map[string]string{LimitEnv: "512Mi"}, reserve: 192 << 20, want: 483183821 - 192<<20},
		// A reserve that would leave too little: a quarter of the container's.
		{name: "at least a quarter", env: map[string]string{LimitEnv: "256Mi"}, reserve: 192 << 20, want: 64 << 20},
		{name: "unset", env: map[string]string{}, want: 0},
		{name: "GOMEMLIMIT wins", env: map[string]string{"GOMEMLIMIT": "300MiB", LimitEnv: "536870912"}, want: 0},
		{name: "GOMEMLIMIT off wins", env: map[string]string{"GOMEMLIMIT": "off", LimitEnv: "536870912"}, want: 0},
		{name: "not a quantity", env: map[string]string{LimitEnv: "lots"}, wantErr: "want the container's memory limit in bytes"},
		{name: "zero", env: map[string]string{LimitEnv: "0"}, wantErr: "want a positive number of bytes"},
		{name: "negative", env: map[string]string{LimitEnv: "-5"}, wantErr: "want a positive number of bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SoftLimit(func(k string) string { return tc.env[k] }, tc.reserve)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("SoftLimit: %d, %v; want an error with %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("SoftLimit = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}

func TestApplySetsTheRuntimes(t *testing.T) {
	limitBefore := debug.SetMemoryLimit(-1) // -1 reads without changing
	gcBefore := debug.SetGCPercent(100)
	t.Cleanup(func() {
		debug.SetMemoryLimit(limitBefore)
		debug.SetGCPercent(gcBefore)
	})
	for _, tc := range []struct {
		name      string
		env       map[string]string
		want      Settings
		wantLimit int64 // the runtime's afterwards
		wantGC    int
	}{
		{name: "a container's limit", env: map[string]string{LimitEnv: "536870912"},
			want: Settings{Limit: 483183821, GCPercent: 300}, wantLimit: 483183821, wantGC: 300},
		{name: "GOGC wins", env: map[string]string{LimitEnv: "536870912", "GOGC": "50"},
			want: Settings{Limit: 483183821}, wantLimit: 483183821, wantGC: 100},
		// The runtime keeps what it read from GOMEMLIMIT, and GOGC with it:
		// a higher GOGC is safe only under a limit Apply knows of.
		{name: "GOMEMLIMIT wins", env: map[string]string{LimitEnv: "536870912", "GOMEMLIMIT": "300MiB"},
			wantLimit: limitBefore, wantGC: 100},
		{name: "no limit", env: map[string]string{}, wantLimit: limitBefore, wantGC: 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetMemoryLimit(limitBefore)
			debug.SetGCPercent(100)
			got, err := Apply(func(k string) string { return tc.env[k] }, 0)
			if err != nil || got != tc.want {
				t.Fatalf("Apply = %+v, %v; want %+v", got, err, tc.want)
			}
			if l := debug.SetMemoryLimit(-1); l != tc.wantLimit {
				t.Errorf("the runtime's memory limit is %d, want %d", l, tc.wantLimit)
			}
			if gc := debug.SetGCPercent(100); gc != tc.wantGC {
				t.Errorf("the runtime's GOGC is %d, want %d", gc, tc.wantGC)
			}
		})
	}
}
