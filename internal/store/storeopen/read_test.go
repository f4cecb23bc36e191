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

package storeopen

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditops/auditops/internal/store/storetest"
)

// TestReadURLRefused: a read URL needs a PostgreSQL store and names a
// PostgreSQL hot standby; Open refuses anything else before it opens the
// store, without showing a password. (A standby accepted and refused by its
// server is internal/store/postgres' TestReplicated*.)
func TestReadURLRefused(t *testing.T) {
	pg := storetest.PostgresDatabase(t)
	sqlite := "sqlite://" + filepath.Join(t.TempDir(), "audit.db")
	for _, tc := range []struct {
		name, store, read, want string
	}{
		{"a SQLite store", sqlite, "postgres://u:secret@127.0.0.1:1/db", "hot standby of a PostgreSQL store"},
		{"a SQLite read URL", pg, sqlite, "hot standby of a PostgreSQL store"},
		{"an unknown scheme", pg, "u:secret@standby/db", "unknown scheme"},
		{"the store itself", pg, pg, "not in recovery"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := Open(t.Context(), tc.store, Options{ReadURL: tc.read, TokenKeyFile: filepath.Join(t.TempDir(), "token.key")})
			if err == nil {
				_ = st.Close()
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrReadURL) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "secret") {
				t.Fatalf("error %q: want ErrReadURL saying %q, and no password", err, tc.want)
			}
		})
	}
}
