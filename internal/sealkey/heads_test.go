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

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/auditops/auditops/internal/seal"
)

// TestHeadsOutliveTheLeader: the heads a leader saves are read back by the
// next as checkpoints, only where a key of the ring signed them; saving
// the same again writes nothing; namespaces the next leader has no note of
// keep the previous one's; what does not fit is counted.
func TestHeadsOutliveTheLeader(t *testing.T) {
	ctx := context.Background()
	kr, err := seal.NewKeyring(rand.Reader)
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
	h := Heads{Reader: k8sClient, Writer: k8sClient, Namespace: newNamespace(t, "heads-admin")}
	vs, err := seal.Verifiers(kr.VerifierKeys()...)
	if err != nil {
		t.Fatal(err)
	}
	if cps, bad, err := h.Load(ctx, vs); err != nil || len(cps) != 0 || len(bad) != 0 {
		t.Fatalf("before any save: %v, %v, %v", cps, bad, err)
	}
	if dropped, err := h.Save(ctx, map[string][]byte{"team-a": sign("team-a", 7), "team-b": sign("team-b", 3)}); err != nil || dropped != 0 {
		t.Fatalf("save: %d dropped, %v", dropped, err)
	}
	var cm corev1.ConfigMap
	key := client.ObjectKey{Namespace: h.Namespace, Name: HeadsConfigMapName}
	// The next leader sealed team-a further and has no note of team-b.
	if _, err := h.Save(ctx, map[string][]byte{"team-a": sign("team-a", 9)}); err != nil {
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
	if _, err := h.Save(ctx, map[string][]byte{"team-a": sign("team-a", 9)}); err != nil {
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

	// Past the size bound, the namespaces that sort last are left out.
	many := map[string][]byte{}
	pad := strings.Repeat("x", 4000)
	for i := range 300 {
		many[fmt.Sprintf("ns-%03d", i)] = []byte(pad)
	}
	big := Heads{Reader: k8sClient, Writer: k8sClient, Namespace: newNamespace(t, "heads-big")}
	dropped, err := big.Save(ctx, many)
	if err != nil || dropped == 0 || dropped > 100 {
		t.Fatalf("saving %d large notes: %d dropped, %v", len(many), dropped, err)
	}
	// The bound holds for what is kept and what comes on top of it: a
	// next leader's notes of other namespaces.
	more := map[string][]byte{}
	for i := range 100 {
		more[fmt.Sprintf("ma-%03d", i)] = []byte(pad)
	}
	if dropped, err := big.Save(ctx, more); err != nil || dropped == 0 {
		t.Fatalf("saving %d more large notes on top: %d dropped, %v", len(more), dropped, err)
	}
}
