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

// Package sealkey keeps the seal keyring (spec/API.md section 6): in
// Secret auditops-seal-key of the manager's namespace, created at first
// start, or in a file outside a cluster (--seal-key-file); and publishes
// its verifier keys in ConfigMap auditops-seal-verifier of the admin
// namespace, for anyone who checks checkpoints.
package sealkey

import (
	"context"
	"crypto/rand"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/auditops/auditops/internal/keyfile"
	"github.com/auditops/auditops/internal/seal"
)

const (
	// SecretName holds the keyring, key KeyringKey: signer keys, one per
	// line, the current one first.
	SecretName = "auditops-seal-key"
	KeyringKey = "keyring"
	// ConfigMapName publishes the verifier keys, key VerifierKey: one per
	// line, the current one first.
	ConfigMapName = "auditops-seal-verifier"
	VerifierKey   = "verifier"
)

// InCluster is where a cluster keeps the keyring and its verifier keys.
// Its client must read Secrets uncached (the manager's does).
type InCluster struct {
	Client client.Client
	// Namespace holds the Secret: the manager's.
	Namespace string
	// PublishNamespace holds the ConfigMap: the admin namespace.
	PublishNamespace string
}

// Load returns the keyring, creating the Secret with a new key when it is
// absent: replicas that start together all end up with the first one's.
func (c InCluster) Load(ctx context.Context) (*seal.Keyring, error) {
	var s corev1.Secret
	err := c.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: SecretName}, &s)
	if apierrors.IsNotFound(err) {
		kr, gerr := seal.NewKeyring(rand.Reader)
		if gerr != nil {
			return nil, gerr
		}
		s = corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: c.Namespace, Name: SecretName,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "auditops"}},
			Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{KeyringKey: []byte(kr.Text())},
		}
		err = c.Client.Create(ctx, &s)
		if err == nil {
			return kr, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("creating Secret %s/%s: %w", c.Namespace, SecretName, err)
		}
		err = c.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: SecretName}, &s)
	}
	if err != nil {
		return nil, fmt.Errorf("reading Secret %s/%s: %w", c.Namespace, SecretName, err)
	}
	return c.ringOf(&s)
}

// ringOf parses the keyring Secret s holds.
func (c InCluster) ringOf(s *corev1.Secret) (*seal.Keyring, error) {
	kr, err := seal.ParseKeyring(string(s.Data[KeyringKey]))
	if err != nil {
		return nil, fmt.Errorf("the keyring in Secret %s/%s key %s: %w", c.Namespace, SecretName, KeyringKey, err)
	}
	return kr, nil
}

// Rotate makes a new current key; the old ones stay in the ring, so what
// they signed still verifies and leaves they keyed still seal. The update
// is optimistic: a concurrent rotation makes it fail rather than drop a key.
func (c InCluster) Rotate(ctx context.Context) (*seal.Keyring, error) {
	var s corev1.Secret
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: SecretName}, &s); err != nil {
		return nil, fmt.Errorf("reading Secret %s/%s: %w", c.Namespace, SecretName, err)
	}
	old, err := c.ringOf(&s)
	if err != nil {
		return nil, err
	}
	kr, err := old.Rotate(rand.Reader)
	if err != nil {
		return nil, err
	}
	s.Data[KeyringKey] = []byte(kr.Text())
	if err := c.Client.Update(ctx, &s); err != nil {
		return nil, fmt.Errorf("rotating the key in Secret %s/%s: %w", c.Namespace, SecretName, err)
	}
	return kr, nil
}

// Publish writes the verifier keys of the keyring the Secret holds now and
// of kr into the ConfigMap, creating it when absent and leaving it alone
// when it says so already. The Secret's first: a leader that loaded kr
// before a rotation (a replica not restarted since) must not take the new
// key off the ConfigMap, where manager verify finds the keys it trusts.
// Keys neither lists are taken off.
func (c InCluster) Publish(ctx context.Context, kr *seal.Keyring) error {
	var keys []string
	var s corev1.Secret
	switch err := c.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: SecretName}, &s); {
	case apierrors.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("reading Secret %s/%s: %w", c.Namespace, SecretName, err)
	default:
		now, err := c.ringOf(&s)
		if err != nil {
			return err
		}
		keys = now.VerifierKeys()
	}
	for _, k := range kr.VerifierKeys() {
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	want := strings.Join(keys, "\n") + "\n"
	return applyConfigMap(ctx, c.Client, c.Client, client.ObjectKey{Namespace: c.PublishNamespace, Name: ConfigMapName},
		func(data map[string]string) { data[VerifierKey] = want })
}

// applyConfigMap creates the ConfigMap at key with the data set gives an
// empty map, or gives set a copy of its data and updates it when set
// changed anything.
func applyConfigMap(ctx context.Context, r client.Reader, w client.Writer, key client.ObjectKey, set func(map[string]string)) error {
	var cm corev1.ConfigMap
	err := r.Get(ctx, key, &cm)
	if apierrors.IsNotFound(err) {
		cm = corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "auditops"}},
			Data: map[string]string{},
		}
		set(cm.Data)
		if err := w.Create(ctx, &cm); err != nil {
			return fmt.Errorf("creating ConfigMap %s: %w", key, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading ConfigMap %s: %w", key, err)
	}
	data := maps.Clone(cm.Data)
	if data == nil {
		data = map[string]string{}
	}
	set(data)
	if maps.Equal(data, cm.Data) {
		return nil
	}
	cm.Data = data
	if err := w.Update(ctx, &cm); err != nil {
		return fmt.Errorf("updating ConfigMap %s: %w", key, err)
	}
	return nil
}

// Published reads the verifier keys the ConfigMap publishes.
func (c InCluster) Published(ctx context.Context) ([]string, error) {
	var cm corev1.ConfigMap
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: c.PublishNamespace, Name: ConfigMapName}, &cm); err != nil {
		return nil, fmt.Errorf("reading ConfigMap %s/%s: %w", c.PublishNamespace, ConfigMapName, err)
	}
	return strings.Fields(cm.Data[VerifierKey]), nil
}

// LoadFile returns the keyring kept in the file at path (--seal-key-file),
// creating it (mode 0600) with a new key when absent.
func LoadFile(path string) (*seal.Keyring, error) {
	text, err := keyfile.LoadOrCreate(path, func() ([]byte, error) {
		kr, err := seal.NewKeyring(rand.Reader)
		if err != nil {
			return nil, err
		}
		return []byte(kr.Text()), nil
	})
	if err != nil {
		return nil, fmt.Errorf("seal key: %w", err)
	}
	kr, err := seal.ParseKeyring(string(text))
	if err != nil {
		return nil, fmt.Errorf("seal key file %s: %w", path, err)
	}
	return kr, nil
}

// RotateFile makes a new current key in the keyring file at path; the old
// keys stay (what they signed still verifies). The file is replaced
// atomically. Running managers sign with the new key once restarted; the
// leaves the old key made until then still seal.
func RotateFile(path string) (*seal.Keyring, error) {
	old, err := LoadFile(path)
	if err != nil {
		return nil, err
	}
	kr, err := old.Rotate(rand.Reader)
	if err != nil {
		return nil, err
	}
	if err := keyfile.Replace(path, []byte(kr.Text())); err != nil {
		return nil, fmt.Errorf("seal key: %w", err)
	}
	return kr, nil
}
