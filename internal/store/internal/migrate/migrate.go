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

// Package migrate reads a store's schema migrations: an ordered list of SQL
// files embedded in the binary, named NNNN_description.sql, numbered 1, 2, 3
// without gaps. Each backend applies the pending ones at start, one
// transaction each, and records them in its schema_migrations table.
package migrate

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// Migration is one schema change.
type Migration struct {
	Version int64
	Name    string
	SQL     string
}

// Load returns the migrations in dir of fsys, in version order.
func Load(fsys fs.FS, dir string) ([]Migration, error) {
	ents, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var out []Migration
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.ParseInt(num, 10, 64)
		if !ok || err != nil || v < 1 {
			return nil, fmt.Errorf("migration %s: name is not NNNN_description.sql", e.Name())
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		out = append(out, Migration{Version: v, Name: strings.TrimSuffix(e.Name(), ".sql"), SQL: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i, m := range out {
		if m.Version != int64(i+1) {
			return nil, fmt.Errorf("migration %s: version %d, want %d (versions run 1, 2, 3, ... without gaps)", m.Name, m.Version, i+1)
		}
	}
	return out, nil
}

// Pending returns the migrations after version current, or an error when
// the database is newer than the binary (a downgrade).
func Pending(all []Migration, current int64) ([]Migration, error) {
	if current > int64(len(all)) {
		return nil, fmt.Errorf("database schema is at version %d, newer than this binary knows (%d): refusing to run an older auditops against it", current, len(all))
	}
	return all[current:], nil
}

// Sums lists the SHA-256 of each migration, as sha256sum prints them
// ("<hex>  <file>\n", in version order). A store's test holds them: a
// migration a store has applied must never change (the schema check
// compares a store with what the migrations make now).
func Sums(all []Migration) string {
	var b strings.Builder
	for _, m := range all {
		fmt.Fprintf(&b, "%x  %s.sql\n", sha256.Sum256([]byte(m.SQL)), m.Name)
	}
	return b.String()
}
