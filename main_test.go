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

package main

import (
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// TestPageTokensExpireByDefault: spec/API.md 3 says tokens expire after
// --page-token-ttl, default 24h; before the flag they never did.
func TestPageTokensExpireByDefault(t *testing.T) {
	fs := pflag.NewFlagSet("manager", pflag.ContinueOnError)
	var o storeOptions
	o.addFlags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if o.tokenTTL != 24*time.Hour {
		t.Fatalf("--page-token-ttl defaults to %s, want 24h", o.tokenTTL)
	}
	if err := fs.Parse([]string{"--page-token-ttl=0"}); err != nil || o.tokenTTL != 0 {
		t.Fatalf("--page-token-ttl=0: %v, %s", err, o.tokenTTL)
	}
}
