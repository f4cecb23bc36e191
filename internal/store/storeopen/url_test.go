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
	"strings"
	"testing"
)

// TestParse: every accepted form of a store URL, what it opens and where
// its page-token key is kept when none is named.
func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, url string
		want      Target
	}{
		{"default", DefaultURL,
			Target{SQLite, "/var/lib/auditops/audit.db", "/var/lib/auditops/token.key"}},
		{"absolute", "sqlite:///tmp/run/data/audit.db",
			Target{SQLite, "/tmp/run/data/audit.db", "/tmp/run/data/token.key"}},
		{"relative", "sqlite:audit.db",
			Target{SQLite, "audit.db", "token.key"}},
		{"relative in a directory", "sqlite:data/audit.db",
			Target{SQLite, "data/audit.db", "data/token.key"}},
		{"relative, dot", "sqlite:./data/../audit.db",
			Target{SQLite, "audit.db", "token.key"}},
		{"escaped", "sqlite:///tmp/a%20b/x.db",
			Target{SQLite, "/tmp/a b/x.db", "/tmp/a b/token.key"}},
		{"relative escaped", "sqlite:a%20b.db",
			Target{SQLite, "a b.db", "token.key"}},
		{"postgres", "postgres://u:p@db:5432/audit?sslmode=verify-full&sslrootcert=/etc/ca.crt",
			Target{Postgres, "postgres://u:p@db:5432/audit?sslmode=verify-full&sslrootcert=/etc/ca.crt", ""}},
		{"postgresql", "postgresql://db/audit",
			Target{Postgres, "postgresql://db/audit", ""}},
		{"postgres on a socket", "postgres:///audit?host=/var/run/postgresql",
			Target{Postgres, "postgres:///audit?host=/var/run/postgresql", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.url)
			if err != nil || got != tc.want {
				t.Fatalf("Parse(%q) = %+v, %v; want %+v", tc.url, got, err, tc.want)
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	for _, tc := range []struct{ url, says string }{
		{"", "no scheme"},
		{"audit.db", "no scheme"},
		{"/var/lib/audit.db", "no scheme"},
		{"sqlite://audit.db", "want sqlite:///absolute/path.db"},
		{"sqlite://host/audit.db", "want sqlite:///absolute/path.db"},
		{"sqlite://u:s3cr3t@/audit.db", "want sqlite:///absolute/path.db"},
		{"sqlite:", "want sqlite:///absolute/path.db"},
		{"sqlite:///", "want sqlite:///absolute/path.db"},
		{"sqlite:data/", "want sqlite:///absolute/path.db"},
		{"sqlite:///a.db?mode=ro", "without options"},
		{"sqlite:a.db?", "without options"},
		{"sqlite:///a.db#x", "without options"},
		{"sqlite:a%zz.db", "invalid URL escape"},
		{"mysql://db/audit", `unknown scheme "mysql"`},
		{"file:///a.db", `unknown scheme "file"`},
		{"postgres:db/audit", "want postgres://"},
		{"://", "missing protocol scheme"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			got, err := Parse(tc.url)
			if err == nil || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("Parse(%q) = %+v, %v; want an error saying %q", tc.url, got, err, tc.says)
			}
		})
	}
}
