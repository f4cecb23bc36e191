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

package seal

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/auditops/auditops/internal/store"
)

// KeyName is the name in the seal key's verifier key
// (<name>+<hash>+<base64>, C2SP signed-note).
const KeyName = "auditops-seal"

// algEd25519 is signed-note's algorithm byte for Ed25519.
const algEd25519 = 1

// Key is a seal key: it signs checkpoints and keys the MAC of the leaves
// that ingest makes.
type Key struct {
	signer   note.Signer
	verifier string
	mac      []byte
	// macBase is HMAC-SHA256 keyed with mac and nothing written: each
	// LeafMAC clones it rather than hashing the key's pads again (ingest
	// makes one MAC per event, in the store's write transaction).
	macBase hash.Cloner
}

// GenerateKey returns a new seal key's signer key (note's PRIVATE+KEY+…
// form, what the Secret holds) read from rand.
func GenerateKey(rand io.Reader) (skey string, err error) {
	skey, _, err = note.GenerateKey(rand, KeyName)
	if err != nil {
		return "", fmt.Errorf("generating a seal key: %w", err)
	}
	return skey, nil
}

// ParseKey reads a signer key GenerateKey made.
func ParseKey(skey string) (*Key, error) {
	skey = strings.TrimSpace(skey)
	signer, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("reading the seal key: %w", err)
	}
	// PRIVATE+KEY+<name>+<hash>+<base64(alg || seed)>: note keeps the seed
	// to itself, and the MAC key and the verifier key derive from it.
	// (base64 has '+' of its own: the key is after the fourth.)
	parts := strings.SplitN(skey, "+", 5)
	raw, err := base64.StdEncoding.DecodeString(parts[len(parts)-1])
	if err != nil || len(raw) != 33 || raw[0] != algEd25519 {
		return nil, fmt.Errorf("reading the seal key: not an Ed25519 signer key")
	}
	seed := raw[1:]
	vkey, err := verifierKey(signer.Name(), seed)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, seed)
	m.Write([]byte("auditops leaf mac v1"))
	mac := m.Sum(nil)
	base, ok := hmac.New(sha256.New, mac).(hash.Cloner)
	if !ok {
		return nil, errors.New("crypto/hmac cannot clone its state")
	}
	return &Key{signer: signer, verifier: vkey, mac: mac, macBase: base}, nil
}

// Verifier is the key's verifier key, <name>+<hash>+<base64>: what
// ConfigMap auditops-seal-verifier publishes and verify is given.
func (k *Key) Verifier() string { return k.verifier }

// LeafMAC is the MAC that ingest stores with a leaf, in the event's
// transaction: whoever writes the store without the seal key cannot make
// it, so the sealer seals no row that arrived another way. It binds the
// namespace, the event's seq, the encoding version and the leaf data.
func (k *Key) LeafMAC(namespace string, seq int64, version int, data []byte) []byte {
	m, err := k.macBase.Clone()
	if err != nil {
		panic(fmt.Sprintf("cloning an HMAC-SHA256 state: %v", err)) // sha256's Clone does not fail
	}
	var buf [8]byte
	binary.BigEndian.PutUint32(buf[:4], uint32(len(namespace)))
	m.Write(buf[:4])
	m.Write([]byte(namespace))
	binary.BigEndian.PutUint64(buf[:], uint64(seq))
	m.Write(buf[:])
	binary.BigEndian.PutUint32(buf[:4], uint32(version))
	m.Write(buf[:4])
	m.Write(data)
	return m.Sum(nil)
}

// CheckLeafMAC reports whether mac is LeafMAC's for these values.
func (k *Key) CheckLeafMAC(namespace string, seq int64, version int, data, mac []byte) bool {
	return hmac.Equal(mac, k.LeafMAC(namespace, seq, version, data))
}

func verifierKey(name string, seed []byte) (string, error) {
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(name, pub)
	if err != nil {
		return "", fmt.Errorf("deriving the seal key's verifier key: %w", err)
	}
	return vkey, nil
}

// Verifiers returns note verifiers of the listed verifier keys: after a
// rotation, checkpoints signed by every listed key verify.
func Verifiers(vkeys ...string) (note.Verifiers, error) {
	vs := make([]note.Verifier, 0, len(vkeys))
	for _, vk := range vkeys {
		v, err := note.NewVerifier(strings.TrimSpace(vk))
		if err != nil {
			return nil, fmt.Errorf("reading verifier key %q: %w", vk, err)
		}
		vs = append(vs, v)
	}
	return note.VerifierList(vs...), nil
}

// Keyring is the current seal key, which signs and keys new leaves' MACs,
// and the keys it replaced, whose checkpoints and leaves still verify.
type Keyring struct {
	Current  *Key
	Previous []*Key
	// skeys are the signer keys, current first, as ParseKeyring read them.
	skeys []string
}

// NewKeyring returns a keyring of one new key.
func NewKeyring(rand io.Reader) (*Keyring, error) {
	skey, err := GenerateKey(rand)
	if err != nil {
		return nil, err
	}
	return ParseKeyring(skey)
}

// ParseKeyring reads signer keys, one per line, the current one first.
func ParseKeyring(text string) (*Keyring, error) {
	kr := &Keyring{}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, err := ParseKey(line)
		if err != nil {
			return nil, fmt.Errorf("seal key %d: %w", i+1, err)
		}
		if kr.Current == nil {
			kr.Current = k
		} else {
			kr.Previous = append(kr.Previous, k)
		}
		kr.skeys = append(kr.skeys, line)
	}
	if kr.Current == nil {
		return nil, fmt.Errorf("no seal key")
	}
	return kr, nil
}

// Text is the keyring as ParseKeyring reads it.
func (kr *Keyring) Text() string { return strings.Join(kr.skeys, "\n") + "\n" }

// Rotate returns a keyring whose current key is new and whose previous
// keys are kr's current one, then kr's previous ones.
func (kr *Keyring) Rotate(rand io.Reader) (*Keyring, error) {
	skey, err := GenerateKey(rand)
	if err != nil {
		return nil, err
	}
	return ParseKeyring(skey + "\n" + kr.Text())
}

// VerifierKeys are the verifier keys of every key, current first: what is
// published, and what a verifier accepts.
func (kr *Keyring) VerifierKeys() []string {
	out := []string{kr.Current.Verifier()}
	for _, k := range kr.Previous {
		out = append(out, k.Verifier())
	}
	return out
}

// CheckLeafMAC reports whether any key of the ring made mac: a leaf
// written just before a rotation is sealed after it.
func (kr *Keyring) CheckLeafMAC(namespace string, seq int64, version int, data, mac []byte) bool {
	if kr.Current.CheckLeafMAC(namespace, seq, version, data, mac) {
		return true
	}
	for _, k := range kr.Previous {
		if k.CheckLeafMAC(namespace, seq, version, data, mac) {
			return true
		}
	}
	return false
}

// LeafMaker makes the leaves ingest stores (store.Options.Leaves) with the
// ring's current key.
type LeafMaker struct {
	Keys *Keyring
	// Version is the canonical encoding's (0: the newest this build
	// knows): a rolling upgrade can keep making the old version's leaves
	// until every replica knows the new one.
	Version int
}

var _ store.LeafMaker = LeafMaker{}

// Prepare implements store.LeafMaker.
func (m LeafMaker) Prepare(e *store.Event) (store.PreparedLeaf, error) {
	p, err := PrepareVersion(e, m.Version)
	if err != nil {
		return nil, err
	}
	return preparedLeaf{p: p, key: m.Keys.Current, ns: e.Namespace, t: e.Time}, nil
}

type preparedLeaf struct {
	p   *Prepared
	key *Key
	ns  string
	t   time.Time
}

func (l preparedLeaf) Leaf(seq int64) (int, []byte, []byte) {
	d := LeafData(l.t, l.p.Digest(seq))
	return l.p.Version, d[:], l.key.LeafMAC(l.ns, seq, l.p.Version, d[:])
}
