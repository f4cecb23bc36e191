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
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestSchemaGate: a change or a check that fails closes the gate
// (unavailable); a failed check is not kept, a result is for Interval.
func TestSchemaGate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		results []func() ([]string, error) // the checks' in turn
		want    []string                   // "" open, else a part of the error, per call
		calls   int                        // checks run over the calls
	}{
		{"clean, kept for the interval", []func() ([]string, error){func() ([]string, error) { return nil, nil }}, []string{"", ""}, 1},
		{"changed", []func() ([]string, error){func() ([]string, error) { return []string{"trigger \"x\" on events was added"}, nil }},
			[]string{"schema was changed", "schema was changed"}, 1},
		{"a check that fails, then passes", []func() ([]string, error){
			func() ([]string, error) { return nil, errors.New("canceling statement due to statement timeout") },
			func() ([]string, error) { return nil, nil }},
			[]string{"statement timeout", ""}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			g := &SchemaGate{Interval: time.Hour, Check: func(context.Context) ([]string, error) {
				r := tc.results[min(calls, len(tc.results)-1)]
				calls++
				return r()
			}}
			for i, want := range tc.want {
				err := g.Err(t.Context())
				switch {
				case want == "" && err != nil:
					t.Fatalf("call %d: %v, want open", i, err)
				case want != "" && (!errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), want)):
					t.Fatalf("call %d: %v, want unavailable: %q", i, err, want)
				}
			}
			if calls != tc.calls {
				t.Fatalf("%d checks, want %d", calls, tc.calls)
			}
		})
	}
}

// TestSchemaGateWaitsNoLongerThanItsCaller: a check stuck (behind a lock)
// holds no write past its own context; they all take the one check's
// verdict once it ends.
func TestSchemaGateWaitsNoLongerThanItsCaller(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int32
	g := &SchemaGate{Interval: time.Hour, Check: func(context.Context) ([]string, error) {
		calls.Add(1)
		<-release
		return nil, nil
	}}
	start := time.Now()
	for range 3 {
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		err := g.Err(ctx)
		cancel()
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("behind a stuck check: %v, want unavailable", err)
		}
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("three callers of 50 ms took %s", took)
	}
	close(release)
	if err := g.Err(t.Context()); err != nil {
		t.Fatalf("once the check ended: %v", err)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d checks ran, want the one", n)
	}
}
