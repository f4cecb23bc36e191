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

package sealkey

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"golang.org/x/mod/sumdb/note"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/auditops/auditops/internal/seal"
)

// HeadsConfigMapName holds, in the admin namespace, the signed note of the
// newest checkpoint of each log the leader signed or checked, one key per
// namespace. It lives in etcd, outside the store: a leader that starts
// holds each log to it (seal.Sealer.Witness), so a log cut back or wiped
// behind the manager's back while no manager ran is refused, also where
// no report read it. An object holds at most 1 MiB, about 3,000 notes:
// past that the notes go on in HeadsConfigMapName-1, -2, … (HeadsShardName).
const HeadsConfigMapName = "auditops-seal-heads"

// HeadsShardName is the name of the i-th ConfigMap of the heads: the
// first is HeadsConfigMapName itself, so that the notes an older manager
// wrote are the first shard's.
func HeadsShardName(i int) string {
	if i == 0 {
		return HeadsConfigMapName
	}
	return HeadsConfigMapName + "-" + strconv.Itoa(i)
}

const (
	// headsFillBytes is how full a shard may be for a namespace it does
	// not hold yet to go into it; the notes it holds may grow past that
	// (a larger size has more digits).
	headsFillBytes = 900 << 10
	// headsMaxBytes bounds a shard, below the API server's 1 MiB for an
	// object: past it, the namespaces that sort last move to another.
	headsMaxBytes = 960 << 10
	// maxNoteBytes bounds a note (one is a few hundred bytes): a longer
	// value in a shard is not one, and Save drops it.
	maxNoteBytes = 16 << 10
)

// Heads reads and writes the heads ConfigMaps.
type Heads struct {
	Reader    client.Reader // uncached: the manager's API reader
	Writer    client.Writer
	Namespace string
	// Verifiers, when set, keeps a log's note from going back: Save
	// leaves a note these verify in place of one of a smaller tree of the
	// same log (a leader stopping as the next starts saves its older
	// heads last; the next, whose heads did not change, would not save
	// them again).
	Verifiers note.Verifiers

	// fill and max replace headsFillBytes and headsMaxBytes (tests).
	fill, max int
}

// shards reads the heads ConfigMaps in order, up to the first that does
// not exist. Shards are never deleted, so none is left behind that gap.
func (h Heads) shards(ctx context.Context) ([]*corev1.ConfigMap, error) {
	var out []*corev1.ConfigMap
	for i := 0; ; i++ {
		cm := &corev1.ConfigMap{}
		err := h.Reader.Get(ctx, client.ObjectKey{Namespace: h.Namespace, Name: HeadsShardName(i)}, cm)
		if apierrors.IsNotFound(err) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading ConfigMap %s/%s: %w", h.Namespace, HeadsShardName(i), err)
		}
		out = append(out, cm)
	}
}

// Save writes notes (namespace to signed note) into the heads ConfigMaps,
// writing none that holds them already; namespaces it has no note of keep
// theirs (another leader may have published logs this one never sealed
// since it started). A namespace's note stays in the shard that holds it;
// a new namespace goes into the first shard with room, or a new one. No
// namespace is left out, however many there are: a bound would let
// whoever can name namespaces push the one they want unwitnessed out.
//
// Two saves may run at once (a leader stopping as the next starts). Each
// write is conditional on the object read, and a namespace moves only to
// a later shard, so a namespace found in two shards (a move under way, or
// stopped) stays in the last: every save that sees it there agrees on which
// copy to drop, and no namespace is ever left in none.
func (h Heads) Save(ctx context.Context, notes map[string][]byte) error {
	fill, limit := h.fill, h.max
	if fill == 0 {
		fill, limit = headsFillBytes, headsMaxBytes
	}
	cms, err := h.shards(ctx)
	if err != nil {
		return err
	}
	data := make([]map[string]string, len(cms))
	size := make([]int, len(cms))
	where := map[string][]int{}
	for i, cm := range cms {
		data[i] = map[string]string{}
		for ns, n := range cm.Data {
			if len(n) > maxNoteBytes {
				// Not a note (one is a few hundred bytes): written by
				// someone else, and would keep a shard full.
				continue
			}
			data[i][ns] = n
			size[i] += len(ns) + len(n)
			where[ns] = append(where[ns], i)
		}
	}
	// keep says whether the note old stays in place of n: a note of a
	// larger tree of the same log, both signed by a key of h.Verifiers.
	keep := func(old, n string) bool {
		if h.Verifiers == nil || old == n {
			return false
		}
		was, err := seal.Open([]byte(old), h.Verifiers)
		if err != nil {
			return false
		}
		now, err := seal.Open([]byte(n), h.Verifiers)
		return err == nil && was.Origin == now.Origin && was.Size > now.Size
	}
	put := func(i int, ns, n string) {
		if old, ok := data[i][ns]; ok {
			size[i] -= len(ns) + len(old)
		}
		data[i][ns] = n
		size[i] += len(ns) + len(n)
	}
	// room returns the first shard after from that ns and n fit into
	// below fill, adding one when none does.
	room := func(ns, n string, from int) int {
		for i := from + 1; i < len(data); i++ {
			if size[i]+len(ns)+len(n) <= fill {
				return i
			}
		}
		data = append(data, map[string]string{})
		size = append(size, 0)
		return len(data) - 1
	}
	for _, ns := range slices.Sorted(maps.Keys(notes)) {
		n := string(notes[ns])
		if len(n) > maxNoteBytes {
			return fmt.Errorf("the note of %s is %d bytes, more than a note's %d", ns, len(n), maxNoteBytes)
		}
		if in, ok := where[ns]; ok {
			for _, i := range in {
				if !keep(data[i][ns], n) {
					put(i, ns, n)
				}
			}
			continue
		}
		put(room(ns, n, -1), ns, n)
	}
	// A namespace in two shards (a move under way or stopped) stays in the
	// last, where moves go, with the newest of its notes (a save that read
	// only the first shard may have written a newer one there).
	for ns, in := range where {
		last := in[len(in)-1]
		for _, i := range in[:len(in)-1] {
			if keep(data[i][ns], data[last][ns]) {
				put(last, ns, data[i][ns])
			}
			size[i] -= len(ns) + len(data[i][ns])
			delete(data[i], ns)
		}
	}
	for i := range data {
		for size[i] > limit {
			ns := slices.Max(slices.Collect(maps.Keys(data[i])))
			n := data[i][ns]
			put(room(ns, n, i), ns, n)
			delete(data[i], ns)
			size[i] -= len(ns) + len(n)
		}
	}
	// Two rounds of writes, so that a namespace that moves is in one shard
	// or two at any moment, never in none: first every shard gets what it
	// gains and keeps what it gives up, then the shards that give some up
	// let it go.
	var dropping []int
	for i := range data {
		var before map[string]string
		if i < len(cms) {
			before = cms[i].Data
		}
		first := maps.Clone(data[i])
		for ns, n := range before {
			if _, ok := data[i][ns]; !ok {
				dropping = append(dropping, i)
				// What is no note goes at once: kept for round 2, a value
				// near the object's 1 MiB would make this write fail on
				// every save, and no heads would be published again.
				if len(n) <= maxNoteBytes {
					first[ns] = n
				}
			}
		}
		if i < len(cms) && maps.Equal(first, before) {
			continue
		}
		if cms, err = h.write(ctx, i, cms, first); err != nil {
			return err
		}
	}
	for _, i := range slices.Compact(dropping) {
		if cms, err = h.write(ctx, i, cms, data[i]); err != nil {
			return err
		}
	}
	return nil
}

// write stores data as shard i: an update of the object read (so a write
// in between makes it fail with a conflict) or, for the shard after the
// last, a new one. It returns read with shard i as written.
func (h Heads) write(ctx context.Context, i int, read []*corev1.ConfigMap, data map[string]string) ([]*corev1.ConfigMap, error) {
	name := HeadsShardName(i)
	if i < len(read) {
		cm := read[i].DeepCopy()
		cm.Data = data
		if err := h.Writer.Update(ctx, cm); err != nil {
			return read, fmt.Errorf("updating ConfigMap %s/%s: %w", h.Namespace, name, err)
		}
		read[i] = cm
		return read, nil
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: h.Namespace, Name: name,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "auditops"}},
		Data: data,
	}
	if err := h.Writer.Create(ctx, cm); err != nil {
		return read, fmt.Errorf("creating ConfigMap %s/%s: %w", h.Namespace, name, err)
	}
	return append(read, cm), nil
}

// Load returns the checkpoints the heads ConfigMaps hold whose notes a key
// of vs signed (none when there are none), and the namespaces whose notes
// do not verify: left out, since a note no key signed could be anyone's. A
// namespace found in two shards (a save stopped while moving it) gives
// both its notes.
func (h Heads) Load(ctx context.Context, vs note.Verifiers) (cps []seal.Checkpoint, bad []string, err error) {
	cms, err := h.shards(ctx)
	if err != nil {
		return nil, nil, err
	}
	notes := map[string][]string{}
	for _, cm := range cms {
		for ns, n := range cm.Data {
			if !slices.Contains(notes[ns], n) {
				notes[ns] = append(notes[ns], n)
			}
		}
	}
	for _, ns := range slices.Sorted(maps.Keys(notes)) {
		for _, n := range notes[ns] {
			cp, err := seal.Open([]byte(n), vs)
			if err != nil {
				if !slices.Contains(bad, ns) {
					bad = append(bad, ns)
				}
				continue
			}
			cps = append(cps, cp)
		}
	}
	return cps, bad, nil
}

// ResaveInterval is how often a Publisher saves heads that did not change.
const ResaveInterval = 10 * time.Minute

// Publisher saves a leader's heads after each seal round: when they
// changed since its last save, and at least every ResaveInterval all the
// same, so that heads someone deleted or put back (an older leader's save,
// a hand edit) are written again also for logs that stay quiet.
type Publisher struct {
	Heads Heads

	last  map[string][]byte
	saved time.Time
}

// Publish saves notes (Heads.Save) unless they are what it saved last,
// less than ResaveInterval before now.
func (p *Publisher) Publish(ctx context.Context, now time.Time, notes map[string][]byte) error {
	if p.last != nil && now.Sub(p.saved) < ResaveInterval && maps.EqualFunc(notes, p.last, bytes.Equal) {
		return nil
	}
	if err := p.Heads.Save(ctx, notes); err != nil {
		return err
	}
	p.last, p.saved = notes, now
	return nil
}
