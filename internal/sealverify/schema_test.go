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
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/auditops/auditops/internal/seal"
	"github.com/auditops/auditops/internal/store"
	"github.com/auditops/auditops/internal/store/postgres"
	"github.com/auditops/auditops/internal/store/sqlite"
	"github.com/auditops/auditops/internal/store/storetest"
)

// The schema changes of an attacker review: an intruder with the
// manager's database credentials, not its seal key, makes mallory's
// events vanish as ingest writes them, or hides them from the manager's
// reads, without editing a row. Before the schema check, every trigger
// case stored and sealed the batch, the sealer closed the gap its place
// left, and verify found nothing.
const (
	pgDropMallory = `CREATE FUNCTION x_drop_mallory() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN IF NEW.user_name = 'mallory' THEN RETURN NULL; END IF; RETURN NEW; END $$;
CREATE TRIGGER x_drop_mallory BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION x_drop_mallory()`
	pgDropOrphanLeaf = `CREATE FUNCTION x_drop_orphan_leaf() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN IF NOT EXISTS (SELECT 1 FROM events WHERE namespace = NEW.namespace AND seq = NEW.seq) THEN RETURN NULL; END IF; RETURN NEW; END $$;
CREATE TRIGGER x_drop_orphan_leaf BEFORE INSERT ON leaves FOR EACH ROW EXECUTE FUNCTION x_drop_orphan_leaf()`
	// At COMMIT, after anything ingest could read back.
	pgDeferredDelete = `CREATE FUNCTION x_late() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN DELETE FROM leaves WHERE namespace = NEW.namespace AND seq = NEW.seq;
DELETE FROM events WHERE namespace = NEW.namespace AND seq = NEW.seq; RETURN NULL; END $$;
CREATE CONSTRAINT TRIGGER x_late AFTER INSERT ON events DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
WHEN (NEW.user_name = 'mallory') EXECUTE FUNCTION x_late()`
	// Ingest's last statement is the UPDATE of seq_counter.
	liteLastStatement = `CREATE TRIGGER x_late AFTER UPDATE ON seq_counter BEGIN
DELETE FROM leaves WHERE (namespace, seq) IN (SELECT namespace, seq FROM events WHERE user_name = 'mallory');
DELETE FROM events WHERE user_name = 'mallory'; END`
	liteDropMallory    = `CREATE TRIGGER x_drop_mallory BEFORE INSERT ON events WHEN NEW.user_name = 'mallory' BEGIN SELECT RAISE(IGNORE); END`
	liteDropOrphanLeaf = `CREATE TRIGGER x_drop_orphan_leaf BEFORE INSERT ON leaves WHEN NOT EXISTS (SELECT 1 FROM events WHERE namespace = NEW.namespace AND seq = NEW.seq) BEGIN SELECT RAISE(IGNORE); END`
)

// TestSchemaChanges: verify names each such change, store-wide (no
// namespace), as altered; an untouched store and one PostgreSQL keeps in
// day partitions (each with its own indexes) give none.
func TestSchemaChanges(t *testing.T) {
	for _, tc := range []struct {
		name     string
		pg, lite []string
		// want: a part of each schema finding's detail, in order.
		pgWant, liteWant []string
		partitions       bool
	}{
		{name: "untouched"},
		{name: "untouched, in day partitions", partitions: true},
		{name: "a trigger drops one user's events",
			pg: []string{pgDropMallory}, pgWant: []string{`trigger "x_drop_mallory" on events was added`},
			lite: []string{liteDropMallory}, liteWant: []string{`trigger "x_drop_mallory" on events was added`}},
		{name: "a trigger drops one user's events, another their leaves",
			pg: []string{pgDropMallory, pgDropOrphanLeaf}, pgWant: []string{`trigger "x_drop_mallory" on events was added`, `trigger "x_drop_orphan_leaf" on leaves was added`},
			lite: []string{liteDropMallory, liteDropOrphanLeaf}, liteWant: []string{`trigger "x_drop_mallory" on events was added`, `trigger "x_drop_orphan_leaf" on leaves was added`}},
		{name: "a trigger deletes an event and its leaf at the end of ingest",
			pg: []string{pgDeferredDelete}, pgWant: []string{`trigger "x_late" on events was added`},
			lite: []string{liteLastStatement}, liteWant: []string{`trigger "x_late" on seq_counter was added`}},
		{name: "in day partitions, a trigger on today's",
			partitions: true, pg: []string{strings.ReplaceAll(pgDropMallory, "ON events", "ON events_p20261201")},
			pgWant: []string{`trigger "x_drop_mallory" on events_p20261201 was added`}},
		{name: "in day partitions, tomorrow's made in another schema, with a trigger",
			partitions: true, pg: []string{"CREATE SCHEMA x_elsewhere",
				"CREATE TABLE x_elsewhere.events_p20261202 PARTITION OF events FOR VALUES FROM (1764633600000000000) TO (1764720000000000000)",
				strings.ReplaceAll(pgDropMallory, "ON events", "ON x_elsewhere.events_p20261202")},
			pgWant: []string{`trigger "x_drop_mallory" on x_elsewhere.events_p20261202 was added`}},
		{name: "a trigger named as SQLite's statistics tables",
			lite: []string{`PRAGMA writable_schema = ON; CREATE TRIGGER sqlite_stat9 AFTER INSERT ON leaves
WHEN EXISTS (SELECT 1 FROM events WHERE namespace = NEW.namespace AND seq = NEW.seq AND user_name = 'mallory')
BEGIN DELETE FROM events WHERE namespace = NEW.namespace AND seq = NEW.seq; DELETE FROM leaves WHERE namespace = NEW.namespace AND seq = NEW.seq; END; PRAGMA writable_schema = OFF`},
			liteWant: []string{`trigger "sqlite_stat9" on leaves was added`}},
		{name: "one of ours disabled",
			pg: []string{"ALTER TABLE events DISABLE TRIGGER events_count_hours"}, pgWant: []string{`trigger "events_count_hours" on events was disabled`},
			lite: []string{"DROP TRIGGER events_category_hours_delete"}, liteWant: []string{`trigger "events_category_hours_delete" on events was dropped`}},
		{name: "one of ours made again otherwise",
			pg:       []string{"CREATE OR REPLACE FUNCTION auditops_count_hours() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$"},
			pgWant:   []string{`the body of trigger function "auditops_count_hours" was changed`},
			lite:     []string{"DROP TRIGGER events_category_hours_delete", "CREATE TRIGGER events_category_hours_delete AFTER DELETE ON events BEGIN SELECT 1; END"},
			liteWant: []string{`trigger "events_category_hours_delete" on events was changed`}},
		{name: "row security hides one user from the manager's reads",
			pg: []string{"ALTER TABLE events ENABLE ROW LEVEL SECURITY", "ALTER TABLE events FORCE ROW LEVEL SECURITY",
				"CREATE POLICY x_hide ON events USING (user_name <> 'mallory' OR current_query() LIKE '%content_hash%')"},
			pgWant: []string{"row-level security was turned on for table events", `row security policy "x_hide" on events was added`}},
		{name: "a rule",
			pg: []string{"CREATE RULE x_nothing AS ON INSERT TO leaves WHERE NEW.seq < 0 DO INSTEAD NOTHING"}, pgWant: []string{`rule "x_nothing" on leaves was added`}},
		{name: "a view where a table was",
			pg:     []string{"ALTER TABLE checkpoints RENAME TO x_checkpoints", "CREATE VIEW checkpoints AS SELECT * FROM x_checkpoints"},
			pgWant: []string{"table checkpoints was dropped or replaced"},
			lite:   []string{"ALTER TABLE checkpoints RENAME TO x_checkpoints", "CREATE VIEW checkpoints AS SELECT * FROM x_checkpoints"},
			liteWant: []string{`table "x_checkpoints" on x_checkpoints was added`, `view "checkpoints" on checkpoints was added`,
				`table "checkpoints" on checkpoints was dropped`}},
		// Not ours: a DBA's, an extension's (a third review: each stopped
		// ingest).
		{name: "a DBA's view, table with a trigger of its own, and citext column",
			pg: []string{"CREATE VIEW x_ingest_rate AS SELECT count(*) FROM events", "CREATE TABLE x_app (name text)",
				"CREATE FUNCTION x_touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
				"CREATE TRIGGER x_touch BEFORE INSERT ON x_app FOR EACH ROW EXECUTE FUNCTION x_touch()",
				"CREATE DOMAIN x_name AS text", "CREATE TABLE x_other_app (name x_name)"}},
		{name: "a unique index that refuses one user's events",
			lite:     []string{"CREATE UNIQUE INDEX x_one ON events ((user_name = 'mallory')) WHERE user_name = 'mallory'", "CREATE INDEX x_plain ON events (api)"},
			liteWant: []string{`index "x_one" on events was added`}},
		{name: "unlogged", pg: []string{"ALTER TABLE leaves SET UNLOGGED"}, pgWant: []string{"table leaves was made unlogged"}},
		{name: "an extended statistics object that runs the intruder's code",
			pg: []string{"CREATE SCHEMA x_evil", "CREATE FUNCTION x_evil.f(text) RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT $1'",
				"CREATE STATISTICS x_st ON (x_evil.f(user_name)), namespace FROM events"},
			pgWant: []string{"statistics object x_st uses function x_evil.f(text)"}},
		{name: "a case-insensitive collation merges users",
			pg: []string{`CREATE COLLATION x_ci (provider = icu, locale = 'und-u-ks-level1', deterministic = false)`,
				`ALTER TABLE events ALTER COLUMN user_name TYPE text COLLATE x_ci`},
			pgWant: []string{"index events_default", "index events_namespace_user uses collation x_ci", `column events.user_name was given collation "x_ci"`}},
		// A second review's: code of the intruder's run inside ingest's
		// own statements, no trigger needed.
		{name: "an index whose expression runs the intruder's code",
			pg: []string{"CREATE SCHEMA x_evil", "CREATE FUNCTION x_evil.hook(text, bigint) RETURNS bigint LANGUAGE sql IMMUTABLE AS 'SELECT $2'",
				"CREATE INDEX x_hook ON leaves ((x_evil.hook(namespace, seq)))"},
			pgWant: []string{"index x_hook uses function x_evil.hook(text,bigint)"}},
		{name: "a constraint and a default that run the intruder's code",
			pg: []string{"CREATE SCHEMA x_evil", "CREATE FUNCTION x_evil.ok() RETURNS boolean LANGUAGE sql AS 'SELECT true'",
				"CREATE FUNCTION x_evil.d() RETURNS bytea LANGUAGE sql AS 'SELECT NULL::bytea'",
				"ALTER TABLE leaves ADD CONSTRAINT x_check CHECK (x_evil.ok()) NOT VALID",
				"ALTER TABLE events ALTER COLUMN principal_v1 SET DEFAULT x_evil.d()"},
			pgWant: []string{"constraint x_check on table leaves uses function x_evil.ok()", "default value for column principal_v1 of table events uses function x_evil.d()",
				"default value for column principal_v1 of table events_default uses function x_evil.d()"}},
		{name: "our trigger function's search path set",
			pg:     []string{"ALTER FUNCTION auditops_count_hours() SET search_path = public"},
			pgWant: []string{`trigger function "auditops_count_hours" was given settings`}},
		{name: "a column's type with an equality of its own",
			pg:     []string{"CREATE DOMAIN x_name AS text", "ALTER TABLE events ALTER COLUMN user_name TYPE x_name"},
			pgWant: []string{"column events.user_name was given type x_name"}},
		{name: "a second store in another schema",
			pg:     []string{"CREATE SCHEMA x_other", "CREATE TABLE x_other.events (a int)", "CREATE TABLE x_other.leaves (a int)", "CREATE TABLE x_other.schema_migrations (a int)"},
			pgWant: []string{"schema x_other holds another store"}},
	} {
		for _, b := range backends {
			ddl, want := tc.lite, tc.liteWant
			if b.name == "postgres" {
				ddl, want = tc.pg, tc.pgWant
			}
			if len(ddl) == 0 && len(want) == 0 && (tc.name != "untouched" && !(tc.partitions && b.name == "postgres" && tc.pg == nil)) {
				continue // the other store's attack
			}
			t.Run(b.name+"/"+tc.name, func(t *testing.T) {
				kr := newKeyring(t)
				var st Store
				var exec func(*testing.T, string)
				if tc.partitions {
					st, exec = openPartitioned(t, seal.LeafMaker{Keys: kr})
				} else {
					st, exec = b.open(t, seal.LeafMaker{Keys: kr})
				}
				ctx := t.Context()
				if _, err := st.Insert(ctx, []store.Event{event("ns", "a1", 1), event("ns", "a2", 2)}); err != nil {
					t.Fatal(err)
				}
				sealer := &seal.Sealer{Store: st, Keys: kr, Origin: seal.DefaultOriginPrefix, Now: time.Now}
				if _, err := sealer.SealAll(ctx); err != nil {
					t.Fatal(err)
				}
				for _, q := range ddl {
					exec(t, q)
				}
				// Ingest may fail (row security refuses COPY); the leader
				// signs nothing more on a changed schema.
				m1 := event("ns", "m1", 3)
				m1.User = "mallory"
				_, _ = st.Insert(ctx, []store.Event{m1, event("ns", "a3", 4)})
				_, err := sealer.SealAll(ctx)
				_, nowErr := sealer.SealNow(ctx, "ns")
				_, bindErr := sealer.BindRetention(ctx, t0.Add(-time.Hour))
				for what, err := range map[string]error{"SealAll": err, "SealNow": nowErr, "BindRetention": bindErr} {
					if changed := len(want) > 0; changed != errors.Is(err, seal.ErrSchemaChanged) {
						t.Errorf("%s: %v; want ErrSchemaChanged: %v", what, err, changed)
					}
				}
				vs, _ := seal.Verifiers(kr.VerifierKeys()...)
				var got []string
				if _, err := Verify(ctx, st, Options{Verifiers: vs, SealInterval: time.Minute}, func(f Finding) {
					t.Logf("finding: %+v", f)
					got = append(got, fmt.Sprintf("%s|%s|%s", f.Namespace, f.Problem, f.Detail))
				}); err != nil {
					t.Fatal(err)
				}
				if len(got) != len(want) {
					t.Fatalf("%d findings, want %d: %q", len(got), len(want), want)
				}
				for i, w := range want {
					if !strings.HasPrefix(got[i], "|"+Altered+"|the store's schema: "+w) {
						t.Errorf("finding %d: %q; want the store's schema: %q…", i, got[i], w)
					}
				}
			})
		}
	}
}

// openPartitioned opens a PostgreSQL store that keeps events in day
// partitions, with today's and t0's made.
func openPartitioned(t *testing.T, leaves store.LeafMaker) (Store, func(*testing.T, string)) {
	url := storetest.PostgresDatabase(t)
	s, err := postgres.New(t.Context(), url, store.Options{TokenKey: tokenKey, Leaves: leaves, DayPartitions: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Maintain(t.Context(), t0); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return s, func(t *testing.T, q string) {
		t.Helper()
		if _, err := conn.Exec(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// TestSearchPathShadow: the manager's own role (owning its database, no
// superuser) defines an = on text, false for one user, in the schema of
// the tables, and lists pg_catalog after that schema in its own search
// path. The store's connections keep pg_catalog first, so user-filtered
// reads still find mallory's events, and verify names the operator and
// its function. (An attacker review: before, both reads returned none
// and verify found nothing.)
func TestSearchPathShadow(t *testing.T) {
	kr := newKeyring(t)
	roleURL, exec := postgresOwner(t)
	st, err := postgres.New(t.Context(), roleURL, store.Options{TokenKey: tokenKey, Leaves: seal.LeafMaker{Keys: kr}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	m1 := event("ns", "m1", 2)
	m1.User = "mallory"
	if _, err := st.Insert(ctx, []store.Event{event("ns", "a1", 1), m1}); err != nil {
		t.Fatal(err)
	}
	sealer := &seal.Sealer{Store: st, Keys: kr, Origin: seal.DefaultOriginPrefix, Now: time.Now}
	if _, err := sealer.SealAll(ctx); err != nil {
		t.Fatal(err)
	}
	st.Close()
	exec(t, `CREATE FUNCTION x_texteq(a text, b text) RETURNS boolean LANGUAGE sql IMMUTABLE
AS $$ SELECT pg_catalog.texteq(a, b) AND NOT pg_catalog.texteq(a, 'mallory') $$`)
	exec(t, `CREATE OPERATOR = (LEFTARG = text, RIGHTARG = text, FUNCTION = x_texteq)`)
	exec(t, `DO $$ BEGIN EXECUTE format('ALTER ROLE %I SET search_path = "$user", public, pg_catalog', current_user); END $$`)

	st, err = postgres.New(ctx, roleURL, store.Options{TokenKey: tokenKey, Leaves: seal.LeafMaker{Keys: kr}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	size, err := st.LogSize(ctx, "ns")
	if err != nil {
		t.Fatal(err)
	}
	page, err := st.Events(ctx, store.EventQuery{View: "test", Namespace: "ns", User: "mallory", InLog: &size, Page: store.Page{Size: 100}})
	if err != nil || len(page.Events) != 1 || page.Events[0].ID != "m1" {
		t.Fatalf("mallory's events read %v, %v; want m1", page.Events, err)
	}
	sum, err := st.Summary(ctx, store.SummaryQuery{Namespace: "ns", User: "mallory", InLog: &size,
		Range: store.TimeRange{From: t0.Add(-time.Hour), To: t0.Add(time.Hour)}, Page: store.Page{Size: 100}})
	if err != nil || len(sum.Rows) != 1 || sum.Rows[0].Count != 1 {
		t.Fatalf("mallory's summary %+v, %v; want one event", sum.Rows, err)
	}
	vs, _ := seal.Verifiers(kr.VerifierKeys()...)
	var got []string
	if _, err := Verify(ctx, st, Options{Verifiers: vs, SealInterval: time.Minute}, func(f Finding) {
		got = append(got, f.Problem+": "+f.Detail)
	}); err != nil {
		t.Fatal(err)
	}
	// The operator stays in the schema, inert: nothing of ours uses it,
	// and the path finds pg_catalog's first.
	if len(got) > 0 {
		t.Fatalf("findings %q, want none", got)
	}
}

// postgresOwner makes a database owned by a role of its own (no
// superuser, as a manager's usually is), and returns its URL as that role
// and an intruder's exec with the same credentials.
func postgresOwner(t *testing.T) (string, func(*testing.T, string)) {
	admin := storetest.RequirePostgres(t)
	role := fmt.Sprintf("owner_%d", time.Now().UnixNano())
	dbURL := storetest.PostgresDatabase(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct{ url, q string }{
		{admin, "CREATE ROLE " + role + " LOGIN"},
		{dbURL, "ALTER DATABASE " + strings.TrimPrefix(u.Path, "/") + " OWNER TO " + role},
		{dbURL, "ALTER SCHEMA public OWNER TO " + role},
	} {
		c, err := pgx.Connect(t.Context(), step.url)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Exec(t.Context(), step.q)
		c.Close(t.Context())
		if err != nil {
			t.Fatalf("%s: %v", step.q, err)
		}
	}
	t.Cleanup(func() {
		if c, err := pgx.Connect(context.Background(), admin); err == nil {
			_, _ = c.Exec(context.Background(), "DROP OWNED BY "+role+" CASCADE")
			_, _ = c.Exec(context.Background(), "DROP ROLE IF EXISTS "+role)
			c.Close(context.Background())
		}
	})
	u.User = url.User(role)
	roleURL := u.String()
	conn, err := pgx.Connect(t.Context(), roleURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return roleURL, func(t *testing.T, q string) {
		t.Helper()
		if _, err := conn.Exec(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// TestIngestRefusesDroppedRows: with a trigger that drops mallory's
// events (or leaves) as they are written, ingest fails the batch rather
// than count the event a duplicate and acknowledge it: COPY's count on
// PostgreSQL, each insert's on SQLite, and for a batch that also holds a
// re-send, a stored row with the content key of each event not stored.
func TestIngestRefusesDroppedRows(t *testing.T) {
	for _, tc := range []struct {
		name     string
		pg, lite string
		resend   bool
	}{
		{name: "events", pg: pgDropMallory, lite: liteDropMallory},
		{name: "events, beside a re-send", pg: pgDropMallory, lite: liteDropMallory, resend: true},
		{name: "leaves", pg: strings.NewReplacer("x_drop_mallory", "x_drop_leaf", "NEW.user_name = 'mallory'", "NEW.seq > 1", "ON events", "ON leaves").Replace(pgDropMallory),
			lite: "CREATE TRIGGER x_drop_leaf BEFORE INSERT ON leaves WHEN NEW.seq > 1 BEGIN SELECT RAISE(IGNORE); END"},
	} {
		for _, b := range backends {
			t.Run(b.name+"/"+tc.name, func(t *testing.T) {
				st, exec := b.open(t, seal.LeafMaker{Keys: newKeyring(t)})
				ctx := t.Context()
				a1 := event("ns", "a1", 1)
				if _, err := st.Insert(ctx, []store.Event{a1}); err != nil {
					t.Fatal(err)
				}
				if b.name == "postgres" {
					exec(t, tc.pg)
				} else {
					exec(t, tc.lite)
				}
				m1 := event("ns", "m1", 2)
				m1.User = "mallory"
				batch := []store.Event{event("ns", "a2", 3), m1}
				if tc.resend {
					batch = append(batch, a1)
				}
				res, err := st.Insert(ctx, batch)
				if err == nil || !strings.Contains(err.Error(), "the store's schema drops rows") {
					t.Fatalf("Insert: %+v, %v; want the batch failed: rows dropped", res, err)
				}
				page, err := st.Events(ctx, store.EventQuery{View: "test", Namespace: "ns", Page: store.Page{Size: 10}})
				if err != nil || len(page.Events) != 1 {
					t.Fatalf("stored %v, %v; want a1 alone", page.Events, err)
				}
			})
		}
	}
}

// TestIngestStopsOnSchemaChange: a trigger that deletes mallory's events
// with their leaves right after they are written leaves every count
// right; ingest (SchemaGate) fails with ErrUnavailable (503, the sender
// retries) while it stands, and stores again once it is dropped.
func TestIngestStopsOnSchemaChange(t *testing.T) {
	for _, tc := range []struct {
		backend, add, drop string
	}{
		{"sqlite", `CREATE TRIGGER x_gone AFTER INSERT ON leaves BEGIN
DELETE FROM events WHERE namespace = NEW.namespace AND seq = NEW.seq AND user_name = 'mallory';
DELETE FROM leaves WHERE namespace = NEW.namespace AND seq = NEW.seq AND NOT EXISTS (SELECT 1 FROM events WHERE namespace = NEW.namespace AND seq = NEW.seq); END`,
			"DROP TRIGGER x_gone"},
		{"postgres", `CREATE FUNCTION x_gone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN DELETE FROM events WHERE user_name = 'mallory'; RETURN NULL; END $$;
CREATE TRIGGER x_gone AFTER INSERT ON events FOR EACH STATEMENT EXECUTE FUNCTION x_gone()`,
			"DROP TRIGGER x_gone ON events; DROP FUNCTION x_gone()"},
	} {
		t.Run(tc.backend, func(t *testing.T) {
			ctx := t.Context()
			opts := store.Options{TokenKey: tokenKey, Leaves: seal.LeafMaker{Keys: newKeyring(t)}, SchemaCheckInterval: time.Nanosecond}
			var st store.Store
			var exec func(string) error
			if tc.backend == "sqlite" {
				path := filepath.Join(t.TempDir(), "audit.db")
				s, err := sqlite.New(ctx, path, opts)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
				st, exec = s, func(q string) error { _, err := db.Exec(q); return err }
			} else {
				url := storetest.PostgresDatabase(t)
				s, err := postgres.New(ctx, url, opts)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				conn, err := pgx.Connect(ctx, url)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { conn.Close(context.Background()) })
				st, exec = s, func(q string) error { _, err := conn.Exec(ctx, q); return err }
			}
			if _, err := st.Insert(ctx, []store.Event{event("ns", "a1", 1)}); err != nil {
				t.Fatal(err)
			}
			if err := exec(tc.add); err != nil {
				t.Fatal(err)
			}
			m1 := event("ns", "m1", 2)
			m1.User = "mallory"
			res, err := st.Insert(ctx, []store.Event{event("ns", "a2", 3), m1})
			if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "schema was changed") {
				t.Fatalf("Insert beside the trigger: %+v, %v; want unavailable: the schema was changed", res, err)
			}
			// Readiness fails with it: traffic goes to replicas that write.
			if err := st.Ping(ctx); err == nil {
				t.Fatal("Ping (readyz) passes while ingest is refused")
			}
			if err := exec(tc.drop); err != nil {
				t.Fatal(err)
			}
			if res, err := st.Insert(ctx, []store.Event{event("ns", "a2", 3), m1}); err != nil || res.Inserted != 2 {
				t.Fatalf("Insert once the schema is restored: %+v, %v", res, err)
			}
			if err := st.Ping(ctx); err != nil {
				t.Fatalf("Ping once ingest writes again: %v", err)
			}
		})
	}
}

// TestRoleSchemaTakesNoStore: a schema named as the manager's role, which
// the default search path lists first, made by the intruder: the store
// stays where it is (the first schema holding one), rather than make a
// new, empty store there and read that (a second review: verify then
// found nothing, the events were out of every read).
func TestRoleSchemaTakesNoStore(t *testing.T) {
	roleURL, exec := postgresOwner(t)
	ctx := t.Context()
	open := func() *postgres.Store {
		s, err := postgres.New(ctx, roleURL, store.Options{TokenKey: tokenKey})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	s := open()
	if _, err := s.Insert(ctx, []store.Event{event("ns", "a1", 1)}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	exec(t, `DO $$ BEGIN EXECUTE format('CREATE SCHEMA %I', current_user); END $$`)
	s = open()
	page, err := s.Events(ctx, store.EventQuery{View: "test", Namespace: "ns", Page: store.Page{Size: 10}})
	if err != nil || len(page.Events) != 1 {
		t.Fatalf("after the role's schema was made: %v, %v; want a1", page.Events, err)
	}
	if changes, err := s.SchemaChanges(ctx); err != nil || len(changes) > 0 {
		t.Fatalf("schema changes %q, %v; want none", changes, err)
	}
}
