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
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// DefaultOriginPrefix is --seal-origin's default: a namespace's log is
// auditops/<namespace>.
const DefaultOriginPrefix = "auditops"

// Origin is the origin line of namespace's log.
func Origin(prefix, namespace string) string { return prefix + "/" + namespace }

// Checkpoint is a C2SP tlog-checkpoint of one namespace's log.
type Checkpoint struct {
	Origin string
	Size   int64
	Root   tlog.Hash
	// Time is when the manager sealed the log at Size.
	Time time.Time
	// RetentionCutoff is the retention cutoff in force when it did: events
	// before it may be gone from the store, their leaves stay. Zero: no
	// retention.
	RetentionCutoff time.Time
}

// Extension lines after the root hash. C2SP tlog-checkpoint leaves their
// content to the log; ours bind the seal time and the retention cutoff, so
// a deletion by retention is told apart from one by hand.
const (
	extTime      = "time "
	extRetention = "retention-cutoff "
	noRetention  = "none"
)

// Body is the checkpoint's note text.
func (c Checkpoint) Body() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n%d\n%s\n", c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Root[:]))
	b.WriteString(extTime + c.Time.UTC().Format(time.RFC3339Nano) + "\n")
	if c.RetentionCutoff.IsZero() {
		b.WriteString(extRetention + noRetention + "\n")
	} else {
		b.WriteString(extRetention + c.RetentionCutoff.UTC().Format(time.RFC3339Nano) + "\n")
	}
	return b.String()
}

// Sign returns the checkpoint as a signed note.
func (k *Key) Sign(c Checkpoint) ([]byte, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	msg, err := note.Sign(&note.Note{Text: c.Body()}, k.signer)
	if err != nil {
		return nil, fmt.Errorf("signing the checkpoint of %s at size %d: %w", c.Origin, c.Size, err)
	}
	return msg, nil
}

func (c Checkpoint) check() error {
	switch {
	case c.Origin == "" || strings.ContainsAny(c.Origin, "\n"):
		return fmt.Errorf("checkpoint origin %q: empty or several lines", c.Origin)
	case c.Size < 0:
		return fmt.Errorf("checkpoint of %s: negative size %d", c.Origin, c.Size)
	case c.Time.IsZero():
		return fmt.Errorf("checkpoint of %s at size %d: no seal time", c.Origin, c.Size)
	}
	return nil
}

// ErrBadSignature is Open's error for a note no known key signed, or
// signed with a known key's name and hash but a signature that fails.
var ErrBadSignature = errors.New("the checkpoint is not signed by a known seal key")

// Open verifies a signed checkpoint note with the known verifiers and
// parses it.
func Open(msg []byte, known note.Verifiers) (Checkpoint, error) {
	n, err := note.Open(msg, known)
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		if errors.As(err, &unverified) || errors.As(err, &invalid) {
			return Checkpoint{}, fmt.Errorf("%w: %w", ErrBadSignature, err)
		}
		return Checkpoint{}, fmt.Errorf("reading a checkpoint note: %w", err)
	}
	return Parse(n.Text)
}

// Parse reads a checkpoint body (without checking any signature).
func Parse(text string) (Checkpoint, error) {
	lines := strings.Split(text, "\n")
	// origin, size, root, time, retention cutoff, and the empty string
	// after the last newline.
	if len(lines) != 6 || lines[5] != "" {
		return Checkpoint{}, fmt.Errorf("checkpoint: want 5 lines (origin, size, root hash, time, retention cutoff), got %q", text)
	}
	c := Checkpoint{Origin: lines[0]}
	if c.Origin == "" {
		return Checkpoint{}, errors.New("checkpoint: empty origin")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return Checkpoint{}, fmt.Errorf("checkpoint of %s: size %q is not a decimal tree size", c.Origin, lines[1])
	}
	c.Size = size
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != len(c.Root) {
		return Checkpoint{}, fmt.Errorf("checkpoint of %s: root hash %q is not 32 base64 bytes", c.Origin, lines[2])
	}
	copy(c.Root[:], root)
	ts, ok := strings.CutPrefix(lines[3], extTime)
	if !ok {
		return Checkpoint{}, fmt.Errorf("checkpoint of %s: line 4 %q is not %q", c.Origin, lines[3], extTime+"<RFC 3339>")
	}
	if c.Time, err = time.Parse(time.RFC3339Nano, ts); err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint of %s: seal time: %w", c.Origin, err)
	}
	cut, ok := strings.CutPrefix(lines[4], extRetention)
	if !ok {
		return Checkpoint{}, fmt.Errorf("checkpoint of %s: line 5 %q is not %q", c.Origin, lines[4], extRetention+"<RFC 3339 or none>")
	}
	if cut != noRetention {
		if c.RetentionCutoff, err = time.Parse(time.RFC3339Nano, cut); err != nil {
			return Checkpoint{}, fmt.Errorf("checkpoint of %s: retention cutoff: %w", c.Origin, err)
		}
	}
	// The body must be exactly what Body writes: a second spelling of one
	// checkpoint would be a second signed statement.
	if got := c.Body(); !bytes.Equal([]byte(got), []byte(text)) {
		return Checkpoint{}, fmt.Errorf("checkpoint of %s is not in canonical form", c.Origin)
	}
	return c, nil
}
