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
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"

	"github.com/auditops/auditops/internal/jsoncut"
	"github.com/auditops/auditops/internal/store"
)

// Import formats.
const (
	// FormatKubeAudit is a kube-apiserver JSON audit log: one audit.k8s.io/v1
	// Event per line, as the log backend writes it.
	FormatKubeAudit = "kube-audit"
	// FormatEvents is NDJSON (or a JSON array) of events in the store model.
	FormatEvents = "events"
)

// importWorkers is how many batches of batchSize events Import stores at
// once, while the next is decoded: PostgreSQL writes each on a connection of
// its own, and SQLite commits them in one group (fewer, larger commits). At
// 300k events, 1 / 2 / 3 / 4 workers: PostgreSQL 14,615 / 19,591 / 26,150
// / 26,264 events/s, SQLite 11,951 / 14,766 / - / 16,422 (bench/README.md).
// Fewer for large batches: at most 16,000 events in flight, half of what
// the SQLite store queues for its writer before it refuses more.
func importWorkers(batchSize int) int {
	return max(1, min(4, 16000/batchSize))
}

// DefaultImportBatchSize is ImportOptions.BatchSize's default: four
// workers then put 16,000 events in flight, and SQLite commits them in
// groups of up to 8,000, so each page of its random id index is written
// to the WAL once for more events. Against 1,000 at 300k events, two rounds
// in turn: SQLite 18,075 / 18,256 -> 20,854 / 21,850 events/s (storage
// written 2.9 -> 1.2 GB), PostgreSQL 29,616 / 30,349 -> 32,257 / 31,703.
const DefaultImportBatchSize = 4000

// ImportOptions configure Import.
type ImportOptions struct {
	// BatchSize is the number of events per store transaction; 0 means
	// DefaultImportBatchSize.
	BatchSize int
	// Progress, when set, receives a progress line about once a second,
	// rewritten with "\r" (files, events, rate, share of the files' bytes
	// read and ETA), and a final line ending in "\n". The caller decides
	// whether it is a terminal.
	Progress io.Writer
	// SkipInvalid counts and skips lines that cannot be decoded or mapped
	// (a log truncated by a crash ends in half a line) instead of stopping
	// at the first one.
	SkipInvalid bool
	// MaxObjectBytes is --max-event-object-bytes, as for the webhook; 0
	// means DefaultMaxObjectBytes.
	MaxObjectBytes int
}

// ImportStats say what an import did.
type ImportStats struct {
	Files int
	// Read is the number of events decoded.
	Read int64
	// Stored were newly stored; Duplicates were already there (a re-run).
	Stored     int64
	Duplicates int64
	// Skipped are Kubernetes events of stages that are not stored.
	Skipped int64
	// Invalid lines were skipped (SkipInvalid).
	Invalid int64
	// Reused were stored although another stored event had their id.
	Reused int64
	// Truncated counts object fields stored as truncation markers.
	Truncated int64
	Elapsed   time.Duration
}

// Import loads audit log files (format FormatKubeAudit) or generic event
// files (FormatEvents) into ins, in batches of opts.BatchSize. Files may be
// gzip-compressed (detected by magic bytes); "-" is standard input. Each
// batch is one transaction, and events already stored are skipped, so an
// interrupted import is resumed by running it again.
//
// ins is usually a store.Store. Reading and decoding the next batch overlaps
// with storing the previous one. On error the stats say what was done
// before it.
func Import(ctx context.Context, ins Inserter, format string, files []string, opts ImportOptions) (ImportStats, error) {
	if format != FormatKubeAudit && format != FormatEvents {
		return ImportStats{}, fmt.Errorf("unknown import format %q: use %q or %q", format, FormatKubeAudit, FormatEvents)
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultImportBatchSize
	}
	opts.MaxObjectBytes = maxObjectBytes(opts.MaxObjectBytes)
	start := time.Now()
	// A failed batch stops the reader, not the batches being stored
	// beside it: they finish (and are counted) under the caller's ctx.
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()

	batches := make(chan importBatch, 1)
	rd := &importReader{format: format, opts: opts, out: batches}
	var readErr error
	go func() {
		defer close(batches)
		readErr = rd.run(readCtx, files)
	}()

	var st ImportStats
	var pm *progressMeter
	if opts.Progress != nil {
		pm = newProgressMeter(opts.Progress, time.Now, len(files), filesSize(files))
	}
	var (
		mu        sync.Mutex // st, bytesRead, insErr, pm
		bytesRead int64
		insErr    error
		wg        sync.WaitGroup
	)
	failed := func() bool { mu.Lock(); defer mu.Unlock(); return insErr != nil }
	for range importWorkers(opts.BatchSize) {
		wg.Go(func() {
			for b := range batches {
				var res store.InsertResult
				var err error
				// After a failure the rest is drained unstored (the error
				// says so); a cancelled ctx fails the Insert, never skips it.
				if len(b.events) > 0 && !failed() {
					res, err = ins.Insert(ctx, b.events)
				}
				mu.Lock()
				st.Files = max(st.Files, b.files)
				bytesRead = max(bytesRead, b.bytes)
				st.Read += b.read
				st.Skipped += b.skipped
				st.Invalid += b.invalid
				st.Truncated += b.truncated
				switch {
				case err != nil && insErr == nil:
					insErr = fmt.Errorf("storing a batch of %d events (after %d stored): %w", len(b.events), st.Stored, err)
					stopReading() // the rest is drained
				case err == nil:
					st.Stored += int64(res.Inserted)
					st.Duplicates += int64(res.Duplicates)
					st.Reused += int64(res.Reused)
				}
				if pm != nil && insErr == nil {
					pm.update(st, bytesRead)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	st.Elapsed = time.Since(start)
	if pm != nil {
		pm.finish(st, bytesRead)
	}
	// readErr is safe to read: close(batches) happened after it was set.
	if insErr != nil {
		return st, insErr
	}
	if readErr != nil {
		return st, readErr
	}
	return st, nil
}

// importBatch is one batch for the store plus what reading it counted.
type importBatch struct {
	events                            []store.Event
	read, skipped, invalid, truncated int64
	files                             int
	// bytes is how much of the files was read so far (as stored on disk,
	// before gunzip), for the progress line.
	bytes int64
}

// importReader decodes files into batches on its own goroutine.
type importReader struct {
	format string
	opts   ImportOptions
	out    chan<- importBatch
	cur    importBatch
	// bytesRead counts the files' bytes read (only this goroutine writes it;
	// each batch carries a copy).
	bytesRead int64
}

func (rd *importReader) run(ctx context.Context, files []string) error {
	for _, name := range files {
		if err := rd.file(ctx, name); err != nil {
			return err
		}
		rd.cur.files++
	}
	return rd.flush(ctx)
}

// add appends one event, sending the batch when full.
func (rd *importReader) add(ctx context.Context, ev store.Event, cuts int) error {
	if rd.cur.events == nil {
		rd.cur.events = make([]store.Event, 0, rd.opts.BatchSize)
	}
	rd.cur.truncated += int64(cuts + truncateObjects(&ev, rd.opts.MaxObjectBytes))
	rd.cur.events = append(rd.cur.events, ev)
	if len(rd.cur.events) >= rd.opts.BatchSize {
		return rd.flush(ctx)
	}
	return nil
}

func (rd *importReader) flush(ctx context.Context) error {
	rd.cur.bytes = rd.bytesRead
	select {
	case rd.out <- rd.cur:
	case <-ctx.Done():
		return ctx.Err()
	}
	rd.cur = importBatch{files: rd.cur.files}
	return nil
}

func (rd *importReader) file(ctx context.Context, name string) error {
	var f io.Reader
	if name == "-" {
		f = os.Stdin
	} else {
		fh, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("opening %s: %w", name, err)
		}
		defer fh.Close()
		f = fh
	}
	r, closeFn, err := maybeGunzip(countingReader{r: f, n: &rd.bytesRead})
	if err != nil {
		return fmt.Errorf("reading %s: %w", name, err)
	}
	defer closeFn()

	// A JSON array of generic events cannot be resumed line by line, so it
	// goes through the same decoder as the HTTP body, without SkipInvalid.
	br := bufio.NewReaderSize(r, 256<<10)
	if rd.format == FormatEvents {
		first, err := peekFirst(br)
		if err != nil {
			return fmt.Errorf("reading %s: %w", name, err)
		}
		if first == '[' {
			err := decodeEvents(br, "", rd.opts.MaxObjectBytes, func(ev store.Event, _, cuts int) error {
				rd.cur.read++
				return rd.add(ctx, ev, cuts)
			})
			var ie *InputError
			switch {
			case errors.As(err, &ie):
				ie.Where = strings.TrimSpace(name + " " + ie.Where)
				return err
			case err != nil && ctx.Err() == nil:
				return fmt.Errorf("reading %s: %w", name, err)
			}
			return err
		}
	}

	lr := &lineReader{br: br, max: rd.opts.MaxObjectBytes}
	if rd.format == FormatKubeAudit {
		lr.cut = kubeCutter(jsoncut.Lines, lr.max)
	} else {
		lr.cut = eventCutter(jsoncut.Lines, lr.max)
	}
	var kev auditv1.Event
	for {
		line, n, ok, err := lr.next()
		if err != nil {
			return fmt.Errorf("reading %s: %w", name, err)
		}
		if !ok {
			return nil
		}
		if blank(line) {
			continue
		}
		var (
			ev     store.Event
			stored = true
			lerr   error
		)
		switch {
		case lr.bad != nil:
			lerr = lr.bad
		case rd.format == FormatKubeAudit:
			if lerr = lr.decode(line, func(l []byte) error { return decodeAuditLine(l, &kev) }); lerr == nil {
				ev, stored, lerr = mapKubeAudit(&kev, lr.item)
			}
		default:
			if lerr = lr.decode(line, func(l []byte) error {
				ev = store.Event{}
				return decodeEventLine(l, &ev)
			}); lerr == nil {
				lerr = validateEvent(&ev, "")
			}
		}
		if lerr != nil {
			if rd.opts.SkipInvalid {
				rd.cur.invalid++
				continue
			}
			return &InputError{Where: fmt.Sprintf("%s line %d", name, n), Err: lerr}
		}
		rd.cur.read++
		if !stored {
			rd.cur.skipped++
			continue
		}
		if err := rd.add(ctx, ev, lr.item.Cuts); err != nil {
			return err
		}
	}
}

// maybeGunzip returns r decompressed when it starts with the gzip magic
// bytes (rotated audit logs are often compressed), else r itself.
func maybeGunzip(r io.Reader) (io.Reader, func(), error) {
	br := bufio.NewReader(r)
	magic, err := br.Peek(2)
	if err != nil && err != io.EOF {
		return nil, nil, err
	}
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("opening gzip stream: %w", err)
		}
		return zr, func() { _ = zr.Close() }, nil
	}
	return br, func() {}, nil
}
