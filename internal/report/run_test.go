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

package report

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
	"time"

	reportsv1alpha1 "github.com/auditops/auditops/api/v1alpha1"
	"github.com/auditops/auditops/internal/sink"
	"github.com/auditops/auditops/internal/store"
)

// lagBackend is what a lagSink has stored: it survives the sink instance,
// as ConfigMaps survive a manager.
type lagBackend struct {
	stored []byte
	chunks int
}

// lagSink stores chunks only every lag-th Append, as the shard sinks store a
// shard once it is full: Progress lags what was appended.
type lagSink struct {
	b       *lagBackend
	lag     int
	pending []byte
	n       int
}

func (s *lagSink) Resume(_ context.Context, p sink.Progress) error {
	if int(p.Bytes) > len(s.b.stored) {
		return sink.ErrStartOver
	}
	// What was stored after the checkpoint is dropped.
	s.b.stored, s.b.chunks = s.b.stored[:p.Bytes], p.Chunks
	s.pending, s.n = nil, p.Chunks
	return nil
}

func (s *lagSink) Append(_ context.Context, chunk []byte) (sink.Progress, error) {
	s.pending = append(s.pending, chunk...)
	s.n++
	if s.n%s.lag == 0 {
		s.b.stored, s.b.chunks, s.pending = append(s.b.stored, s.pending...), s.n, nil
	}
	return sink.Progress{Chunks: s.b.chunks, Bytes: int64(len(s.b.stored)), State: []byte(fmt.Sprint(s.b.chunks))}, nil
}

func (s *lagSink) Finish(_ context.Context, last []byte, size int64, sum string) ([]reportsv1alpha1.OutputRef, error) {
	s.b.stored = append(append(s.b.stored, s.pending...), last...)
	got := sha256.Sum256(s.b.stored)
	if int64(len(s.b.stored)) != size || hex.EncodeToString(got[:]) != sum {
		return nil, fmt.Errorf("stored %d bytes %x, Run says %d %s", len(s.b.stored), got, size, sum)
	}
	return []reportsv1alpha1.OutputRef{{URL: "mem://", Bytes: size, SHA256: sum}}, nil
}

// TestRunResumes: a run stopped after some checkpoints (the manager died)
// and run again from the last one gives the same bytes and digest as one
// uninterrupted run, whatever the sink's lag; checkpoints only move forward
// and only over what the sink says it stored.
func TestRunResumes(t *testing.T) {
	st := seededStore(t, 400)
	p := Params{Type: reportsv1alpha1.AuditDetails, Namespace: "team-a", Range: store.TimeRange{From: t0, To: t0.Add(30 * 24 * time.Hour)}, PageSize: 7}
	want, _ := collect(t, st, p, Cursor{}, 0)
	wantSum := sha256.Sum256(want)
	errKilled := errors.New("killed")
	for _, lag := range []int{1, 3} {
		for _, stopAfter := range []int{0, 1, 2, 5} {
			t.Run(fmt.Sprintf("lag %d, killed after %d checkpoints", lag, stopAfter), func(t *testing.T) {
				b := &lagBackend{}
				var last Checkpoint
				n := 0
				opts := RunOptions{ChunkSize: 2 << 10, Checkpointed: func(_ context.Context, c Checkpoint) error {
					if c.Sink.Chunks <= last.Sink.Chunks || c.Cursor.Records < last.Cursor.Records || c.Sink.Bytes > int64(len(b.stored)) {
						t.Errorf("checkpoint %+v after %+v (stored %d bytes)", c, last, len(b.stored))
					}
					last = c
					n++
					if stopAfter > 0 && n == stopAfter {
						return errKilled
					}
					return nil
				}}
				res, err := Run(context.Background(), st, p, &lagSink{b: b, lag: lag}, Checkpoint{}, opts)
				if stopAfter > 0 {
					if !errors.Is(err, errKilled) {
						t.Fatalf("Run: %v, want it killed", err)
					}
					stopAfter = 0
					res, err = Run(context.Background(), st, p, &lagSink{b: b, lag: lag}, last, opts)
				}
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(b.stored, want) || res.SHA256 != hex.EncodeToString(wantSum[:]) || res.Bytes != int64(len(want)) {
					t.Fatalf("stored %d bytes, digest %s; want %d bytes, %x", len(b.stored), res.SHA256, len(want), wantSum)
				}
				if n < 3 {
					t.Fatalf("%d checkpoints: the case needs several", n)
				}
			})
		}
	}
}
