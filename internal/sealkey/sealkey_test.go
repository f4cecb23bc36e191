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
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/auditops/auditops/internal/seal"
)

// One real control plane (hack/build-control-plane.sh) for the package.
var k8sClient client.Client

func TestMain(m *testing.M) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "KUBEBUILDER_ASSETS is not set: run the tests with 'make test', which builds the control plane into bin/k8s")
		os.Exit(1)
	}
	env := &envtest.Environment{}
	cfg, err := env.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the control plane:", err)
		os.Exit(1)
	}
	k8sClient, err = client.New(cfg, client.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "creating client:", err)
		os.Exit(1)
	}
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
	}
	os.Exit(code)
}

func newNamespace(t *testing.T, prefix string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	if err := k8sClient.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// TestFirstStartRotatePublish: replicas starting together create one
// keyring; its verifier keys are published; after a rotation the new key
// is current, a checkpoint the old key signed still verifies with what is
// published, and leaves the old key made still check.
func TestFirstStartRotatePublish(t *testing.T) {
	ctx := context.Background()
	c := InCluster{Client: k8sClient, Namespace: newNamespace(t, "seal-system"), PublishNamespace: newNamespace(t, "seal-admin")}

	const replicas = 3
	rings := make([]*seal.Keyring, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Go(func() {
			kr, err := c.Load(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			rings[i] = kr
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for i := range replicas {
		if rings[i].Current.Verifier() != rings[0].Current.Verifier() {
			t.Fatalf("replica %d loaded key %s, replica 0 %s", i, rings[i].Current.Verifier(), rings[0].Current.Verifier())
		}
	}
	first := rings[0]
	if err := c.Publish(ctx, first); err != nil {
		t.Fatal(err)
	}
	pub, err := c.Published(ctx)
	if err != nil || !slices.Equal(pub, first.VerifierKeys()) {
		t.Fatalf("published %v (%v), want %v", pub, err, first.VerifierKeys())
	}

	cp := seal.Checkpoint{Origin: "auditops/team-a", Size: 1, Root: seal.LeafHash([]byte("x")), Time: time.Now()}
	old, err := first.Current.Sign(cp)
	if err != nil {
		t.Fatal(err)
	}
	mac := first.Current.LeafMAC("team-a", 1, seal.EncodingV1, []byte("leaf"))

	rotated, err := c.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctx, rotated); err != nil {
		t.Fatal(err)
	}
	reloaded, err := c.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if reloaded.Current.Verifier() == first.Current.Verifier() || reloaded.Current.Verifier() != rotated.Current.Verifier() {
		t.Fatalf("after the rotation the current key is %s (was %s)", reloaded.Current.Verifier(), first.Current.Verifier())
	}
	pub, err = c.Published(ctx)
	if err != nil || len(pub) != 2 || pub[0] != rotated.Current.Verifier() || pub[1] != first.Current.Verifier() {
		t.Fatalf("published after the rotation %v (%v)", pub, err)
	}
	// A leader that loaded the ring before the rotation (a replica not
	// restarted since) keeps the new key published.
	if err := c.Publish(ctx, first); err != nil {
		t.Fatal(err)
	}
	if again, err := c.Published(ctx); err != nil || !slices.Equal(again, pub) {
		t.Fatalf("published by a leader holding the ring from before the rotation: %v (%v); want %v", again, err, pub)
	}
	vs, err := seal.Verifiers(pub...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := seal.Open(old, vs); err != nil {
		t.Fatalf("a checkpoint of the old key: %v", err)
	}
	newer, _ := reloaded.Current.Sign(cp)
	if _, err := seal.Open(newer, vs); err != nil {
		t.Fatalf("a checkpoint of the new key: %v", err)
	}
	if !reloaded.CheckLeafMAC("team-a", 1, seal.EncodingV1, []byte("leaf"), mac) {
		t.Fatal("a leaf the old key made does not check after the rotation")
	}
	if reloaded.Current.CheckLeafMAC("team-a", 1, seal.EncodingV1, []byte("leaf"), mac) {
		t.Fatal("the new key checks the old key's MAC")
	}
}

func TestLoadRefusesABrokenSecret(t *testing.T) {
	ctx := context.Background()
	c := InCluster{Client: k8sClient, Namespace: newNamespace(t, "seal-broken")}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: c.Namespace, Name: SecretName},
		Data: map[string][]byte{KeyringKey: []byte("not a key\n")}}
	if err := k8sClient.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Load(ctx); err == nil {
		t.Fatal("loaded a Secret that holds no key")
	}
	// The Secret is left as it is: replacing it would lose whatever key
	// signed the checkpoints so far.
	var got corev1.Secret
	if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(s), &got); err != nil || string(got.Data[KeyringKey]) != "not a key\n" {
		t.Fatalf("the Secret changed: %q, %v", got.Data[KeyringKey], err)
	}
}

func TestLoadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seal.key")
	a, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if a.Current.Verifier() != b.Current.Verifier() {
		t.Fatal("the key file changed between loads")
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v", st.Mode(), err)
	}
}

// TestRotateFile: a rotation keeps the old keys (a leaf the old key made
// still checks) and makes a new current one, in a file replaced whole with
// mode 0600; the next load reads the rotated ring.
func TestRotateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seal.key")
	old, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	mac := old.Current.LeafMAC("team-a", 1, seal.EncodingV1, []byte("data"))
	rotated, err := RotateFile(path)
	if err != nil {
		t.Fatal(err)
	}
	again, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if again.Current.Verifier() != rotated.Current.Verifier() || rotated.Current.Verifier() == old.Current.Verifier() {
		t.Fatalf("current keys: old %s, rotated %s, loaded %s", old.Current.Verifier(), rotated.Current.Verifier(), again.Current.Verifier())
	}
	if keys := again.VerifierKeys(); len(keys) != 2 || keys[1] != old.Current.Verifier() {
		t.Fatalf("verifier keys after a rotation: %v", keys)
	}
	if !again.CheckLeafMAC("team-a", 1, seal.EncodingV1, []byte("data"), mac) {
		t.Fatal("a leaf the old key made no longer checks")
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v", st.Mode(), err)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".seal.key.tmp-*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}
