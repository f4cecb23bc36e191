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

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/auditops/auditops/internal/store/sqlite"
	"github.com/auditops/auditops/internal/store/storeopen"
)

// TestPageTokensExpireByDefault: spec/API.md 3 says tokens expire after
// --page-token-ttl, default 24h; before the flag they never did.
func TestPageTokensExpireByDefault(t *testing.T) {
	fs := pflag.NewFlagSet("manager", pflag.ContinueOnError)
	var o storeOptions
	o.addFlags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if o.tokenTTL != 24*time.Hour {
		t.Fatalf("--page-token-ttl defaults to %s, want 24h", o.tokenTTL)
	}
	if err := fs.Parse([]string{"--page-token-ttl=0"}); err != nil || o.tokenTTL != 0 {
		t.Fatalf("--page-token-ttl=0: %v, %s", err, o.tokenTTL)
	}
}

// TestStoreFlags: each form of --store opens (or refuses) as storeopen
// reads it. sqlite:audit.db once made the manager demand --token-key-file
// "because every replica must sign with the same key": main looked for
// "sqlite://" itself.
func TestStoreFlags(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		files   []string // made in the working directory
		wantErr string
	}{
		{name: "relative", args: []string{"--store", "sqlite:audit.db"}, files: []string{"audit.db", "token.key"}},
		{name: "relative with =", args: []string{"--store=sqlite:data/audit.db"}, files: []string{"data/audit.db", "data/token.key"}},
		{name: "key file named", args: []string{"--store", "sqlite:audit.db", "--token-key-file", "page.key"}, files: []string{"audit.db", "page.key"}},
		{name: "postgres needs a key file", args: []string{"--store", "postgres://u:s3cr3t@127.0.0.1:1/db"},
			wantErr: "--token-key-file is required with --store postgres://u:xxxxx@127.0.0.1:1/db"},
		{name: "not a store URL", args: []string{"--store", "audit.db"}, wantErr: `opening the audit store: store URL "audit.db" has no scheme`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			t.Chdir(dir)
			fs := pflag.NewFlagSet("manager", pflag.ContinueOnError)
			var o storeOptions
			o.addFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			st, err := o.open(t.Context())
			if tc.wantErr != "" {
				if err == nil {
					st.Close()
				}
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "s3cr3t") {
					t.Fatalf("open: %v; want an error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if err := st.Ping(t.Context()); err != nil {
				t.Fatal(err)
			}
			for _, f := range tc.files {
				if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// TestStoreFlagDefaults: without flags the store is the documented one.
func TestStoreFlagDefaults(t *testing.T) {
	fs := pflag.NewFlagSet("manager", pflag.ContinueOnError)
	var o storeOptions
	o.addFlags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if o.url != "sqlite:///var/lib/auditops/audit.db" || o.tokenKeyFile != "" {
		t.Fatalf("--store %q --token-key-file %q", o.url, o.tokenKeyFile)
	}
	if usage := fs.Lookup("token-key-file").Usage; !strings.Contains(usage, "token.key in the SQLite database's directory") {
		t.Fatalf("--token-key-file's help does not name the default: %q", usage)
	}
}

func TestRetentionCutIsADayStart(t *testing.T) {
	for _, tc := range []struct {
		now       time.Time
		retention time.Duration
		want      time.Time
	}{
		{time.Date(2026, 12, 4, 23, 30, 0, 0, time.UTC), 90 * 24 * time.Hour, time.Date(2026, 9, 5, 0, 0, 0, 0, time.UTC)},
		{time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC), 24 * time.Hour, time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)},
		{time.Date(2026, 12, 4, 1, 0, 0, 0, time.UTC), 2 * time.Hour, time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)},
		// Another zone: the UTC day counts.
		{time.Date(2026, 12, 4, 1, 0, 0, 0, time.FixedZone("UTC+5", 5*3600)), time.Hour, time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)},
	} {
		if got := retentionCut(tc.now, tc.retention); !got.Equal(tc.want) {
			t.Errorf("retentionCut(%v, %v) = %v, want %v", tc.now, tc.retention, got, tc.want)
		}
	}
}

func TestOffHeapReserve(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want int64
	}{
		{storeopen.DefaultURL, sqlite.NativeMemoryBytes},
		{"sqlite:audit.db", sqlite.NativeMemoryBytes},
		{"postgres://auditops@db.example:5432/audit", 0},
		{"no scheme", 0},
	} {
		if got := offHeapReserve(tc.url); got != tc.want {
			t.Errorf("offHeapReserve(%q) = %d, want %d", tc.url, got, tc.want)
		}
	}
	if sqlite.NativeMemoryBytes != 240<<20 || sqlite.PageCacheBytes != 96<<20 {
		t.Errorf("sqlite.NativeMemoryBytes = %d, PageCacheBytes = %d, want 240 MiB and 96 MiB (six connections of 16 MiB), as the README says",
			sqlite.NativeMemoryBytes, sqlite.PageCacheBytes)
	}
}

// TestMaxObjectBytesFlag: a limit below a truncation marker's size is
// refused before anything starts (a marker would be cut again).
func TestMaxObjectBytesFlag(t *testing.T) {
	want := "--max-event-object-bytes is 100: it must be at least 1024"
	if err := runImport(t.Context(), []string{"--max-event-object-bytes=100", "audit.log"}); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("import: %v, want %q", err, want)
	}
	if err := runManager([]string{"--max-event-object-bytes=100"}); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("manager: %v, want %q", err, want)
	}
}
