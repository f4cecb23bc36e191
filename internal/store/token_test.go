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

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"
)

func TestTokenRoundTrip(t *testing.T) {
	c, err := NewTokenCodec(bytes.Repeat([]byte{7}, 32), 0)
	if err != nil {
		t.Fatal(err)
	}
	scope := TokenScope{View: "v", Namespace: "team-a", From: 1, To: 99, Filters: []string{"access", ""}, PageSize: 10}
	for _, cur := range []Cursor{
		{},
		{Time: -5, Seq: 1 << 62},
		{Time: 1700000000123456789, Seq: 3, Keys: []string{"alice", "", "/pods/exec", "success"}},
	} {
		tok := c.Encode(scope, cur)
		if !regexp.MustCompile(`^[A-Za-z0-9_-]+$`).MatchString(tok) {
			t.Fatalf("token %q is not URL-safe base64", tok)
		}
		got, err := c.Decode(tok, scope)
		if err != nil {
			t.Fatalf("Decode: %v", err)
		}
		if got.Time != cur.Time || got.Seq != cur.Seq || len(got.Keys) != len(cur.Keys) {
			t.Fatalf("Decode = %+v, want %+v", got, cur)
		}
		for i := range cur.Keys {
			if got.Keys[i] != cur.Keys[i] {
				t.Fatalf("Decode = %+v, want %+v", got, cur)
			}
		}
	}
}

func TestTokenRejects(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	c, _ := NewTokenCodec(key, 0)
	scope := TokenScope{View: "v", Namespace: "team-a", From: 1, To: 99, Filters: []string{"access", "bob"}, PageSize: 10}
	tok := c.Encode(scope, Cursor{Time: 42, Seq: 7, Keys: []string{"k"}})
	other, _ := NewTokenCodec(bytes.Repeat([]byte{8}, 32), 0)
	raw, _ := base64.RawURLEncoding.DecodeString(tok)

	cases := map[string]struct {
		token string
		scope TokenScope
		codec *TokenCodec
	}{
		"empty":          {"", scope, c},
		"garbage":        {"!!!!", scope, c},
		"padding":        {tok + "=", scope, c},
		"too long":       {string(bytes.Repeat([]byte{'A'}, MaxTokenLen+1)), scope, c},
		"other key":      {tok, scope, other},
		"other view":     {tok, TokenScope{View: "w", Namespace: "team-a", From: 1, To: 99, Filters: []string{"access", "bob"}, PageSize: 10}, c},
		"other tenant":   {tok, TokenScope{View: "v", Namespace: "team-b", From: 1, To: 99, Filters: []string{"access", "bob"}, PageSize: 10}, c},
		"other from":     {tok, TokenScope{View: "v", Namespace: "team-a", From: 2, To: 99, Filters: []string{"access", "bob"}, PageSize: 10}, c},
		"other to":       {tok, TokenScope{View: "v", Namespace: "team-a", From: 1, To: 98, Filters: []string{"access", "bob"}, PageSize: 10}, c},
		"other filter":   {tok, TokenScope{View: "v", Namespace: "team-a", From: 1, To: 99, Filters: []string{"user", "bob"}, PageSize: 10}, c},
		"shifted filter": {tok, TokenScope{View: "v", Namespace: "team-a", From: 1, To: 99, Filters: []string{"accessbob", ""}, PageSize: 10}, c},
		"other size":     {tok, TokenScope{View: "v", Namespace: "team-a", From: 1, To: 99, Filters: []string{"access", "bob"}, PageSize: 11}, c},
		"truncated":      {tok[:len(tok)-1], scope, c},
		"appended":       {base64.RawURLEncoding.EncodeToString(append(bytes.Clone(raw), 0)), scope, c},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := tc.codec.Decode(tc.token, tc.scope); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Decode = %v, want ErrInvalidToken", err)
			}
		})
	}
	t.Run("every byte flipped", func(t *testing.T) {
		for i := range raw {
			for _, mask := range []byte{0x01, 0x80, 0xff} {
				b := bytes.Clone(raw)
				b[i] ^= mask
				if _, err := c.Decode(base64.RawURLEncoding.EncodeToString(b), scope); !errors.Is(err, ErrInvalidToken) {
					t.Fatalf("byte %d ^ %#x: Decode = %v, want ErrInvalidToken", i, mask, err)
				}
			}
		}
	})
	t.Run("every character changed", func(t *testing.T) {
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		for i := range tok {
			for _, r := range alphabet {
				if byte(r) == tok[i] {
					continue
				}
				bad := tok[:i] + string(r) + tok[i+1:]
				if _, err := c.Decode(bad, scope); !errors.Is(err, ErrInvalidToken) {
					t.Fatalf("char %d -> %c: Decode = %v, want ErrInvalidToken", i, r, err)
				}
			}
		}
	})
}

func TestTokenExpiry(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c, _ := NewTokenCodec(bytes.Repeat([]byte{1}, 16), time.Hour)
	c = c.WithClock(func() time.Time { return now })
	scope := TokenScope{View: "v", PageSize: 1}
	tok := c.Encode(scope, Cursor{Seq: 1})
	now = now.Add(time.Hour)
	if _, err := c.Decode(tok, scope); err != nil {
		t.Fatalf("at max age: %v", err)
	}
	now = now.Add(time.Second)
	if _, err := c.Decode(tok, scope); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("past max age: Decode = %v, want ErrInvalidToken", err)
	}
}

func TestNewTokenCodecShortKey(t *testing.T) {
	if _, err := NewTokenCodec(make([]byte, MinTokenKeySize-1), 0); err == nil {
		t.Fatal("short key accepted")
	}
}

func TestLoadOrCreateTokenKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.db.token-key")

	var wg sync.WaitGroup
	keys := make([][]byte, 8)
	for i := range keys {
		wg.Go(func() {
			k, err := LoadOrCreateTokenKey(path)
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		})
	}
	wg.Wait()
	for _, k := range keys {
		if len(k) != TokenKeySize || !bytes.Equal(k, keys[0]) {
			t.Fatalf("concurrent callers got different keys: %x vs %x", k, keys[0])
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", st.Mode().Perm())
	}
	again, err := LoadOrCreateTokenKey(path)
	if err != nil || !bytes.Equal(again, keys[0]) {
		t.Fatalf("reload = %x, %v; want %x", again, err, keys[0])
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("temporary files left behind: %v", ents)
	}

	short := filepath.Join(dir, "short")
	if err := os.WriteFile(short, []byte("too short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateTokenKey(short); err == nil {
		t.Fatal("short key file accepted")
	}
	if _, err := LoadOrCreateTokenKey(filepath.Join(dir, "missing-dir", "key")); err == nil {
		t.Fatal("key in a missing directory: no error")
	}
}

func TestNormalizeEvent(t *testing.T) {
	good := Event{ID: "1", Namespace: "ns", User: "u", Status: StatusSuccess,
		Time: time.Date(2024, 5, 22, 1, 2, 3, 4, time.FixedZone("x", 3600)), Request: []byte{}}
	e, err := NormalizeEvent(good)
	if err != nil {
		t.Fatal(err)
	}
	if e.Category != CategoryData || e.Time.Location() != time.UTC || !e.Time.Equal(good.Time) || e.Request != nil {
		t.Fatalf("NormalizeEvent = %+v", e)
	}
	errStr := "a\x00b"
	cases := map[string]func(*Event){
		"no id":                     func(e *Event) { e.ID = "" },
		"no namespace":              func(e *Event) { e.Namespace = "" },
		"no user":                   func(e *Event) { e.User = "" },
		"no time":                   func(e *Event) { e.Time = time.Time{} },
		"time too late":             func(e *Event) { e.Time = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC) },
		"time at the largest int64": func(e *Event) { e.Time = MaxEventTime },
		"time before 1970":          func(e *Event) { e.Time = MinEventTime.Add(-time.Nanosecond) },
		"bad status":                func(e *Event) { e.Status = "ok" },
		"no status":                 func(e *Event) { e.Status = "" },
		"bad category":              func(e *Event) { e.Category = "Access" },
		"bad json":                  func(e *Event) { e.Response = []byte("{") },
		"bad utf8":                  func(e *Event) { e.Message = "\xff" },
		"nul":                       func(e *Event) { e.Error = &errStr },
		"long id":                   func(e *Event) { e.ID = string(bytes.Repeat([]byte{'x'}, MaxIDLen+1)) },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			e := good
			mutate(&e)
			if _, err := NormalizeEvent(e); !errors.Is(err, ErrInvalidEvent) {
				t.Fatalf("NormalizeEvent = %v, want ErrInvalidEvent", err)
			}
		})
	}
}
