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

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// TestLargeConfigMapsCannotHideAnAction is the attack of the integrity
// issue: a user creates ~40 ConfigMaps of ~1 MiB inside one audit batch
// window, so that the webhook batch that also carries a small create
// would be larger than any body limit and refused whole (kube-apiserver
// never retries a 4xx). Every create must reach audit-details, the big
// ones with auditops' truncation marker in place of their objects, and the
// small one with its object.
func TestLargeConfigMapsCannotHideAnAction(t *testing.T) {
	ns := "big-" + strconv.FormatInt(time.Now().UnixNano()%1e6, 10)
	k(t, "create", "namespace", ns)
	cfg, err := clientcmd.BuildConfigFromFlags("", kubecfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 200, 200
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const n = 40
	blob := strings.Repeat("x", 1000<<10) // ConfigMaps hold at most 1 MiB
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, n+1)
	start := time.Now()
	for i := range n {
		wg.Go(func() {
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("big-%02d", i)}, Data: map[string]string{"blob": blob}}
			if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
				errs <- err
			}
		})
	}
	wg.Go(func() {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "the-small-one"}, Data: map[string]string{"k": "v"}}
		if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			errs <- err
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("create: %v", err)
	}
	t.Logf("%d ConfigMaps of ~1 MiB and a small one created in %s", n, time.Since(start).Round(time.Millisecond))

	var creates []auditDetail
	eventually(t, 90*time.Second, "every create to reach audit-details", func() (bool, string) {
		rows, out, err := auditDetails(ns)
		if err != nil {
			return false, out
		}
		creates = creates[:0]
		for _, d := range rows {
			if d.Method == "create" && d.Status == "success" {
				creates = append(creates, d)
			}
		}
		return len(creates) >= n+1, fmt.Sprintf("%d of %d creates", len(creates), n+1)
	})
	marked, small := 0, 0
	for _, d := range creates {
		var m map[string]any
		if err := json.Unmarshal(d.Payload, &m); err != nil {
			t.Fatalf("input_payload %.200s: %v", d.Payload, err)
		}
		switch {
		case m["auditops.dev/truncated"] == true:
			if m["bytes"].(float64) < 1000<<10 || len(m["sha256"].(string)) != 64 {
				t.Errorf("marker %s lacks the object's size or digest", d.Payload)
			}
			marked++
		case strings.Contains(string(d.Payload), "the-small-one"):
			small++
		}
	}
	if marked != n || small != 1 {
		t.Fatalf("audit-details: %d creates with the truncation marker (want %d), %d small create with its object (want 1)", marked, n, small)
	}
}
