// Package storeopen opens the audit-event store named by a --store URL. It
// is apart from package store so that code using only the interface (ingest,
// report) does not link the database drivers.
package storeopen

import (
	"context"
	"errors"
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
			return nil, fmt.Errorf("store %s: a PostgreSQL store needs a page-token key shared by every replica (--token-key-file)", Redact(rawURL))
		}
		st, err := postgres.New(ctx, target, opts)
		if err != nil {
			if pw := passwordOf(rawURL); pw != "" && strings.Contains(err.Error(), pw) {
				// pgx redacts its own messages; this is a second guard, as
				// a password in a log is a leak wherever it came from.
				return nil, errors.New(strings.ReplaceAll(err.Error(), pw, "xxxxx"))
			}
			return nil, err
		}
		return st, nil
	}
}

// Parse splits a store URL into its kind ("sqlite" or "postgres") and what
// the backend opens: the database file's path, or the PostgreSQL URL.
func Parse(rawURL string) (kind, target string, err error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Error repeats the whole URL, password included.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", "", fmt.Errorf("store URL %q: %v", Redact(rawURL), err)
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
		return "", "", fmt.Errorf("store URL %q: unknown scheme %q, want sqlite or postgres", Redact(rawURL), u.Scheme)
	}
}

// Redact hides the password of a store URL for logs and messages, also in
// a URL that does not parse (the messages about it are where it shows).
func Redact(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	if pw := passwordOf(raw); pw != "" {
		return strings.Replace(raw, ":"+pw+"@", ":xxxxx@", 1)
	}
	return raw
}

// passwordOf returns the password of scheme://user:password@host..., read
// without parsing the URL (it may not parse); "" when there is none.
func passwordOf(raw string) string {
	_, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return ""
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return ""
	}
	_, pw, ok := strings.Cut(rest[:at], ":")
	if !ok || pw == "" {
		return ""
	}
	return pw
}
