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
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/auditops/auditops/internal/seal"
)

// testSigner returns a function signing a checkpoint of a namespace's log
// at a size with a new keyring's current key, and its verifiers.
func testSigner(t *testing.T) (func(ns string, size int64) []byte, note.Verifiers) {
	t.Helper()
	kr, err := seal.NewKeyring(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := seal.Verifiers(kr.VerifierKeys()...)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(ns string, size int64) []byte {
		n, err := kr.Current.Sign(seal.Checkpoint{Origin: seal.Origin(seal.DefaultOriginPrefix, ns), Size: size, Time: time.Unix(1700000000, 0).UTC()})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	return sign, vs
}

// TestHeadsOutliveTheLeader: the heads a leader saves are read back by the
// next as checkpoints, only where a key of the ring signed them; saving
// the same again writes nothing; namespaces the next leader has no note of
// keep the previous one's.
func TestHeadsOutliveTheLeader(t *testing.T) {
	ctx := context.Background()
	sign, vs := testSigner(t)
	h := Heads{Reader: k8sClient, Writer: k8sClient, Namespace: newNamespace(t, "heads-admin")}
	if cps, bad, err := h.Load(ctx, vs); err != nil || len(cps) != 0 || len(bad) != 0 {
		t.Fatalf("before any save: %v, %v, %v", cps, bad, err)
	}
	if err := h.Save(ctx, map[string][]byte{"team-a": sign("team-a", 7), "team-b": sign("team-b", 3)}); err != nil {
		t.Fatalf("save: %v", err)
	}
	var cm corev1.ConfigMap
	key := client.ObjectKey{Namespace: h.Namespace, Name: HeadsConfigMapName}
	// The next leader sealed team-a further and has no note of team-b.
	if err := h.Save(ctx, map[string][]byte{"team-a": sign("team-a", 9)}); err != nil {
		t.Fatal(err)
	}
	cps, bad, err := h.Load(ctx, vs)
	if err != nil || len(bad) != 0 {
		t.Fatalf("load: %v, %v", bad, err)
	}
	var got []string
	for _, cp := range cps {
		got = append(got, fmt.Sprintf("%s@%d", cp.Origin, cp.Size))
	}
	if want := []string{"auditops/team-a@9", "auditops/team-b@3"}; !slices.Equal(got, want) {
		t.Fatalf("loaded %v, want %v", got, want)
	}
	if err := k8sClient.Get(ctx, key, &cm); err != nil {
		t.Fatal(err)
	}
	version := cm.ResourceVersion
	if err := h.Save(ctx, map[string][]byte{"team-a": sign("team-a", 9)}); err != nil {
		t.Fatal(err)
	}
	if err := k8sClient.Get(ctx, key, &cm); err != nil || cm.ResourceVersion != version {
		t.Fatalf("saving the same heads again wrote the ConfigMap (%s -> %s, %v)", version, cm.ResourceVersion, err)
	}

	// A note no key of the ring signed is left out and named.
	other, err := seal.NewKeyring(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := other.Current.Sign(seal.Checkpoint{Origin: "auditops/team-b", Size: 1 << 40, Time: time.Unix(1700000000, 0).UTC()})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["team-b"] = string(forged)
	if err := k8sClient.Update(ctx, &cm); err != nil {
		t.Fatal(err)
	}
	if cps, bad, err := h.Load(ctx, vs); err != nil || len(cps) != 1 || cps[0].Size != 9 || !slices.Equal(bad, []string{"team-b"}) {
		t.Fatalf("with a forged note: %v, bad %v, %v", cps, bad, err)
	}

}

// TestHeadsLeaveNoNamespaceOut: past what one ConfigMap holds, the notes go
// on in further shards. Before, the namespaces that sorted last were left
// out, so whoever could create namespaces (or send events for them) could
// push the one they meant to wipe out of the witnesses with a few thousand
// named "a…".
func TestHeadsLeaveNoNamespaceOut(t *testing.T) {
	ctx := context.Background()
	sign, vs := testSigner(t)
	h := Heads{Reader: k8sClient, Writer: k8sClient, Namespace: newNamespace(t, "heads-many")}
	if err := h.Save(ctx, map[string][]byte{"zz-victim": sign("zz-victim", 42)}); err != nil {
		t.Fatal(err)
	}
	flood := map[string][]byte{}
	for i := range 5000 {
		ns := fmt.Sprintf("a-%04d", i)
		flood[ns] = sign(ns, int64(i+1))
	}
	if err := h.Save(ctx, flood); err != nil {
		t.Fatalf("saving %d notes: %v", len(flood), err)
	}
	cps, bad, err := h.Load(ctx, vs)
	if err != nil || len(bad) != 0 {
		t.Fatalf("load: bad %v, %v", bad, err)
	}
	sizes := map[string]int64{}
	for _, cp := range cps {
		sizes[cp.Origin] = cp.Size
	}
	if len(cps) != len(flood)+1 || sizes["auditops/zz-victim"] != 42 || sizes["auditops/a-4999"] != 5000 {
		t.Fatalf("loaded %d checkpoints (want %d), zz-victim at %d, a-4999 at %d", len(cps), len(flood)+1, sizes["auditops/zz-victim"], sizes["auditops/a-4999"])
	}
	shards, err := h.shards(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(shards) < 2 {
		t.Fatalf("%d notes in %d ConfigMap", len(cps), len(shards))
	}
	if shards[0].Data["zz-victim"] == "" {
		t.Fatal("zz-victim's note moved out of the shard that held it")
	}
}

// TestHeadsSaveMovesNamespacesSafely: notes that grow in place past a
// shard's bound move its last namespaces to another shard. A save stopped
// at any write leaves every namespace in some shard, with its old note or
// its new one, and so does the next save stopped at any write (it starts
// from namespaces left in two shards and moves more); a completed one
// leaves each in exactly one, within the bound.
func TestHeadsSaveMovesNamespacesSafely(t *testing.T) {
	note := func(ns string, n int) []byte { return []byte(ns + strings.Repeat("x", n)) }
	stage := func(n int, extra ...string) map[string][]byte {
		out := map[string][]byte{}
		for i := range 12 {
			ns := fmt.Sprintf("ns-%02d", i)
			out[ns] = note(ns, n)
		}
		for _, ns := range extra {
			out[ns] = note(ns, 100)
		}
		return out
	}
	for _, sizes := range [][2]int{{160, 220}, {130, 260}, {200, 300}, {110, 400}} {
		t.Run(fmt.Sprintf("notes of 100, %d, %d bytes", sizes[0], sizes[1]), func(t *testing.T) {
			saveStopped(t, stage(100), stage(sizes[0], "ns-new"), stage(sizes[1], "ns-new", "ns-newer"))
		})
	}
}

// saveStopped saves initial, then grown and grownMore with saves stopped
// after every number of writes, then grownMore completely, and checks
// where the namespaces are after each.
func saveStopped(t *testing.T, initial, grown, grownMore map[string][]byte) {
	ctx := context.Background()
	// inSomeShard checks that every namespace of want is in some shard,
	// and returns where each is.
	inSomeShard := func(h Heads, when string, want map[string][]string) map[string][]string {
		t.Helper()
		in := headsHolding(t, h)
		for ns := range want {
			if len(in[ns]) == 0 {
				t.Fatalf("%s: %s is in no shard (was at %v; now %v)", when, ns, want[ns], in)
			}
		}
		return in
	}
	moves := 0
	for first := 0; ; first++ {
		var firstErr error
		for second := 0; ; second++ {
			h := Heads{Reader: k8sClient, Writer: k8sClient, Namespace: newNamespace(t, "heads-moves"), fill: 1000, max: 1200}
			if err := h.Save(ctx, initial); err != nil {
				t.Fatal(err)
			}
			before := headsHolding(t, h)
			stopped := h
			stopped.Writer = &stopAfter{Writer: k8sClient, writes: first}
			firstErr = stopped.Save(ctx, grown)
			afterFirst := inSomeShard(h, fmt.Sprintf("a save stopped after %d writes", first), before)
			stopped.Writer = &stopAfter{Writer: k8sClient, writes: second}
			secondErr := stopped.Save(ctx, grownMore)
			inSomeShard(h, fmt.Sprintf("a save stopped after %d writes, then one after %d", first, second), afterFirst)
			if err := h.Save(ctx, grownMore); err != nil {
				t.Fatal(err)
			}
			in := headsHolding(t, h)
			for ns, n := range grownMore {
				if len(in[ns]) != 1 || !strings.HasSuffix(in[ns][0], fmt.Sprintf(":%d", len(n))) {
					t.Fatalf("a save after ones stopped at %d and %d writes: %s is at %v, want one shard with its %d-byte note", first, second, ns, in[ns], len(n))
				}
			}
			shards, err := h.shards(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for i, cm := range shards {
				size := 0
				for ns, n := range cm.Data {
					size += len(ns) + len(n)
				}
				if size > 1200 {
					t.Fatalf("shard %d holds %d bytes, bound 1200", i, size)
				}
			}
			for ns, was := range before {
				if strings.Split(was[0], ":")[0] != strings.Split(in[ns][0], ":")[0] {
					moves++
				}
			}
			if secondErr == nil {
				break
			}
			if second > 30 {
				t.Fatalf("save still failing after %d writes: %v", second, secondErr)
			}
		}
		if firstErr == nil {
			break
		}
		if first > 30 {
			t.Fatalf("save still failing after %d writes: %v", first, firstErr)
		}
	}
	if moves == 0 {
		t.Fatal("no namespace moved: the test shows nothing")
	}
}

// TestHeadsConcurrentSaves: two saves at once (a leader stopping as the
// next starts), the second run whole between any two writes of the first,
// leave every namespace in some shard; the next save leaves each in one.
// Before, a save that found a namespace in two shards kept the first copy
// while the save moving it dropped that one: the namespace mid-move was
// in none (the first case, seen: "b is in no shard").
func TestHeadsConcurrentSaves(t *testing.T) {
	ctx := context.Background()
	note := func(ns string, n int) []byte { return []byte(ns + strings.Repeat("x", n)) }
	notes := func(sizes map[string]int) map[string][]byte {
		out := map[string][]byte{}
		for ns, n := range sizes {
			out[ns] = note(ns, n)
		}
		return out
	}
	grow := func(n, m int, extra ...string) map[string][]byte {
		out := map[string][]byte{}
		for i := range 12 {
			ns := fmt.Sprintf("ns-%02d", i)
			out[ns] = note(ns, n)
			if i%3 == 0 {
				out[ns] = note(ns, m)
			}
		}
		for _, ns := range extra {
			out[ns] = note(ns, 100)
		}
		return out
	}
	cases := []struct {
		name                 string
		initial, first, next map[string][]byte
	}{
		// The first save moves b to a new shard; the next knows a only.
		{"b moves out while a is saved", notes(map[string]int{"a": 400, "b": 400}), notes(map[string]int{"a": 400, "b": 900}), notes(map[string]int{"a": 400})},
		{"both grow", grow(100, 100), grow(150, 250, "ns-new"), grow(160, 300, "ns-new", "ns-newer")},
		{"the next is older", grow(100, 100), grow(200, 300, "ns-new"), grow(100, 150)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for at := 0; ; at++ {
				h := Heads{Reader: k8sClient, Writer: k8sClient, Namespace: newNamespace(t, "heads-race"), fill: 1000, max: 1200}
				if err := h.Save(ctx, c.initial); err != nil {
					t.Fatal(err)
				}
				before := headsHolding(t, h)
				var nextErr error
				ran := false
				first := h
				first.Writer = &runAfter{Writer: k8sClient, writes: at, run: func() {
					ran = true
					nextErr = h.Save(ctx, c.next)
				}}
				firstErr := first.Save(ctx, c.first)
				in := headsHolding(t, h)
				for ns := range before {
					if len(in[ns]) == 0 {
						t.Fatalf("the next save run after the first's write %d (errors %v; %v): %s is in no shard (was at %v; now %v)", at, firstErr, nextErr, ns, before[ns], in)
					}
				}
				if err := h.Save(ctx, c.first); err != nil {
					t.Fatal(err)
				}
				in = headsHolding(t, h)
				for ns := range c.first {
					if len(in[ns]) != 1 {
						t.Fatalf("after the races at write %d, a save left %s at %v, want one shard", at, ns, in[ns])
					}
				}
				if !ran {
					if at == 0 {
						t.Fatal("the first save wrote nothing: the test shows nothing")
					}
					return
				}
			}
		})
	}
}

// TestHeadsNeverGoBack: with verifiers, a save leaves a log's note signed
// at a larger size in place of an older one (a stopping leader's heads,
// saved after the next leader's); a note no verifier signed does not hold
// its place.
func TestHeadsNeverGoBack(t *testing.T) {
	ctx := context.Background()
	sign, vs := testSigner(t)
	h := Heads{Reader: k8sClient, Writer: k8sClient, Namespace: newNamespace(t, "heads-back"), Verifiers: vs}
	sizes := func() map[string]int64 {
		t.Helper()
		cps, bad, err := h.Load(ctx, vs)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int64{}
		for _, cp := range cps {
			out[cp.Origin] = cp.Size
		}
		for _, ns := range bad {
			out[ns] = -1
		}
		return out
	}
	if err := h.Save(ctx, map[string][]byte{"team-a": sign("team-a", 9), "team-b": sign("team-b", 3)}); err != nil {
		t.Fatal(err)
	}
	if err := h.Save(ctx, map[string][]byte{"team-a": sign("team-a", 7), "team-b": sign("team-b", 4)}); err != nil {
		t.Fatal(err)
	}
	if got := sizes(); got["auditops/team-a"] != 9 || got["auditops/team-b"] != 4 {
		t.Fatalf("after an older save of team-a and a newer of team-b: %v, want team-a at 9, team-b at 4", got)
	}
	other, _ := testSigner(t)
	var cm corev1.ConfigMap
	if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: h.Namespace, Name: HeadsConfigMapName}, &cm); err != nil {
		t.Fatal(err)
	}
	cm.Data["team-a"] = string(other("team-a", 1<<40))
	if err := k8sClient.Update(ctx, &cm); err != nil {
		t.Fatal(err)
	}
	if err := h.Save(ctx, map[string][]byte{"team-a": sign("team-a", 10)}); err != nil {
		t.Fatal(err)
	}
	if got := sizes(); got["auditops/team-a"] != 10 {
		t.Fatalf("a forged note of a larger tree held its place: %v", got)
	}
	// A namespace left in two shards, the newer note in the first (a save
	// that read only that shard wrote it): the copy kept, in the last,
	// takes the newer note.
	shard1 := &corev1.ConfigMap{}
	shard1.Namespace, shard1.Name = h.Namespace, HeadsShardName(1)
	shard1.Data = map[string]string{"team-a": string(sign("team-a", 6))}
	if err := k8sClient.Create(ctx, shard1); err != nil {
		t.Fatal(err)
	}
	if err := h.Save(ctx, map[string][]byte{"team-a": sign("team-a", 5)}); err != nil {
		t.Fatal(err)
	}
	if got, in := sizes(), headsHolding(t, h); got["auditops/team-a"] != 10 || len(in["team-a"]) != 1 || in["team-a"][0][0] != '1' {
		t.Fatalf("team-a in two shards, at 10 in the first and 6 in the last, saved at 5: %v, in shards %v; want one note, at 10, in shard 1", got, in["team-a"])
	}
	// Without verifiers (before), the older note won.
	h.Verifiers = nil
	if err := h.Save(ctx, map[string][]byte{"team-a": sign("team-a", 8)}); err != nil {
		t.Fatal(err)
	}
	if got := sizes(); got["auditops/team-a"] != 8 {
		t.Fatalf("without verifiers: %v, want team-a at 8", got)
	}
}

// TestPublisherResaves: a publisher saves heads that did not change again
// once ResaveInterval passed, so a deleted heads ConfigMap comes back for
// logs that stay quiet (before, only a log's next seal saved its note).
func TestPublisherResaves(t *testing.T) {
	ctx := context.Background()
	sign, vs := testSigner(t)
	p := &Publisher{Heads: Heads{Reader: k8sClient, Writer: k8sClient, Namespace: newNamespace(t, "heads-resave"), Verifiers: vs}}
	notes := map[string][]byte{"team-a": sign("team-a", 5)}
	start := time.Unix(1700000000, 0)
	loaded := func() int {
		t.Helper()
		cps, _, err := p.Heads.Load(ctx, vs)
		if err != nil {
			t.Fatal(err)
		}
		return len(cps)
	}
	if err := p.Publish(ctx, start, notes); err != nil || loaded() != 1 {
		t.Fatalf("first publish: %v, %d checkpoints", err, loaded())
	}
	cm := &corev1.ConfigMap{}
	cm.Namespace, cm.Name = p.Heads.Namespace, HeadsConfigMapName
	if err := k8sClient.Delete(ctx, cm); err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx, start.Add(ResaveInterval/2), notes); err != nil || loaded() != 0 {
		t.Fatalf("the same heads within the interval: %v, %d checkpoints, want none (nothing read or written)", err, loaded())
	}
	if err := p.Publish(ctx, start.Add(ResaveInterval), notes); err != nil || loaded() != 1 {
		t.Fatalf("the same heads after the interval: %v, %d checkpoints, want the note back", err, loaded())
	}
}

// TestHeadsDropWhatIsNoNote: a value too long to be a note (someone who
// can write ConfigMaps put it there) is dropped, not moved from shard to
// new shard on every save.
func TestHeadsDropWhatIsNoNote(t *testing.T) {
	ctx := context.Background()
	h := Heads{Reader: k8sClient, Writer: k8sClient, Namespace: newNamespace(t, "heads-junk")}
	if err := h.Save(ctx, map[string][]byte{"team-a": []byte("a note")}); err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: h.Namespace, Name: HeadsConfigMapName}, &cm); err != nil {
		t.Fatal(err)
	}
	cm.Data["zz-junk"] = strings.Repeat("j", 970<<10)
	if err := k8sClient.Update(ctx, &cm); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := h.Save(ctx, map[string][]byte{"team-a": fmt.Appendf(nil, "note %d", i), "team-b": []byte("b")}); err != nil {
			t.Fatalf("save %d: %v", i, err)
		}
	}
	in := headsHolding(t, h)
	if len(in) != 2 || len(in["team-a"]) != 1 || len(in["team-b"]) != 1 {
		t.Fatalf("after three saves the heads hold %v; want team-a and team-b, the junk gone", in)
	}
	if shards, err := h.shards(ctx); err != nil || len(shards) != 1 {
		t.Fatalf("%d shards, %v; want 1", len(shards), err)
	}

	// Junk just below the object's 1 MiB: a save that wrote it back
	// beside a new note failed, on every save (found in review).
	if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: h.Namespace, Name: HeadsConfigMapName}, &cm); err != nil {
		t.Fatal(err)
	}
	cm.Data["zz-junk"] = strings.Repeat("j", (1<<20)-1000)
	if err := k8sClient.Update(ctx, &cm); err != nil {
		t.Fatal(err)
	}
	if err := h.Save(ctx, map[string][]byte{"team-c": []byte(strings.Repeat("c", 2000))}); err != nil {
		t.Fatalf("a save beside junk near 1 MiB: %v", err)
	}
	if in := headsHolding(t, h); len(in) != 3 || len(in["team-c"]) != 1 || len(in["zz-junk"]) != 0 {
		t.Fatalf("after a save beside junk near 1 MiB the heads hold %v; want team-a, team-b, team-c, the junk gone", in)
	}
}

// headsHolding says, for each namespace, which shards hold it and how long
// its note is there ("shard:length").
func headsHolding(t *testing.T, h Heads) map[string][]string {
	t.Helper()
	shards, err := h.shards(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	in := map[string][]string{}
	for i, cm := range shards {
		for ns, n := range cm.Data {
			in[ns] = append(in[ns], fmt.Sprintf("%d:%d", i, len(n)))
		}
	}
	return in
}

// stopAfter fails every write after the first writes.
type stopAfter struct {
	client.Writer
	writes int
}

func (s *stopAfter) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	if s.writes == 0 {
		return fmt.Errorf("stopped")
	}
	s.writes--
	return s.Writer.Create(ctx, obj, opts...)
}

func (s *stopAfter) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	if s.writes == 0 {
		return fmt.Errorf("stopped")
	}
	s.writes--
	return s.Writer.Update(ctx, obj, opts...)
}

// runAfter runs run once, after the first writes writes.
type runAfter struct {
	client.Writer
	writes int
	run    func()
}

func (r *runAfter) before() {
	if r.writes == 0 && r.run != nil {
		run := r.run
		r.run = nil
		run()
	}
	r.writes--
}

func (r *runAfter) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	r.before()
	return r.Writer.Create(ctx, obj, opts...)
}

func (r *runAfter) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	r.before()
	return r.Writer.Update(ctx, obj, opts...)
}
