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
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"
)

// TestContentHashGolden pins ContentHash's bytes: every stored event's
// content key was made with them (in Go, and in the migrations' SQL), so
// a re-send of any of them is a duplicate only while they stay.
func TestContentHashGolden(t *testing.T) {
	errv := "boom"
	full := Event{ID: "a1", Namespace: "team-a", Time: time.Unix(1716372000, 123456789), User: "alice",
		Principal: json.RawMessage(`{"user":"alice"}`), Method: "create", API: "/api/v1/pods", Status: StatusFailure,
		StatusCode: 403, Category: CategoryAccess, EntityKind: "pods", EntityID: "team-a/web", Message: "denied",
		Request: json.RawMessage(`{"a":1}`), Response: json.RawMessage(`[]`), PreviousState: json.RawMessage(`null`),
		CurrentState: json.RawMessage(`"s"`), Error: &errv, DeviceID: "10.0.0.1", CertificateSerialNumber: "42",
		IssuerDN: "CN=x", Details: "ua", Archived: true}
	for _, tc := range []struct {
		name string
		e    Event
		want string
	}{
		{"every field", full, "e35685a687557698c731f2db037adf0902b5f5fe30219a53dee8850bf0704dfa"},
		{"none but the required", Event{ID: "b", Namespace: "n", Time: time.Unix(0, 1), User: "u", Status: StatusSuccess}, "0c44e26832574e84ed8cb840236e794f304a18bd7abe3e2542f1889d31d7b987"},
	} {
		h := ContentHash(&tc.e)
		if got := hex.EncodeToString(h[:]); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func BenchmarkContentHash(b *testing.B) {
	e := Event{ID: "0b6e7c1e-6f5d-4e0a-9d5b-1f1f2e3d4c5b", Namespace: "team-a", Time: time.Unix(1716372000, 123456789),
		User: "system:serviceaccount:team-a:deployer", Principal: json.RawMessage(`{"username":"system:serviceaccount:team-a:deployer","groups":["system:serviceaccounts"]}`),
		Method: "update", API: "/apis/apps/v1/namespaces/team-a/deployments/web", Status: StatusSuccess, StatusCode: 200,
		EntityKind: "deployments", EntityID: "team-a/web", DeviceID: "10.0.0.1", Details: "kubectl/v1.37.1",
		Request: json.RawMessage(`{"kind":"Deployment","spec":{"replicas":3,"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.27"}]}}}}`)}
	b.ReportAllocs()
	for b.Loop() {
		ContentHash(&e)
	}
}
