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
	"errors"
	"fmt"
	"time"

	"github.com/auditops/auditops/internal/store/payload"
)

// dicts keeps the payload dictionaries (payload.Dicts) in table
// payload_dicts. Loads go through a connection of their own: a reader
// meets an unknown dictionary (one another process made, such as
// manager import) in the middle of its rows, holding a connection of the
// read pool, which every reader might be holding.
type dicts struct {
	s    *Store
	load *sql.DB
}

var _ payload.Dicts = (*dicts)(nil)

func (d *dicts) NewestDict(ctx context.Context) (payload.Stored, bool, error) {
	var id, created int64
	var b []byte
	err := d.s.r.QueryRowContext(ctx, "SELECT id, created, dict FROM payload_dicts ORDER BY created DESC, id DESC LIMIT 1").Scan(&id, &created, &b)
	if errors.Is(err, sql.ErrNoRows) {
		return payload.Stored{}, false, nil
	}
	if err != nil {
		return payload.Stored{}, false, d.s.wrap("newest payload dictionary", err)
	}
	return payload.Stored{ID: uint32(id), Created: time.Unix(0, created), Dict: b}, true, nil
}

func (d *dicts) LoadDict(ctx context.Context, id uint32) ([]byte, bool, error) {
	var b []byte
	err := d.load.QueryRowContext(ctx, "SELECT dict FROM payload_dicts WHERE id = ?", int64(id)).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, d.s.wrap(fmt.Sprintf("payload dictionary %d", id), err)
	}
	return b, true, nil
}

func (d *dicts) SaveDict(ctx context.Context, st payload.Stored) error {
	return d.s.write(ctx, "save payload dictionary", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "INSERT INTO payload_dicts (id, created, dict) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING",
			int64(st.ID), st.Created.UnixNano(), st.Dict)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return payload.ErrDictExists
		}
		return nil
	})
}
