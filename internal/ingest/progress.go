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
	"fmt"
	"io"
	"os"
	"time"
)

// progressEvery throttles progress lines: a terminal needs no more, and a
// line a second is readable.
const progressEvery = time.Second

// progressMeter writes an import's progress on one line, rewritten with
// "\r": files done of all, events, their rate, and how far through the
// files' bytes it is with the time left at that pace. The byte count, not
// the events, drives the ETA: how many events the files hold is not known
// before reading them, their size is.
type progressMeter struct {
	w     io.Writer
	now   func() time.Time
	start time.Time
	last  time.Time
	files int
	// totalBytes is the files' size on disk (compressed, as read); 0 when
	// unknown (standard input).
	totalBytes int64
}

func newProgressMeter(w io.Writer, now func() time.Time, files int, totalBytes int64) *progressMeter {
	t := now()
	return &progressMeter{w: w, now: now, start: t, last: t, files: files, totalBytes: totalBytes}
}

// update rewrites the line when progressEvery has passed since the last.
func (p *progressMeter) update(st ImportStats, bytesRead int64) {
	t := p.now()
	if t.Sub(p.last) < progressEvery {
		return
	}
	p.last = t
	p.write(st, bytesRead, t.Sub(p.start), false)
}

// finish writes the last line, ending it.
func (p *progressMeter) finish(st ImportStats, bytesRead int64) {
	p.write(st, bytesRead, p.now().Sub(p.start), true)
}

func (p *progressMeter) write(st ImportStats, bytesRead int64, elapsed time.Duration, final bool) {
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(st.Read) / s
	}
	line := fmt.Sprintf("files %d/%d, %d events read (%d stored, %d duplicates, %d skipped, %d invalid), %.0f events/s",
		st.Files, p.files, st.Read, st.Stored, st.Duplicates, st.Skipped, st.Invalid, rate)
	switch {
	case final:
		line += fmt.Sprintf(", %s in %s", mib(bytesRead), elapsed.Round(100*time.Millisecond))
	case p.totalBytes > 0:
		pct := min(100*float64(bytesRead)/float64(p.totalBytes), 100)
		line += fmt.Sprintf(", %.0f%% of %s, ETA %s", pct, mib(p.totalBytes), eta(p.totalBytes-bytesRead, bytesRead, elapsed))
	default:
		line += ", " + mib(bytesRead) + " read"
	}
	end := ""
	if final {
		end = "\n"
	}
	// "\x1b[K" clears what a longer previous line left on the right.
	_, _ = fmt.Fprintf(p.w, "\r%s\x1b[K%s", line, end)
}

// eta is the time the remaining bytes take at the pace so far.
func eta(remaining, done int64, elapsed time.Duration) string {
	if done <= 0 || elapsed <= 0 {
		return "?"
	}
	if remaining <= 0 {
		return "0s"
	}
	left := time.Duration(float64(elapsed) * float64(remaining) / float64(done))
	return left.Round(time.Second).String()
}

func mib(n int64) string {
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// filesSize is the files' total size, 0 when one of them has none to know
// in advance (standard input, a pipe) or cannot be read (Import reports that).
func filesSize(files []string) int64 {
	var total int64
	for _, name := range files {
		if name == "-" {
			return 0
		}
		fi, err := os.Stat(name)
		if err != nil || !fi.Mode().IsRegular() {
			return 0
		}
		total += fi.Size()
	}
	return total
}

// countingReader counts the bytes read through it, for the progress line.
type countingReader struct {
	r io.Reader
	n *int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += int64(n)
	return n, err
}
