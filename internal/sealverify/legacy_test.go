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
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/auditops/auditops/internal/seal"
	"github.com/auditops/auditops/internal/store"
	"github.com/auditops/auditops/internal/store/sqlite"
	"github.com/auditops/auditops/internal/store/storetest"
)

// readByID reads ns's event id through st.
func readByID(t *testing.T, st Store, ns, id string) store.Event {
	t.Helper()
	p, err := st.Events(t.Context(), store.EventQuery{View: "test", Namespace: ns, Page: store.Page{Size: 100}})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range p.Events {
		if e.ID == id {
			return e
		}
	}
	t.Fatalf("%s not read", id)
	return store.Event{}
}

// TestLegacyFlagOneReadForAll: whatever legacy_columns said when each
// process opened the store, a running manager serves what a verify opened
// now checks, and verify names what it should. Each read takes the flag from
// its own snapshot, and a payload that holds the text fields decides the
// error too. Before (the review of this session's change), the flag was read
// at open: an intruder who planted error_v1 on a sealed row then cleared the
// flag had the manager serve the planted error, and one who moved a row's
// fields into the legacy columns then set the flag had the manager serve it
// without them, while a fresh verify named nothing in either case.
func TestLegacyFlagOneReadForAll(t *testing.T) {
	cases := []struct {
		name string
		// flagAtOpen is in_use when the manager opens the store.
		flagAtOpen int
		tamper     []string
		// want is a1 as every reader must read it, from a1 as stored.
		want func(before store.Event) store.Event
		// altered: verify names a1 altered.
		altered bool
	}{
		{name: "error planted beside a payload that holds the text, the flag cleared", flagAtOpen: 1,
			tamper: []string{"UPDATE events SET error_v1 = 'planted' WHERE id = 'a1'", "UPDATE legacy_columns SET in_use = 0"},
			want:   func(b store.Event) store.Event { return b }},
		{name: "error planted beside a payload that holds the text, the flag set", flagAtOpen: 0,
			tamper: []string{"UPDATE events SET error_v1 = 'planted' WHERE id = 'a1'", "UPDATE legacy_columns SET in_use = 1"},
			want:   func(b store.Event) store.Event { return b }},
		{name: "fields moved into the legacy columns, the flag set", flagAtOpen: 0,
			tamper: []string{"MOVE", "UPDATE legacy_columns SET in_use = 1"},
			want:   func(b store.Event) store.Event { return b }},
		{name: "fields moved into the legacy columns, the flag left clear", flagAtOpen: 0,
			tamper: []string{"MOVE"},
			want: func(b store.Event) store.Event {
				b.Principal, b.Request, b.Response, b.PreviousState, b.CurrentState = nil, nil, nil, nil, nil
				b.Message, b.EntityKind, b.EntityID, b.Details, b.Error = "", "", "", "", nil
				return b
			},
			altered: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kr := newKeyring(t)
			path := filepath.Join(t.TempDir(), "audit.db")
			opts := store.Options{TokenKey: tokenKey, Leaves: seal.LeafMaker{Keys: kr}}
			db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			exec := func(q string, args ...any) {
				t.Helper()
				if _, err := db.Exec(q, args...); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			first, err := sqlite.New(t.Context(), path, opts)
			if err != nil {
				t.Fatal(err)
			}
			exec("UPDATE legacy_columns SET in_use = ?", tc.flagAtOpen)
			first.Close()
			manager, err := sqlite.New(t.Context(), path, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer manager.Close()
			var batch []store.Event
			for i, id := range []string{"a0", "a1", "a2"} {
				batch = append(batch, event("team-a", id, i))
			}
			if _, err := manager.Insert(t.Context(), batch); err != nil {
				t.Fatal(err)
			}
			if _, err := (&seal.Sealer{Store: manager, Keys: kr, Origin: seal.DefaultOriginPrefix, Now: func() time.Time { return t0.Add(time.Hour) }}).SealAll(t.Context()); err != nil {
				t.Fatal(err)
			}
			before := readByID(t, manager, "team-a", "a1")
			for _, q := range tc.tamper {
				if q != "MOVE" {
					exec(q)
					continue
				}
				norm, err := store.NormalizeEvent(before)
				if err != nil {
					t.Fatal(err)
				}
				v := storetest.V1Values(&norm)
				exec(`UPDATE events SET entity_kind_v1 = ?, entity_id_v1 = ?, certificate_serial_number_v1 = ?, issuer_dn_v1 = ?,
					details_v1 = ?, archived_v1 = ?, message_v1 = ?, error_v1 = ?, principal_v1 = ?, request_v1 = ?, response_v1 = ?,
					previous_state_v1 = ?, current_state_v1 = ?, payload = NULL WHERE id = 'a1'`, append(v[9:11:11], v[12:]...)...)
			}
			verifier, err := sqlite.New(t.Context(), path, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer verifier.Close()
			want := tc.want(before)
			for name, st := range map[string]Store{"the running manager": manager, "a verify opened now": verifier} {
				checkSameEvent(t, name, readByID(t, st, "team-a", "a1"), want)
				vs, _ := seal.Verifiers(kr.VerifierKeys()...)
				var got []Finding
				if _, err := Verify(t.Context(), st, Options{Verifiers: vs, SealInterval: time.Minute, Now: func() time.Time { return t0.Add(2 * time.Hour) }}, func(f Finding) {
					got = append(got, f)
				}); err != nil {
					t.Fatal(err)
				}
				if tc.altered != (len(got) == 1 && got[0].Problem == Altered && got[0].ID == "a1") || (!tc.altered && len(got) != 0) {
					t.Errorf("%s's verify: %+v; want a1 altered: %v", name, got, tc.altered)
				}
			}
		})
	}
}

// checkSameEvent fails unless got reads as want in every field a reader
// serves.
func checkSameEvent(t *testing.T, who string, got, want store.Event) {
	t.Helper()
	gd, err := seal.Digest(&got, seal.EncodingV1)
	if err != nil {
		t.Fatal(err)
	}
	wd, err := seal.Digest(&want, seal.EncodingV1)
	if err != nil {
		t.Fatal(err)
	}
	if gd != wd {
		t.Errorf("%s reads a1 as %+v; want %+v", who, got, want)
	}
}
