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

// Package payload is how the stores keep an event's JSON values (principal,
// request, response, previous and current state): one column, compressed
// with S2 (github.com/klauspost/compress/s2, already a dependency) against
// a dictionary of earlier payloads that the store keeps. The values are
// 80-90% of an event's bytes and repeat each other (a write's response is
// usually its current state) and every other event's keys; each payload
// alone is too small to compress well, but against a dictionary of its
// kind it takes a tenth of its size, and a store writes and reads that many
// fewer pages. S2 rather than zstd: on audit payloads of 1-2 KB it
// decoded 4-7x faster for smaller output (bench/README.md), and reports
// decode every row they read. Decoding gives back every byte as it was
// given: no output changes.
package payload

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/s2"

	"github.com/auditops/auditops/internal/store"
)

// Values are what a payload holds of an event: its JSON values, nil (or
// empty) is absent, which the stores kept as NULL before this encoding and
// keep as absent in it; and its text fields that no query filters on.
// Those are mostly words the JSON values hold too (a Kubernetes event's
// message names its verb, resource and object), so next to them they
// compress to a few bytes, where their own columns took ~220 bytes an event
// (bench/README.md). A payload made before the text fields were put in it
// has HasText false, and they are in their columns.
type Values struct {
	Principal, Request, Response, PreviousState, CurrentState []byte
	Text                                                      Text
	HasText                                                   bool
}

// Text are the text fields an event's payload holds (store.Event's).
type Text struct {
	EntityKind, EntityID, CertificateSerialNumber, IssuerDN, Details, Message string
	Error                                                                     *string
	Archived                                                                  bool
}

// ValuesOf returns what e's payload holds.
func ValuesOf(e *store.Event) Values {
	return Values{Principal: e.Principal, Request: e.Request, Response: e.Response,
		PreviousState: e.PreviousState, CurrentState: e.CurrentState, HasText: true,
		Text: Text{EntityKind: e.EntityKind, EntityID: e.EntityID, CertificateSerialNumber: e.CertificateSerialNumber,
			IssuerDN: e.IssuerDN, Details: e.Details, Message: e.Message, Error: e.Error, Archived: e.Archived}}
}

// Empty says whether v holds nothing: such an event stores no payload.
func (v *Values) Empty() bool {
	return len(v.Principal) == 0 && len(v.Request) == 0 && len(v.Response) == 0 &&
		len(v.PreviousState) == 0 && len(v.CurrentState) == 0 && v.Text == (Text{})
}

// The encoding: a format byte, a flags byte, then the body, in which each
// value is a uvarint length (0: absent) and its bytes, in Values' order;
// CurrentState is left out when it equals Response (flagSameState). With
// flagText, the text fields follow: each string of Text a uvarint length
// and its bytes, in Text's order, then Error as a uvarint (0: nil, else its
// length + 1) and its bytes, then Archived as one byte (0 or 1).
const (
	// formatRaw: the body as it is, for values too small to shrink.
	formatRaw byte = 1
	// formatS2: the body as one S2 block.
	formatS2 byte = 2
	// formatS2Dict: a uvarint dictionary id, then the body as one S2
	// block made with that dictionary.
	formatS2Dict byte = 3

	flagSameState byte = 1
	flagText      byte = 2
)

// minCompress is the body size below which compressing does not pay.
const minCompress = 48

// MaxDecoded bounds what one compressed payload may decode to, so that a
// damaged or forged row of a few bytes cannot make a reader allocate more
// (S2 repeats let a few hundred bytes decode to many MiB). Objects are
// truncated to --max-event-object-bytes (256 KiB by default), so payloads
// are far smaller; a larger one is stored uncompressed, which decodes
// without allocating.
const MaxDecoded = 64 << 20

// Dictionaries. A store starts without one; once it has encoded
// firstSampleAfter payloads, it samples every sampleEvery-th body (its
// first maxSample bytes) until it has s2.MaxDictSize + heldOut bytes,
// makes a dictionary of the first s2.MaxDictSize and, if it shrinks the
// held-out rest by at least minGain, stores it durably and then encodes
// with it. It samples again once it has encoded retrainAfter payloads
// with it and it is retrainEvery old, so that a dictionary follows what
// the cluster's events look like now. Dictionaries are never deleted
// (every row names the one it was made with), so they are made seldom:
// at most one a day per replica, 64 KiB each.
const (
	firstSampleAfter = 2048
	retrainAfter     = 1 << 20
	retrainEvery     = 24 * time.Hour
	// retryAfter: a dictionary that could not be stored (the store down
	// for a moment) is tried again this many payloads later.
	retryAfter  = 1 << 16
	sampleEvery = 8
	maxSample   = 4 << 10
	heldOut     = 8 << 10
	minGain     = 0.9
)

// Stored is a dictionary as a store keeps it.
type Stored struct {
	ID      uint32
	Created time.Time
	Dict    []byte
}

// Dicts keeps a store's dictionaries.
type Dicts interface {
	// NewestDict returns the dictionary stored last (ok false: none).
	NewestDict(ctx context.Context) (d Stored, ok bool, err error)
	// LoadDict returns dictionary id (ok false: none such). Readers call
	// it in the middle of reading rows: it must not wait for a connection
	// they may hold.
	LoadDict(ctx context.Context, id uint32) (dict []byte, ok bool, err error)
	// SaveDict stores d durably; ErrDictExists when its id is taken.
	SaveDict(ctx context.Context, d Stored) error
}

// ErrDictExists is SaveDict's answer for an id that is taken.
var ErrDictExists = errors.New("payload: dictionary id exists")

// ErrCorrupt is wrapped by Decode's errors: the payload is not one Encode
// made (a damaged or edited row), or names a dictionary the store lacks.
var ErrCorrupt = errors.New("payload: not a valid payload")

// Codec encodes and decodes payloads; safe for concurrent use.
type Codec struct {
	dicts Dicts
	// onError hears what went wrong making a dictionary (encoding goes on
	// without it).
	onError func(error)

	// current is the dictionary Encode uses (nil: none yet).
	current atomic.Pointer[dict]
	// known are the dictionaries Decode has met, by id.
	known sync.Map // uint32 -> *dict
	// missing remembers ids no store had, so that rows naming one do not
	// each ask again.
	missingMu sync.Mutex
	missing   map[uint32]time.Time

	encodes    atomic.Int64
	sampleFrom atomic.Int64
	sampleMu   sync.Mutex
	samples    []byte
	training   bool
	train      chan []byte

	stop context.CancelFunc
	done chan struct{}
}

type dict struct {
	id      uint32
	created time.Time
	d       *s2.Dict
}

// NewCodec returns a Codec that keeps dictionaries in dicts (nil: none,
// every payload is compressed alone) and starts with the newest one.
// onError, when set, hears failures to make one. Close stops it.
func NewCodec(ctx context.Context, dicts Dicts, onError func(error)) (*Codec, error) {
	c := &Codec{dicts: dicts, onError: onError, missing: map[uint32]time.Time{}, train: make(chan []byte, 1), done: make(chan struct{})}
	c.sampleFrom.Store(firstSampleAfter)
	if dicts == nil {
		c.sampleFrom.Store(-1)
		close(c.done)
		c.stop = func() {}
		return c, nil
	}
	st, ok, err := dicts.NewestDict(ctx)
	if err != nil {
		return nil, fmt.Errorf("payload: loading the newest dictionary: %w", err)
	}
	if ok {
		d := s2.NewDict(st.Dict)
		if d == nil {
			return nil, fmt.Errorf("payload: dictionary %d is not an S2 dictionary", st.ID)
		}
		c.adopt(&dict{id: st.ID, created: st.Created, d: d})
	}
	bg, stop := context.WithCancel(context.Background())
	c.stop = stop
	go c.trainer(bg)
	return c, nil
}

// Close stops c's dictionary maker and waits for it.
func (c *Codec) Close() {
	c.stop()
	<-c.done
}

func (c *Codec) adopt(d *dict) {
	c.known.Store(d.id, d)
	c.current.Store(d)
	c.sampleFrom.Store(c.encodes.Load() + retrainAfter)
}

// Encode returns v's payload, nil when v is empty (stored as NULL).
func (c *Codec) Encode(v Values) []byte {
	if v.Empty() {
		return nil
	}
	var flags byte
	same := len(v.CurrentState) > 0 && bytes.Equal(v.CurrentState, v.Response)
	if same {
		flags |= flagSameState
	}
	t := &v.Text
	texts := [...]string{t.EntityKind, t.EntityID, t.CertificateSerialNumber, t.IssuerDN, t.Details, t.Message}
	n := len(v.Principal) + len(v.Request) + len(v.Response) + len(v.PreviousState) + 12*binary.MaxVarintLen32
	if !same {
		n += len(v.CurrentState)
	}
	for _, s := range texts {
		n += len(s)
	}
	if t.Error != nil {
		n += len(*t.Error)
	}
	body := make([]byte, 0, n)
	for i, b := range [][]byte{v.Principal, v.Request, v.Response, v.PreviousState, v.CurrentState} {
		if i == 4 && same {
			break
		}
		body = binary.AppendUvarint(body, uint64(len(b)))
		body = append(body, b...)
	}
	if v.HasText {
		flags |= flagText
		for _, s := range texts {
			body = binary.AppendUvarint(body, uint64(len(s)))
			body = append(body, s...)
		}
		if t.Error == nil {
			body = append(body, 0)
		} else {
			body = binary.AppendUvarint(body, uint64(len(*t.Error))+1)
			body = append(body, *t.Error...)
		}
		archived := byte(0)
		if t.Archived {
			archived = 1
		}
		body = append(body, archived)
	}
	if len(body) < minCompress || len(body) > MaxDecoded {
		return append([]byte{formatRaw, flags}, body...)
	}
	c.observe(body)
	var out []byte
	if d := c.current.Load(); d != nil {
		out = binary.AppendUvarint([]byte{formatS2Dict, flags}, uint64(d.id))
		out = append(out, d.d.Encode(nil, body)...)
	} else {
		out = append([]byte{formatS2, flags}, s2.Encode(nil, body)...)
	}
	if len(out) >= 2+len(body) {
		return append([]byte{formatRaw, flags}, body...)
	}
	return out
}

// observe counts an encoded body and samples it when a dictionary is due.
func (c *Codec) observe(body []byte) {
	n := c.encodes.Add(1)
	if from := c.sampleFrom.Load(); from < 0 || n < from || n%sampleEvery != 0 {
		return
	}
	if d := c.current.Load(); d != nil && time.Since(d.created) < retrainEvery {
		return
	}
	c.sampleMu.Lock()
	defer c.sampleMu.Unlock()
	if c.training {
		return
	}
	c.samples = append(c.samples, body[:min(len(body), maxSample, s2.MaxDictSize+heldOut-len(c.samples))]...)
	if len(c.samples) < s2.MaxDictSize+heldOut {
		return
	}
	c.training = true
	c.train <- c.samples
	c.samples = nil
}

// trainer makes, stores and adopts a dictionary of each full sample.
func (c *Codec) trainer(ctx context.Context) {
	defer close(c.done)
	for {
		select {
		case <-ctx.Done():
			return
		case samples := <-c.train:
			d, err := c.makeDict(ctx, samples)
			switch {
			case err != nil:
				if c.onError != nil && ctx.Err() == nil {
					c.onError(err)
				}
				c.sampleFrom.Store(c.encodes.Load() + retryAfter)
			case d != nil:
				c.adopt(d)
			default: // no gain: try again later
				c.sampleFrom.Store(c.encodes.Load() + retrainAfter)
			}
			c.sampleMu.Lock()
			c.training = false
			c.sampleMu.Unlock()
		}
	}
}

// makeDict makes a dictionary of samples' first s2.MaxDictSize bytes and
// stores it, if it shrinks the rest (held out) by minGain; nil if not.
func (c *Codec) makeDict(ctx context.Context, samples []byte) (*dict, error) {
	raw, test := samples[:s2.MaxDictSize], samples[s2.MaxDictSize:]
	d := s2.MakeDict(raw, nil)
	if d == nil {
		return nil, nil
	}
	if float64(len(d.Encode(nil, test))) > minGain*float64(len(s2.Encode(nil, test))) {
		return nil, nil
	}
	for range 8 {
		var b [4]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, err
		}
		// 1 .. 2^31-1: a positive int32 in every store.
		st := Stored{ID: binary.BigEndian.Uint32(b[:])>>1 | 1, Created: time.Now(), Dict: d.Bytes()}
		err := c.dicts.SaveDict(ctx, st)
		if errors.Is(err, ErrDictExists) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("payload: storing a dictionary: %w", err)
		}
		return &dict{id: st.ID, created: st.Created, d: d}, nil
	}
	return nil, fmt.Errorf("payload: storing a dictionary: %w eight times", ErrDictExists)
}

// missingFor is how long an id no store had is not asked for again.
const missingFor = 10 * time.Second

// lookup returns dictionary id, loading it from the store once.
func (c *Codec) lookup(ctx context.Context, id uint32) (*s2.Dict, error) {
	if d, ok := c.known.Load(id); ok {
		return d.(*dict).d, nil
	}
	if c.dicts == nil {
		return nil, fmt.Errorf("%w: dictionary %d, and the store keeps none", ErrCorrupt, id)
	}
	c.missingMu.Lock()
	defer c.missingMu.Unlock()
	if d, ok := c.known.Load(id); ok {
		return d.(*dict).d, nil
	}
	if t, ok := c.missing[id]; ok && time.Since(t) < missingFor {
		return nil, fmt.Errorf("%w: no dictionary %d", ErrCorrupt, id)
	}
	b, ok, err := c.dicts.LoadDict(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("payload: loading dictionary %d: %w", id, err)
	}
	var d *s2.Dict
	if ok {
		d = s2.NewDict(b)
	}
	if d == nil {
		c.missing[id] = time.Now()
		return nil, fmt.Errorf("%w: no dictionary %d", ErrCorrupt, id)
	}
	c.known.Store(id, &dict{id: id, d: d})
	return d, nil
}

// Decode returns the values p holds; they share one buffer. An empty p
// (NULL) holds none. It loads a dictionary it has not met from the store.
func (c *Codec) Decode(ctx context.Context, p []byte) (Values, error) {
	if len(p) == 0 {
		return Values{}, nil
	}
	if len(p) < 2 {
		return Values{}, fmt.Errorf("%w: %d bytes", ErrCorrupt, len(p))
	}
	format, flags, body := p[0], p[1], p[2:]
	if flags&^(flagSameState|flagText) != 0 {
		return Values{}, fmt.Errorf("%w: unknown flags %#x", ErrCorrupt, flags)
	}
	switch format {
	case formatRaw:
	case formatS2, formatS2Dict:
		var d *s2.Dict
		if format == formatS2Dict {
			id, k := binary.Uvarint(body)
			if k <= 0 || id > 1<<32-1 {
				return Values{}, fmt.Errorf("%w: bad dictionary id", ErrCorrupt)
			}
			var err error
			if d, err = c.lookup(ctx, uint32(id)); err != nil {
				return Values{}, err
			}
			body = body[k:]
		}
		if n, err := s2.DecodedLen(body); err != nil {
			return Values{}, fmt.Errorf("%w: %w", ErrCorrupt, err)
		} else if n > MaxDecoded {
			return Values{}, fmt.Errorf("%w: it decodes to %d bytes, more than %d", ErrCorrupt, n, MaxDecoded)
		}
		var err error
		if d != nil {
			body, err = d.Decode(nil, body)
		} else {
			body, err = s2.Decode(nil, body)
		}
		if err != nil {
			return Values{}, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
	default:
		return Values{}, fmt.Errorf("%w: unknown format %d", ErrCorrupt, format)
	}
	var vals [5][]byte
	count := 5
	if flags&flagSameState != 0 {
		count = 4
	}
	for i := range count {
		n, k := binary.Uvarint(body)
		if k <= 0 || n > uint64(len(body)-k) {
			return Values{}, fmt.Errorf("%w: value %d overruns the payload", ErrCorrupt, i)
		}
		if n > 0 {
			vals[i] = body[k : k+int(n) : k+int(n)]
		}
		body = body[k+int(n):]
	}
	var text Text
	if flags&flagText != 0 {
		var err error
		if text, body, err = decodeText(body); err != nil {
			return Values{}, err
		}
	}
	if len(body) != 0 {
		return Values{}, fmt.Errorf("%w: %d bytes after the last value", ErrCorrupt, len(body))
	}
	if flags&flagSameState != 0 {
		if vals[2] == nil {
			return Values{}, fmt.Errorf("%w: current state refers to an absent response", ErrCorrupt)
		}
		vals[4] = vals[2]
	}
	return Values{Principal: vals[0], Request: vals[1], Response: vals[2], PreviousState: vals[3], CurrentState: vals[4],
		Text: text, HasText: flags&flagText != 0}, nil
}

// decodeText reads the text fields at the start of body (flagText) and
// returns the rest. The strings share one copy of their bytes.
func decodeText(body []byte) (Text, []byte, error) {
	var spans [7][2]int
	hasError := false
	at := 0
	for i := range spans {
		n, k := binary.Uvarint(body[at:])
		if k <= 0 || n > uint64(len(body)-at-k)+1 || i < 6 && n > uint64(len(body)-at-k) {
			return Text{}, nil, fmt.Errorf("%w: text field %d overruns the payload", ErrCorrupt, i)
		}
		at += k
		if i == 6 { // Error: 0 is nil, else its length + 1
			hasError = n > 0
			n = max(n, 1) - 1
		}
		spans[i] = [2]int{at, at + int(n)}
		at += int(n)
	}
	if at >= len(body) || body[at] > 1 {
		return Text{}, nil, fmt.Errorf("%w: no archived byte after the text fields", ErrCorrupt)
	}
	all := string(body[:at])
	str := func(i int) string { return all[spans[i][0]:spans[i][1]] }
	t := Text{EntityKind: str(0), EntityID: str(1), CertificateSerialNumber: str(2), IssuerDN: str(3),
		Details: str(4), Message: str(5), Archived: body[at] == 1}
	if hasError {
		e := str(6)
		t.Error = &e
	}
	return t, body[at+1:], nil
}

// MemDicts keeps dictionaries in memory, as a store's table would: for
// tests, and for the benchmark's insert floor, whose rows no one reads
// back. fail, when set, fails SaveDict.
type MemDicts struct {
	mu    sync.Mutex
	dicts map[uint32]Stored
	order []uint32
	loads int
	fail  error
}

// NewestDict implements Dicts.
func (m *MemDicts) NewestDict(context.Context) (Stored, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.order) == 0 {
		return Stored{}, false, nil
	}
	return m.dicts[m.order[len(m.order)-1]], true, nil
}

// LoadDict implements Dicts.
func (m *MemDicts) LoadDict(_ context.Context, id uint32) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.loads++
	d, ok := m.dicts[id]
	return d.Dict, ok, nil
}

// SaveDict implements Dicts.
func (m *MemDicts) SaveDict(_ context.Context, d Stored) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	if _, ok := m.dicts[d.ID]; ok {
		return ErrDictExists
	}
	if m.dicts == nil {
		m.dicts = map[uint32]Stored{}
	}
	d.Dict = bytes.Clone(d.Dict)
	m.dicts[d.ID] = d
	m.order = append(m.order, d.ID)
	return nil
}

// count is how many dictionaries m holds.
func (m *MemDicts) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.order)
}
