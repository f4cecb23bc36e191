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

package sealkey

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"golang.org/x/mod/sumdb/note"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/auditops/auditops/internal/seal"
)

// HeadsConfigMapName holds, in the admin namespace, the signed note of the
// newest checkpoint of each log the leader signed or checked, one key per
// namespace. It lives in etcd, outside the store: a leader that starts
// holds each log to it (seal.Sealer.Witness), so a log cut back or wiped
// behind the manager's back while no manager ran is refused, also where
// no report read it.
const HeadsConfigMapName = "auditops-seal-heads"

// maxHeadsBytes bounds the notes one ConfigMap holds, below the API
// server's 1 MiB for an object: about 3,000 namespaces. Past it, the
// namespaces that sort last are left out (Save says how many).
const maxHeadsBytes = 900 << 10

// Heads reads and writes HeadsConfigMapName.
type Heads struct {
	Reader    client.Reader // uncached: the manager's API reader
	Writer    client.Writer
	Namespace string
}

// Save writes notes (namespace to signed note) into the ConfigMap,
// creating it when absent and leaving it alone when it holds them already;
// namespaces it has no note of keep theirs (another leader may have
// published logs this one never sealed since it started). It returns how
// many namespaces did not fit.
func (h Heads) Save(ctx context.Context, notes map[string][]byte) (int, error) {
	dropped := 0
	err := applyConfigMap(ctx, h.Reader, h.Writer, client.ObjectKey{Namespace: h.Namespace, Name: HeadsConfigMapName},
		func(data map[string]string) {
			for ns, n := range notes {
				data[ns] = string(n)
			}
			total := 0
			for _, ns := range slices.Sorted(maps.Keys(data)) {
				if total += len(ns) + len(data[ns]); total > maxHeadsBytes {
					delete(data, ns)
					dropped++
				}
			}
		})
	return dropped, err
}

// Load returns the checkpoints the ConfigMap holds whose notes a key of vs
// signed (none when it is absent), and the namespaces whose notes do not
// verify: left out, since a note no key signed could be anyone's.
func (h Heads) Load(ctx context.Context, vs note.Verifiers) (cps []seal.Checkpoint, bad []string, err error) {
	var cm corev1.ConfigMap
	err = h.Reader.Get(ctx, client.ObjectKey{Namespace: h.Namespace, Name: HeadsConfigMapName}, &cm)
	if apierrors.IsNotFound(err) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading ConfigMap %s/%s: %w", h.Namespace, HeadsConfigMapName, err)
	}
	for _, ns := range slices.Sorted(maps.Keys(cm.Data)) {
		cp, err := seal.Open([]byte(cm.Data[ns]), vs)
		if err != nil {
			bad = append(bad, ns)
			continue
		}
		cps = append(cps, cp)
	}
	return cps, bad, nil
}
