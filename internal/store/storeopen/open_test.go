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
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/auditops/auditops/internal/store"
	"github.com/auditops/auditops/internal/store/storetest"
)

// insertAndPage stores three events and returns the token of their
// first page of one.
func insertAndPage(t *testing.T, s store.Store) (store.EventQuery, string) {
	t.Helper()
	ctx := t.Context()
	var batch []store.Event
	for i := range 3 {
		batch = append(batch, store.Event{ID: string(rune('a' + i)), Namespace: "ns", User: "u", Status: "success", Time: time.Unix(int64(i), 0)})
	}
	if _, err := s.Insert(ctx, batch); err != nil {
		t.Fatal(err)
	}
	q := store.EventQuery{View: "v", Namespace: "ns", Page: store.Page{Size: 1}}
	p, err := s.Events(ctx, q)
	if err != nil || p.NextToken == "" {
		t.Fatalf("Events = %+v, %v", p, err)
	}
	return q, p.NextToken
}

// tokenStillWorks reopens rawURL and pages on with token: only a store
// signing with the key that made the token accepts it.
func tokenStillWorks(t *testing.T, rawURL string, opts Options, q store.EventQuery, token string) {
	t.Helper()
	s, err := Open(t.Context(), rawURL, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	q.Page.Token = token
	if p, err := s.Events(t.Context(), q); err != nil || len(p.Events) != 1 || p.Events[0].ID != "b" {
		t.Fatalf("token after reopen: %+v, %v", p, err)
	}
}

// TestOpenSQLiteKeyBesideDatabase: without a key, a SQLite store creates
// token.key in its database's directory, and signs with it after a restart.
func TestOpenSQLiteKeyBesideDatabase(t *testing.T) {
	for _, tc := range []struct {
		name string
		url  func(dir string) string
		key  string // relative to dir
	}{
		{"absolute", func(dir string) string { return "sqlite://" + filepath.Join(dir, "data", "audit.db") }, "data/token.key"},
		{"relative", func(string) string { return "sqlite:audit.db" }, "token.key"},
		{"relative in a directory", func(string) string { return "sqlite:data/audit.db" }, "data/token.key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			t.Chdir(dir)
			s, err := Open(t.Context(), tc.url(dir), Options{})
			if err != nil {
				t.Fatal(err)
			}
			q, token := insertAndPage(t, s)
			s.Close()
			st, err := os.Stat(filepath.Join(dir, tc.key))
			if err != nil || st.Mode().Perm() != 0o600 || st.Size() != store.TokenKeySize {
				t.Fatalf("key file: %v, %v", st, err)
			}
			tokenStillWorks(t, tc.url(dir), Options{}, q, token)
		})
	}
}

// TestOpenFindsAnExistingDeploymentsKey: a deployment that ran before
// storeopen chose the default (main kept /var/lib/auditops/token.key) signs
// with the same key: its file is read, not replaced.
func TestOpenFindsAnExistingDeploymentsKey(t *testing.T) {
	dir := t.TempDir()
	key := bytes.Repeat([]byte("existing-deployment-key-"), 2)
	if err := os.WriteFile(filepath.Join(dir, "token.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	url := "sqlite://" + filepath.Join(dir, "audit.db")
	s, err := Open(t.Context(), url, Options{Options: store.Options{TokenKey: key}})
	if err != nil {
		t.Fatal(err)
	}
	q, token := insertAndPage(t, s)
	s.Close()
	tokenStillWorks(t, url, Options{}, q, token)
	if got, err := os.ReadFile(filepath.Join(dir, "token.key")); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("token.key now %q, %v", got, err)
	}
}

// TestOpenKeyFile: a named key file wins over the default, is created when
// absent, and a key given in Options wins over both.
func TestOpenKeyFile(t *testing.T) {
	dir := t.TempDir()
	url := "sqlite://" + filepath.Join(dir, "audit.db")
	keyFile := filepath.Join(dir, "keys", "page.key")
	if err := os.MkdirAll(filepath.Dir(keyFile), 0o700); err != nil {
		t.Fatal(err)
	}
	s, err := Open(t.Context(), url, Options{TokenKeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	q, token := insertAndPage(t, s)
	s.Close()
	if _, err := os.Stat(filepath.Join(dir, "token.key")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the default key file was made beside a named one: %v", err)
	}
	tokenStillWorks(t, url, Options{TokenKeyFile: keyFile}, q, token)
	key, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	tokenStillWorks(t, url, Options{Options: store.Options{TokenKey: key}, TokenKeyFile: filepath.Join(dir, "other.key")}, q, token)
}

func TestOpenPostgres(t *testing.T) {
	ctx := t.Context()
	url := storetest.PostgresDatabase(t)
	if _, err := Open(ctx, url, Options{}); !errors.Is(err, ErrTokenKeyRequired) {
		t.Fatalf("PostgreSQL store without a token key: %v, want ErrTokenKeyRequired", err)
	}
	s, err := Open(ctx, url, Options{Options: store.Options{TokenKey: bytes.Repeat([]byte("k"), 32)}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestPasswordsNeverShow opens store URLs that fail in every way a URL can
// (unparsable, a bad option, an unknown scheme, a server that refuses):
// the error names the problem and never holds the password.
func TestPasswordsNeverShow(t *testing.T) {
	key := []byte(strings.Repeat("k", 32))
	for _, tc := range []struct{ url, says string }{
		{"postgres://u:s3cr3t@host:notaport/db", "invalid port"},
		{"postgres://u:s3cr3t@[::1/db", "missing ']'"},
		{"postgresql://u:s3cr3t@host/db?sslmode=bogus", "sslmode is invalid"},
		{"postgres://u:s3cr3t@127.0.0.1:1/db?connect_timeout=1", "failed to connect"},
		{"postgres://u@127.0.0.1:1/db?connect_timeout=1&password=s3cr3t", "failed to connect"},
		{"mysql://u:s3cr3t@h/db", "unknown scheme"},
		{"postgres://u:s3cr3t@host/db%zz", "invalid URL escape"},
		// url.Parse reads host "u" and port ":s3cr3t" and quotes the port.
		{"postgres://u:s3cr3t/x@host/db", "does not parse in a part hidden here"},
		{"postgres:u:s3cr3t@host/db", "want postgres://"},
		{"host=db password=s3cr3t", "no scheme"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			_, err := Open(context.Background(), tc.url, Options{Options: store.Options{TokenKey: key, BusyTimeout: 2 * time.Second}})
			if err == nil {
				t.Fatal("opened")
			}
			if strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("error %q: want it to say %q and hide the password", err, tc.says)
			}
		})
	}
}
