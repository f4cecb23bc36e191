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
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestWriteHealth(t *testing.T) {
	unavailable := fmt.Errorf("disk full: %w", ErrUnavailable)
	for _, tc := range []struct {
		name    string
		writes  func(h *WriteHealth) // what happened before Check
		healthy bool
	}{
		{"no write yet", func(*WriteHealth) {}, true},
		{"a write succeeded", func(h *WriteHealth) { h.Begin()(nil) }, true},
		{"a write ran short", func(h *WriteHealth) { h.Begin() }, true},
		{"a write runs past the limit", func(h *WriteHealth) { h.Begin(); time.Sleep(60 * time.Millisecond) }, false},
		{"the last write was unavailable", func(h *WriteHealth) { h.Begin()(unavailable) }, false},
		{"a success after a failure", func(h *WriteHealth) { h.Begin()(unavailable); h.Begin()(nil) }, true},
		{"a failure after a success", func(h *WriteHealth) { h.Begin()(nil); h.Begin()(unavailable) }, false},
		{"a failure older than the window", func(h *WriteHealth) { h.Begin()(unavailable); time.Sleep(250 * time.Millisecond) }, true},
		{"most writes of the window failed", func(h *WriteHealth) { h.Begin()(unavailable, unavailable, nil); h.Begin()(unavailable); h.Begin()(nil) }, false},
		{"most writes of the window succeeded", func(h *WriteHealth) { h.Begin()(unavailable, nil, nil); h.Begin()(unavailable); h.Begin()(nil) }, true},
		{"a group mostly written, its failure last", func(h *WriteHealth) { h.Begin()(nil, nil, nil, unavailable) }, true},
		{"an outage after many successes", func(h *WriteHealth) {
			h.Begin()(unavailable)
			for range 3000 {
				h.Begin()(nil)
			}
			h.Begin()(unavailable)
		}, false},
		{"failures before the window do not count", func(h *WriteHealth) {
			h.Begin()(unavailable, unavailable)
			time.Sleep(250 * time.Millisecond)
			h.Begin()(nil)
		}, true},
		{"a client's error is not the store's", func(h *WriteHealth) { h.Begin()(ErrInvalidEvent) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &WriteHealth{Limit: 50 * time.Millisecond, Window: 200 * time.Millisecond}
			tc.writes(h)
			err := h.Check()
			if (err == nil) != tc.healthy {
				t.Fatalf("Check() = %v, want healthy %v", err, tc.healthy)
			}
			if err != nil && !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Check() = %v, does not wrap ErrUnavailable", err)
			}
		})
	}
}
