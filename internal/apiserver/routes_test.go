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

package apiserver

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRouteTableDerivations: the prefixes, shapes and discovery derived
// from routeTable agree with it: every pattern is owned (so its route
// authorizes it) and has its route's shape, and every group resource is
// listed with the verbs its routes check.
func TestRouteTableDerivations(t *testing.T) {
	for _, rt := range routeTable {
		for _, p := range rt.patterns() {
			path := strings.NewReplacer("{ns}", "team-a", "{accountId}", "team-a", "{userId}", "alice", "{tenantId}", "team-a", "{userName}", "alice").Replace(p)
			if !ownsPath(path) {
				t.Errorf("%s %s is not under an owned prefix %v", rt.method, p, ownedPrefixes)
			}
			if sh, ok := shapeOf(path); !ok || sh != rt.shape {
				t.Errorf("%s: shape %v %v, want %v", path, sh, ok, rt.shape)
			}
		}
	}
	for _, tc := range []struct {
		path  string
		shape shape
		ok    bool
	}{
		{"/network/audit/nothing-here", shapeMessage, true},
		{"/api/vault/other", shapeProtecto, true},
		{"/digitanium/v9", shapeKobil, true},
		{groupVersionPath + "/namespaces/team-a/unknown", 0, false},
		{"/healthz", 0, false},
	} {
		if sh, ok := shapeOf(tc.path); ok != tc.ok || (ok && sh != tc.shape) {
			t.Errorf("shapeOf(%s) = %v %v, want %v %v", tc.path, sh, ok, tc.shape, tc.ok)
		}
	}
	want := map[string]string{resSummaries: "get,list", resAuditDetails: "get,list", resUserAccess: "get,list",
		resUsers: "get,list", resUserLogs: "get,list", resEvents: "create",
		resCheckpoints: "list", resLeaves: "list", resProofs: "list"}
	if len(groupResources) != len(want) {
		t.Errorf("discovery lists %d resources, want %d: %+v", len(groupResources), len(want), groupResources)
	}
	for _, r := range groupResources {
		if got := strings.Join(r.verbs, ","); got != want[r.name] || r.kind == "" {
			t.Errorf("discovery: %s verbs %s kind %q, want %s", r.name, got, r.kind, want[r.name])
		}
	}
}

// TestHandlerChainPinnedToUpstream: buildHandlerChain is
// k8s.io/apiserver's DefaultBuildHandlerChain (pkg/server/config.go) with
// three changes it documents; the upstream builder cannot be used because
// it authorizes every path by its RequestInfo (our seed paths carry their
// tenant in a query parameter, a path segment or the Host), falls back to
// the anonymous user, and puts ingest in the shared in-flight pool. A new
// k8s.io/apiserver may add or reorder filters: this test fails until the
// copy has been compared with the new upstream chain and the pin moved.
func TestHandlerChainPinnedToUpstream(t *testing.T) {
	const copiedFrom = "v0.37.1"
	raw, err := os.ReadFile(filepath.Join("..", "..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 || fields[0] != "k8s.io/apiserver" {
			continue
		}
		if fields[1] != copiedFrom {
			t.Fatalf("go.mod requires k8s.io/apiserver %s; buildHandlerChain copies DefaultBuildHandlerChain of %s: compare the two chains, carry over what changed, then update copiedFrom", fields[1], copiedFrom)
		}
		return
	}
	t.Fatal("go.mod does not require k8s.io/apiserver")
}
