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
	"fmt"
	"github.com/auditops/auditops/internal/urlredact"
	"net/url"
	"path/filepath"
	"strings"
)

// Kind is the backend a store URL names.
type Kind string

const (
	SQLite   Kind = "sqlite"
	Postgres Kind = "postgres"
)

// DefaultURL is the store of a manager started without --store: SQLite on
// the volume config/manager mounts at /var/lib/auditops.
const DefaultURL = "sqlite:///var/lib/auditops/audit.db"

// TokenKeyName is the file, in a SQLite database's directory, that holds
// the page-token key when no key file is named (README "Stores and object
// storage"): /var/lib/auditops/audit.db signs with /var/lib/auditops/token.key.
// Every release of the manager has kept its key there.
const TokenKeyName = "token.key"

// Target is what a store URL names.
type Target struct {
	Kind Kind
	// Source is what the backend opens: the SQLite database's path, or the
	// PostgreSQL URL as given (pgx reads its options).
	Source string
	// TokenKeyFile is where the page-token key is kept when none is named:
	// TokenKeyName beside a SQLite database; "" for PostgreSQL, whose
	// replicas must all sign with one key that nobody creates on its own.
	TokenKeyFile string
}

// Parse reads a store URL:
//
//	sqlite:///var/lib/auditops/audit.db   SQLite, absolute path
//	sqlite:audit.db                       SQLite, path relative to the working directory
//	postgres://user@host:5432/db?...      PostgreSQL (also postgresql://), pgx URL options
//
// Its errors show the URL through Redact.
func Parse(rawURL string) (Target, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return Target{}, fmt.Errorf("store URL %q: %w", urlredact.Redact(rawURL), parseError(rawURL))
	}
	switch u.Scheme {
	case "sqlite":
		const want = "want sqlite:///absolute/path.db or sqlite:relative/path.db, without options"
		var p string
		switch {
		case u.Opaque != "": // sqlite:relative/path.db
			p, err = url.PathUnescape(u.Opaque)
			if err != nil {
				return Target{}, fmt.Errorf("store URL %q: %w", urlredact.Redact(rawURL), err)
			}
		case u.Host == "" && u.User == nil && u.Path != "": // sqlite:///absolute/path.db
			p = u.Path
		default:
			return Target{}, fmt.Errorf("store URL %q: %s", urlredact.Redact(rawURL), want)
		}
		if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.HasSuffix(p, "/") {
			return Target{}, fmt.Errorf("store URL %q: %s", urlredact.Redact(rawURL), want)
		}
		p = filepath.Clean(p)
		return Target{Kind: SQLite, Source: p, TokenKeyFile: filepath.Join(filepath.Dir(p), TokenKeyName)}, nil
	case "postgres", "postgresql":
		if u.Opaque != "" {
			return Target{}, fmt.Errorf("store URL %q: want postgres://[user[:password]@]host[:port]/database[?options]", urlredact.Redact(rawURL))
		}
		return Target{Kind: Postgres, Source: rawURL}, nil
	case "":
		return Target{}, fmt.Errorf("store URL %q has no scheme: want sqlite:///path/to/audit.db, sqlite:audit.db or postgres://host/database", urlredact.Redact(rawURL))
	default:
		return Target{}, fmt.Errorf("store URL %q: unknown scheme %q, want sqlite or postgres", urlredact.Redact(rawURL), u.Scheme)
	}
}

// parseError says why rawURL does not parse without repeating any of it:
// url.Error quotes the URL, and its inner error may quote a piece of the
// password (postgres://u:pa/ss@host reads as host "u" with port ":pa"). It
// parses the redacted URL instead; when that parses, what broke it is hidden.
func parseError(rawURL string) error {
	_, err := url.Parse(urlredact.Redact(rawURL))
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return errors.New("it does not parse in a part hidden here, its password or an option's value: a password must escape '/', '?', '#', '@' and '%' as %2F, %3F, %23, %40 and %25")
}
