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

package sink

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDestinations(t *testing.T) {
	listed := []string{
		"file:///var/lib/auditops-reports/",
		"s3://shared/tenants?endpoint=https://minio.internal:9000&use_path_style=true",
		"gs://reports/audit",
	}
	tests := []struct {
		name      string
		prefixes  []string
		url       string
		withCreds bool
		// refused is "" when allowed, else a part of the refusal.
		refused string
	}{
		{"s3 with credentials", nil, "s3://bucket/x?region=eu-west-1", true, ""},
		{"s3 with credentials and free parameters", nil, "s3://bucket?region=eu-west-1&ssetype=aws:kms&kmskeyid=k&use_path_style=true", true, ""},
		{"gs with credentials", nil, "gs://bucket/x", true, ""},
		{"s3 with the pod's identity", nil, "s3://bucket/x?region=eu-west-1", false, "cloud identity"},
		{"azblob with the pod's identity", nil, "azblob://container", false, "cloud identity"},
		{"s3 with an endpoint", nil, "s3://bucket?region=x&endpoint=http://169.254.169.254", true, "endpoint"},
		{"s3 with disable_https", nil, "s3://bucket?region=x&disable_https=true", true, `"disable_https"`},
		{"file", nil, "file:///var/lib/auditops", false, "file://"},
		{"file with credentials", nil, "file:///tmp", true, "file://"},
		{"credentials in the URL", nil, "s3://key:secret@bucket?region=x", true, "credentials"},
		{"not a known scheme", nil, "http://bucket", true, "scheme"},

		{"file under a listed prefix", listed, "file:///var/lib/auditops-reports/team-a", false, ""},
		{"file at a listed prefix", listed, "file:///var/lib/auditops-reports", false, ""},
		{"file beside a listed prefix", listed, "file:///var/lib/auditops-reports-evil", false, "--allowed-output-urls"},
		{"file escaping a listed prefix", listed, "file:///var/lib/auditops-reports/../auditops", false, `".."`},
		{"file escaping a listed prefix, encoded", listed, "file:///var/lib/auditops-reports/%2e%2e/auditops", false, `".."`},
		{"file with a host", listed, "file://host/var/lib/auditops-reports", false, "no host"},
		{"file with a parameter the prefix lacks", listed, "file:///var/lib/auditops-reports/x?dir_file_mode=0777", false, "--allowed-output-urls"},
		{"file with a free parameter", listed, "file:///var/lib/auditops-reports/x?no_tmp_dir=true", false, ""},
		{"endpoint of a listed prefix", listed, "s3://shared/tenants/team-a?region=x&use_path_style=true&endpoint=https://minio.internal:9000", true, ""},
		{"endpoint of a listed prefix without its other parameter", listed, "s3://shared/tenants/team-a?region=x&endpoint=https://minio.internal:9000", true, "--allowed-output-urls"},
		{"another endpoint under a listed bucket", listed, "s3://shared/tenants?use_path_style=true&endpoint=https://evil.example", true, "--allowed-output-urls"},
		{"another bucket", listed, "s3://other/tenants?use_path_style=true&endpoint=https://minio.internal:9000", true, "--allowed-output-urls"},
		{"pod identity under a listed prefix", listed, "gs://reports/audit/team-a", false, ""},
		{"pod identity beside a listed prefix", listed, "gs://reports/other", false, "--allowed-output-urls"},
		{"pod identity with a key file", listed, "gs://reports/audit?private_key_path=/var/run/secrets/x", false, "--allowed-output-urls"},
		// gs:// and azblob:// with the report's own credentials: where they
		// connect is the cloud's unless the operator lists an endpoint.
		{"azblob with credentials", nil, "azblob://container/x", true, ""},
		{"gs emulator endpoint", nil, "gs://bucket?endpoint=http://127.0.0.1:4443", true, "endpoint"},
		{"gs emulator endpoint listed", []string{"gs://bucket?endpoint=http://127.0.0.1:4443"}, "gs://bucket/team-a?endpoint=http://127.0.0.1:4443", true, ""},
		{"azblob emulator endpoint", nil, "azblob://c?endpoint=http://127.0.0.1:10000/devstoreaccount1", true, "endpoint"},
		{"azblob emulator endpoint listed", []string{"azblob://c?endpoint=http://127.0.0.1:10000/devstoreaccount1"}, "azblob://c/x?endpoint=http://127.0.0.1:10000/devstoreaccount1", true, ""},
		{"azblob another account under a listed endpoint", []string{"azblob://c?endpoint=http://127.0.0.1:10000/devstoreaccount1"}, "azblob://c/x?endpoint=http://127.0.0.1:10000/other", true, "--allowed-output-urls"},
		{"azblob another cloud's domain", nil, "azblob://c?domain=blob.core.usgovcloudapi.net", true, `"domain"`},
		// The account is the URL's (the Secret only signs in): free with
		// the report's own credentials, listed under the manager's identity.
		{"azblob storage account with credentials", nil, "azblob://c?storage_account=tenantacct", true, ""},
		{"azblob pod identity, the listed account", []string{"azblob://reports?storage_account=opsacct"}, "azblob://reports/x?storage_account=opsacct", false, ""},
		{"azblob pod identity, another account", []string{"azblob://reports?storage_account=opsacct"}, "azblob://reports/x?storage_account=evil", false, "--allowed-output-urls"},
		{"azblob pod identity, an account where none is listed", []string{"azblob://reports"}, "azblob://reports/x?storage_account=evil", false, "--allowed-output-urls"},
		// The manager's role encrypts with the prefix's key, not one the
		// tenant could revoke.
		{"s3 pod identity, another KMS key", []string{"s3://reports/tenants?region=eu-west-1"}, "s3://reports/tenants/x?region=eu-west-1&ssetype=aws:kms&kmskeyid=arn:aws:kms:eu-west-1:666666666666:key/attacker", false, "--allowed-output-urls"},
		{"s3 pod identity, the listed KMS key", []string{"s3://reports/tenants?region=eu-west-1&kmskeyid=ops"}, "s3://reports/tenants/x?region=eu-west-1&ssetype=aws:kms&kmskeyid=ops", false, ""},
		{"s3 pod identity, server-side encryption", []string{"s3://reports/tenants?region=eu-west-1"}, "s3://reports/tenants/x?region=eu-west-1&ssetype=AES256", false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := NewDestinations(tc.prefixes)
			if err != nil {
				t.Fatalf("NewDestinations: %v", err)
			}
			err = d.Check(tc.url, tc.withCreds)
			switch {
			case tc.refused == "" && err != nil:
				t.Fatalf("Check(%q): %v, want allowed", tc.url, err)
			case tc.refused != "" && err == nil:
				t.Fatalf("Check(%q) allowed it, want a refusal naming %s", tc.url, tc.refused)
			case err != nil && (!errors.Is(err, ErrOutputNotAllowed) || !strings.Contains(err.Error(), tc.refused)):
				t.Fatalf("Check(%q): %v, want ErrOutputNotAllowed naming %s", tc.url, err, tc.refused)
			case err != nil && strings.Contains(err.Error(), "secret"):
				t.Fatalf("Check(%q) echoes credentials: %v", tc.url, err)
			}
		})
	}
}

// TestDestinationThroughLink: a file:// URL below the listed prefix whose
// path below it passes through a symbolic link is refused (the prefix
// itself is the operator's and may be one).
func TestDestinationThroughLink(t *testing.T) {
	root := t.TempDir()
	allowed, outside := filepath.Join(root, "allowed"), filepath.Join(root, "manager-data")
	for _, d := range []string{filepath.Join(allowed, "real"), outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(allowed, "x")); err != nil {
		t.Fatal(err)
	}
	d, err := NewDestinations([]string{"file://" + allowed})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Check("file://"+allowed+"/x/team-a", false); !errors.Is(err, ErrOutputNotAllowed) || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("through a link: %v, want a refusal naming the symbolic link", err)
	}
	for _, ok := range []string{"file://" + allowed, "file://" + allowed + "/real", "file://" + allowed + "/not-yet"} {
		if err := d.Check(ok, false); err != nil {
			t.Errorf("Check(%s): %v", ok, err)
		}
	}
}

func TestNewDestinationsRefusesBadPrefixes(t *testing.T) {
	for _, p := range []string{"http://x", "file://host/dir", "file://relative", "s3://", "s3://b/../c", "s3://user:pw@b"} {
		if _, err := NewDestinations([]string{p}); err == nil {
			t.Errorf("NewDestinations(%q) accepted it", p)
		}
	}
}
