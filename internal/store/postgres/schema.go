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

package postgres

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/auditops/auditops/internal/store/internal/migrate"
)

// Our triggers and their functions, as the migrations write them.
var (
	createFunction = regexp.MustCompile(`(?s)CREATE FUNCTION (\w+)\(\) RETURNS trigger LANGUAGE plpgsql AS \$\$(.*?)\$\$;`)
	createTrigger  = regexp.MustCompile(`(?s)CREATE TRIGGER (\w+) .*? ON (\w+)\s.*?;`)
)

// ourCode is what the migrations create of code that runs inside
// PostgreSQL: each trigger's definition (on one line, without the
// statement's semicolon) by name, each trigger function's body by name.
type ourCode struct {
	triggers, functions map[string]string
}

// loadOurCode reads ourCode from the migrations (once per store).
func loadOurCode() (ourCode, error) {
	all, err := migrate.Load(migrations, "migrations")
	if err != nil {
		return ourCode{}, err
	}
	c := ourCode{triggers: map[string]string{}, functions: map[string]string{}}
	for _, m := range all {
		for _, f := range createFunction.FindAllStringSubmatch(m.SQL, -1) {
			c.functions[f[1]] = f[2]
		}
		for _, t := range createTrigger.FindAllStringSubmatch(m.SQL, -1) {
			c.triggers[t[1]] = strings.TrimSuffix(strings.Join(strings.Fields(t[0]), " "), ";")
		}
	}
	return c, nil
}

// SchemaChanges implements store.SchemaChecker: on the tables the
// migrations make (ourTables, and the partitions of events wherever they
// are), everything that can make a row vanish or hide without a row being
// edited. A trigger other than ours, or one of ours changed or disabled;
// the body or the settings of one of our trigger functions; anything an
// index expression, a constraint, a column default or an extended
// statistics object uses outside pg_catalog; a rule; row-level security or
// a policy; a table made unlogged, dropped or replaced (by a view); a
// column whose collation or type is not one the migrations give (a
// case-insensitive one would merge users' events); a second schema
// holding a store. Indexes themselves are not compared: another beside
// ours hides nothing (what it runs is), and partitions have their own.
// What else the schema holds is not read: a DBA's views and tables, an
// extension's. On the search path, see openWith.
func (s *Store) SchemaChanges(ctx context.Context) (changes []string, err error) {
	triggers, functions := s.code.triggers, s.code.functions
	add := func(format string, args ...any) { changes = append(changes, fmt.Sprintf(format, args...)) }
	err = s.tx(ctx, "schema", readOnly, func(tx pgx.Tx) error {
		// The role's or database's own timeouts would fail the check, and
		// fail the ingest gate with it: this read is ours to bound (the
		// gate bounds the whole; a catalog lock waits a busy timeout).
		if _, err := tx.Exec(ctx, "SELECT set_config('statement_timeout', '0', true), set_config('lock_timeout', $1, true)",
			strconv.FormatInt(s.opts.BusyTimeout.Milliseconds(), 10)); err != nil {
			return err
		}
		var qualifier string
		var ns uint32
		if err := tx.QueryRow(ctx, "SELECT quote_ident(n.nspname) || '.', n.oid FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace WHERE c.oid = 'events'::regclass").Scan(&qualifier, &ns); err != nil {
			return fmt.Errorf("finding the events table: %w", err)
		}
		each := func(q string, f func(rows pgx.Rows) error) error {
			rows, err := tx.Query(ctx, q, ns)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				if err := f(rows); err != nil {
					return err
				}
			}
			return rows.Err()
		}
		seen := map[string]bool{}
		// A partition's clone of a trigger is named with its parent.
		if err := each("SELECT c.oid::regclass::text, t.tgname, t.tgenabled::text, pg_get_triggerdef(t.oid) FROM pg_trigger AS t JOIN pg_class AS c ON c.oid = t.tgrelid"+
			" WHERE "+ourRelation+" AND NOT t.tgisinternal AND t.tgparentid = 0 ORDER BY 1, 2", func(rows pgx.Rows) error {
			var table, name, enabled, def string
			if err := rows.Scan(&table, &name, &enabled, &def); err != nil {
				return err
			}
			table, def = strings.TrimPrefix(table, qualifier), strings.ReplaceAll(def, qualifier, "")
			want, ours := triggers[name]
			switch {
			case !ours:
				add("trigger %q on %s was added: %s", name, table, def)
			case def != want:
				add("trigger %q on %s was changed: %s", name, table, def)
			case enabled != "O":
				add("trigger %q on %s was disabled (tgenabled %s)", name, table, enabled)
			default:
				seen[name] = true
			}
			return nil
		}); err != nil {
			return fmt.Errorf("reading triggers: %w", err)
		}
		for _, name := range slices.Sorted(maps.Keys(triggers)) {
			if !seen[name] && !slices.ContainsFunc(changes, func(c string) bool { return strings.HasPrefix(c, fmt.Sprintf("trigger %q ", name)) }) {
				add("trigger %q was dropped", name)
			}
		}
		// Our trigger functions (whatever else a trigger runs is named with
		// the trigger; other functions in the schema are no business of
		// ours: the pinned path keeps them from shadowing pg_catalog's).
		seenFn := map[string]bool{}
		if err := each("SELECT p.proname, p.prosrc, p.prosecdef OR p.proconfig IS NOT NULL, coalesce(p.proconfig::text, '') FROM pg_proc AS p"+
			" WHERE p.pronamespace = $1 AND p.prorettype = 'trigger'::regtype AND p.proname IN ("+quoteList(slices.Sorted(maps.Keys(functions)))+") ORDER BY 1", func(rows pgx.Rows) error {
			var name, src, config string
			var set bool
			if err := rows.Scan(&name, &src, &set, &config); err != nil {
				return err
			}
			switch {
			case src != functions[name]:
				add("the body of trigger function %q was changed: %s", name, strings.Join(strings.Fields(src), " "))
			case set:
				// SET search_path on it, say, resolves what its body
				// names elsewhere.
				add("trigger function %q was given settings or SECURITY DEFINER: %s", name, config)
			}
			seenFn[name] = true
			return nil
		}); err != nil {
			return fmt.Errorf("reading trigger functions: %w", err)
		}
		for _, name := range slices.Sorted(maps.Keys(functions)) {
			if !seenFn[name] {
				add("trigger function %q was dropped", name)
			}
		}
		// What runs, or compares, inside a write of ours without being a
		// trigger: an index's expression (run as each entry goes in; an
		// "immutable" one may call anything), a constraint's, a column's
		// default, an extended statistics object's (run by ANALYZE); an
		// operator, type or collation they use. Ours use pg_catalog's
		// alone.
		if err := each("SELECT pg_describe_object(d.classid, d.objid, d.objsubid), pg_describe_object(d.refclassid, d.refobjid, 0) FROM pg_depend AS d"+
			" JOIN pg_class AS c ON c.oid = CASE d.classid"+
			" WHEN 'pg_class'::regclass THEN (SELECT i.indrelid FROM pg_index AS i WHERE i.indexrelid = d.objid)"+
			" WHEN 'pg_constraint'::regclass THEN (SELECT k.conrelid FROM pg_constraint AS k WHERE k.oid = d.objid)"+
			" WHEN 'pg_attrdef'::regclass THEN (SELECT a.adrelid FROM pg_attrdef AS a WHERE a.oid = d.objid)"+
			" WHEN 'pg_statistic_ext'::regclass THEN (SELECT x.stxrelid FROM pg_statistic_ext AS x WHERE x.oid = d.objid) END"+
			" WHERE "+ourRelation+" AND CASE d.refclassid"+
			" WHEN 'pg_proc'::regclass THEN (SELECT p.pronamespace FROM pg_proc AS p WHERE p.oid = d.refobjid)"+
			" WHEN 'pg_operator'::regclass THEN (SELECT o.oprnamespace FROM pg_operator AS o WHERE o.oid = d.refobjid)"+
			" WHEN 'pg_type'::regclass THEN (SELECT y.typnamespace FROM pg_type AS y WHERE y.oid = d.refobjid)"+
			" WHEN 'pg_collation'::regclass THEN (SELECT l.collnamespace FROM pg_collation AS l WHERE l.oid = d.refobjid)"+
			" END <> 'pg_catalog'::regnamespace ORDER BY 1, 2", func(rows pgx.Rows) error {
			var what, uses string
			if err := rows.Scan(&what, &uses); err != nil {
				return err
			}
			add("%s uses %s", strings.ReplaceAll(what, qualifier, ""), strings.ReplaceAll(uses, qualifier, ""))
			return nil
		}); err != nil {
			return fmt.Errorf("reading what indexes, constraints and defaults use: %w", err)
		}
		if err := each("SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute AS a JOIN pg_class AS c ON c.oid = a.attrelid"+
			" JOIN pg_type AS y ON y.oid = a.atttypid"+
			" WHERE c.relnamespace = $1 AND c.relname IN ("+quoteList(ourTables)+") AND a.attnum > 0 AND NOT a.attisdropped"+
			" AND y.typnamespace <> 'pg_catalog'::regnamespace ORDER BY 1, 2", func(rows pgx.Rows) error {
			var table, column, typ string
			if err := rows.Scan(&table, &column, &typ); err != nil {
				return err
			}
			// citext, a domain: equality and order of their own.
			add("column %s.%s was given type %s", table, column, typ)
			return nil
		}); err != nil {
			return fmt.Errorf("reading column types: %w", err)
		}
		if err := each("SELECT quote_ident(n.nspname) FROM pg_namespace AS n WHERE n.oid <> $1"+
			" AND EXISTS (SELECT 1 FROM pg_class AS c WHERE c.relnamespace = n.oid AND c.relname = 'events')"+
			" AND EXISTS (SELECT 1 FROM pg_class AS c WHERE c.relnamespace = n.oid AND c.relname = 'schema_migrations') ORDER BY 1", func(rows pgx.Rows) error {
			var other string
			if err := rows.Scan(&other); err != nil {
				return err
			}
			add("schema %s holds another store (its own events and schema_migrations)", other)
			return nil
		}); err != nil {
			return fmt.Errorf("reading schemas: %w", err)
		}
		if err := each("SELECT c.oid::regclass::text, r.rulename, pg_get_ruledef(r.oid) FROM pg_rewrite AS r JOIN pg_class AS c ON c.oid = r.ev_class"+
			" WHERE "+ourRelation+" AND r.rulename <> '_RETURN' ORDER BY 1, 2", func(rows pgx.Rows) error {
			var table, name, def string
			if err := rows.Scan(&table, &name, &def); err != nil {
				return err
			}
			add("rule %q on %s was added: %s", name, table, strings.Join(strings.Fields(def), " "))
			return nil
		}); err != nil {
			return fmt.Errorf("reading rules: %w", err)
		}
		if err := each("SELECT c.oid::regclass::text, c.relrowsecurity, c.relforcerowsecurity, c.relpersistence::text FROM pg_class AS c"+
			" WHERE "+ourRelation+" AND (c.relrowsecurity OR c.relforcerowsecurity OR c.relpersistence <> 'p') ORDER BY 1", func(rows pgx.Rows) error {
			var table, persistence string
			var rls, force bool
			if err := rows.Scan(&table, &rls, &force, &persistence); err != nil {
				return err
			}
			table = strings.TrimPrefix(table, qualifier)
			if rls || force {
				add("row-level security was turned on for table %s (enabled %v, forced %v)", table, rls, force)
			}
			if persistence != "p" {
				// Unlogged: emptied by a crash, absent on a standby.
				add("table %s was made unlogged", table)
			}
			return nil
		}); err != nil {
			return fmt.Errorf("reading tables: %w", err)
		}
		if err := each("SELECT t.name FROM unnest(ARRAY["+quoteList(ourTables)+"]) AS t (name) WHERE NOT EXISTS (SELECT 1 FROM pg_class AS c"+
			" WHERE c.relnamespace = $1 AND c.relname = t.name AND c.relkind IN ('r', 'p')) ORDER BY 1", func(rows pgx.Rows) error {
			var table string
			if err := rows.Scan(&table); err != nil {
				return err
			}
			add("table %s was dropped or replaced (by a view?)", table)
			return nil
		}); err != nil {
			return fmt.Errorf("reading tables: %w", err)
		}
		if err := each("SELECT c.relname, p.polname, pg_get_expr(p.polqual, p.polrelid) FROM pg_policy AS p JOIN pg_class AS c ON c.oid = p.polrelid"+
			" WHERE "+ourRelation+" ORDER BY 1, 2", func(rows pgx.Rows) error {
			var table, name string
			var qual *string
			if err := rows.Scan(&table, &name, &qual); err != nil {
				return err
			}
			add("row security policy %q on %s was added (USING %s)", name, table, deref(qual))
			return nil
		}); err != nil {
			return fmt.Errorf("reading policies: %w", err)
		}
		if err := each("SELECT c.relname, a.attname, co.collname FROM pg_attribute AS a JOIN pg_class AS c ON c.oid = a.attrelid"+
			" JOIN pg_collation AS co ON co.oid = a.attcollation"+
			" WHERE c.relnamespace = $1 AND c.relname IN ("+quoteList(ourTables)+") AND a.attnum > 0 AND NOT a.attisdropped AND co.collname NOT IN ('C', 'default')"+
			" ORDER BY 1, 2", func(rows pgx.Rows) error {
			var table, column, coll string
			if err := rows.Scan(&table, &column, &coll); err != nil {
				return err
			}
			add("column %s.%s was given collation %q", table, column, coll)
			return nil
		}); err != nil {
			return fmt.Errorf("reading column collations: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: checking the schema: %w", err)
	}
	return changes, nil
}

// ourRelation is the SQL test that relation c ($1: the events table's
// schema) is one of ourTables in that schema, or a partition, wherever it
// is, of one: a partition of events made in another schema takes the rows
// of its range, and its triggers fire for them.
var ourRelation = "(c.relnamespace = $1 AND c.relname IN (" + quoteList(ourTables) + ") OR c.relispartition AND (SELECT r.relnamespace = $1 AND r.relname IN (" +
	quoteList(ourTables) + ") FROM pg_class AS r WHERE r.oid = pg_partition_root(c.oid)))"

// ourTables are the tables the migrations make (events' partitions
// aside): the check reads them, not whatever else a DBA keeps beside them
// (a view of pg_stat_statements, a table of theirs with its own trigger).
var ourTables = []string{"category_hours", "checkpoints", "events", "leaves", "legacy_columns", "payload_dicts", "schema_migrations", "tree_hashes"}

// quoteList is names as a list of SQL literals.
func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = "'" + strings.ReplaceAll(n, "'", "''") + "'"
	}
	return strings.Join(q, ", ")
}

func deref(p *string) string {
	if p == nil {
		return "true"
	}
	return *p
}

// schemaErr is the ingest gate's verdict; a failure counts against the
// store's write health, so readiness fails with it and traffic goes to
// replicas that can write (in a rolling update, a newer one whose
// migration the older ones name as a change).
func (s *Store) schemaErr(ctx context.Context) error {
	err := s.schema.Err(ctx)
	if err != nil {
		s.health.Begin()(err)
	}
	return err
}
