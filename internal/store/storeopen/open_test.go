package storeopen

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/auditops/auditops/internal/store"
	"github.com/auditops/auditops/internal/store/storetest"
)

func TestParse(t *testing.T) {
	cases := []struct {
		url, kind, target string
	}{
		{"sqlite:///var/lib/auditops/audit.db", "sqlite", "/var/lib/auditops/audit.db"},
		{"sqlite:audit.db", "sqlite", "audit.db"},
		{"sqlite:data/audit.db", "sqlite", "data/audit.db"},
		{"sqlite:///tmp/a%20b.db", "sqlite", "/tmp/a b.db"},
		{"postgres://u:p@db:5432/audit?sslmode=require", "postgres", "postgres://u:p@db:5432/audit?sslmode=require"},
		{"postgresql://db/audit", "postgres", "postgresql://db/audit"},
	}
	for _, tc := range cases {
		kind, target, err := Parse(tc.url)
		if err != nil || kind != tc.kind || target != tc.target {
			t.Errorf("Parse(%q) = %q, %q, %v; want %q, %q", tc.url, kind, target, err, tc.kind, tc.target)
		}
	}
	for _, bad := range []string{
		"", "audit.db", "/var/lib/audit.db", "sqlite://audit.db", "sqlite://host/audit.db", "sqlite:", "sqlite:///",
		"sqlite:///a.db?mode=ro", "mysql://db/audit", "file:///a.db", "://",
	} {
		if kind, target, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) = %q, %q; want an error", bad, kind, target)
		}
	}
}

func TestOpenSQLiteKeyBesideDatabase(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	db := filepath.Join(dir, "audit.db")
	s, err := Open(ctx, "sqlite://"+db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
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
	s.Close()
	st, err := os.Stat(db + TokenKeySuffix)
	if err != nil || st.Mode().Perm() != 0o600 || st.Size() != store.TokenKeySize {
		t.Fatalf("key file: %v, %v", st, err)
	}
	// After a restart the same key signs: the token still works.
	s, err = Open(ctx, "sqlite://"+db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	q.Page.Token = p.NextToken
	if p, err := s.Events(ctx, q); err != nil || len(p.Events) != 1 || p.Events[0].ID != "b" {
		t.Fatalf("token after reopen: %+v, %v", p, err)
	}
}

func TestOpenPostgres(t *testing.T) {
	ctx := t.Context()
	url := storetest.PostgresDatabase(t)
	if _, err := Open(ctx, url, store.Options{}); err == nil {
		t.Fatal("PostgreSQL store without a token key: no error")
	}
	s, err := Open(ctx, url, store.Options{TokenKey: bytes.Repeat([]byte("k"), 32)})
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
		{"mysql://u:s3cr3t@h/db", "unknown scheme"},
		{"postgres://u:s3cr3t@host/db%zz", "invalid URL escape"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			_, err := Open(context.Background(), tc.url, store.Options{TokenKey: key, BusyTimeout: 2 * time.Second})
			if err == nil {
				t.Fatal("opened")
			}
			if strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("error %q: want it to say %q and hide the password", err, tc.says)
			}
		})
	}
	if got := Redact("postgres://u:s3cr3t@host:notaport/db"); strings.Contains(got, "s3cr3t") {
		t.Fatalf("Redact of an unparsable URL = %q", got)
	}
}
