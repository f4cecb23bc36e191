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

package sink

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"testing"

	reportsv1alpha1 "github.com/auditops/auditops/api/v1alpha1"
)

// target is one sink implementation under the shared conformance suite.
type target struct {
	name string
	// newReport prepares a fresh report for one test and returns it with a
	// factory of sinks for it; every call of the factory is a new instance,
	// as after a manager restart.
	newReport func(t *testing.T, ext string) (Report, func(t *testing.T) Sink)
	// read reassembles the report's plain bytes from the outputs.
	read func(t *testing.T, r Report, outs []reportsv1alpha1.OutputRef) []byte
	// check verifies what the target promises beyond the bytes (layout,
	// labels, content type, no staging left); c is nil for a retried run.
	check func(t *testing.T, r Report, c *conformanceCase, outs []reportsv1alpha1.OutputRef)
}

// conformanceCase is one report written through a sink.
type conformanceCase struct {
	name   string
	ext    string
	chunks [][]byte
	last   []byte
	// crashAt is the index of a chunk that is stored without its checkpoint
	// being kept, after which a new sink resumes from the previous checkpoint
	// and the chunk is appended again (-1: no crash).
	crashAt int
	// ConfigMap layout: plain data in one ConfigMap, or this many gzip shards.
	cmPlain  bool
	cmShards int
}

func (c *conformanceCase) want() []byte {
	var b []byte
	for _, ch := range c.chunks {
		b = append(b, ch...)
	}
	return append(b, c.last...)
}

// jsonRows returns about n bytes of report-like JSON (compresses ~10x).
func jsonRows(seed uint64, n int) []byte {
	rng := rand.New(rand.NewChaCha8(seedBytes(seed)))
	var b bytes.Buffer
	b.WriteString("[")
	for i := 0; b.Len() < n; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"date":"2024-05-21","user":"user-%d","api":"/api/v1/namespaces/team-a/pods","verb":"get","status":%d}`,
			rng.IntN(50), 200+rng.IntN(3)*100)
	}
	b.WriteString("]")
	return b.Bytes()
}

// randomBytes returns n incompressible bytes.
func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	rng := rand.New(rand.NewChaCha8(seedBytes(seed)))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func seedBytes(seed uint64) [32]byte {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	return s
}

// split cuts b into chunks of n bytes.
func split(b []byte, n int) [][]byte {
	var out [][]byte
	for len(b) > n {
		out = append(out, b[:n])
		b = b[n:]
	}
	if len(b) > 0 {
		out = append(out, b)
	}
	return out
}

const kib, mib = 1 << 10, 1 << 20

func conformanceCases() []conformanceCase {
	return []conformanceCase{
		{name: "empty report", ext: "json", crashAt: -1, cmPlain: true},
		{name: "small report whole", ext: "json", last: jsonRows(1, 10*kib), crashAt: -1, cmPlain: true},
		{name: "small csv whole", ext: "csv", last: []byte("date,user\n2024-05-21,alice\n"), crashAt: -1, cmPlain: true},
		{name: "small report in chunks", ext: "json", chunks: split(jsonRows(2, 20*kib), 4*kib), last: []byte("]"), crashAt: -1, cmShards: 1},
		{name: "empty chunks", ext: "csv", chunks: [][]byte{{}, []byte("a,b\n"), {}}, crashAt: -1, cmShards: 1},
		{name: "whole report over a shard compresses into one", ext: "json", last: jsonRows(3, 1536*kib), crashAt: -1, cmShards: 1},
		{name: "chunked report over a shard compresses into one", ext: "json", chunks: split(jsonRows(4, 2*mib), 64*kib), last: []byte("\n"), crashAt: -1, cmShards: 1},
		{name: "binary bytes whole", ext: "csv", last: randomBytes(5, 4*kib), crashAt: -1, cmShards: 1},
		{name: "incompressible report sharded", ext: "csv", chunks: split(randomBytes(6, 3*mib), 256*kib), last: randomBytes(7, 10*kib), crashAt: -1, cmShards: 4},
		// A shard ends where the next member does not fit; a member larger
		// than a shard is cut across shards.
		{name: "one chunk larger than a shard", ext: "json",
			chunks: [][]byte{randomBytes(8, 100*kib), randomBytes(9, 2*mib), randomBytes(10, 50*kib)}, crashAt: -1, cmShards: 4},
		{name: "whole incompressible report over a shard", ext: "json", last: randomBytes(11, 1200*kib), crashAt: -1, cmShards: 2},
		// Crashes: chunks after the last durable checkpoint were appended
		// (some stored), then lost; the new run appends them again.
		{name: "resume before the first checkpoint", ext: "json", chunks: split(randomBytes(12, 512*kib), 128*kib), crashAt: 0, cmShards: 1},
		{name: "resume mid-shard", ext: "json", chunks: split(randomBytes(13, 1*mib), 128*kib), last: []byte("]"), crashAt: 3, cmShards: 2},
		// 7 members of 128 KiB fit in the first shard, the 8th crosses into the second.
		{name: "resume when the lost chunk crossed a shard boundary", ext: "csv", chunks: split(randomBytes(14, 2*mib), 128*kib), crashAt: 7, cmShards: 3},
		{name: "resume when the lost chunk spanned whole shards", ext: "csv",
			chunks: [][]byte{randomBytes(15, 300*kib), randomBytes(16, 2*mib), randomBytes(17, 10*kib)}, crashAt: 1, cmShards: 4},
		{name: "resume after several durable shards", ext: "csv", chunks: split(randomBytes(19, 3*mib), 100*kib), last: []byte("\n"), crashAt: 25, cmShards: 4},
		{name: "resume with compressible chunks", ext: "json", chunks: split(jsonRows(18, 1*mib), 32*kib), last: []byte("]"), crashAt: 20, cmShards: 1},
	}
}

// runConformance runs every case against each target.
func runConformance(t *testing.T, targets []target) {
	for _, tgt := range targets {
		t.Run(tgt.name, func(t *testing.T) {
			for _, c := range conformanceCases() {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					r, newSink := tgt.newReport(t, c.ext)
					outs := writeReport(t, newSink, &c)
					want := c.want()
					checkOutputs(t, outs, want)
					if got := tgt.read(t, r, outs); !bytes.Equal(got, want) {
						t.Fatalf("read back %d bytes (sha256 %s), want %d (sha256 %s)", len(got), hexSum(got), len(want), hexSum(want))
					}
					tgt.check(t, r, &c, outs)
				})
			}
			t.Run("retry overwrites a larger run", func(t *testing.T) {
				t.Parallel()
				r, newSink := tgt.newReport(t, "csv")
				first := conformanceCase{chunks: split(randomBytes(20, 2*mib+100*kib), 256*kib), crashAt: -1}
				writeReport(t, newSink, &first)
				retry := conformanceCase{chunks: split(jsonRows(21, 30*kib), 8*kib), last: []byte("]"), crashAt: -1}
				outs := writeReport(t, newSink, &retry)
				want := retry.want()
				checkOutputs(t, outs, want)
				if got := tgt.read(t, r, outs); !bytes.Equal(got, want) {
					t.Fatalf("read back %d bytes (sha256 %s), want the retry's %d (sha256 %s)", len(got), hexSum(got), len(want), hexSum(want))
				}
				tgt.check(t, r, nil, outs)
			})
			t.Run("finish rejects bytes that do not match", func(t *testing.T) {
				t.Parallel()
				_, newSink := tgt.newReport(t, "json")
				ctx := context.Background()
				for _, tc := range []struct {
					name string
					size int64
					sum  string
				}{
					{name: "wrong size", size: 3, sum: hexSum([]byte("abcd"))},
					{name: "wrong sum", size: 4, sum: hexSum([]byte("abce"))},
				} {
					s := newSink(t)
					if err := s.Resume(ctx, Progress{}); err != nil {
						t.Fatalf("%s: Resume: %v", tc.name, err)
					}
					if _, err := s.Append(ctx, []byte("ab")); err != nil {
						t.Fatalf("%s: Append: %v", tc.name, err)
					}
					if _, err := s.Finish(ctx, []byte("cd"), tc.size, tc.sum); err == nil {
						t.Fatalf("%s: Finish accepted a report whose size or sum does not match", tc.name)
					}
					if _, err := s.Finish(ctx, []byte("cd"), 4, hexSum([]byte("abcd"))); err == nil {
						t.Fatalf("%s: a sink whose Finish failed accepted another call without Resume", tc.name)
					}
					closeSink(t, s)
				}
			})
		})
	}
}

// writeReport drives a sink the way report.Run does, saving each durable
// Progress through JSON as status.checkpoint would. At crashAt the manager
// dies after appending that chunk: a new sink resumes from the last
// checkpoint and every chunk after it is appended again.
func writeReport(t *testing.T, newSink func(t *testing.T) Sink, c *conformanceCase) []reportsv1alpha1.OutputRef {
	t.Helper()
	ctx := context.Background()
	s := newSink(t)
	var p Progress
	if err := s.Resume(ctx, p); err != nil {
		t.Fatalf("Resume(zero): %v", err)
	}
	crashed := false
	for i := 0; i < len(c.chunks); i++ {
		next, err := s.Append(ctx, c.chunks[i])
		if err != nil {
			t.Fatalf("Append(chunk %d): %v", i, err)
		}
		var durable int64
		for _, ch := range c.chunks[:min(max(next.Chunks, 0), len(c.chunks))] {
			durable += int64(len(ch))
		}
		if next.Chunks < p.Chunks || next.Chunks > i+1 || next.Bytes != durable {
			t.Fatalf("Append(chunk %d) after %+v returned %+v: durable chunks must not go back or ahead, bytes must be theirs", i, p, next)
		}
		if i == c.crashAt && !crashed {
			crashed = true
			closeSink(t, s)
			s = newSink(t)
			if err := s.Resume(ctx, p); err != nil {
				t.Fatalf("Resume(%+v): %v", p, err)
			}
			i = p.Chunks - 1
			continue
		}
		p = checkpoint(t, next)
	}
	want := c.want()
	outs, err := s.Finish(ctx, c.last, int64(len(want)), hexSum(want))
	if err != nil {
		t.Fatalf("Finish: %v", err)
	}
	if _, err := s.Append(ctx, []byte("x")); err == nil {
		t.Fatal("Append after Finish succeeded")
	}
	closeSink(t, s)
	return outs
}

// checkpoint round-trips p through JSON, as the controller stores it.
func checkpoint(t *testing.T, p Progress) Progress {
	t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatalf("encoding progress: %v", err)
	}
	var out Progress
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("decoding progress: %v", err)
	}
	return out
}

// checkOutputs verifies every output records the whole report's size and sum.
func checkOutputs(t *testing.T, outs []reportsv1alpha1.OutputRef, want []byte) {
	t.Helper()
	if len(outs) == 0 {
		t.Fatal("Finish returned no outputs")
	}
	for i, o := range outs {
		if o.Bytes != int64(len(want)) || o.SHA256 != hexSum(want) {
			t.Errorf("output %d records %d bytes, sha256 %s; want %d, %s", i, o.Bytes, o.SHA256, len(want), hexSum(want))
		}
	}
}

func closeSink(t *testing.T, s Sink) {
	t.Helper()
	if c, ok := s.(io.Closer); ok {
		if err := c.Close(); err != nil {
			t.Errorf("closing sink: %v", err)
		}
	}
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func mustEqual[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %+v, want %+v", what, got, want)
	}
}

func mustErrorIs(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error %v, want one wrapping %v", what, err, target)
	}
}
