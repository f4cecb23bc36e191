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
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"
	_ "modernc.org/sqlite" // the intruder's own SQLite connection

	"github.com/auditops/auditops/internal/seal"
	"github.com/auditops/auditops/internal/store"
	"github.com/auditops/auditops/internal/store/postgres"
	"github.com/auditops/auditops/internal/store/sqlite"
	"github.com/auditops/auditops/internal/store/storetest"
)

var tokenKey = bytes.Repeat([]byte("k"), 32)

// backend is a real store and an intruder's SQL connection to it.
type backend struct {
	name string
	open func(t *testing.T, leaves store.LeafMaker) (Store, func(t *testing.T, sql string))
	// openLegacy opens a store that says it holds rows with fields in
	// the legacy columns (stored before the payload column), so that its
	// reads read them.
	openLegacy func(t *testing.T, leaves store.LeafMaker) (Store, func(t *testing.T, sql string))
}

var backends = []backend{
	{"sqlite", func(t *testing.T, leaves store.LeafMaker) (Store, func(*testing.T, string)) {
		return openSQLite(t, leaves, false)
	}, func(t *testing.T, leaves store.LeafMaker) (Store, func(*testing.T, string)) {
		return openSQLite(t, leaves, true)
	}},
	{"postgres", func(t *testing.T, leaves store.LeafMaker) (Store, func(*testing.T, string)) {
		return openPostgres(t, leaves, false)
	}, func(t *testing.T, leaves store.LeafMaker) (Store, func(*testing.T, string)) {
		return openPostgres(t, leaves, true)
	}},
}

func openSQLite(t *testing.T, leaves store.LeafMaker, legacy bool) (Store, func(*testing.T, string)) {
	path := filepath.Join(t.TempDir(), "audit.db")
	opts := store.Options{TokenKey: tokenKey, Leaves: leaves}
	s, err := sqlite.New(t.Context(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	exec := func(t *testing.T, q string) {
		t.Helper()
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if legacy {
		exec(t, "UPDATE legacy_columns SET in_use = 1")
		s.Close()
		if s, err = sqlite.New(t.Context(), path, opts); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { s.Close() })
	return s, exec
}

func openPostgres(t *testing.T, leaves store.LeafMaker, legacy bool) (Store, func(*testing.T, string)) {
	url := storetest.PostgresDatabase(t)
	opts := store.Options{TokenKey: tokenKey, Leaves: leaves}
	s, err := postgres.New(t.Context(), url, opts)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	exec := func(t *testing.T, q string) {
		t.Helper()
		if _, err := conn.Exec(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if legacy {
		exec(t, "UPDATE legacy_columns SET in_use = true")
		s.Close()
		if s, err = postgres.New(t.Context(), url, opts); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { s.Close() })
	return s, exec
}

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// newKeyring is a new seal keyring.
func newKeyring(tb testing.TB) *seal.Keyring {
	tb.Helper()
	kr, err := seal.NewKeyring(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return kr
}

func event(ns, id string, i int) store.Event {
	return store.Event{ID: id, Namespace: ns, Time: t0.Add(time.Duration(i) * time.Minute), User: "alice", API: "/pods",
		Method: "delete", Status: store.StatusSuccess, Category: store.CategoryData, Message: "delete pod " + id,
		Request: json.RawMessage(`{"kind":"DeleteOptions","n":12345678901234567890}`)}
}

// eventColumns are the columns an intruder copies a row with (besides
// namespace, ts, seq and id).
const eventColumns = "user_name, api, status, category, method, status_code, entity_kind_v1, entity_id_v1, device_id, " +
	"certificate_serial_number_v1, issuer_dn_v1, details_v1, archived_v1, message_v1, error_v1, principal_v1, request_v1, response_v1, " +
	"previous_state_v1, current_state_v1, payload, id_hash, content_hash"

// forgeEvent is an intruder's INSERT: a copy of a1, 7 ns later, as seq
// 9000 with the id "forged".
const forgeEvent = "INSERT INTO events (namespace, ts, seq, id, " + eventColumns + ") SELECT namespace, ts + 7, 9000, 'forged', " +
	eventColumns + " FROM events WHERE id = 'a1'"

// bytesLiteral is b as an SQL literal of st's dialect.
func bytesLiteral(st Store, b []byte) string {
	if _, pg := st.(*postgres.Store); pg {
		return fmt.Sprintf("'\\x%x'::bytea", b)
	}
	return fmt.Sprintf("X'%x'", b)
}

type found struct {
	ns, problem string
	seq         int64
	id          string
}

func (f found) String() string {
	return fmt.Sprintf("%s %s seq=%d id=%q", f.ns, f.problem, f.seq, f.id)
}

// TestTampering does to a real SQLite file and a real PostgreSQL database,
// with plain SQL as an intruder would, each thing spec/API.md 6 says
// verify finds, and checks it finds exactly that; retention's deletions
// and an untouched store are not findings.
func TestTampering(t *testing.T) {
	tests := []struct {
		name string
		// tamper changes the sealed store; trusted, when set, is kept first.
		tamper  func(t *testing.T, st Store, exec func(*testing.T, string), seqs map[string]int64)
		trusted bool
		want    func(seqs map[string]int64) []found
		// unsealedAfter is how long after the seal verify runs.
		unsealedAfter time.Duration
		// grown: team-a gets three more events, sealed in a second
		// checkpoint, before tamper.
		grown bool
		// sealRefused, when set, names the namespace whose log the sealer
		// then refuses to extend (seal.ErrLogAltered) rather than sign a
		// tree built on the change.
		sealRefused string
		// retention: BindRetention binds a cutoff of t0+3m after the first seal.
		retention bool
		// legacy: the store says it holds rows from before the payload
		// column, so its reads read the legacy columns too.
		legacy bool
		// sqliteSchema: tamper changed an index, which SQLite's schema
		// check names first (PostgreSQL's compares no index).
		sqliteSchema bool
	}{
		{name: "untouched", tamper: func(*testing.T, Store, func(*testing.T, string), map[string]int64) {}},
		{name: "row edited in place", tamper: func(t *testing.T, _ Store, exec func(*testing.T, string), _ map[string]int64) {
			exec(t, "UPDATE events SET api = '/nothing-happened' WHERE id = 'a2'")
		}, want: func(s map[string]int64) []found { return []found{{"team-a", Altered, s["a2"], "a2"}} }},
		{name: "message written into the column that held it before the payload", tamper: func(t *testing.T, st Store, exec func(*testing.T, string), seqs map[string]int64) {
			// Inert: the row's payload holds its text fields, and every
			// reader takes them from there.
			exec(t, "UPDATE events SET message_v1 = 'nothing happened' WHERE id = 'a2'")
			e, ok, err := eventBySeq(t, st, "team-a", seqs["a2"])
			if err != nil || !ok || e.Message != "delete pod a2" {
				t.Fatalf("a2 reads back with message %q (%v, %v); want the payload's", e.Message, ok, err)
			}
		}, legacy: true},
		{name: "payload edited into bytes that do not decode", tamper: func(t *testing.T, st Store, exec func(*testing.T, string), _ map[string]int64) {
			// A zstd frame cut short: verify names the row and goes on.
			exec(t, "UPDATE events SET payload = "+bytesLiteral(st, []byte{1, 0, 0x28, 0xb5, 0x2f, 0xfd})+" WHERE id = 'a5'")
		}, want: func(s map[string]int64) []found { return []found{{"team-a", Altered, s["a5"], "a5"}} }},
		{name: "payload that does not decode given to an event that had none", tamper: func(t *testing.T, st Store, exec func(*testing.T, string), _ map[string]int64) {
			// What is left to digest (no JSON values) matches the leaf;
			// the row is named all the same: no reader can read it.
			exec(t, "UPDATE events SET payload = "+bytesLiteral(st, []byte{2, 0, 0xff, 0xff, 0x03, 0})+" WHERE id = 'b2'")
		}, want: func(s map[string]int64) []found { return []found{{"team-b", Altered, s["b2"], "b2"}} }},
		{name: "payload dropped", tamper: func(t *testing.T, _ Store, exec func(*testing.T, string), _ map[string]int64) {
			// The row is then read from the columns that held JSON values
			// before the payload column, which are empty.
			exec(t, "UPDATE events SET payload = NULL WHERE id = 'a6'")
		}, want: func(s map[string]int64) []found { return []found{{"team-a", Altered, s["a6"], "a6"}} }},
		{name: "row's time moved", tamper: func(t *testing.T, _ Store, exec func(*testing.T, string), _ map[string]int64) {
			exec(t, "UPDATE events SET ts = ts + 1 WHERE id = 'a3'")
		}, want: func(s map[string]int64) []found { return []found{{"team-a", Altered, s["a3"], "a3"}} }},
		{name: "row and its sealed leaf edited to match", sealRefused: "team-a", tamper: func(t *testing.T, st Store, exec func(*testing.T, string), s map[string]int64) {
			// A digest needs no key: the intruder edits a2 and gives its
			// leaf the digest of what they wrote.
			rewriteA2AndItsLeaf(t, st, exec, s)
			// Its content key, left as it was, names the row too.
		}, want: func(s map[string]int64) []found {
			return []found{{"team-a", Inconsistent, 0, ""}, {"team-a", Altered, s["a2"], "a2"}}
		}},
		{name: "row, its sealed leaf and the checkpoint's root edited to match", sealRefused: "team-a", tamper: func(t *testing.T, st Store, exec func(*testing.T, string), s map[string]int64) {
			// The whole move: a2 and its leaf as above, then the root in
			// the newest note's text set to what the leaves now give. Only
			// the note's signature tells, and the sealer checks it.
			rewriteA2AndItsLeaf(t, st, exec, s)
			cps, err := st.Checkpoints(t.Context(), "team-a", 0, 1)
			if err != nil || len(cps) != 1 {
				t.Fatalf("checkpoints: %v, %v", cps, err)
			}
			cp, err := seal.Parse(strings.SplitN(string(cps[0].Note), "\n\n", 2)[0] + "\n")
			if err != nil {
				t.Fatal(err)
			}
			forged, err := tlog.TreeHash(cp.Size, tlog.HashReaderFunc(func(x []int64) ([]tlog.Hash, error) { return st.ReadHashes(t.Context(), "team-a", x) }))
			if err != nil {
				t.Fatal(err)
			}
			exec(t, fmt.Sprintf("UPDATE checkpoints SET note = replace(note, '%s', '%s') WHERE namespace = 'team-a'", cp.Root, forged))
		}, want: func(s map[string]int64) []found {
			return []found{{"team-a", BadSignature, 0, ""}, {"team-a", Altered, s["a2"], "a2"}}
		}},
		{name: "kept tree hash edited", sealRefused: "team-c", tamper: func(t *testing.T, st Store, exec func(*testing.T, string), _ map[string]int64) {
			// team-c's 20 leaves have one kept hash, over leaves 0-15:
			// proofs and the sealer read it instead of those leaves.
			exec(t, "UPDATE tree_hashes SET hash = "+bytesLiteral(st, make([]byte, 32))+" WHERE namespace = 'team-c'")
		}, want: func(map[string]int64) []found { return []found{{"team-c", Inconsistent, 0, ""}} }},
		{name: "kept tree hash deleted", sealRefused: "team-c", tamper: func(t *testing.T, _ Store, exec func(*testing.T, string), _ map[string]int64) {
			exec(t, "DELETE FROM tree_hashes WHERE namespace = 'team-c'")
		}, want: func(map[string]int64) []found { return []found{{"team-c", Inconsistent, 0, ""}} }},
		{name: "row deleted", tamper: func(t *testing.T, _ Store, exec func(*testing.T, string), _ map[string]int64) {
			exec(t, "DELETE FROM events WHERE id = 'a4'")
		}, want: func(s map[string]int64) []found { return []found{{"team-a", Missing, s["a4"], ""}} }},
		{name: "row inserted with SQL", tamper: func(t *testing.T, _ Store, exec func(*testing.T, string), _ map[string]int64) {
			exec(t, forgeEvent)
		}, want: func(map[string]int64) []found { return []found{{"team-a", Unsealed, 9000, "forged"}} }},
		{name: "forged leaf takes a sealed leaf's index", tamper: func(t *testing.T, st Store, exec func(*testing.T, string), _ map[string]int64) {
			// The intruder drops the index's uniqueness, stores an event
			// and a leaf whose digest is right (a digest needs no key)
			// at index 0, where a1's sealed leaf is.
			exec(t, "DROP INDEX leaves_by_index")
			exec(t, "CREATE INDEX leaves_by_index ON leaves (namespace, place) WHERE place IS NOT NULL")
			forgeWithLeaf(t, st, exec, "0", 0)
			// A copy of a1's row: a1's content key names it too.
		}, want: func(map[string]int64) []found {
			return []found{{"team-a", Inconsistent, 9000, ""}, {"team-a", Altered, 9000, "forged"}}
		}, sqliteSchema: true},
		{name: "checkpoint edited", tamper: func(t *testing.T, _ Store, exec func(*testing.T, string), _ map[string]int64) {
			exec(t, "UPDATE checkpoints SET note = replace(note, 'retention-cutoff', 'retention-cutof') WHERE namespace = 'team-b'")
		}, want: func(map[string]int64) []found { return []found{{"team-b", BadSignature, 0, ""}} }},
		{name: "checkpoint re-signed with another key", tamper: func(t *testing.T, st Store, exec func(*testing.T, string), _ map[string]int64) {
			cps, err := st.Checkpoints(t.Context(), "team-b", 0, 1)
			if err != nil || len(cps) != 1 {
				t.Fatalf("checkpoints of team-b: %v, %v", cps, err)
			}
			cp, err := seal.Parse(strings.SplitN(string(cps[0].Note), "\n\n", 2)[0] + "\n")
			if err != nil {
				t.Fatal(err)
			}
			msg, err := newKeyring(t).Current.Sign(cp)
			if err != nil {
				t.Fatal(err)
			}
			exec(t, "UPDATE checkpoints SET note = '"+strings.ReplaceAll(string(msg), "'", "''")+"' WHERE namespace = 'team-b'")
		}, want: func(map[string]int64) []found { return []found{{"team-b", BadSignature, 0, ""}} }},
		{name: "log truncated below a trusted checkpoint", trusted: true, sealRefused: "team-a", tamper: truncateTeamA,
			want: func(map[string]int64) []found { return []found{{"team-a", Rollback, 0, ""}} }},
		// The same with nothing kept outside the store: it agrees with
		// itself and verify has nothing to hold it to (the README says
		// so). The manager that sealed it still runs and remembers.
		{name: "log cut back to its older checkpoint, no witness but the running manager", grown: true, sealRefused: "team-a",
			tamper: func(t *testing.T, _ Store, exec func(*testing.T, string), _ map[string]int64) {
				exec(t, "DELETE FROM events WHERE namespace = 'team-a' AND id IN ('a7', 'a8', 'a9')")
				exec(t, "DELETE FROM leaves WHERE namespace = 'team-a' AND place >= 6")
				exec(t, "DELETE FROM checkpoints WHERE namespace = 'team-a' AND size > 6")
			}},
		{name: "leaf left unsealed", unsealedAfter: time.Hour, tamper: func(t *testing.T, st Store, _ func(*testing.T, string), s map[string]int64) {
			res, err := st.Insert(t.Context(), []store.Event{event("team-b", "b9", 30)})
			if err != nil || res.Inserted != 1 {
				t.Fatalf("insert: %+v, %v", res, err)
			}
			s["b9"] = lastSeq(t, st, "team-b")
		}, want: func(s map[string]int64) []found { return []found{{"team-b", Unsealed, s["b9"], "b9"}} }},
		{name: "retention is not tampering", retention: true, tamper: func(t *testing.T, st Store, _ func(*testing.T, string), _ map[string]int64) {
			if _, err := st.DeleteBefore(t.Context(), t0.Add(3*time.Minute)); err != nil {
				t.Fatal(err)
			}
		}},
		// The leaf's key (time, seq) is no signature's: what an intruder
		// can do with it.
		{name: "row deleted, its leaf keyed below every time", tamper: func(t *testing.T, _ Store, exec func(*testing.T, string), s map[string]int64) {
			exec(t, "DELETE FROM events WHERE id = 'a4'")
			exec(t, fmt.Sprintf("UPDATE leaves SET ts = %d, seq = %d WHERE namespace = 'team-a' AND seq = %d", math.MinInt64, math.MinInt64, s["a4"]))
		}, want: func(map[string]int64) []found { return []found{{"team-a", Altered, math.MinInt64, ""}} }},
		{name: "row edited, moved with its leaf to the largest time", tamper: func(t *testing.T, _ Store, exec func(*testing.T, string), s map[string]int64) {
			exec(t, fmt.Sprintf("UPDATE events SET ts = %d, api = '/nothing-happened' WHERE id = 'a4'", math.MaxInt64))
			exec(t, fmt.Sprintf("UPDATE leaves SET ts = %d WHERE namespace = 'team-a' AND seq = %d", math.MaxInt64, s["a4"]))
		}, want: func(s map[string]int64) []found { return []found{{"team-a", Altered, s["a4"], ""}} }},
		{name: "row deleted, its leaf keyed before the signed retention cutoff", retention: true, tamper: func(t *testing.T, _ Store, exec func(*testing.T, string), s map[string]int64) {
			exec(t, "DELETE FROM events WHERE id = 'a5'")
			exec(t, fmt.Sprintf("UPDATE leaves SET ts = 0 WHERE namespace = 'team-a' AND seq = %d", s["a5"]))
		}, want: func(s map[string]int64) []found { return []found{{"team-a", Altered, s["a5"], ""}} }},
		// The least key: no key is before it, so the leaves' walk reads it
		// on its own (found by an attacker review).
		{name: "row inserted with SQL at the least key, with a leaf there", tamper: func(t *testing.T, st Store, exec func(*testing.T, string), _ map[string]int64) {
			exec(t, fmt.Sprintf("INSERT INTO events (namespace, ts, seq, id, "+eventColumns+") SELECT namespace, %d, %d, 'forged', 'mallory', "+
				strings.TrimPrefix(eventColumns, "user_name, ")+" FROM events WHERE id = 'a1'", math.MinInt64, math.MinInt64))
			exec(t, fmt.Sprintf("INSERT INTO leaves (namespace, ts, seq, version, data, mac, place, created) VALUES ('team-a', %d, %d, 1, %s, %s, -1, %d)",
				math.MinInt64, math.MinInt64, bytesLiteral(st, make([]byte, 40)), bytesLiteral(st, make([]byte, 32)), time.Now().UnixNano()))
		}, want: func(map[string]int64) []found { return []found{{"team-a", Unsealed, math.MinInt64, "forged"}} }},
		// The keys ingest decides by are no leaf's: verify recomputes them.
		{name: "content key edited (a re-send would be stored again)", tamper: func(t *testing.T, st Store, exec func(*testing.T, string), _ map[string]int64) {
			exec(t, "UPDATE events SET content_hash = "+bytesLiteral(st, make([]byte, 32))+" WHERE id = 'a1'")
		}, want: func(s map[string]int64) []found { return []found{{"team-a", Altered, s["a1"], "a1"}} }},
		{name: "id key edited (a reuse would go uncounted)", tamper: func(t *testing.T, _ Store, exec func(*testing.T, string), _ map[string]int64) {
			exec(t, "UPDATE events SET id_hash = id_hash + 1 WHERE id = 'a2'")
		}, want: func(s map[string]int64) []found { return []found{{"team-a", Altered, s["a2"], "a2"}} }},
		// Checkpoint rows count as sealed in the store whether signed or
		// not: verify must neither trust nor size its memory by one.
		{name: "checkpoint row of a huge size, a leaf placed far out", tamper: func(t *testing.T, st Store, exec func(*testing.T, string), s map[string]int64) {
			exec(t, fmt.Sprintf("INSERT INTO checkpoints (namespace, size, root, sealed_at, retention_cut, note) VALUES ('team-a', %d, %s, 0, 0, 'forged')",
				int64(1)<<62, bytesLiteral(st, make([]byte, 32))))
			exec(t, fmt.Sprintf("UPDATE leaves SET place = %d WHERE namespace = 'team-a' AND seq = %d", int64(1)<<57, s["a6"]))
		}, want: func(map[string]int64) []found {
			return []found{{"team-a", BadSignature, 0, ""}, {"team-a", Inconsistent, 0, ""}}
		}},
		{name: "row inserted with SQL, its leaf at a negative place", tamper: func(t *testing.T, st Store, exec func(*testing.T, string), _ map[string]int64) {
			forgeWithLeaf(t, st, exec, "-1", 0)
			// Nor does a report pinned to the log read it.
			size, err := st.LogSize(t.Context(), "team-a")
			if err != nil {
				t.Fatal(err)
			}
			page, err := st.Events(t.Context(), store.EventQuery{View: "test", Namespace: "team-a", Page: store.Page{Size: 100}, InLog: &size})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range page.Events {
				if e.ID == "forged" {
					t.Errorf("a read pinned to size %d reads the forged event", size)
				}
			}
		}, want: func(map[string]int64) []found { return []found{{"team-a", Unsealed, 9000, "forged"}} }},
		{name: "row inserted with SQL, its unplaced leaf written in the future", tamper: func(t *testing.T, st Store, exec func(*testing.T, string), _ map[string]int64) {
			forgeWithLeaf(t, st, exec, "NULL", math.MaxInt64)
		}, want: func(map[string]int64) []found { return []found{{"team-a", Unsealed, 9000, "forged"}} }},
		{name: "one JSON value spliced into the one before it", tamper: func(t *testing.T, st Store, exec func(*testing.T, string), _ map[string]int64) {
			// b1's principal takes its request's member too, its text
			// fields go back to the columns that held them before the
			// payload: the canonical encoding's bytes do not change.
			spliced := `{"user":"alice"},"request":` + string(event("team-b", "b1", 1).Request)
			exec(t, "UPDATE events SET payload = NULL, principal_v1 = "+bytesLiteral(st, []byte(spliced))+", request_v1 = NULL, message_v1 = 'delete pod b1' WHERE id = 'b1'")
		}, want: func(s map[string]int64) []found { return []found{{"team-b", Altered, s["b1"], "b1"}} }, legacy: true},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					kr := newKeyring(t)
					open := b.open
					if tc.legacy {
						open = b.openLegacy
					}
					st, exec := open(t, seal.LeafMaker{Keys: kr})
					var batch []store.Event
					for i := 1; i <= 6; i++ {
						batch = append(batch, event("team-a", fmt.Sprintf("a%d", i), i))
					}
					b1 := event("team-b", "b1", 1)
					b1.Principal = json.RawMessage(`{"user":"alice"}`)
					b2 := event("team-b", "b2", 2)
					b2.Request, b2.Message = nil, "" // no JSON values, no text: no payload
					batch = append(batch, b1, b2)
					for i := 1; i <= 20; i++ { // past the lowest kept tree level
						batch = append(batch, event("team-c", fmt.Sprintf("c%d", i), i))
					}
					if _, err := st.Insert(t.Context(), batch); err != nil {
						t.Fatal(err)
					}
					seqs := map[string]int64{}
					for _, ns := range []string{"team-a", "team-b"} {
						page, err := st.Events(t.Context(), store.EventQuery{View: "test", Namespace: ns, Page: store.Page{Size: 100}})
						if err != nil {
							t.Fatal(err)
						}
						for _, e := range page.Events {
							seqs[e.ID] = e.Seq
						}
					}
					now := time.Now()
					sealer := &seal.Sealer{Store: st, Keys: kr, Origin: seal.DefaultOriginPrefix, Now: func() time.Time { return now }}
					if _, err := sealer.SealAll(t.Context()); err != nil {
						t.Fatal(err)
					}
					if tc.retention {
						if unbound, err := sealer.BindRetention(t.Context(), t0.Add(3*time.Minute)); err != nil || len(unbound) > 0 {
							t.Fatalf("BindRetention: %v, %v", unbound, err)
						}
					}
					if tc.grown {
						var more []store.Event
						for i := 7; i <= 9; i++ {
							more = append(more, event("team-a", fmt.Sprintf("a%d", i), i))
						}
						if _, err := st.Insert(t.Context(), more); err != nil {
							t.Fatal(err)
						}
						if _, err := sealer.SealAll(t.Context()); err != nil {
							t.Fatal(err)
						}
					}
					var trusted [][]byte
					if tc.trusted {
						cps, err := st.Checkpoints(t.Context(), "team-a", 0, 1)
						if err != nil || len(cps) != 1 {
							t.Fatalf("checkpoints: %v, %v", cps, err)
						}
						trusted = append(trusted, cps[0].Note)
					}
					tc.tamper(t, st, exec, seqs)
					vs, _ := seal.Verifiers(kr.VerifierKeys()...)
					var got []found
					sum, err := Verify(t.Context(), st, Options{Verifiers: vs, Trusted: trusted, SealInterval: time.Minute,
						Now: func() time.Time { return now.Add(tc.unsealedAfter) }}, func(f Finding) {
						var seq int64
						if f.Seq != nil {
							seq = *f.Seq
						}
						got = append(got, found{f.Namespace, f.Problem, seq, f.ID})
						t.Logf("finding: %+v", f)
					})
					if err != nil {
						t.Fatal(err)
					}
					var want []found
					if tc.sqliteSchema && b.name == "sqlite" {
						want = append(want, found{"", Altered, 0, ""})
					}
					if tc.want != nil {
						want = append(want, tc.want(seqs)...)
					}
					if !slices.Equal(got, want) {
						t.Fatalf("findings %v, want %v", got, want)
					}
					if sum.Problems() != len(want) || sum.Namespaces != 3 {
						t.Fatalf("summary %+v", sum)
					}
					ns := tc.sealRefused
					if ns == "" {
						return
					}
					size, err := st.LogSize(t.Context(), ns)
					if err != nil {
						t.Fatal(err)
					}
					if _, err := st.Insert(t.Context(), []store.Event{event(ns, "later", 40)}); err != nil {
						t.Fatal(err)
					}
					_, err = sealer.Seal(t.Context(), ns)
					after, _ := st.LogSize(t.Context(), ns)
					if !errors.Is(err, seal.ErrLogAltered) || after != size {
						t.Fatalf("sealing the altered log of %s: %v; size %d -> %d", ns, err, size, after)
					}
					if _, err := sealer.SealNow(t.Context(), ns); !errors.Is(err, seal.ErrLogAltered) {
						t.Fatalf("a report's seal of the altered log of %s: %v", ns, err)
					}
				})
			}
		})
	}
}

// forgeWithLeaf stores forgeEvent and a leaf of it with the right digest
// (a digest needs no key), a MAC of zeros, the place place (SQL) and
// written at created (Unix ns).
func forgeWithLeaf(t *testing.T, st Store, exec func(*testing.T, string), place string, created int64) {
	t.Helper()
	exec(t, forgeEvent)
	e, ok, err := eventBySeq(t, st, "team-a", 9000)
	if err != nil || !ok {
		t.Fatalf("the forged event: %v, %v", ok, err)
	}
	d, err := seal.Digest(&e, seal.EncodingV1)
	if err != nil {
		t.Fatal(err)
	}
	data := seal.LeafData(e.Time, d)
	exec(t, fmt.Sprintf("INSERT INTO leaves (namespace, ts, seq, version, data, mac, place, created) VALUES ('team-a', %d, 9000, 1, %s, %s, %s, %d)",
		e.Time.UnixNano(), bytesLiteral(st, data[:]), bytesLiteral(st, make([]byte, 32)), place, created))
}

// rewriteA2AndItsLeaf edits event a2 and gives its leaf the digest of what
// was written: a digest needs no key.
func rewriteA2AndItsLeaf(t *testing.T, st Store, exec func(*testing.T, string), seqs map[string]int64) {
	t.Helper()
	exec(t, "UPDATE events SET api = '/nothing-happened' WHERE id = 'a2'")
	e, ok, err := eventBySeq(t, st, "team-a", seqs["a2"])
	if err != nil || !ok {
		t.Fatalf("a2: %v, %v", ok, err)
	}
	d, err := seal.Digest(&e, seal.EncodingV1)
	if err != nil {
		t.Fatal(err)
	}
	data := seal.LeafData(e.Time, d)
	exec(t, fmt.Sprintf("UPDATE leaves SET data = %s WHERE namespace = 'team-a' AND seq = %d", bytesLiteral(st, data[:]), seqs["a2"]))
}

// truncateTeamA deletes everything of team-a past its third event, as if
// it never happened: events, leaves and checkpoints alike.
func truncateTeamA(t *testing.T, _ Store, exec func(*testing.T, string), _ map[string]int64) {
	exec(t, "DELETE FROM events WHERE namespace = 'team-a' AND id IN ('a4', 'a5', 'a6')")
	exec(t, "DELETE FROM leaves WHERE namespace = 'team-a' AND place >= 3")
	exec(t, "DELETE FROM checkpoints WHERE namespace = 'team-a'")
}

// eventBySeq reads the event of ns stored as seq.
func eventBySeq(t *testing.T, st Store, ns string, seq int64) (store.Event, bool, error) {
	t.Helper()
	page, err := st.Events(t.Context(), store.EventQuery{View: "test", Namespace: ns, Page: store.Page{Size: 100}})
	if err != nil {
		return store.Event{}, false, err
	}
	for _, e := range page.Events {
		if e.Seq == seq {
			return e, true, nil
		}
	}
	return store.Event{}, false, nil
}

func lastSeq(t *testing.T, st Store, ns string) int64 {
	t.Helper()
	page, err := st.Events(t.Context(), store.EventQuery{View: "test", Namespace: ns, Page: store.Page{Size: 100}})
	if err != nil {
		t.Fatal(err)
	}
	var last int64
	for _, e := range page.Events {
		last = max(last, e.Seq)
	}
	return last
}

// racing is a store on which the manager works while verify reads: hooks
// run once, right after verify's first read of the checkpoints and of the
// events.
type racing struct {
	Store
	afterCheckpoints, afterEvents func()
}

func (r *racing) Checkpoints(ctx context.Context, ns string, before int64, limit int) ([]seal.StoredCheckpoint, error) {
	out, err := r.Store.Checkpoints(ctx, ns, before, limit)
	if f := r.afterCheckpoints; f != nil {
		r.afterCheckpoints = nil
		f()
	}
	return out, err
}

func (r *racing) Events(ctx context.Context, q store.EventQuery) (store.EventPage, error) {
	out, err := r.Store.Events(ctx, q)
	if f := r.afterEvents; f != nil {
		r.afterEvents = nil
		f()
	}
	return out, err
}

// TestVerifyBesideTheManager: verify runs while the manager ingests and
// seals (spec/API.md 6: also while the manager runs). Events stored and
// leaves sealed between verify's reads are not findings.
func TestVerifyBesideTheManager(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			kr := newKeyring(t)
			st, _ := b.open(t, seal.LeafMaker{Keys: kr})
			sealer := &seal.Sealer{Store: st, Keys: kr, Origin: seal.DefaultOriginPrefix, Now: time.Now}
			n := 0
			ingest := func(k int, sealToo bool) {
				var batch []store.Event
				for range k {
					n++
					batch = append(batch, event("team-a", fmt.Sprintf("a%d", n), n))
				}
				if _, err := st.Insert(t.Context(), batch); err != nil {
					t.Error(err) // may run on verify's prefetching goroutine: no FailNow there
					return
				}
				if sealToo {
					if _, err := sealer.Seal(t.Context(), "team-a"); err != nil {
						t.Error(err)
					}
				}
			}
			ingest(5, true)
			r := &racing{Store: st,
				// Sealed after verify read the checkpoints.
				afterCheckpoints: func() { ingest(3, true) },
				// Stored (one batch sealed, one pending) after verify
				// read the events, before it reads their leaves.
				afterEvents: func() { ingest(2, true); ingest(2, false) },
			}
			vs, err := seal.Verifiers(kr.VerifierKeys()...)
			if err != nil {
				t.Fatal(err)
			}
			var got []Finding
			sum, err := Verify(t.Context(), r, Options{Verifiers: vs, SealInterval: time.Hour}, func(f Finding) { got = append(got, f) })
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 0 || sum.Events != 8 {
				t.Errorf("verify beside the manager: %d events, findings %+v; want the 8 stored before it read them, and no finding", sum.Events, got)
			}
			if r.afterCheckpoints != nil || r.afterEvents != nil {
				t.Error("a hook did not run")
			}
		})
	}
}

// TestRootsOutOfOrder seals a log whose index order is not its time order
// (a backfill of older events sealed after newer ones), and checks that
// verify's roots, fed from the walk by time, find exactly what reading the
// whole log by index finds: nothing on an untouched store, the same
// findings after a leaf is edited or deleted.
func TestRootsOutOfOrder(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, exec func(*testing.T, string))
		want   []string // problems, sorted
	}{
		{"untouched", func(*testing.T, func(*testing.T, string)) {}, nil},
		// Leaf 12 is a backfilled event's (the second batch): every
		// checkpoint from size 13 on has another root now, and the kept
		// tree hash over leaves 0-15 is not what they give.
		{"leaf edited", func(t *testing.T, exec func(*testing.T, string)) {
			exec(t, "UPDATE leaves SET mac = mac, data = (SELECT data FROM leaves WHERE namespace = 'team-a' AND place = 13) WHERE namespace = 'team-a' AND place = 12")
		}, []string{Altered, Inconsistent, Inconsistent, Inconsistent}},
		{"leaf deleted", func(t *testing.T, exec func(*testing.T, string)) {
			exec(t, "DELETE FROM leaves WHERE namespace = 'team-a' AND place = 12")
		}, []string{Inconsistent, Inconsistent, Missing, Unsealed}},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					kr := newKeyring(t)
					st, exec := b.open(t, seal.LeafMaker{Keys: kr})
					now := time.Now()
					sealer := &seal.Sealer{Store: st, Keys: kr, Origin: seal.DefaultOriginPrefix, Now: func() time.Time { return now }}
					// Minutes 10-19, then the older 0-9, then 20-29: index
					// order 10..19, 0..9, 20..29 in time.
					for _, from := range []int{10, 0, 20} {
						var batch []store.Event
						for i := from; i < from+10; i++ {
							batch = append(batch, event("team-a", fmt.Sprintf("a%d", i), i))
						}
						if _, err := st.Insert(t.Context(), batch); err != nil {
							t.Fatal(err)
						}
						if _, err := sealer.SealAll(t.Context()); err != nil {
							t.Fatal(err)
						}
					}
					tc.tamper(t, exec)
					vs, _ := seal.Verifiers(kr.VerifierKeys()...)
					// Held in order (the default), held one at a time, and
					// not held at all: everything out of order read again
					// by index.
					for _, ahead := range []int{0, 1, -1} {
						var got []string
						_, err := Verify(t.Context(), st, Options{Verifiers: vs, Now: func() time.Time { return now }, maxAhead: ahead},
							func(f Finding) { got = append(got, f.Problem) })
						if err != nil {
							t.Fatal(err)
						}
						slices.Sort(got)
						if !slices.Equal(got, tc.want) {
							t.Fatalf("maxAhead %d: findings %v, want %v", ahead, got, tc.want)
						}
					}
				})
			}
		})
	}
}

// TestLeafWrittenDuringTheWalk: a leaf ingest wrote after verify began (a
// large namespace, ingest going on) is not "written later than now": the
// clock is read when the leaf is judged, not when the walk began.
func TestLeafWrittenDuringTheWalk(t *testing.T) {
	kr := newKeyring(t)
	st, _ := backends[0].open(t, seal.LeafMaker{Keys: kr})
	if _, err := st.Insert(t.Context(), []store.Event{event("team-a", "a1", 1)}); err != nil {
		t.Fatal(err)
	}
	// The walk began three minutes before the leaf was written (the first
	// reading of the clock); it reads the clock again later.
	began := time.Now().Add(-3 * time.Minute)
	calls := 0
	now := func() time.Time {
		calls++
		if calls == 1 {
			return began
		}
		return time.Now()
	}
	vs, _ := seal.Verifiers(kr.VerifierKeys()...)
	var got []Finding
	if _, err := Verify(t.Context(), st, Options{Verifiers: vs, SealInterval: time.Minute, Now: now}, func(f Finding) { got = append(got, f) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Fatalf("findings %+v for a leaf written while verify ran", got)
	}
}

// TestNamespaceWithSlash: a namespace may hold a '/' (a tenant id of
// another system), as may --seal-origin: an untouched log of such a
// namespace has no finding, and a trusted checkpoint of it is its own.
func TestNamespaceWithSlash(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			kr := newKeyring(t)
			st, _ := b.open(t, seal.LeafMaker{Keys: kr})
			if _, err := st.Insert(t.Context(), []store.Event{event("x/team-a", "s1", 1), event("team-a", "a1", 1)}); err != nil {
				t.Fatal(err)
			}
			sealer := &seal.Sealer{Store: st, Keys: kr, Origin: "example.com/auditops", Now: time.Now}
			if _, err := sealer.SealAll(t.Context()); err != nil {
				t.Fatal(err)
			}
			var trusted [][]byte
			for _, ns := range []string{"x/team-a", "team-a"} {
				cps, err := st.Checkpoints(t.Context(), ns, 0, 1)
				if err != nil || len(cps) != 1 {
					t.Fatalf("checkpoints: %v, %v", cps, err)
				}
				trusted = append(trusted, cps[0].Note)
			}
			vs, _ := seal.Verifiers(kr.VerifierKeys()...)
			// Each namespace alone too: x/team-a's trusted checkpoint is not
			// team-a's (a false rollback before).
			for _, only := range [][]string{nil, {"team-a"}, {"x/team-a"}} {
				sum, err := Verify(t.Context(), st, Options{Verifiers: vs, Trusted: trusted, Namespaces: only, SealInterval: time.Minute}, func(f Finding) {
					t.Errorf("--namespace %v: finding: %+v", only, f)
				})
				if want := 2 - len(only); err != nil || sum.Sealed != want {
					t.Fatalf("--namespace %v: verify: %+v, %v", only, sum, err)
				}
			}
		})
	}
}

// TestRetentionOfAQuietLog: a log seals only when it grows, so a namespace
// that went quiet keeps, in its newest checkpoint, the retention cutoff of
// the day it last grew. The upkeep's BindRetention signs that checkpoint
// again with the cutoff before retention deletes: its expired events are
// then not findings (an attacker review found each named missing, which
// fires AuditopsRecordTampered), while one deleted by hand still is.
func TestRetentionOfAQuietLog(t *testing.T) {
	const retention = 90 * 24 * time.Hour
	cut := func(now time.Time) time.Time { return now.Add(-retention).UTC().Truncate(24 * time.Hour) } // main.retentionCut
	for _, b := range backends {
		for _, bind := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/bind=%v", b.name, bind), func(t *testing.T) {
				kr := newKeyring(t)
				st, exec := b.open(t, seal.LeafMaker{Keys: kr})
				var batch []store.Event
				for i := 1; i <= 6; i++ {
					batch = append(batch, event("team-a", fmt.Sprintf("a%d", i), i))
				}
				// team-b keeps growing, and a day inside retention is deleted by hand.
				batch = append(batch, event("team-b", "b1", 1))
				if _, err := st.Insert(t.Context(), batch); err != nil {
					t.Fatal(err)
				}
				now := t0.Add(time.Hour)
				sealer := &seal.Sealer{Store: st, Keys: kr, Origin: seal.DefaultOriginPrefix, Now: func() time.Time { return now }}
				if _, err := sealer.SealAll(t.Context()); err != nil {
					t.Fatal(err)
				}
				now = t0.Add(91 * 24 * time.Hour)
				later := event("team-b", "b2", 1)
				later.Time = now.Add(-time.Hour)
				if _, err := st.Insert(t.Context(), []store.Event{later}); err != nil {
					t.Fatal(err)
				}
				if _, err := sealer.SealAll(t.Context()); err != nil {
					t.Fatal(err)
				}
				if bind {
					if unbound, err := sealer.BindRetention(t.Context(), cut(now)); err != nil || len(unbound) > 0 {
						t.Fatal(unbound, err)
					}
					// Once bound, nothing more to sign.
					before, _ := st.Checkpoints(t.Context(), "team-a", 0, 1)
					if unbound, err := sealer.BindRetention(t.Context(), cut(now)); err != nil || len(unbound) > 0 {
						t.Fatal(unbound, err)
					}
					if again, _ := st.Checkpoints(t.Context(), "team-a", 0, 1); !bytes.Equal(again[0].Note, before[0].Note) {
						t.Fatal("a second BindRetention signed team-a's checkpoint again")
					}
				}
				if n, err := st.DeleteBefore(t.Context(), cut(now)); err != nil || n != 7 {
					t.Fatalf("DeleteBefore = %d, %v; want 7", n, err)
				}
				exec(t, "DELETE FROM events WHERE id = 'b2'")
				vs, _ := seal.Verifiers(kr.VerifierKeys()...)
				var got []found
				if _, err := Verify(t.Context(), st, Options{Verifiers: vs, SealInterval: time.Minute, Now: func() time.Time { return now }}, func(f Finding) {
					got = append(got, found{f.Namespace, f.Problem, 0, f.ID})
				}); err != nil {
					t.Fatal(err)
				}
				want := []found{{"team-b", Missing, 0, ""}}
				if !bind {
					// What retention left before BindRetention: each expired
					// event, of the quiet log and of the growing one (a
					// checkpoint carries only the cutoff bound last).
					want = append(slices.Repeat([]found{{"team-a", Missing, 0, ""}}, 6), found{"team-b", Missing, 0, ""}, found{"team-b", Missing, 0, ""})
				}
				if !slices.Equal(got, want) {
					t.Fatalf("findings %v, want %v", got, want)
				}
				// The log goes on from the checkpoint signed again.
				if _, err := st.Insert(t.Context(), []store.Event{func() store.Event { e := event("team-a", "a7", 1); e.Time = now; return e }()}); err != nil {
					t.Fatal(err)
				}
				if res, err := sealer.Seal(t.Context(), "team-a"); err != nil || res.Sealed != 1 {
					t.Fatalf("sealing team-a after: %+v, %v", res, err)
				}
			})
		}
	}
}

// BenchmarkVerifySQLite verifies a sealed SQLite store of 20,000 events in
// 4 namespaces, of make bench's mix of categories (27% access, 13% user:
// verify compares their counts per hour), make bench measures verify at
// scale; this is for A/B runs of verify's own code.
func BenchmarkVerifySQLite(b *testing.B) {
	kr := newKeyring(b)
	st, err := sqlite.New(b.Context(), filepath.Join(b.TempDir(), "audit.db"), store.Options{TokenKey: tokenKey, Leaves: seal.LeafMaker{Keys: kr}})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	const n = 20000
	for k := 0; k < n; k += 1000 {
		var batch []store.Event
		for i := k; i < k+1000; i++ {
			e := event(fmt.Sprintf("team-%d", i%4), fmt.Sprintf("e%d", i), i)
			e.Principal = json.RawMessage(`{"username":"alice","groups":["system:authenticated","devs"]}`)
			switch c := i * 37 % 100; {
			case c < 27:
				e.Category = store.CategoryAccess
			case c < 40:
				e.Category = store.CategoryUser
			}
			batch = append(batch, e)
		}
		if _, err := st.Insert(b.Context(), batch); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := (&seal.Sealer{Store: st, Keys: kr, Origin: seal.DefaultOriginPrefix, Now: time.Now}).SealAll(b.Context()); err != nil {
		b.Fatal(err)
	}
	vs, _ := seal.Verifiers(kr.VerifierKeys()...)
	b.ResetTimer()
	for b.Loop() {
		sum, err := Verify(b.Context(), st, Options{Verifiers: vs}, func(f Finding) { b.Fatalf("finding: %+v", f) })
		if err != nil || sum.Sealed != n {
			b.Fatalf("%+v, %v", sum, err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
}

// TestBindRetentionSignsOnlyWhatItChecked: BindRetention signs a log's
// newest checkpoint again only as the sealer would build on it (an attacker
// review of its first version): not another log's note copied into the
// row, not a note no key signed; the root column, which nothing reads, is
// no reason to stop retention.
func TestBindRetentionSignsOnlyWhatItChecked(t *testing.T) {
	for _, tc := range []struct {
		name    string
		tamper  string
		unbound bool
	}{
		{"untouched", "", false},
		{"root column zeroed", "UPDATE checkpoints SET root = %s WHERE namespace = 'team-a'", false},
		{"another log's note copied in", "UPDATE checkpoints SET note = (SELECT note FROM checkpoints WHERE namespace = 'team-b') WHERE namespace = 'team-a'", true},
		{"note edited", "UPDATE checkpoints SET note = replace(note, 'retention-cutoff', 'retention-cutof') WHERE namespace = 'team-a'", true},
	} {
		for _, b := range backends {
			t.Run(b.name+"/"+tc.name, func(t *testing.T) {
				kr := newKeyring(t)
				st, exec := b.open(t, seal.LeafMaker{Keys: kr})
				if _, err := st.Insert(t.Context(), []store.Event{event("team-a", "a1", 1), event("team-b", "b1", 1)}); err != nil {
					t.Fatal(err)
				}
				cut := func(now time.Time) time.Time { return now.Add(-90 * 24 * time.Hour).UTC().Truncate(24 * time.Hour) }
				now := t0.Add(time.Hour)
				sealer := &seal.Sealer{Store: st, Keys: kr, Origin: seal.DefaultOriginPrefix, Now: func() time.Time { return now }}
				if _, err := sealer.SealAll(t.Context()); err != nil {
					t.Fatal(err)
				}
				if tc.tamper != "" {
					exec(t, strings.ReplaceAll(tc.tamper, "%s", bytesLiteral(st, make([]byte, 32))))
				}
				before, _ := st.Checkpoints(t.Context(), "team-a", 0, 1)
				now = t0.Add(91 * 24 * time.Hour)
				unbound, err := sealer.BindRetention(t.Context(), cut(now))
				if err != nil {
					t.Fatal(err)
				}
				after, _ := st.Checkpoints(t.Context(), "team-a", 0, 1)
				if tc.unbound {
					if !slices.Equal(unbound, []string{"team-a"}) || !bytes.Equal(after[0].Note, before[0].Note) {
						t.Fatalf("unbound %v; team-a's note signed again: %v", unbound, !bytes.Equal(after[0].Note, before[0].Note))
					}
					if h := sealer.SignedHeads()["team-a"]; h != nil && !bytes.Contains(h, []byte("auditops/team-a\n")) {
						t.Fatalf("the sealer's head of team-a is another log's:\n%s", h)
					}
					return
				}
				if len(unbound) > 0 || bytes.Equal(after[0].Note, before[0].Note) {
					t.Fatalf("unbound %v; signed again: %v", unbound, !bytes.Equal(after[0].Note, before[0].Note))
				}
				if _, err := st.DeleteBefore(t.Context(), cut(now)); err != nil {
					t.Fatal(err)
				}
				vs, _ := seal.Verifiers(kr.VerifierKeys()...)
				if _, err := Verify(t.Context(), st, Options{Verifiers: vs, SealInterval: time.Minute, Now: func() time.Time { return now }}, func(f Finding) {
					t.Errorf("finding: %+v", f)
				}); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}
