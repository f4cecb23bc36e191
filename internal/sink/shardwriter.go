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
	"io"

	"github.com/klauspost/compress/gzip"
)

// Shard is one shard ShardWriter hands out, to be stored as it is. Data is
// valid until the callback returns.
type Shard struct {
	Data []byte
	// Aligned says the shard ends at a gzip member boundary: every chunk
	// added so far lies wholly in the shards handed out, up to and
	// including this one, and Chunks and Bytes count them. A shard that
	// ends inside a member (one larger than a shard) is not a point a
	// report can resume from.
	Aligned bool
	Chunks  int
	Bytes   int64
}

// ShardWriter lays a report out as the ConfigMap and Secret outputs keep it
// (spec/API.md section 5): each chunk one gzip member, members packed in
// order into shards of at most MaxShardBytes; a shard is closed at a member
// boundary when the next member does not fit, and a member larger than a
// shard is cut across as many as it needs. Concatenated, the shards are one
// gzip stream of the report. It does no I/O: the sinks store the shards it
// hands out, each once, and the benchmark discards them.
type ShardWriter struct {
	gz    *gzip.Writer
	gzBuf bytes.Buffer
	cur   []byte
	// chunks and bytes count what was added.
	chunks int
	bytes  int64
	// handedOut says whether any shard was handed out.
	handedOut bool
}

// NewShardWriter returns a ShardWriter with an empty first shard.
func NewShardWriter() *ShardWriter {
	return &ShardWriter{cur: make([]byte, 0, MaxShardBytes)}
}

// Add compresses chunk as one gzip member and adds it, handing every shard
// it fills to emit.
func (w *ShardWriter) Add(chunk []byte, emit func(Shard) error) error {
	member := w.compress(chunk)
	if len(w.cur) > 0 && len(w.cur)+len(member) > MaxShardBytes {
		if err := w.handOut(true, emit); err != nil {
			return err
		}
	}
	w.chunks++
	w.bytes += int64(len(chunk))
	for len(member) > 0 {
		n := min(MaxShardBytes-len(w.cur), len(member))
		w.cur = append(w.cur, member[:n]...)
		member = member[n:]
		if len(w.cur) == MaxShardBytes {
			if err := w.handOut(len(member) == 0, emit); err != nil {
				return err
			}
		}
	}
	return nil
}

// Close adds last (an empty report still gets one member: zero bytes do not
// gunzip) and hands out the last shard.
func (w *ShardWriter) Close(last []byte, emit func(Shard) error) error {
	if len(last) > 0 || (!w.handedOut && len(w.cur) == 0) {
		if err := w.Add(last, emit); err != nil {
			return err
		}
	}
	if len(w.cur) > 0 {
		return w.handOut(true, emit)
	}
	return nil
}

func (w *ShardWriter) handOut(aligned bool, emit func(Shard) error) error {
	w.handedOut = true
	err := emit(Shard{Data: w.cur, Aligned: aligned, Chunks: w.chunks, Bytes: w.bytes})
	w.cur = w.cur[:0]
	return err
}

// compress returns p as one gzip member. The header carries no name and a
// zero mtime, so equal chunks give equal bytes (quiet GitOps diffs). The
// result is valid until the next call.
func (w *ShardWriter) compress(p []byte) []byte {
	w.gzBuf.Reset()
	if w.gz == nil {
		w.gz = NewGzipWriter(&w.gzBuf)
	} else {
		w.gz.Reset(&w.gzBuf)
	}
	// Writes to a bytes.Buffer cannot fail.
	_, _ = w.gz.Write(p)
	_ = w.gz.Close()
	return w.gzBuf.Bytes()
}

// NewGzipWriter returns the gzip writer of the shard outputs: klauspost/
// compress at BestSpeed, so a large report is compressed as fast as the
// store reads it (bench/README.md has the figures).
func NewGzipWriter(w io.Writer) *gzip.Writer {
	gz, _ := gzip.NewWriterLevel(w, gzip.BestSpeed) // a valid level: no error
	return gz
}
