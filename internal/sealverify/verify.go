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

// Package sealverify checks a store against its tamper-evident logs
// (spec/API.md section 6, "verify"): it recomputes every event's digest,
// every log's roots and every checkpoint's signature, and names each
// difference as a finding.
package sealverify

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/auditops/auditops/internal/seal"
	"github.com/auditops/auditops/internal/store"
)

// Problems verify names (spec/API.md 6).
const (
	Altered      = "altered"
	Missing      = "missing"
	Unsealed     = "unsealed"
	BadSignature = "bad-signature"
	Inconsistent = "inconsistent"
	Rollback     = "rollback"
)

// Finding is one problem, where it is.
type Finding struct {
	Namespace string `json:"namespace"`
	Problem   string `json:"problem"`
	Index     *int64 `json:"index"`
	Seq       *int64 `json:"seq"`
	ID        string `json:"id"`
	Detail    string `json:"detail"`
}

// Store is what verify reads.
type Store interface {
	store.Store
	seal.Log
}

// Options say what verify trusts.
type Options struct {
	// Verifiers are the seal keys whose checkpoints are genuine.
	Verifiers note.Verifiers
	// Trusted are signed checkpoint notes kept outside the store (an
	// earlier verify's, a report status's): the log must extend each.
	Trusted [][]byte
	// Witnesses are checkpoints kept outside the store without a
	// signature of their own (reports' status.seal, in etcd): trusted as
	// the signed ones are.
	Witnesses []seal.Checkpoint
	// SealInterval is the manager's --seal-interval: a leaf unsealed twice
	// that long after ingest wrote it is a finding.
	SealInterval time.Duration
	// Namespaces limits the walk ("": every namespace of the store).
	Namespaces []string
	// Now defaults to time.Now.
	Now func() time.Time

	// maxAhead overrides defaultMaxAhead in tests (-1: hold nothing).
	maxAhead int
}

// Summary counts what Verify read and found.
type Summary struct {
	Events, Namespaces int
	// Sealed counts the events checked against a sealed leaf (the others
	// wait for the next seal, or are findings).
	Sealed int
	// ByProblem counts the findings by problem.
	ByProblem map[string]int
}

// Problems is the number of findings.
func (s Summary) Problems() int {
	n := 0
	for _, c := range s.ByProblem {
		n += c
	}
	return n
}

// pageSize is the leaves and events read at a time: within the rows a
// store's page holds before it grows (sqlstore allocates 1,024), since
// pages of 5,000 spent a quarter of verify copying pages as they grew
// (BenchmarkVerifySQLite: 92,000 -> 125,000 events/s).
const pageSize = 1000

// Verify walks the store's namespaces and calls emit for each finding.
// An error means it could not finish (the store failed): the findings so
// far stand, the rest are unknown.
func Verify(ctx context.Context, st Store, opts Options, emit func(Finding)) (sum Summary, err error) {
	// What verify reads was written by whoever could write the store: a
	// row no check foresaw must end this run with an error (exit 2, the
	// verify metrics' failure), not the leader that runs it every day.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("verify stopped on what the store holds (a panic: %v); the findings so far stand", p)
		}
	}()
	if opts.Now == nil {
		opts.Now = time.Now
	}
	known, err := st.LogNamespaces(ctx)
	if err != nil {
		return Summary{}, fmt.Errorf("listing namespaces: %w", err)
	}
	nss := opts.Namespaces
	all := len(nss) == 0
	if all {
		nss = slices.Clone(known)
	}
	known = append(known, opts.Namespaces...)
	nsOf := func(origin string) (string, bool) { return originNamespace(origin, known) }
	trusted := map[string][]seal.Checkpoint{}
	for i, msg := range opts.Trusted {
		cp, err := seal.Open(msg, opts.Verifiers)
		if err != nil {
			return Summary{}, fmt.Errorf("trusted checkpoint %d: %w", i+1, err)
		}
		ns, ok := nsOf(cp.Origin)
		if !ok {
			return Summary{}, fmt.Errorf("trusted checkpoint %d: origin %q names no namespace", i+1, cp.Origin)
		}
		trusted[ns] = append(trusted[ns], cp)
	}
	for _, w := range opts.Witnesses {
		ns, ok := nsOf(w.Origin)
		if !ok {
			return Summary{}, fmt.Errorf("witness checkpoint: origin %q names no namespace", w.Origin)
		}
		if w.Size > 0 && !slices.Contains(trusted[ns], w) {
			trusted[ns] = append(trusted[ns], w)
		}
	}
	if all {
		// A log deleted whole is checked against what was trusted of it.
		for ns := range trusted {
			if !slices.Contains(nss, ns) {
				nss = append(nss, ns)
			}
		}
		slices.Sort(nss)
	}
	sum = Summary{ByProblem: map[string]int{}}
	count := func(f Finding) {
		sum.ByProblem[f.Problem]++
		emit(f)
	}
	// The schema first: a trigger that drops events as ingest writes them
	// (their leaves too, before a checkpoint covers them) or a policy that
	// hides them from the manager's reads, this walk's included, edits no
	// row. Store-wide: no namespace.
	if sc, ok := st.(store.SchemaChecker); ok {
		changes, err := sc.SchemaChanges(ctx)
		if err != nil {
			return sum, fmt.Errorf("checking the store's schema: %w", err)
		}
		for _, c := range changes {
			count(Finding{Problem: Altered, Detail: "the store's schema: " + c})
		}
	}
	for _, ns := range nss {
		n, sealed, err := verifyNamespace(ctx, st, opts, ns, trusted[ns], nsOf, count)
		sum.Events += n
		sum.Sealed += sealed
		sum.Namespaces++
		if err != nil {
			return sum, fmt.Errorf("verifying %s: %w", ns, err)
		}
		if hc, ok := st.(store.HourCountChecker); ok {
			if err := hc.HourCountMismatches(ctx, ns, func(c store.HourCount) { count(hourCountFinding(ns, c)) }); err != nil {
				return sum, fmt.Errorf("verifying %s: comparing its counts per hour with its events: %w", ns, err)
			}
		}
	}
	return sum, nil
}

// hourCountFinding names an hour whose count kept for totals is not what
// its events give: no leaf covers the counts, and an intruder who lowers
// one makes the network CSV pages' totalRecords say fewer events than
// their pages hold (a client that pages by the total stops short).
func hourCountFinding(ns string, c store.HourCount) Finding {
	hour := fmt.Sprintf("hour %d from the Unix epoch", c.Hour)
	if c.Hour >= 0 && c.Hour <= maxHour {
		hour = "the hour from " + time.Unix(c.Hour*3600, 0).UTC().Format(time.RFC3339)
	}
	return Finding{Namespace: ns, Problem: Inconsistent,
		Detail: fmt.Sprintf("the store's count of %s events in %s is %d and its events hold %d: the totals (totalRecords) of the network CSV pages are wrong",
			c.Category, hour, c.Kept, c.Events)}
}

// maxHour is the last hour whose start time.Unix takes in seconds without
// overflow, far past any event's.
const maxHour = (1<<63 - 1) / 3600

// isOriginOf says whether origin is <prefix>/<ns> for some prefix.
func isOriginOf(origin, ns string) bool {
	prefix, ok := strings.CutSuffix(origin, "/"+ns)
	return ok && prefix != ""
}

// originNamespace is the namespace of a log origin <prefix>/<namespace>.
// A namespace may hold a '/' (a tenant id of another system), and so may
// --seal-origin: an origin names the longest of known that ends it, else
// what follows its last '/'.
func originNamespace(origin string, known []string) (string, bool) {
	best := ""
	for _, ns := range known {
		if isOriginOf(origin, ns) && len(ns) > len(best) {
			best = ns
		}
	}
	if best != "" {
		return best, true
	}
	return namespaceOf(origin)
}

// namespaceOf reads the namespace from a log origin <prefix>/<namespace>
// when no namespace verify knows ends it.
func namespaceOf(origin string) (string, bool) {
	i := strings.LastIndex(origin, "/")
	if i < 0 || i == len(origin)-1 {
		return "", false
	}
	return origin[i+1:], true
}

func ptr(v int64) *int64 { return &v }

func verifyNamespace(ctx context.Context, st Store, opts Options, ns string, trusted []seal.Checkpoint,
	nsOf func(origin string) (string, bool), report func(Finding)) (events, sealed int, err error) {
	// A checkpoint found bad, inconsistent or rolled back already says
	// why leaves lack a covering one: that is not named again.
	checkpointProblem := false
	emit := func(f Finding) {
		switch f.Problem {
		case BadSignature, Inconsistent, Rollback:
			checkpointProblem = true
		}
		report(f)
	}
	// Checkpoints: each signed by a known key, of this namespace, of the size
	// its row says.
	var cps []seal.Checkpoint
	for before := int64(0); ; {
		page, err := st.Checkpoints(ctx, ns, before, 1000)
		if err != nil {
			return 0, 0, err
		}
		for _, c := range page {
			cp, err := seal.Open(c.Note, opts.Verifiers)
			switch {
			case err != nil:
				emit(Finding{Namespace: ns, Problem: BadSignature, Index: ptr(c.Size), Detail: fmt.Sprintf("checkpoint of size %d: %v", c.Size, err)})
				continue
			case cp.Size != c.Size:
				emit(Finding{Namespace: ns, Problem: Inconsistent, Index: ptr(c.Size), Detail: fmt.Sprintf("the checkpoint stored at size %d is signed for size %d", c.Size, cp.Size)})
				continue
			}
			if got, _ := nsOf(cp.Origin); got != ns {
				emit(Finding{Namespace: ns, Problem: Inconsistent, Index: ptr(c.Size), Detail: fmt.Sprintf("checkpoint of size %d is of log %q", c.Size, cp.Origin)})
				continue
			}
			cps = append(cps, cp)
		}
		if len(page) < 1000 {
			break
		}
		before = page[len(page)-1].Size
	}
	slices.SortFunc(cps, func(a, b seal.Checkpoint) int { return int(a.Size - b.Size) })
	check := slices.Clone(cps)
	check = append(check, trusted...)
	slices.SortFunc(check, func(a, b seal.Checkpoint) int { return int(a.Size - b.Size) })

	var last seal.Checkpoint
	if len(cps) > 0 {
		last = cps[len(cps)-1]
	}
	// The log's roots, from the leaves the walk below reads.
	maxAhead := defaultMaxAhead
	if opts.maxAhead != 0 {
		maxAhead = max(opts.maxAhead, 0)
	}
	roots := newRootWalk(ns, check, trusted, emit, maxAhead, func(indexes []int64) ([]tlog.Hash, error) {
		return st.ReadHashes(ctx, ns, indexes)
	})

	// Events and leaves side by side in key order (time, seq), a
	// page at a time: memory stays flat whatever a namespace holds. Each
	// page of leaves is read after the page of events it pairs with, so
	// an event read has its leaf (same transaction) in what is read next;
	// the other races (an event stored or a leaf sealed between reads)
	// are looked up again before they are named.
	stale := opts.Now().Add(-2 * opts.SealInterval)
	var leafless []*store.Event     // events without a leaf at their key, to look up again
	var orphans []seal.KeyedLeaf    // sealed leaves without an event, likewise
	unreadable := map[int64]error{} // by seq: why an event's JSON values did not decode
	rekeyed := map[int64]bool{}     // by seq: sealed leaves named for a key edited
	after := store.Position{Time: -1 << 63, Seq: -1 << 63}
	var buf []seal.KeyedLeaf
	// take puts a leaf the key walk read into buf, or names it.
	take := func(l seal.KeyedLeaf) error {
		if l.Index >= 0 {
			if err := roots.add(l.Index, l.Seq, l.Data); err != nil {
				return err
			}
			// The key (time, seq) pairs a leaf with its event and
			// dates it for retention, but no signature covers it:
			// the time sealed in the data does. A leaf moved to
			// another time is named here, once, and pairs with
			// nothing (its event, wherever it is, is not named
			// again).
			if t, ok := seal.DataTime(l.Data); !ok || t != l.Time {
				rekeyed[l.Seq] = true
				emit(Finding{Namespace: ns, Problem: Altered, Index: ptr(l.Index), Seq: ptr(l.Seq),
					Detail: fmt.Sprintf("its leaf is keyed at %s, and %s is the time sealed in it: the key was edited",
						time.Unix(0, l.Time).UTC().Format(time.RFC3339Nano), time.Unix(0, t).UTC().Format(time.RFC3339Nano))})
				return nil
			}
		}
		buf = append(buf, l)
		return nil
	}
	// LeavesByKey reads the keys after its first; the least key, which
	// nothing is after, is looked up on its own, as the events' walk
	// reads it too (an event and a leaf written there with SQL were
	// otherwise a pair verify never met).
	if l, ok, err := st.LeafAt(ctx, ns, after); err != nil {
		return 0, 0, err
	} else if ok {
		if err := take(l); err != nil {
			return 0, 0, err
		}
	}
	// leavesThrough reads every leaf up to key through into buf.
	leavesThrough := func(through store.Position) error {
		for {
			page, err := st.LeavesByKey(ctx, ns, after, through, pageSize)
			if err != nil {
				return err
			}
			for _, l := range page {
				if err := take(l); err != nil {
					return err
				}
			}
			if len(page) > 0 {
				l := page[len(page)-1]
				after = store.Position{Time: l.Time, Seq: l.Seq}
			}
			if len(page) < pageSize {
				return nil
			}
		}
	}
	// unsealed says why a leaf no checkpoint covers is a finding, if it
	// is: too long unsealed, or a place or a time of writing that ingest
	// does not give (a leaf written with SQL: neither is signed).
	unsealed := func(l seal.KeyedLeaf) string {
		switch {
		case l.Index == seal.IndexNegative:
			return "its leaf has a negative place, which no log has"
		case opts.SealInterval <= 0:
			return ""
		// Now, not the walk's start: a walk of a large namespace beside
		// ingest meets leaves written after it began.
		case l.Created.After(opts.Now().Add(opts.SealInterval)):
			return fmt.Sprintf("its leaf says it was written %s, later than now", l.Created.Format(time.RFC3339))
		case l.Created.Before(stale):
			return fmt.Sprintf("a leaf written %s is not sealed", l.Created.Format(time.RFC3339))
		}
		return ""
	}
	// leafOnly judges a leaf whose event was not read.
	leafOnly := func(l seal.KeyedLeaf) {
		if l.Index < 0 {
			if why := unsealed(l); why != "" {
				emit(Finding{Namespace: ns, Problem: Unsealed, Seq: ptr(l.Seq), Detail: why})
			}
			return
		}
		orphans = append(orphans, l)
	}
	// The next page of events is read while this one is checked, and
	// digests are computed on every core: the canonical encoding and
	// SHA-256 of each event are most of verify's work.
	type fetched struct {
		page store.EventPage
		err  error
	}
	// A prefetch still running when the walk fails stops with it.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fetch := func(token string) <-chan fetched {
		ch := make(chan fetched, 1)
		go func() {
			defer func() {
				if p := recover(); p != nil {
					ch <- fetched{err: fmt.Errorf("reading events: a panic: %v", p)}
				}
			}()
			page, err := st.Events(ctx, store.EventQuery{View: "verify", Namespace: ns, Page: store.Page{Size: pageSize, Token: token},
				// A payload edited into garbage is an edited row: named, not a stop.
				KeepUnreadable: true, WithKeys: true})
			ch <- fetched{page, err}
		}()
		return ch
	}
	type pair struct {
		e *store.Event
		l seal.KeyedLeaf
		k *store.StoredKeys // nil: not read
	}
	var pairs []pair
	pending := fetch("")
	for {
		f := <-pending
		if f.err != nil {
			return events, sealed, f.err
		}
		page := f.page
		maps.Copy(unreadable, page.Unreadable) // read by the digest workers below, not written
		through := store.Position{Time: 1<<63 - 1, Seq: 1<<63 - 1}
		if page.NextToken != "" && len(page.Events) > 0 {
			e := page.Events[len(page.Events)-1]
			through = store.Position{Time: e.Time.UnixNano(), Seq: e.Seq}
		}
		// The next page is read while this one's leaves are (each page's
		// leaves are still read after it, see above) and checked.
		if page.NextToken != "" {
			pending = fetch(page.NextToken)
		}
		if err := leavesThrough(through); err != nil {
			return events, sealed, err
		}
		i := 0
		pairs = pairs[:0]
		for k := range page.Events {
			e := &page.Events[k]
			events++
			key := store.Position{Time: e.Time.UnixNano(), Seq: e.Seq}
			for i < len(buf) && keyLess(buf[i], key) {
				leafOnly(buf[i])
				i++
			}
			if i == len(buf) || buf[i].Time != key.Time || buf[i].Seq != key.Seq {
				ev := *e
				leafless = append(leafless, &ev)
				continue
			}
			l := buf[i]
			i++
			if l.Index < 0 {
				if why := unsealed(l); why != "" {
					emit(Finding{Namespace: ns, Problem: Unsealed, Seq: ptr(l.Seq), ID: e.ID, Detail: why})
				}
				continue
			}
			sealed++
			p := pair{e: e, l: l}
			if k < len(page.Keys) {
				p.k = &page.Keys[k]
			}
			pairs = append(pairs, p)
		}
		// Digests on every core; findings in key order.
		found := make([][]Finding, len(pairs))
		workers := min(runtime.GOMAXPROCS(0), max(1, len(pairs)/256))
		var wg sync.WaitGroup
		var panicked atomic.Value
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					if p := recover(); p != nil {
						panicked.Store(fmt.Sprint(p))
					}
				}()
				for j := w; j < len(pairs); j += workers {
					e := pairs[j].e
					add := func(f Finding) { found[j] = append(found[j], f) }
					// A row found altered is named once.
					if checkDigest(ns, e, pairs[j].l, unreadable[e.Seq], add) && pairs[j].k != nil {
						checkKeys(ns, e, pairs[j].l, *pairs[j].k, add)
					}
				}
			}()
		}
		wg.Wait()
		if p := panicked.Load(); p != nil {
			return events, sealed, fmt.Errorf("checking digests: a panic: %v", p)
		}
		for _, fs := range found {
			for _, f := range fs {
				emit(f)
			}
		}
		buf = append(buf[:0], buf[i:]...)
		if page.NextToken == "" {
			break
		}
	}
	for _, l := range buf {
		leafOnly(l)
	}
	size, err := roots.finish(ctx, st, last.Size)
	if err != nil {
		return events, sealed, err
	}
	if size > last.Size && !checkpointProblem {
		// The leader may have sealed them after the checkpoints were
		// read (verify runs beside the manager): a signed checkpoint
		// covering them now is enough here; the next run checks its root.
		now, ok, err := newestNow(ctx, st, opts, ns, nsOf)
		if err != nil {
			return events, sealed, err
		}
		if !ok || now.Size < size {
			emit(Finding{Namespace: ns, Problem: Unsealed, Index: ptr(last.Size), Detail: fmt.Sprintf("leaves %d to %d have indexes but no signed checkpoint covers them", last.Size, size-1)})
		}
	}

	// An event whose time was edited is not at its leaf's key: its seq
	// (unique, kept) pairs it with the leaf left without an event.
	bySeq := make(map[int64]int, len(orphans))
	for i, l := range orphans {
		bySeq[l.Seq] = i
	}
	moved := map[int64]bool{}
	for _, e := range leafless {
		if rekeyed[e.Seq] {
			continue
		}
		if i, ok := bySeq[e.Seq]; ok {
			moved[e.Seq] = true
			checkDigest(ns, e, orphans[i], unreadable[e.Seq], emit)
			sealed++
			continue
		}
		// Stored between the reads, its leaf is there now.
		if _, ok, err := st.LeafAt(ctx, ns, store.Position{Time: e.Time.UnixNano(), Seq: e.Seq}); err != nil {
			return events, sealed, err
		} else if !ok {
			emit(Finding{Namespace: ns, Problem: Unsealed, Seq: ptr(e.Seq), ID: e.ID, Detail: "an event with no leaf: ingest did not store it"})
		}
	}
	// Leaves whose event is gone: by retention when older than the latest
	// cutoff a checkpoint of the log binds, by hand otherwise. Not only
	// the newest one's: a leader whose checkpoint was signed before
	// another bound a later cutoff (two leaders for a moment), or a
	// manager of a version that let the cutoff go back when --retention
	// was raised, leaves an earlier cutoff on top of what retention
	// deleted under the later one. Each was signed by the manager.
	//
	// A cutoff later than now is not one retention could apply: an upkeep
	// whose clock stepped ahead bound it (and deleted what it allowed,
	// wrongly: those events are named). Counted, it would excuse every
	// deletion by hand for as long as the clock has not caught up.
	possible := func(c time.Time) bool { return !c.After(opts.Now().Add(opts.SealInterval)) }
	var cutoff time.Time
	reread := false
	for _, c := range cps {
		if c.RetentionCutoff.After(cutoff) && possible(c.RetentionCutoff) {
			cutoff = c.RetentionCutoff
		}
	}
	for _, l := range orphans {
		if moved[l.Seq] {
			continue
		}
		sealedAt, _ := seal.DataTime(l.Data) // l.Time: a leaf keyed elsewhere is not here
		t := time.Unix(0, sealedAt).UTC()
		if !cutoff.IsZero() && t.Before(cutoff) {
			continue
		}
		if !reread {
			// Verify runs beside the leader, whose upkeep signs a later
			// cutoff and then deletes: the newest checkpoint now, once.
			reread = true
			if now, ok, err := newestNow(ctx, st, opts, ns, nsOf); err != nil {
				return events, sealed, err
			} else if ok && now.Size >= last.Size && now.RetentionCutoff.After(cutoff) && possible(now.RetentionCutoff) {
				if cutoff = now.RetentionCutoff; t.Before(cutoff) {
					continue
				}
			}
		}
		if ok, err := st.EventAt(ctx, ns, store.Position{Time: l.Time, Seq: l.Seq}); err != nil {
			return events, sealed, err
		} else if ok {
			continue
		}
		emit(Finding{Namespace: ns, Problem: Missing, Index: ptr(l.Index), Seq: ptr(l.Seq),
			Detail: fmt.Sprintf("the event of %s is not in the store", t.Format(time.RFC3339Nano))})
	}
	return events, sealed, nil
}

// keyLess says whether leaf l's key is before key.
func keyLess(l seal.KeyedLeaf, key store.Position) bool {
	return l.Time < key.Time || (l.Time == key.Time && l.Seq < key.Seq)
}

// checkDigest names an event whose digest is not its sealed leaf's, or
// whose stored payload does not decode (unreadable): what was sealed
// cannot be read back, even where the digest of what is left matches (an
// event that had none). It says whether the event is its leaf's.
func checkDigest(ns string, e *store.Event, l seal.KeyedLeaf, unreadable error, emit func(Finding)) bool {
	if unreadable != nil {
		emit(Finding{Namespace: ns, Problem: Altered, Index: ptr(l.Index), Seq: ptr(e.Seq), ID: e.ID,
			Detail: "its stored payload (JSON values, text fields) does not decode: " + unreadable.Error()})
		return false
	}
	d, err := seal.Digest(e, l.Version)
	if err != nil {
		emit(Finding{Namespace: ns, Problem: Altered, Index: ptr(l.Index), Seq: ptr(e.Seq), ID: e.ID, Detail: err.Error()})
		return false
	}
	if want := seal.LeafData(e.Time, d); !bytes.Equal(want[:], l.Data) {
		what := "its content differs from what was sealed"
		if !bytes.Equal(want[:8], l.Data[:8]) {
			what = "its time differs from what was sealed"
		}
		emit(Finding{Namespace: ns, Problem: Altered, Index: ptr(l.Index), Seq: ptr(e.Seq), ID: e.ID, Detail: what})
		return false
	}
	return true
}

// checkKeys names an event stored with keys that are not its own: no
// leaf covers them, and they decide what ingest does next. An edited
// content key lets a re-send of the event be stored a second time (and
// sealed), an edited id key hides a reuse of its id from the metric.
func checkKeys(ns string, e *store.Event, l seal.KeyedLeaf, k store.StoredKeys, emit func(Finding)) {
	var what string
	switch ch := store.ContentHash(e); {
	case !bytes.Equal(k.Content, ch[:]):
		what = "its content key (content_hash) is not its content's: a re-send of it would be stored again"
	case k.IDHash != store.IDHash(e.ID):
		what = "its id key (id_hash) is not its id's: a reuse of its id would not be counted"
	default:
		return
	}
	emit(Finding{Namespace: ns, Problem: Altered, Index: ptr(l.Index), Seq: ptr(e.Seq), ID: e.ID, Detail: what})
}

// newestNow returns ns's newest checkpoint as it is now, when a known key
// signed it for this log (ok false otherwise): verify runs beside the
// leader, which seals and binds retention cutoffs meanwhile.
func newestNow(ctx context.Context, st Store, opts Options, ns string, nsOf func(string) (string, bool)) (cp seal.Checkpoint, ok bool, err error) {
	page, err := st.Checkpoints(ctx, ns, 0, 1)
	if err != nil || len(page) == 0 {
		return seal.Checkpoint{}, false, err
	}
	cp, err = seal.Open(page[0].Note, opts.Verifiers)
	if err != nil || cp.Size != page[0].Size {
		return seal.Checkpoint{}, false, nil
	}
	if got, _ := nsOf(cp.Origin); got != ns {
		return seal.Checkpoint{}, false, nil
	}
	return cp, true, nil
}
