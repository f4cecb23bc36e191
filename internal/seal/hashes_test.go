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

package seal

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// fullLog keeps every hash tlog.StoredHashes makes: the layout stores had
// before MinStoredLevel, and what ReadTreeHashes must give back.
type fullLog []tlog.Hash

func (f fullLog) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		out[i] = f[x]
	}
	return out, nil
}

func leafData(i int) []byte {
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], uint64(i))
	return append(ts[:], bytes.Repeat([]byte{byte(i), byte(i >> 8)}, 16)...)
}

// TestReadTreeHashes: every tree hash read through ReadTreeHashes, from the
// kept hashes and the leaves, is the one tlog stores in full; a store keeps
// 1 in 16 of them; an inclusion proof reads at most 30 leaves; leaves gone
// from the log fail the read, naming them.
func TestReadTreeHashes(t *testing.T) {
	const n = 300
	var full fullLog
	m := &memLog{}
	for i := range n {
		hs, err := tlog.StoredHashes(int64(i), leafData(i), full)
		if err != nil {
			t.Fatal(err)
		}
		full = append(full, hs...)
		m.append(t, leafData(i))
	}
	if got, want := len(m.hashes), len(full)/16; got < want-8 || got > want+8 {
		t.Errorf("the store keeps %d of %d tree hashes, want about 1 in 16", got, len(full))
	}
	for x := range int64(len(full)) {
		got, err := m.ReadHashes([]int64{x})
		if err != nil {
			t.Fatalf("hash %d: %v", x, err)
		}
		if got[0] != full[x] {
			level, k := tlog.SplitStoredHashIndex(x)
			t.Fatalf("hash %d (level %d, %d): got %x, want %x", x, level, k, got[0], full[x])
		}
	}
	for _, size := range []int64{1, 2, 15, 16, 17, 31, 100, 255, 256, n} {
		root, err := tlog.TreeHash(size, m)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := tlog.TreeHash(size, full)
		if root != want {
			t.Fatalf("size %d: root %x, want %x", size, root, want)
		}
		for _, i := range []int64{0, size / 2, size - 1} {
			m.leavesRead = 0
			p, err := tlog.ProveRecord(size, i, m)
			if err != nil {
				t.Fatal(err)
			}
			// The siblings below MinStoredLevel in the leaf's block of 16,
			// and at most as many at the tree's right edge.
			if m.leavesRead > 30 {
				t.Errorf("proof of %d in %d read %d leaves, want at most 30", i, size, m.leavesRead)
			}
			if err := tlog.CheckRecord(p, size, root, i, tlog.RecordHash(leafData(int(i)))); err != nil {
				t.Fatalf("proof of %d in %d: %v", i, size, err)
			}
		}
	}

	// Leaves gone from the log: the hashes over them cannot be made.
	m.leaves = m.leaves[:44]
	_, err := m.ReadHashes([]int64{tlog.StoredHashIndex(3, 5)}) // leaves 40-47
	if err == nil || !strings.Contains(err.Error(), "4 of its leaves 40 to 47") {
		t.Fatalf("with leaves 44-47 gone: %v, want an error naming leaves 40 to 47", err)
	}
}
