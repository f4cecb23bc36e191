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
	"database/sql/driver"
	"fmt"
	"time"

	sqlite "modernc.org/sqlite"

	"github.com/auditops/auditops/internal/store"
)

// The migration that keys stored events by content (0002_content_key.sql)
// computes store.IDHash and store.ContentHash of existing rows in SQL, and
// SQLite has no SHA-256 of its own: the two are Go functions registered
// with the driver. modernc.org/sqlite registers functions per driver, for
// every connection it opens, so this happens once per process, at init.
func init() {
	sqlite.MustRegisterDeterministicScalarFunction("auditops_id_hash", 1, idHashFunc)
	sqlite.MustRegisterDeterministicScalarFunction("auditops_content_hash", 23, contentHashFunc)
}

func idHashFunc(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
	id, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("auditops_id_hash: id is %T, want text", args[0])
	}
	return store.IDHash(id), nil
}

// contentHashFunc takes the columns of sqlstore.InsertColumns up to
// current_state, in that order.
func contentHashFunc(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
	var (
		e   store.Event
		ts  int64
		err error
	)
	text := func(i int, dst *string) {
		if err != nil {
			return
		}
		s, ok := args[i].(string)
		if !ok {
			err = fmt.Errorf("auditops_content_hash: argument %d is %T, want text", i+1, args[i])
		}
		*dst = s
	}
	integer := func(i int) int64 {
		v, ok := args[i].(int64)
		if !ok && err == nil {
			err = fmt.Errorf("auditops_content_hash: argument %d is %T, want integer", i+1, args[i])
		}
		return v
	}
	blob := func(i int) []byte {
		switch v := args[i].(type) {
		case nil:
			return nil
		case []byte:
			return append([]byte(nil), v...)
		default:
			if err == nil {
				err = fmt.Errorf("auditops_content_hash: argument %d is %T, want blob", i+1, args[i])
			}
			return nil
		}
	}
	text(0, &e.Namespace)
	ts = integer(1)
	text(2, &e.ID)
	text(3, &e.User)
	text(4, &e.API)
	text(5, &e.Status)
	text(6, &e.Category)
	text(7, &e.Method)
	e.StatusCode = int(integer(8))
	text(9, &e.EntityKind)
	text(10, &e.EntityID)
	text(11, &e.DeviceID)
	text(12, &e.CertificateSerialNumber)
	text(13, &e.IssuerDN)
	text(14, &e.Details)
	e.Archived = integer(15) != 0
	text(16, &e.Message)
	if args[17] != nil {
		var s string
		text(17, &s)
		e.Error = &s
	}
	e.Principal, e.Request, e.Response, e.PreviousState, e.CurrentState = blob(18), blob(19), blob(20), blob(21), blob(22)
	if err != nil {
		return nil, err
	}
	e.Time = time.Unix(0, ts).UTC()
	sum := store.ContentHash(&e)
	return sum[:], nil
}
