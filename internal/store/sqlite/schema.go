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

package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/auditops/auditops/internal/store"
	"github.com/auditops/auditops/internal/store/internal/migrate"
)

// schemaObject is a row of sqlite_schema.
type schemaObject struct {
	kind, name, table, sql string
}

// SchemaChanges implements store.SchemaChecker: the file's schema
// (sqlite_schema: tables, indexes, triggers, views, with the text that
// made each) against the one the same migrations make in an empty
// in-memory database. SQLite keeps each object's CREATE statement as it
// ran (ALTER TABLE edits it in place, in both), so any object added,
// dropped or made again otherwise (PRAGMA writable_schema included) shows.
// An index added beside ours is no change (it cannot hide a row) unless it
// is unique: that one can refuse a row.
func (s *Store) SchemaChanges(ctx context.Context) ([]string, error) {
	want, err := s.expectedSchema(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlite: the schema its migrations make: %w", err)
	}
	// The writer runs the schema it loaded, which PRAGMA writable_schema
	// can leave apart from the file: a trigger loaded by a write, then
	// taken out of sqlite_schema with the schema cookie set back, fired
	// on while the file showed none (a third review). Reloaded from the
	// file first, it runs what is checked.
	if err := s.resetWriterSchema(ctx); err != nil {
		return nil, fmt.Errorf("sqlite: reloading the writer's schema: %w", err)
	}
	var got map[string]schemaObject
	err = s.readTx(ctx, "schema", func(tx sqlQueryer) error {
		got, err = readSchema(ctx, tx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: reading the schema: %w", err)
	}
	var changes []string
	for _, k := range slices.Sorted(maps.Keys(got)) {
		o := got[k]
		w, ok := want[k]
		switch {
		case !ok && o.kind == "index" && !strings.HasPrefix(strings.ToUpper(normalSQL(o.sql)), "CREATE UNIQUE"):
			// Another index hides no row; a unique one can refuse one.
		case !ok:
			changes = append(changes, fmt.Sprintf("%s %q on %s was added: %s", o.kind, o.name, o.table, oneLine(o.sql)))
		case w.kind != o.kind || w.table != o.table || normalSQL(w.sql) != normalSQL(o.sql):
			changes = append(changes, fmt.Sprintf("%s %q on %s was changed: %s", o.kind, o.name, o.table, oneLine(o.sql)))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if _, ok := got[k]; !ok {
			w := want[k]
			changes = append(changes, fmt.Sprintf("%s %q on %s was dropped", w.kind, w.name, w.table))
		}
	}
	return changes, nil
}

// oneLine is an object's SQL on one line, for a finding.
func oneLine(q string) string {
	return strings.Join(strings.Fields(q), " ")
}

// normalSQL is q without its comments, its other whitespace runs one
// space: the same statement written with other comments or line breaks
// (a migration's comment edited) is no change. Quoted text is kept as
// it is.
func normalSQL(q string) string {
	var b strings.Builder
	space := false
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'' || c == '"' || c == '`' || c == '[':
			end := c
			if c == '[' {
				end = ']'
			}
			j := i + 1
			for j < len(q) && q[j] != end {
				j++
			}
			if space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = false
			b.WriteString(q[i:min(j+1, len(q))])
			i = j
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			for i < len(q) && q[i] != '\n' {
				i++
			}
			space = true
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			j := strings.Index(q[i+2:], "*/")
			if j < 0 {
				i = len(q)
			} else {
				i += j + 3
			}
			space = true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			space = true
		default:
			if space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = false
			b.WriteByte(c)
		}
	}
	return b.String()
}

// statTables are SQLite's own statistics tables, which ANALYZE and PRAGMA
// optimize make and no read depends on for its rows. Tables only: any
// other object may take such a name with PRAGMA writable_schema.
var statTables = "'sqlite_stat1', 'sqlite_stat2', 'sqlite_stat3', 'sqlite_stat4'"

// readSchema reads sqlite_schema but for statTables.
func readSchema(ctx context.Context, tx sqlQueryer) (map[string]schemaObject, error) {
	rows, err := tx.QueryContext(ctx, "SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_schema WHERE NOT (type = 'table' AND name IN ("+statTables+"))")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]schemaObject{}
	for rows.Next() {
		var o schemaObject
		if err := rows.Scan(&o.kind, &o.name, &o.table, &o.sql); err != nil {
			return nil, err
		}
		out[o.kind+" "+o.name] = o
	}
	return out, rows.Err()
}

// expectedSchema returns the schema the store's migrations make, made
// once for the store's life (the ingest gate and the leader check it
// often); a failure is not kept, and no caller's cancellation is.
func (s *Store) expectedSchema(ctx context.Context) (map[string]schemaObject, error) {
	s.expected.mu.Lock()
	defer s.expected.mu.Unlock()
	if s.expected.schema != nil {
		return s.expected.schema, nil
	}
	schema, err := expectedSchema(context.WithoutCancel(ctx), s.upTo)
	if err != nil {
		return nil, err
	}
	s.expected.schema = schema
	return schema, nil
}

// resetWriterSchema has the writer connection reload its schema from the
// file, between its writes.
func (s *Store) resetWriterSchema(ctx context.Context) error {
	t := time.NewTimer(s.opts.BusyTimeout)
	defer t.Stop()
	select {
	case s.wlock <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("%w: %w for %s", store.ErrUnavailable, errWriterBusy, s.opts.BusyTimeout)
	}
	defer func() { <-s.wlock }()
	_, err := s.w.ExecContext(ctx, "PRAGMA writable_schema = RESET")
	return err
}

// expectedSchema migrates an empty in-memory database to version upTo (0:
// the latest) and reads its schema.
func expectedSchema(ctx context.Context, upTo int64) (map[string]schemaObject, error) {
	all, err := migrate.Load(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	if upTo > 0 {
		all = all[:upTo]
	}
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // one connection: one in-memory database
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback() }()
	if err := applyMigrations(ctx, tx, all); err != nil {
		return nil, err
	}
	return readSchema(ctx, tx)
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
