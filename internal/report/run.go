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
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"

	reportsv1alpha1 "github.com/auditops/auditops/api/v1alpha1"
	"github.com/auditops/auditops/internal/faultpoint"
	"github.com/auditops/auditops/internal/sink"
	"github.com/auditops/auditops/internal/store"
)

// DefaultChunkSize is how many report bytes Run gathers before handing
// them to the sink: one gzip member of a ConfigMap or Secret report, one
// staging part of an object-store report.
const DefaultChunkSize = 512 << 10

// Checkpoint is where a report durably stands: the generator's cursor after
// the last stored chunk, what the sink holds, and the SHA-256 state of the
// bytes before it. The controller keeps it in status.checkpoint.
type Checkpoint struct {
	Cursor Cursor        `json:"cursor"`
	Sink   sink.Progress `json:"sink"`
	// Hash is the marshalled state of the SHA-256 of the stored bytes.
	Hash []byte `json:"hash,omitempty"`
}

// RunOptions are what a caller of Run decides.
type RunOptions struct {
	// ChunkSize is how many bytes are gathered per Append; 0 means
	// DefaultChunkSize.
	ChunkSize int
	// Checkpointed is called with every checkpoint that became durable;
	// an error stops the run (it is returned as is).
	Checkpointed func(ctx context.Context, c Checkpoint) error
	// Progress, when set, is told the cursor after every page (for status).
	Progress func(c Cursor)
}

// Result is a finished report.
type Result struct {
	Outputs []reportsv1alpha1.OutputRef
	Records int64
	Pages   int64
	Bytes   int64
	SHA256  string
}

// ErrStartOver is wrapped by Run's errors when the report must be generated
// again from the start: the stored output no longer matches the checkpoint
// at the end, or the checkpoint's page token no longer verifies. The
// caller clears its checkpoint.
var ErrStartOver = errors.New("the report must start over")

// Run generates the report p from checkpoint from (the zero Checkpoint
// starts it) into snk: pages gathered into chunks of ChunkSize bytes, each
// hashed once and appended, a checkpoint handed to Checkpointed whenever
// the sink says chunks are durable, then Finish with the size and SHA-256
// of the whole report. The controller and the benchmark both run reports
// through it. A checkpoint the sink cannot resume from starts the report
// over.
func Run(ctx context.Context, st store.Store, p Params, snk sink.Sink, from Checkpoint, o RunOptions) (Result, error) {
	if o.ChunkSize <= 0 {
		o.ChunkSize = DefaultChunkSize
	}
	cp := from
	sum := sha256.New()
	if len(cp.Hash) > 0 {
		if err := sum.(encoding.BinaryUnmarshaler).UnmarshalBinary(cp.Hash); err != nil {
			cp, sum = Checkpoint{}, sha256.New()
		}
	}
	if err := snk.Resume(ctx, cp.Sink); err != nil {
		if !errors.Is(err, sink.ErrStartOver) {
			return Result{}, fmt.Errorf("resuming the output: %w", err)
		}
		cp, sum = Checkpoint{}, sha256.New()
		if err := snk.Resume(ctx, cp.Sink); err != nil {
			return Result{}, fmt.Errorf("starting the output over: %w", err)
		}
	}

	// total counts the report's bytes so far: what the checkpoint covers
	// and everything emitted since.
	total := cp.Sink.Bytes
	chunks := cp.Sink.Chunks
	// pending are the chunks appended since the last durable checkpoint,
	// each with the checkpoint that holds once the sink has stored it.
	var pending []Checkpoint
	buf := make([]byte, 0, o.ChunkSize+64<<10)
	last := cp.Cursor
	emit := func(ctx context.Context, chunk []byte, next Cursor) error {
		sum.Write(chunk)
		total += int64(len(chunk))
		buf = append(buf, chunk...)
		last = next
		if o.Progress != nil {
			o.Progress(next)
		}
		if len(buf) < o.ChunkSize || next.Done {
			return nil
		}
		progress, err := snk.Append(ctx, buf)
		if err != nil {
			return fmt.Errorf("storing %d report bytes: %w", len(buf), err)
		}
		chunks++
		state, err := sum.(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			return fmt.Errorf("saving the report hash: %w", err)
		}
		pending = append(pending, Checkpoint{Cursor: next, Hash: state})
		buf = buf[:0]
		faultpoint.Hit("report-after-append")
		// The sink stores some chunks only later (a shard is written once,
		// when full): checkpoint at the last chunk it says is durable.
		durable := -1
		for i := range pending {
			if chunks-len(pending)+i+1 <= progress.Chunks {
				durable = i
			}
		}
		if durable < 0 {
			return ctx.Err()
		}
		c := pending[durable]
		c.Sink = progress
		pending = pending[durable+1:]
		if o.Checkpointed != nil {
			if err := o.Checkpointed(ctx, c); err != nil {
				return err
			}
		}
		return ctx.Err()
	}
	if err := Generate(ctx, st, p, cp.Cursor, emit); err != nil {
		if errors.Is(err, store.ErrInvalidToken) {
			// The checkpoint's token no longer verifies (a new token key).
			err = fmt.Errorf("%w: %w", err, ErrStartOver)
		}
		return Result{}, err
	}
	digest := hex.EncodeToString(sum.Sum(nil))
	outputs, err := snk.Finish(ctx, buf, total, digest)
	if err != nil {
		if errors.Is(err, sink.ErrStartOver) {
			err = fmt.Errorf("%w: %w", err, ErrStartOver)
		}
		return Result{}, fmt.Errorf("finishing the output: %w", err)
	}
	return Result{Outputs: outputs, Records: last.Records, Pages: last.Pages, Bytes: total, SHA256: digest}, nil
}
