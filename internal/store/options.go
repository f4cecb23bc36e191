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

package store

import "time"

// Defaults of Options.
const (
	// DefaultSessionGap is the longest pause between two events of one user
	// that still counts as one session (spec/API.md 3.1, --session-gap).
	DefaultSessionGap = 30 * time.Minute
	// DefaultBusyTimeout bounds how long a call waits for the database (a
	// lock, a connection) before it fails with ErrUnavailable.
	DefaultBusyTimeout = 5 * time.Second
	// DefaultPageTokenTTL is --page-token-ttl's default (spec/API.md 3: an
	// expired token is a 400).
	DefaultPageTokenTTL = 24 * time.Hour
	// DefaultMaxPageBytes is MaxPageBytes' default: 8 MiB of row data a
	// page (a full page of the largest size, 10,000 rows, with 256 KiB
	// payloads would be gigabytes).
	DefaultMaxPageBytes = 8 << 20
)

// Options configure a store backend.
type Options struct {
	// TokenKey signs page tokens (HMAC-SHA256), at least MinTokenKeySize
	// bytes. Every replica serving one database needs the same key.
	TokenKey []byte
	// TokenMaxAge, when > 0, makes page tokens older than it invalid.
	// 0 (the default) keeps tokens valid for as long as the key is.
	TokenMaxAge time.Duration
	// SessionGap splits a user's events into sessions for logged_in_time:
	// events more than SessionGap apart are in different sessions.
	// 0 means DefaultSessionGap.
	SessionGap time.Duration
	// BusyTimeout bounds the wait for a lock or a connection; past it a call
	// fails with an error wrapping ErrUnavailable. 0 means DefaultBusyTimeout.
	BusyTimeout time.Duration
	// MaxPageBytes caps the row data of one page (see Page): a page ends
	// early, with a next-page token, before a row that would pass it.
	// 0 means DefaultMaxPageBytes.
	MaxPageBytes int
	// DayPartitions (PostgreSQL only) has Maintain make a partition for
	// each UTC day, so that retention drops whole days and a query reads
	// only its window's days. Off by default: the reuse probe of every
	// insert looks an id up in each partition's index, and at a month of
	// days that cost 40% of webhook ingest (bench/README.md).
	DayPartitions bool
	// Leaves, when set, makes the tamper-evidence leaf of every event
	// Insert stores, in the event's transaction (spec/API.md 6): the
	// manager passes seal.LeafMaker with its seal keyring. Nil stores no
	// leaves (sealing off).
	Leaves LeafMaker
	// SchemaCheckInterval is how often, at most, ingest checks that the
	// store's schema is the one its migrations made (SchemaGate). 0 means
	// DefaultSchemaCheckInterval.
	SchemaCheckInterval time.Duration
	// OnError, when set, hears the failures of work a store does in the
	// background, which no call returns: making a payload dictionary
	// (internal/store/payload; the store goes on compressing without it),
	// SQLite's merges of its tiers of ids (tried again after the next
	// commit).
	OnError func(error)
}

// LeafMaker makes an event's leaf of the tamper-evident log. The store
// calls Prepare before its write transaction, off the single writer's
// time, and Leaf inside it, once the event's seq is assigned.
type LeafMaker interface {
	Prepare(e *Event) (PreparedLeaf, error)
}

// PreparedLeaf is an event's leaf up to its seq.
type PreparedLeaf interface {
	// Leaf returns the leaf of the event stored as seq: its encoding
	// version, data (time and digest) and MAC.
	Leaf(seq int64) (version int, data, mac []byte)
}

// WithDefaults returns o with every zero field set to its default.
func (o Options) WithDefaults() Options {
	if o.SessionGap <= 0 {
		o.SessionGap = DefaultSessionGap
	}
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = DefaultBusyTimeout
	}
	if o.MaxPageBytes <= 0 {
		o.MaxPageBytes = DefaultMaxPageBytes
	}
	if o.SchemaCheckInterval <= 0 {
		o.SchemaCheckInterval = DefaultSchemaCheckInterval
	}
	return o
}
