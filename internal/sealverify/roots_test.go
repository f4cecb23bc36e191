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

package sealverify

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/auditops/auditops/internal/seal"
)

// TestRootWalkChecksKeptHashes: the walk compares every kept tree hash it
// makes with the store's and names each that differs, is missing or is
// malformed by the leaves it covers, at any level and position; a store
// that cannot be read fails the walk instead of making findings.
func TestRootWalkChecksKeptHashes(t *testing.T) {
	const n = 100
	var full []tlog.Hash // tlog's whole layout of the n leaves
	data := func(i int) []byte { return fmt.Appendf(nil, "leaf %03d of the log, 40 bytes long......", i) }
	reader := tlog.HashReaderFunc(func(xs []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(xs))
		for i, x := range xs {
			out[i] = full[x]
		}
		return out, nil
	})
	for i := range n {
		hs, err := tlog.StoredHashes(int64(i), data(i), reader)
		if err != nil {
			t.Fatal(err)
		}
		full = append(full, hs...)
	}
	edited := tlog.StoredHashIndex(5, 1)    // leaves 32-63
	missing := tlog.StoredHashIndex(4, 5)   // leaves 80-95
	malformed := tlog.StoredHashIndex(4, 2) // leaves 32-47
	var readErr error
	readKept := func(xs []int64) ([]tlog.Hash, error) {
		if readErr != nil {
			return nil, readErr
		}
		out := make([]tlog.Hash, len(xs))
		for i, x := range xs {
			switch {
			case !seal.Kept(x):
				t.Errorf("the walk asked for hash %d, below the kept levels", x)
			case x == missing:
				return nil, fmt.Errorf("tree hash %d: %w", x, seal.ErrHashNotStored)
			case x == malformed:
				return nil, fmt.Errorf("tree hash %d: %w", x, seal.ErrHashMalformed)
			}
			out[i] = full[x]
			if x == edited {
				out[i][0] ^= 1
			}
		}
		return out, nil
	}
	walk := func() ([]string, error) {
		var got []string
		w := newRootWalk("team-a", nil, nil, func(f Finding) { got = append(got, fmt.Sprintf("%d %s", *f.Index, f.Detail)) }, 0, readKept)
		for i := range n {
			if err := w.add(int64(i), int64(i), data(i)); err != nil {
				return got, err
			}
		}
		err := w.checkKept()
		slices.Sort(got)
		return got, err
	}
	got, err := walk()
	want := []string{
		"32 the stored tree hash over leaves 32 to 47 is not 32 bytes",
		"32 the stored tree hash over leaves 32 to 63 is not the one they give: an inclusion proof through it would not check",
		"80 no tree hash over leaves 80 to 95 is stored",
	}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("findings %q (%v), want %q", got, err, want)
	}
	readErr = errors.New("connection reset by peer")
	if got, err := walk(); err == nil || len(got) != 0 {
		t.Fatalf("a store that cannot be read: findings %q, error %v", got, err)
	}
}
