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
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

var sealTime = time.Date(2026, 12, 5, 21, 0, 0, 5, time.UTC)

func TestCheckpointSignOpen(t *testing.T) {
	k := newKey(t)
	cp := Checkpoint{Origin: Origin(DefaultOriginPrefix, "team-a"), Size: 3, Root: tlog.RecordHash([]byte("x")),
		Time: sealTime, RetentionCutoff: time.Date(2026, 9, 6, 0, 0, 0, 0, time.UTC)}
	msg, err := k.Sign(cp)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(msg), "auditops/team-a\n3\n") || !strings.Contains(string(msg), "\n\n— "+KeyName+" ") {
		t.Fatalf("not a C2SP signed checkpoint:\n%s", msg)
	}
	vs, err := Verifiers(k.Verifier())
	if err != nil {
		t.Fatal(err)
	}
	got, err := Open(msg, vs)
	if err != nil {
		t.Fatal(err)
	}
	if got != cp {
		t.Fatalf("opened %+v, signed %+v", got, cp)
	}
	// No retention.
	cp.RetentionCutoff = time.Time{}
	msg, _ = k.Sign(cp)
	if got, err := Open(msg, vs); err != nil || !got.RetentionCutoff.IsZero() || !strings.Contains(string(msg), "retention-cutoff none\n") {
		t.Fatalf("no retention: %+v, %v", got, err)
	}
}

func TestCheckpointRefused(t *testing.T) {
	k, other := newKey(t), newKey(t)
	vs, _ := Verifiers(k.Verifier())
	cp := Checkpoint{Origin: "auditops/team-a", Size: 10, Root: tlog.RecordHash([]byte("x")), Time: sealTime}
	msg, err := k.Sign(cp)
	if err != nil {
		t.Fatal(err)
	}
	resigned, _ := other.Sign(cp)
	tests := []struct {
		name string
		msg  []byte
		want error
	}{
		{"size edited", bytes.Replace(msg, []byte("\n10\n"), []byte("\n11\n"), 1), ErrBadSignature},
		{"signed by another key", resigned, ErrBadSignature},
		{"signature cut", msg[:bytes.LastIndex(msg, []byte("— "))], nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(tc.msg, vs)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("opened: %v, want %v", err, tc.want)
			}
		})
	}
	for _, text := range []string{
		"auditops/a\n01\n" + strings.Repeat("A", 43) + "=\ntime 2026-12-05T21:00:00Z\nretention-cutoff none\n",
		"auditops/a\n1\n" + strings.Repeat("A", 43) + "=\ntime 2026-12-05T21:00:00Z\n",
		"auditops/a\n1\n" + strings.Repeat("A", 43) + "=\ntime 2026-12-05T22:00:00+01:00\nretention-cutoff none\n",
		"auditops/a\n-1\n" + strings.Repeat("A", 43) + "=\ntime 2026-12-05T21:00:00Z\nretention-cutoff none\n",
	} {
		if _, err := Parse(text); err == nil {
			t.Errorf("parsed %q", text)
		}
	}
}

// TestKeyRotation: after a rotation the new key signs, and checkpoints of
// either key verify against the list of both.
func TestKeyRotation(t *testing.T) {
	old, cur := newKey(t), newKey(t)
	cp := Checkpoint{Origin: "auditops/team-a", Size: 1, Root: tlog.RecordHash([]byte("x")), Time: sealTime}
	a, _ := old.Sign(cp)
	b, _ := cur.Sign(cp)
	both, err := Verifiers(old.Verifier(), cur.Verifier())
	if err != nil {
		t.Fatal(err)
	}
	for _, msg := range [][]byte{a, b} {
		if _, err := Open(msg, both); err != nil {
			t.Fatal(err)
		}
	}
	onlyNew, _ := Verifiers(cur.Verifier())
	if _, err := Open(a, onlyNew); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("an old checkpoint with the old key dropped: %v", err)
	}
}

// memLog is a log as a store keeps it, in memory: the tree hashes that are
// Kept, by tlog index, and the leaves; it reads through ReadTreeHashes.
type memLog struct {
	hashes map[int64]tlog.Hash
	leaves [][]byte
	// leavesRead counts the leaves ReadTreeHashes read.
	leavesRead int64
}

func (m *memLog) source() HashSource {
	return HashSource{
		Stored: func(indexes []int64) ([]tlog.Hash, error) {
			out := make([]tlog.Hash, len(indexes))
			for i, x := range indexes {
				h, ok := m.hashes[x]
				if !ok {
					return nil, fmt.Errorf("hash %d not stored", x)
				}
				out[i] = h
			}
			return out, nil
		},
		LeafData: func(start, end int64) ([][]byte, error) {
			m.leavesRead += end - start
			return m.leaves[min(start, int64(len(m.leaves))):min(end, int64(len(m.leaves)))], nil
		},
	}
}

func (m *memLog) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	return ReadTreeHashes(m.source(), indexes)
}

func (m *memLog) append(t *testing.T, data []byte) {
	t.Helper()
	if m.hashes == nil {
		m.hashes = map[int64]tlog.Hash{}
	}
	n := int64(len(m.leaves))
	// StoredHashes reads only subtrees left of leaf n: the leaves it
	// makes them from are all appended already.
	hs, err := tlog.StoredHashes(n, data, m)
	if err != nil {
		t.Fatal(err)
	}
	m.leaves = append(m.leaves, data)
	for i, h := range hs {
		if x := tlog.StoredHashCount(n) + int64(i); Kept(x) {
			m.hashes[x] = h
		}
	}
}

// TestTreeInterop: roots, inclusion and consistency proofs of tlog's tree
// (the one the store keeps) check with transparency-dev/merkle, and
// merkle's proofs, fetched from tlog's stored hashes, check with tlog; a
// checkpoint we sign parses with transparency-dev/formats.
func TestTreeInterop(t *testing.T) {
	const n = 70
	hasher := rfc6962.DefaultHasher
	m := &memLog{}
	rf := compact.RangeFactory{Hash: hasher.HashChildren}
	cr := rf.NewEmptyRange(0)
	roots := []tlog.Hash{}
	for i := range n {
		var ts [8]byte
		binary.BigEndian.PutUint64(ts[:], uint64(i))
		data := append(ts[:], bytes.Repeat([]byte{byte(i)}, 32)...)
		m.append(t, data)
		if err := cr.Append(hasher.HashLeaf(data), nil); err != nil {
			t.Fatal(err)
		}
		root, err := tlog.TreeHash(int64(i+1), m)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := cr.GetRootHash(nil)
		if !bytes.Equal(root[:], want) {
			t.Fatalf("size %d: tlog root %x, merkle root %x", i+1, root, want)
		}
		if LeafHash(data) != tlog.Hash(hasher.HashLeaf(data)) {
			t.Fatalf("leaf %d: leaf hashes differ", i)
		}
		roots = append(roots, root)
	}
	// fetch reads merkle's node ids from tlog's stored hashes.
	fetch := func(nodes proof.Nodes) [][]byte {
		var hs [][]byte
		for _, id := range nodes.IDs {
			h, err := m.ReadHashes([]int64{tlog.StoredHashIndex(int(id.Level), int64(id.Index))})
			if err != nil {
				t.Fatal(err)
			}
			hs = append(hs, h[0][:])
		}
		out, err := nodes.Rehash(hs, hasher.HashChildren)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	toTlog := func(hs [][]byte) []tlog.Hash {
		out := make([]tlog.Hash, len(hs))
		for i, h := range hs {
			copy(out[i][:], h)
		}
		return out
	}
	for size := int64(1); size <= n; size += 7 {
		root := roots[size-1]
		for i := int64(0); i < size; i += 3 {
			lh := LeafHash(m.leaves[i])
			p, err := tlog.ProveRecord(size, i, m)
			if err != nil {
				t.Fatal(err)
			}
			raw := make([][]byte, len(p))
			for j := range p {
				raw[j] = p[j][:]
			}
			if err := proof.VerifyInclusion(hasher, uint64(i), uint64(size), lh[:], raw, root[:]); err != nil {
				t.Fatalf("tlog inclusion proof of %d in %d, checked by merkle: %v", i, size, err)
			}
			nodes, err := proof.Inclusion(uint64(i), uint64(size))
			if err != nil {
				t.Fatal(err)
			}
			if err := tlog.CheckRecord(toTlog(fetch(nodes)), size, root, i, lh); err != nil {
				t.Fatalf("merkle inclusion proof of %d in %d, checked by tlog: %v", i, size, err)
			}
		}
		for from := int64(1); from < size; from += 5 {
			p, err := tlog.ProveTree(size, from, m)
			if err != nil {
				t.Fatal(err)
			}
			raw := make([][]byte, len(p))
			for j := range p {
				raw[j] = p[j][:]
			}
			if err := proof.VerifyConsistency(hasher, uint64(from), uint64(size), raw, roots[from-1][:], root[:]); err != nil {
				t.Fatalf("tlog consistency proof %d→%d, checked by merkle: %v", from, size, err)
			}
			nodes, err := proof.Consistency(uint64(from), uint64(size))
			if err != nil {
				t.Fatal(err)
			}
			if err := tlog.CheckTree(toTlog(fetch(nodes)), size, root, from, roots[from-1]); err != nil {
				t.Fatalf("merkle consistency proof %d→%d, checked by tlog: %v", from, size, err)
			}
		}
	}

	k := newKey(t)
	cp := Checkpoint{Origin: "auditops/team-a", Size: n, Root: roots[n-1], Time: sealTime}
	msg, err := k.Sign(cp)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(k.Verifier())
	if err != nil {
		t.Fatal(err)
	}
	parsed, ext, _, err := log.ParseCheckpoint(msg, cp.Origin, v)
	if err != nil {
		t.Fatalf("formats does not take our checkpoint: %v", err)
	}
	if parsed.Size != n || !bytes.Equal(parsed.Hash, roots[n-1][:]) || !strings.HasPrefix(string(ext), "time ") {
		t.Fatalf("formats read size %d, root %x, extensions %q", parsed.Size, parsed.Hash, ext)
	}
	// A checkpoint formats writes, with our extension lines, is ours.
	body := string(log.Checkpoint{Origin: cp.Origin, Size: n, Hash: roots[n-1][:]}.Marshal()) + string(ext)
	signed, err := note.Sign(&note.Note{Text: body}, k.signer)
	if err != nil {
		t.Fatal(err)
	}
	vs, _ := Verifiers(k.Verifier())
	if got, err := Open(signed, vs); err != nil || got != cp {
		t.Fatalf("formats' checkpoint opened as %+v, %v", got, err)
	}
}

func TestKeyring(t *testing.T) {
	kr, err := NewKeyring(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := kr.Rotate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseKeyring(rotated.Text())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{rotated.Current.Verifier(), kr.Current.Verifier()}
	if got := back.VerifierKeys(); !slices.Equal(got, want) {
		t.Fatalf("verifier keys %v, want %v", got, want)
	}
	for _, text := range []string{"", "\n\n", "PRIVATE+KEY+x+00000000+AAAA\n", rotated.Text() + "garbage\n"} {
		if _, err := ParseKeyring(text); err == nil {
			t.Errorf("parsed keyring %q", text)
		}
	}
}
