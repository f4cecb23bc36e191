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

package bench

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// storePart is one B-tree (SQLite) or relation (PostgreSQL: a table with
// its TOAST, or an index) of a store and the bytes it takes on disk.
type storePart struct {
	name  string
	bytes int64
}

// storeParts is where a store's bytes are, largest first: SQLite's B-trees
// from dbstat, and its free pages as "(free pages)"; PostgreSQL's tables
// (pg_table_size: heap, TOAST and their maps) and indexes
// (pg_total_relation_size) of the schema public. The parts add up to
// storeBytes once the store is closed (SQLite's WAL checkpointed into the
// file). Why the store is the size it is: issue 15's goal for it is missed,
// and each schema change must show what it bought.
func (t *target) storeParts(ctx context.Context) ([]storePart, error) {
	var parts []storePart
	if t.kind == "sqlite" {
		db, err := sql.Open("sqlite", "file:"+t.dsn+"?mode=ro")
		if err != nil {
			return nil, err
		}
		defer db.Close()
		rows, err := db.QueryContext(ctx, "SELECT name, sum(pgsize) FROM dbstat GROUP BY name")
		if err != nil {
			return nil, fmt.Errorf("dbstat: %w", err)
		}
		defer rows.Close()
		if parts, err = scanParts(rows); err != nil {
			return nil, err
		}
		var free int64
		if err := db.QueryRowContext(ctx, "SELECT (SELECT freelist_count FROM pragma_freelist_count) * (SELECT page_size FROM pragma_page_size)").Scan(&free); err != nil {
			return nil, fmt.Errorf("free pages: %w", err)
		}
		if free > 0 {
			parts = append(parts, storePart{"(free pages)", free})
		}
	} else {
		c, err := pgx.Connect(ctx, t.dsn)
		if err != nil {
			return nil, err
		}
		defer c.Close(ctx)
		rows, err := c.Query(ctx, `SELECT c.relname, CASE c.relkind WHEN 'i' THEN pg_total_relation_size(c.oid) ELSE pg_table_size(c.oid) END
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i', 'm')`)
		if err != nil {
			return nil, fmt.Errorf("relation sizes: %w", err)
		}
		defer rows.Close()
		if parts, err = scanParts(rows); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(parts, func(a, b storePart) int {
		return cmp.Or(cmp.Compare(b.bytes, a.bytes), strings.Compare(a.name, b.name))
	})
	return parts, nil
}

// scanParts reads rows of (name, bytes), of either driver.
func scanParts(rows interface {
	Next() bool
	Scan(...any) error
	Err() error
}) ([]storePart, error) {
	var parts []storePart
	for rows.Next() {
		var p storePart
		if err := rows.Scan(&p.name, &p.bytes); err != nil {
			return nil, err
		}
		parts = append(parts, p)
	}
	return parts, rows.Err()
}

// addStoreParts adds, for each part of t's store that holds at least 1%
// of it, store_bytes_per_event{store=…,part=NAME}, and the rest as
// part=(rest): n events.
func (r *runner) addStoreParts(ctx context.Context, t *target, lbl string, n int) error {
	parts, err := t.storeParts(ctx)
	if err != nil {
		return fmt.Errorf("the store's parts: %w", err)
	}
	var total int64
	for _, p := range parts {
		total += p.bytes
	}
	var rest int64
	var small []string
	for _, p := range parts {
		if p.bytes*100 < total {
			rest += p.bytes
			small = append(small, p.name)
			continue
		}
		r.res.add(Metric{Metric: "store_bytes_per_event" + strings.TrimSuffix(lbl, "}") + ",part=" + p.name + "}",
			Value: float64(p.bytes) / float64(n), Unit: "bytes",
			Note: fmt.Sprintf("%.1f%% of the store after the webhook ingest (%s)", 100*float64(p.bytes)/float64(total), t.partsSource())})
	}
	if rest > 0 {
		r.res.add(Metric{Metric: "store_bytes_per_event" + strings.TrimSuffix(lbl, "}") + ",part=(rest)}",
			Value: float64(rest) / float64(n), Unit: "bytes",
			Note: fmt.Sprintf("%.1f%% of the store: %s", 100*float64(rest)/float64(total), strings.Join(small, ", "))})
	}
	return nil
}

func (t *target) partsSource() string {
	if t.kind == "sqlite" {
		return "dbstat"
	}
	return "pg_table_size, or pg_total_relation_size of an index"
}
