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

// Package storeopen owns the --store URL: it parses it (Parse), knows its
// defaults (DefaultURL, where the page-token key is kept), redacts it for
// messages (Redact) and opens the store it names (Open). It is apart from
// package store so that code using only the interface (ingest, report) does
// not link the database drivers.
package storeopen

import (
	"context"
	"errors"
	"fmt"
	"github.com/auditops/auditops/internal/urlredact"
	"os"
	"path/filepath"
	"time"

	"github.com/auditops/auditops/internal/seal"
	"github.com/auditops/auditops/internal/store"
	"github.com/auditops/auditops/internal/store/postgres"
	"github.com/auditops/auditops/internal/store/sqlite"
)

// ErrTokenKeyRequired is Open's error for a PostgreSQL store given neither a
// key nor a key file.
var ErrTokenKeyRequired = errors.New("a PostgreSQL store needs a page-token key file, the same on every replica")

// Options are how Open opens a store.
type Options struct {
	store.Options
	// TokenKeyFile holds the page-token key when Options.TokenKey is empty;
	// it is created (0600, random) when absent. "" is the URL's default,
	// Target.TokenKeyFile: TokenKeyName beside a SQLite database, none for
	// PostgreSQL (ErrTokenKeyRequired).
	TokenKeyFile string
	// ReadURL, when set, names a PostgreSQL hot standby of the store's
	// database that every read goes to (--store-read-url); the store
	// itself must then be PostgreSQL, its primary. See ForReports.
	ReadURL string
	// ReplayWait bounds a report's wait for the standby of ReadURL to
	// replay what it needs (0: postgres.DefaultReplayWait).
	ReplayWait time.Duration
}

// ErrReadURL is wrapped by Open's errors about Options.ReadURL.
var ErrReadURL = errors.New("read URL refused")

// Open opens the store at rawURL (see Parse), creating a SQLite database's
// directory (0700) when absent. Its errors show the URL through Redact.
func Open(ctx context.Context, rawURL string, opts Options) (store.Store, error) {
	t, err := Parse(rawURL)
	if err != nil {
		return nil, err
	}
	if t.Kind == SQLite {
		if err := os.MkdirAll(filepath.Dir(t.Source), 0o700); err != nil {
			return nil, fmt.Errorf("store %s: creating the database's directory: %w", urlredact.Redact(rawURL), err)
		}
	}
	if len(opts.TokenKey) == 0 {
		keyFile := opts.TokenKeyFile
		if keyFile == "" {
			keyFile = t.TokenKeyFile
		}
		if keyFile == "" {
			return nil, fmt.Errorf("store %s: %w", urlredact.Redact(rawURL), ErrTokenKeyRequired)
		}
		opts.TokenKey, err = store.LoadOrCreateTokenKey(keyFile)
		if err != nil {
			return nil, fmt.Errorf("store %s: %w", urlredact.Redact(rawURL), err)
		}
	}
	var read Target
	if opts.ReadURL != "" {
		if read, err = Parse(opts.ReadURL); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrReadURL, err)
		}
		if t.Kind != Postgres || read.Kind != Postgres {
			return nil, fmt.Errorf("store %s, read URL %s: %w: a read URL names a hot standby of a PostgreSQL store",
				urlredact.Redact(rawURL), urlredact.Redact(opts.ReadURL), ErrReadURL)
		}
	}
	var st store.Store
	switch t.Kind {
	case SQLite:
		st, err = sqlite.New(ctx, t.Source, opts.Options)
	case Postgres:
		var pg *postgres.Store
		pg, err = postgres.New(ctx, t.Source, opts.Options)
		st = pg
		if err == nil && opts.ReadURL != "" {
			st, err = postgres.NewReplicated(ctx, pg, read.Source, opts.ReplayWait)
			if err != nil {
				_ = pg.Close()
				return nil, fmt.Errorf("store %s, read URL %s: %w: %s", urlredact.Redact(rawURL), urlredact.Redact(opts.ReadURL),
					ErrReadURL, urlredact.Scrub(urlredact.Scrub(err.Error(), opts.ReadURL), rawURL))
			}
		}
	}
	if err != nil {
		// pgx redacts its own messages; this is a second guard, as a
		// password in a log is a leak wherever it came from.
		msg := urlredact.Scrub(err.Error(), rawURL)
		if msg != err.Error() {
			return nil, fmt.Errorf("store %s: %s", urlredact.Redact(rawURL), msg)
		}
		return nil, fmt.Errorf("store %s: %w", urlredact.Redact(rawURL), err)
	}
	return st, nil
}

// ForReports returns the view of st that reports read: for a store with a
// read URL, one whose reads wait until the standby holds every event the
// primary acknowledged before the report's window ended
// (postgres.Replicated.ForReports); st itself otherwise.
func ForReports(st store.Store) store.Store {
	if r, ok := st.(*postgres.Replicated); ok {
		return r.ForReports()
	}
	return st
}

// Logs returns the tamper-evident logs of st (spec/API.md 6): the primary's
// for a store with a read URL (the leader seals there); false for a store
// that keeps none.
func Logs(st store.Store) (seal.Log, bool) {
	if r, ok := st.(*postgres.Replicated); ok {
		return r.Primary(), true
	}
	l, ok := st.(seal.Log)
	return l, ok
}
