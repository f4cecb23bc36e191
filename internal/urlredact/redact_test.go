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

package urlredact

import (
	"strings"
	"testing"
)

// TestRedact: the password (every secret below is "s3cr3t" or contains it)
// never shows, whether the URL parses or not; what holds none is kept.
func TestRedact(t *testing.T) {
	for _, tc := range []struct{ name, url, want string }{
		// URLs that parse: url.URL.Redacted, and options by name.
		{"no password", "postgres://u@db:5432/audit?sslmode=verify-full", "postgres://u@db:5432/audit?sslmode=verify-full"},
		{"password", "postgres://u:s3cr3t@db/audit", "postgres://u:xxxxx@db/audit"},
		{"escaped password", "postgres://u:s3cr3t%2Fx%40y@db/audit", "postgres://u:xxxxx@db/audit"},
		{"empty password", "postgres://u:@db/audit", "postgres://u:xxxxx@db/audit"},
		{"password option", "postgres://u@db/audit?sslmode=require&password=s3cr3t&sslpassword=s3cr3t",
			"postgres://u@db/audit?sslmode=require&password=xxxxx&sslpassword=xxxxx"},
		{"unknown option", "postgres://db/audit?token=s3cr3t&application_name=auditops", "postgres://db/audit?token=xxxxx&application_name=auditops"},
		{"shown option naming a user", "s3://b/p?region=eu&endpoint=http://u:s3cr3t@minio:9000", "s3://b/p?region=eu&endpoint=xxxxx"},
		{"shown option with a ';'", "postgres://db/a?sslmode=require;password=s3cr3t", "postgres://db/a?sslmode=xxxxx"},
		{"object store", "s3://bucket/reports?region=us-east-1&endpoint=http://minio:9000&use_path_style=true",
			"s3://bucket/reports?region=us-east-1&endpoint=http://minio:9000&use_path_style=true"},
		{"sqlite", "sqlite:///var/lib/auditops/audit.db", "sqlite:///var/lib/auditops/audit.db"},
		{"sqlite relative", "sqlite:audit.db", "sqlite:audit.db"},
		// URLs that do not parse: by shape.
		{"bad port", "postgres://u:s3cr3t@host:notaport/db", "postgres://u:xxxxx@host:notaport/db"},
		{"bad host", "postgres://u:s3cr3t@[::1/db", "postgres://u:xxxxx@[::1/db"},
		{"bad escape", "postgres://u:s3cr3t@host/db%zz", "postgres://u:xxxxx@host/db%zz"},
		{"'/' in the password", "postgres://u:s3cr3t/x@host/db", "postgres://u:xxxxx@host/db"},
		{"'#' in the password", "postgres://u:s3cr3t#x@host/db", "postgres://u:xxxxx@host/db"},
		{"'?' in the password", "postgres://u:s3cr3t?x@host/db?sslmode=require", "postgres://u:xxxxx@host/db?sslmode=require"},
		{"'@' in the password", "postgres://u:s3@cr3t@host/db", "postgres://u:xxxxx@host/db"},
		{"'@' and a query", "postgres://u:s3cr3t@[::1/db?password=s3cr3t&sslmode=disable", "postgres://u:xxxxx@[::1/db?password=xxxxx&sslmode=disable"},
		{"control character", "postgres://u:s3cr3t@host/d\x7fb", "postgres://u:xxxxx@host/d\x7fb"},
		{"opaque", "postgres:u:s3cr3t@host/db", "postgres:xxxxx@host/db"},
		{"no scheme", "u:s3cr3t@host/db", "u:xxxxx@host/db"},
		{"no scheme, authority", "//u:s3cr3t@host/db", "//u:xxxxx@host/db"},
		{"keyword/value", "host=db user=u password=s3cr3t sslmode=verify-full", "host=db user=u password=xxxxx sslmode=verify-full"},
		{"keyword/value quoted", "host=db password='s3cr3t x\\' y' dbname=a", "host=db password=xxxxx dbname=a"},
		{"keyword/value spaced", "password = s3cr3t", "password=xxxxx"},
		{"not a URL", "audit.db", "audit.db"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Redact(tc.url)
			if got != tc.want {
				t.Errorf("Redact(%q) = %q, want %q", tc.url, got, tc.want)
			}
			if strings.Contains(got, "s3cr3t") || strings.Contains(got, "cr3t") {
				t.Errorf("Redact(%q) = %q shows the password", tc.url, got)
			}
		})
	}
}

func TestRedactText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`Put "https://acct.blob.core.windows.net/c/x?comp=block&sig=s3cr3t&sp=cw": dial tcp: refused`,
			`Put "https://acct.blob.core.windows.net/c/x?comp=xxxxx&sig=xxxxx&sp=xxxxx": dial tcp: refused`},
		{"opening postgres://u:pw@db/audit failed", "opening postgres://u:xxxxx@db/audit failed"},
		{"no URL here", "no URL here"},
	} {
		if got := RedactText(tc.in); got != tc.want {
			t.Errorf("RedactText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
