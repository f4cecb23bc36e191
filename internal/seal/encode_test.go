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
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/auditops/auditops/internal/store"
)

func ptr[T any](v T) *T { return &v }

// goldenEvent has every field set, strings that need escaping, and a
// number no float64 holds.
func goldenEvent() store.Event {
	return store.Event{
		ID: "4f1c-\"quoted\"", Seq: 42,
		Time:      time.Date(2026, 12, 5, 21, 0, 0, 123456789, time.FixedZone("CET", 3600)),
		Namespace: "team-a", User: "alice\u00e9", Principal: json.RawMessage(`{"username":"alice","groups":["dev"]}`),
		Method: "delete", API: "/pods", Status: "failure", StatusCode: 403, Category: "access",
		EntityKind: "pods", EntityID: "team-a/web-1", Message: "line1\nline2\ttab\u0001<&>\u2028",
		Request:  json.RawMessage(`{"n":12345678901234567890123}`),
		Response: json.RawMessage(`null`), PreviousState: json.RawMessage(`{"a":0}`), CurrentState: json.RawMessage(`{"b":[1.50,"x"]}`),
		Error: ptr("forbidden"), DeviceID: "10.0.0.1", CertificateSerialNumber: "01", IssuerDN: "CN=ca",
		Details: "kubectl/v1.37", Archived: true,
	}
}

// TestEncodeGolden pins canonical encoding v1: a change here changes the
// digest of every leaf ever made with it, so it is a new version instead.
func TestEncodeGolden(t *testing.T) {
	e := goldenEvent()
	got, err := Encode(&e)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"api":"/pods","archived":true,"category":"access","certificateSerialNumber":"01","currentState":{"b":[1.50,"x"]},"details":"kubectl/v1.37","deviceId":"10.0.0.1","entityId":"team-a/web-1","entityKind":"pods","error":"forbidden","id":"4f1c-\"quoted\"","issuerDN":"CN=ca","message":"line1\nline2\ttab\u0001<&>` + "\u2028" + `","method":"delete","namespace":"team-a","previousState":{"a":0},"principal":{"username":"alice","groups":["dev"]},"request":{"n":12345678901234567890123},"response":null,"seq":42,"status":"failure","statusCode":403,"time":"2026-12-05T20:00:00.123456789Z","user":"alice` + "\u00e9" + `"}`
	if string(got) != want {
		t.Fatalf("encoding v1 changed:\n got %s\nwant %s", got, want)
	}
	d, err := Digest(&e, EncodingV1)
	if err != nil {
		t.Fatal(err)
	}
	const wantDigest = "91ff6686cac61ae183fabb9a02843b6a8aa241099d5e0b014787cd6e29f24cab"
	if hex.EncodeToString(d[:]) != wantDigest {
		t.Fatalf("digest v1 %x, want %s", d, wantDigest)
	}
	leaf := LeafData(e.Time, d)
	if got := hex.EncodeToString(leaf[:8]); got != "18ee73f59e104d15" {
		t.Fatalf("leaf time bytes %s (Unix ns %d, big-endian)", got, e.Time.UnixNano())
	}
}

// TestEncodeMembersSorted: the encoding is one JSON object whose members
// are in RFC 8785 order and carry the event's values.
func TestEncodeMembersSorted(t *testing.T) {
	e := goldenEvent()
	enc, err := Encode(&e)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(enc))
	dec.UseNumber()
	if tok, _ := dec.Token(); tok != json.Delim('{') {
		t.Fatalf("not an object: %s", enc)
	}
	var names []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, tok.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.IsSorted(names) || len(names) != 24 {
		t.Fatalf("members %v: want the 24 fields of section 1, sorted", names)
	}
	var back map[string]any
	if err := json.Unmarshal(enc, &back); err != nil {
		t.Fatal(err)
	}
	if back["message"] != e.Message || back["user"] != e.User || back["id"] != e.ID {
		t.Fatalf("strings do not read back: %v", back)
	}
}

// TestEncodeTellsApart: events that differ in any stored way have
// different digests, including the ways a lossy encoding would merge.
func TestEncodeTellsApart(t *testing.T) {
	base := goldenEvent()
	variants := map[string]func(e *store.Event){
		"seq":                 func(e *store.Event) { e.Seq++ },
		"time by 1 ns":        func(e *store.Event) { e.Time = e.Time.Add(time.Nanosecond) },
		"no error (NULL)":     func(e *store.Event) { e.Error = nil },
		"empty error":         func(e *store.Event) { e.Error = ptr("") },
		"no response (NULL)":  func(e *store.Event) { e.Response = nil },
		"request last digit":  func(e *store.Event) { e.Request = json.RawMessage(`{"n":12345678901234567890124}`) },
		"request whitespace":  func(e *store.Event) { e.Request = json.RawMessage(`{"n": 12345678901234567890123}`) },
		"archived":            func(e *store.Event) { e.Archived = false },
		"status code":         func(e *store.Event) { e.StatusCode = 404 },
		"id":                  func(e *store.Event) { e.ID += "x" },
		"message escape":      func(e *store.Event) { e.Message = strings.Replace(e.Message, "\n", `\n`, 1) },
		"user into namespace": func(e *store.Event) { e.Namespace, e.User = e.Namespace+e.User, "" },
	}
	seen := map[[32]byte]string{}
	d, err := Digest(&base, EncodingV1)
	if err != nil {
		t.Fatal(err)
	}
	seen[d] = "base"
	for name, change := range variants {
		e := goldenEvent()
		change(&e)
		d, err := Digest(&e, EncodingV1)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if other, ok := seen[d]; ok {
			t.Errorf("%s has the digest of %s", name, other)
		}
		seen[d] = name
	}
}

func TestEncodeRefuses(t *testing.T) {
	e := goldenEvent()
	e.Message = "bad \xff byte"
	if _, err := Encode(&e); !errors.Is(err, errInvalidUTF8) {
		t.Fatalf("invalid UTF-8: %v", err)
	}
	e = goldenEvent()
	if _, err := Digest(&e, 2); err == nil || !strings.Contains(err.Error(), "version 2") {
		t.Fatalf("an unknown version: %v", err)
	}
}

func TestLeafMAC(t *testing.T) {
	k := newKey(t)
	data := []byte("leaf data")
	mac := k.LeafMAC("team-a", 7, EncodingV1, data)
	if !k.CheckLeafMAC("team-a", 7, EncodingV1, data, mac) {
		t.Fatal("a MAC does not check")
	}
	// The definition, spelled out: HMAC-SHA256 under the leaf MAC key of
	// len(ns) (4 bytes), ns, seq (8), version (4), data, big-endian. (Each
	// call clones one keyed state: twice in a row must give the same.)
	want := hmac.New(sha256.New, k.mac)
	want.Write([]byte{0, 0, 0, 6})
	want.Write([]byte("team-a"))
	want.Write([]byte{0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 1})
	want.Write(data)
	if w := want.Sum(nil); !bytes.Equal(mac, w) || !bytes.Equal(k.LeafMAC("team-a", 7, EncodingV1, data), w) {
		t.Fatalf("LeafMAC = %x, want %x", mac, w)
	}
	for name, ok := range map[string]bool{
		"namespace": k.CheckLeafMAC("team-b", 7, EncodingV1, data, mac),
		"seq":       k.CheckLeafMAC("team-a", 8, EncodingV1, data, mac),
		"version":   k.CheckLeafMAC("team-a", 7, 2, data, mac),
		"data":      k.CheckLeafMAC("team-a", 7, EncodingV1, []byte("leaf datb"), mac),
		"other key": newKey(t).CheckLeafMAC("team-a", 7, EncodingV1, data, mac),
	} {
		if ok {
			t.Errorf("a MAC checks with another %s", name)
		}
	}
}

func newKey(t *testing.T) *Key {
	t.Helper()
	skey, err := GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParseKey(skey)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestPrepared: a digest prepared before seq is known equals Digest.
func TestPrepared(t *testing.T) {
	e := goldenEvent()
	p, err := Prepare(&e)
	if err != nil {
		t.Fatal(err)
	}
	for _, seq := range []int64{0, 1, 42, 1 << 40, -1} {
		e.Seq = seq
		want, err := Digest(&e, EncodingV1)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Digest(seq); got != want {
			t.Fatalf("seq %d: prepared digest %x, want %x", seq, got, want)
		}
	}
}

func BenchmarkDigest(b *testing.B) {
	e := goldenEvent()
	e.Request = json.RawMessage(`{"kind":"ConfigMap","data":{"k":"` + strings.Repeat("v", 1500) + `"}}`)
	b.Run("whole", func(b *testing.B) {
		for b.Loop() {
			if _, err := Digest(&e, EncodingV1); err != nil {
				b.Fatal(err)
			}
		}
	})
	p, _ := Prepare(&e)
	b.Run("after prepare", func(b *testing.B) {
		for b.Loop() {
			p.Digest(42)
		}
	})
}
