//go:build sealfieldtest

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
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/auditops/auditops/internal/seal"
	"github.com/auditops/auditops/internal/store"
)

// TestFieldAddedLater (issue 20.1), in the test build that adds a field to
// events (Zone) and the encoding version 2 that covers it: leaves made
// with version 1 before the upgrade and with version 2 after it seal into
// one log, and verify checks each against its own version: no finding on
// either store. Version 2 covers the new field; version 1 ignores it.
func TestFieldAddedLater(t *testing.T) {
	kr, err := seal.NewKeyring(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	e := event("team-a", "z", 1)
	e.Seq = 7
	d1, _ := seal.Digest(&e, seal.EncodingV1)
	d2, err := seal.Digest(&e, 2)
	if err != nil {
		t.Fatal(err)
	}
	e.Zone = "eu-west"
	d1z, _ := seal.Digest(&e, seal.EncodingV1)
	d2z, _ := seal.Digest(&e, 2)
	if d1 != d1z || d2 == d2z || d1 == d2 {
		t.Fatalf("version 1 must ignore the new field and version 2 cover it: v1 %x/%x, v2 %x/%x", d1, d1z, d2, d2z)
	}

	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			// One store, as before and after the upgrade: the maker's
			// version is what the manager's build knows.
			maker := &versioned{LeafMaker: seal.LeafMaker{Keys: kr, Version: seal.EncodingV1}}
			st, _ := b.open(t, maker)
			sealer := &seal.Sealer{Store: st, Keys: kr, Origin: seal.DefaultOriginPrefix, Now: time.Now}
			insert := func(from, to int) {
				var batch []store.Event
				for i := from; i < to; i++ {
					batch = append(batch, event("team-a", fmt.Sprintf("a%d", i), i))
				}
				if _, err := st.Insert(t.Context(), batch); err != nil {
					t.Fatal(err)
				}
				if _, err := sealer.Seal(t.Context(), "team-a"); err != nil {
					t.Fatal(err)
				}
			}
			insert(0, 5)
			maker.LeafMaker.Version = 0 // the upgrade: the newest version, 2
			insert(5, 9)
			leaves, err := st.Leaves(t.Context(), "team-a", 0, 100)
			if err != nil || len(leaves) != 9 {
				t.Fatalf("%d leaves, %v", len(leaves), err)
			}
			for i, l := range leaves {
				if want := map[bool]int{true: 1, false: 2}[i < 5]; l.Version != want {
					t.Errorf("leaf %d has version %d, want %d", i, l.Version, want)
				}
			}
			vs, err := seal.Verifiers(kr.VerifierKeys()...)
			if err != nil {
				t.Fatal(err)
			}
			var got []Finding
			sum, err := Verify(t.Context(), st, Options{Verifiers: vs}, func(f Finding) { got = append(got, f) })
			if err != nil || len(got) != 0 || sum.Sealed != 9 {
				t.Errorf("verify after the upgrade: %+v, %v, findings %+v", sum, err, got)
			}
		})
	}
}

// versioned is a leaf maker whose version the test changes between batches.
type versioned struct{ seal.LeafMaker }

func (v *versioned) Prepare(e *store.Event) (store.PreparedLeaf, error) {
	return v.LeafMaker.Prepare(e)
}
