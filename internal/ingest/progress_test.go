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
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestProgressMeter(t *testing.T) {
	const mb = 1 << 20
	type step struct {
		at    time.Duration // since the start
		st    ImportStats
		bytes int64
	}
	stats := func(files int, read, stored int64) ImportStats {
		return ImportStats{Files: files, Read: read, Stored: stored}
	}
	for _, tc := range []struct {
		name       string
		files      int
		totalBytes int64
		steps      []step
		finishAt   time.Duration
		final      ImportStats
		finalBytes int64
		want       []string // the lines written, each after its "\r"
	}{{
		name: "a line a second at most, with the share of bytes and the ETA", files: 2, totalBytes: 4 * mb,
		steps: []step{
			{500 * time.Millisecond, stats(0, 500, 500), mb / 2},        // too soon
			{time.Second, stats(0, 1000, 1000), mb},                     // 25% in 1 s: 3 s left
			{1500 * time.Millisecond, stats(1, 1500, 1500), 3 * mb / 2}, // too soon
			{3 * time.Second, stats(1, 3000, 2900), 3 * mb},             // 75% in 3 s: 1 s left
		},
		finishAt: 4 * time.Second, final: stats(2, 4000, 3900), finalBytes: 4 * mb,
		want: []string{
			"files 0/2, 1000 events read (1000 stored, 0 duplicates, 0 skipped, 0 invalid), 1000 events/s, 25% of 4.0 MiB, ETA 3s\x1b[K",
			"files 1/2, 3000 events read (2900 stored, 0 duplicates, 0 skipped, 0 invalid), 1000 events/s, 75% of 4.0 MiB, ETA 1s\x1b[K",
			"files 2/2, 4000 events read (3900 stored, 0 duplicates, 0 skipped, 0 invalid), 1000 events/s, 4.0 MiB in 4s\x1b[K\n",
		},
	}, {
		name: "nothing read yet: no ETA to give", files: 1, totalBytes: mb,
		steps:    []step{{2 * time.Second, stats(0, 0, 0), 0}},
		finishAt: 2 * time.Second, final: stats(0, 0, 0),
		want: []string{
			"files 0/1, 0 events read (0 stored, 0 duplicates, 0 skipped, 0 invalid), 0 events/s, 0% of 1.0 MiB, ETA ?\x1b[K",
			"files 0/1, 0 events read (0 stored, 0 duplicates, 0 skipped, 0 invalid), 0 events/s, 0.0 MiB in 2s\x1b[K\n",
		},
	}, {
		name: "standard input: the size is unknown, the bytes read are said", files: 1,
		steps:    []step{{time.Second, stats(0, 200, 100), 2 * mb}},
		finishAt: 1200 * time.Millisecond, final: ImportStats{Files: 1, Read: 240, Stored: 120, Duplicates: 10, Skipped: 110}, finalBytes: 3 * mb,
		want: []string{
			"files 0/1, 200 events read (100 stored, 0 duplicates, 0 skipped, 0 invalid), 200 events/s, 2.0 MiB read\x1b[K",
			"files 1/1, 240 events read (120 stored, 10 duplicates, 110 skipped, 0 invalid), 200 events/s, 3.0 MiB in 1.2s\x1b[K\n",
		},
	}, {
		name: "a quick import writes only the final line", files: 3, totalBytes: 3 * mb,
		steps:    []step{{100 * time.Millisecond, stats(1, 10, 10), mb}, {900 * time.Millisecond, stats(2, 20, 20), 2 * mb}},
		finishAt: 950 * time.Millisecond, final: stats(3, 30, 30), finalBytes: 3 * mb,
		want: []string{
			"files 3/3, 30 events read (30 stored, 0 duplicates, 0 skipped, 0 invalid), 32 events/s, 3.0 MiB in 1s\x1b[K\n",
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
			now := start
			var out bytes.Buffer
			pm := newProgressMeter(&out, func() time.Time { return now }, tc.files, tc.totalBytes)
			for _, s := range tc.steps {
				now = start.Add(s.at)
				pm.update(s.st, s.bytes)
			}
			now = start.Add(tc.finishAt)
			pm.finish(tc.final, tc.finalBytes)
			got := strings.Split(out.String(), "\r")
			if got[0] != "" {
				t.Fatalf("output does not start with \\r: %q", out.String())
			}
			got = got[1:]
			if strings.Join(got, "\n--\n") != strings.Join(tc.want, "\n--\n") {
				t.Errorf("lines:\n%q\nwant:\n%q", got, tc.want)
			}
		})
	}
}

func TestETA(t *testing.T) {
	for _, tc := range []struct {
		remaining, done int64
		elapsed         time.Duration
		want            string
	}{
		{remaining: 300, done: 100, elapsed: 10 * time.Second, want: "30s"},
		{remaining: 1, done: 3, elapsed: time.Second, want: "0s"}, // 333 ms rounds down
		{remaining: 7200, done: 100, elapsed: time.Second, want: "1m12s"},
		{remaining: 0, done: 100, elapsed: time.Second, want: "0s"},
		{remaining: 100, done: 0, elapsed: time.Second, want: "?"},
	} {
		if got := eta(tc.remaining, tc.done, tc.elapsed); got != tc.want {
			t.Errorf("eta(%d, %d, %s) = %s, want %s", tc.remaining, tc.done, tc.elapsed, got, tc.want)
		}
	}
}
