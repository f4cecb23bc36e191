// Package storeopen opens the audit-event store named by a --store URL. It
// is apart from package store so that code using only the interface (ingest,
// report) does not link the database drivers.
package storeopen

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/auditops/auditops/internal/store"
	"github.com/auditops/auditops/internal/store/postgres"
	"github.com/auditops/auditops/internal/store/sqlite"
)

// TokenKeySuffix names the page-token key file kept beside a SQLite
// database when no key is given: audit.db -> audit.db.token-key.
const TokenKeySuffix = ".token-key"

// Open opens the store at rawURL:
//
//	sqlite:///var/lib/auditops/audit.db   SQLite, absolute path
//	sqlite:audit.db                       SQLite, path relative to the working directory
//	postgres://user@host:5432/db?...      PostgreSQL (also postgresql://), pgx URL options
//
// When opts.TokenKey is empty, a SQLite store loads (or creates, 0600) its
// key from the file beside the database (TokenKeySuffix); a PostgreSQL store
// refuses to start, since every replica must sign with the same key.
func Open(ctx context.Context, rawURL string, opts store.Options) (store.Store, error) {
	kind, target, err := Parse(rawURL)
	if err != nil {
		return nil, err
	}
	switch kind {
	case "sqlite":
		if len(opts.TokenKey) == 0 {
			key, err := store.LoadOrCreateTokenKey(target + TokenKeySuffix)
			if err != nil {
				return nil, fmt.Errorf("store %s: %w", rawURL, err)
			}
			opts.TokenKey = key
		}
		return sqlite.New(ctx, target, opts)
	default:
		if len(opts.TokenKey) == 0 {
			return nil, fmt.Errorf("store %s: a PostgreSQL store needs a page-token key shared by every replica (--token-key-file)", redact(rawURL))
		}
		return postgres.New(ctx, target, opts)
	}
}

// Parse splits a store URL into its kind ("sqlite" or "postgres") and what
// the backend opens: the database file's path, or the PostgreSQL URL.
func Parse(rawURL string) (kind, target string, err error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", "", fmt.Errorf("store URL: %w", err)
	}
	switch u.Scheme {
	case "sqlite":
		var p string
		switch {
		case u.Opaque != "": // sqlite:relative/path.db
			p, err = url.PathUnescape(u.Opaque)
			if err != nil {
				return "", "", fmt.Errorf("store URL %q: %w", rawURL, err)
			}
		case u.Host == "" && u.Path != "": // sqlite:///absolute/path.db
			p = u.Path
		default:
			return "", "", fmt.Errorf("store URL %q: want sqlite:///absolute/path.db or sqlite:relative/path.db", rawURL)
		}
		if u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(p, "/") {
			return "", "", fmt.Errorf("store URL %q: want sqlite:///absolute/path.db or sqlite:relative/path.db, without options", rawURL)
		}
		return "sqlite", filepath.Clean(p), nil
	case "postgres", "postgresql":
		return "postgres", rawURL, nil
	case "":
		return "", "", fmt.Errorf("store URL %q has no scheme: want sqlite:///path.db or postgres://...", rawURL)
	default:
		return "", "", fmt.Errorf("store URL %q: unknown scheme %q, want sqlite or postgres", redact(rawURL), u.Scheme)
	}
}

// redact hides a password in a URL for error messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
