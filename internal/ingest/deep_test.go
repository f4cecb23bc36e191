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

package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	k8stypes "k8s.io/apimachinery/pkg/types"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"

	"github.com/auditops/auditops/internal/ingest/ingesttest"
	"github.com/auditops/auditops/internal/store"
)

// deepJSON is an object nested d levels: {"a":{"a":…{}…}}.
func deepJSON(d int) []byte {
	return []byte(strings.Repeat(`{"a":`, d-1) + "{}" + strings.Repeat("}", d-1))
}

// deepPatchBatch is what kube-apiserver's webhook sends when a user with
// the right to patch one ConfigMap sends a merge patch depth levels deep
// (kube-apiserver takes up to 10,000): an admin's delete, then the patch,
// encoded as kube-apiserver encodes them (encoding/json).
func deepPatchBatch(t *testing.T, depth int) (list []byte, lines []byte) {
	t.Helper()
	var victim auditv1.Event
	if err := json.Unmarshal([]byte(ingesttest.KubeItem("admin-delete", "prod-secret", 200, "")), &victim); err != nil {
		t.Fatal(err)
	}
	patch := victim
	patch.AuditID = k8stypes.UID("mallory-patch")
	patch.User.Username = "mallory"
	patch.Verb = "patch"
	patch.RequestObject = &runtime.Unknown{Raw: deepJSON(depth), ContentType: runtime.ContentTypeJSON}
	patch.ResponseObject = nil
	l := auditv1.EventList{Items: []auditv1.Event{victim, patch}}
	l.Kind, l.APIVersion = "EventList", "audit.k8s.io/v1"
	var err error
	if list, err = json.Marshal(&l); err != nil {
		t.Fatal(err)
	}
	for _, ev := range l.Items {
		b, err := json.Marshal(&ev)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(append(lines, b...), '\n')
	}
	return list, lines
}

// checkDeepStored: both events are stored; the patch's request object is
// whole below the decoder's depth, its marker (with the SHA-256 of the
// patch as sent) at it.
func checkDeepStored(t *testing.T, st store.Store, depth int) {
	t.Helper()
	got := map[string]store.Event{}
	for _, e := range ingesttest.StoredEvents(t, st, "team-a") {
		got[e.ID] = e
	}
	if _, ok := got["admin-delete"]; !ok || len(got) != 2 {
		t.Fatalf("depth %d: stored %d events (%v), want the delete and the patch", depth, len(got), got)
	}
	req := got["mallory-patch"].Request
	sum := sha256.Sum256(deepJSON(depth))
	cut := bytes.Contains(req, []byte(`"sha256":"`+hex.EncodeToString(sum[:])+`"`))
	if want := depth >= 10000; cut != want {
		t.Fatalf("depth %d: request object cut %v, want %v (%.80s…)", depth, cut, want, req)
	}
}

// TestDeepObjectKeepsItsBatch: a request object kube-apiserver took (a
// patch 10,000 levels deep) is one level too deep for encoding/json inside
// its item. It is cut to its marker, on every kube path, rather than cost
// the batch: a refused webhook batch is lost (an attacker review found a
// ConfigMap patch that dropped an admin's delete in the same batch).
func TestDeepObjectKeepsItsBatch(t *testing.T) {
	for _, depth := range []int{9999, 10000} {
		list, lines := deepPatchBatch(t, depth)
		for _, sizeHint := range []int64{int64(len(list)), -1} { // the fast path's fallback, and streaming
			st := ingesttest.NewStore(t)
			res, err := NewService(st, Options{}).KubeAudit(context.Background(), bytes.NewReader(list), sizeHint)
			if err != nil || res.Stored != 2 {
				t.Fatalf("depth %d, size hint %d: %+v, %v", depth, sizeHint, res, err)
			}
			checkDeepStored(t, st, depth)
		}
		path := filepath.Join(t.TempDir(), "audit.log")
		if err := os.WriteFile(path, lines, 0o600); err != nil {
			t.Fatal(err)
		}
		st := ingesttest.NewStore(t)
		if stats, err := Import(context.Background(), st, FormatKubeAudit, []string{path}, ImportOptions{}); err != nil || stats.Stored != 2 {
			t.Fatalf("depth %d: import: %+v, %v", depth, stats, err)
		}
		checkDeepStored(t, st, depth)
	}
}
