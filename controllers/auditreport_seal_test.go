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

package controllers

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/mod/sumdb/note"
	eventsv1 "k8s.io/api/events/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	reportsv1alpha1 "github.com/auditops/auditops/api/v1alpha1"
	"github.com/auditops/auditops/internal/report"
	"github.com/auditops/auditops/internal/seal"
	"github.com/auditops/auditops/internal/sealverify"
	"github.com/auditops/auditops/internal/store"
	"github.com/auditops/auditops/internal/store/sqlite"
)

// lateSealer seals as the manager does, then stores an event inside the
// report's window: one that arrives between the seal and the first page.
type lateSealer struct {
	*seal.Sealer
	st   store.Store
	late store.Event

	mu     sync.Mutex
	sealed []seal.Checkpoint
}

func (l *lateSealer) SealNow(ctx context.Context, ns string) (seal.Checkpoint, error) {
	cp, err := l.Sealer.SealNow(ctx, ns)
	if err != nil {
		return cp, err
	}
	l.mu.Lock()
	l.sealed = append(l.sealed, cp)
	l.mu.Unlock()
	late := l.late
	late.Namespace = ns
	if _, err := l.st.Insert(ctx, []store.Event{late}); err != nil {
		return cp, err
	}
	return cp, nil
}

// TestReportPinnedToCheckpoint (spec/API.md 6): a report seals its tenant's
// log before it reads, records the checkpoint in status.seal, and holds
// exactly that checkpoint's events: one stored right after the seal, inside
// the window, is not in it (an unpinned read has it).
func TestReportPinnedToCheckpoint(t *testing.T) {
	kr, err := seal.NewKeyring(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dbPath := filepath.Join(t.TempDir(), "audit.db")
	st, err := sqlite.New(context.Background(), dbPath, store.Options{
		TokenKey: []byte("controllers-test-token-key-0123456789"), Leaves: seal.LeafMaker{Keys: kr},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ns := createNamespace(t, "pinned")
	seedSmall(t, st, ns)
	sealer := &lateSealer{
		Sealer: &seal.Sealer{Store: st, Keys: kr, Origin: seal.DefaultOriginPrefix, Now: time.Now},
		st:     st,
		late: store.Event{ID: "late-arrival", User: "late-arrival", Time: day1.Add(time.Hour), Method: "delete", API: "/secrets",
			Status: store.StatusSuccess, Category: store.CategoryData},
	}
	startManager(t, &AuditReportReconciler{Store: st, Sealer: sealer})
	rep := newReport(ns, "pinned", reportsv1alpha1.AuditDetails, day1, day1.Add(48*time.Hour))
	if err := k8sClient.Create(context.Background(), rep); err != nil {
		t.Fatal(err)
	}
	got := waitFinished(t, ns, rep.Name)
	if got.Status.Phase != reportsv1alpha1.PhaseSucceeded {
		t.Fatalf("phase %s: %+v", got.Status.Phase, got.Status.Conditions)
	}
	sealer.mu.Lock()
	sealed := sealer.sealed
	sealer.mu.Unlock()
	if len(sealed) != 1 {
		t.Fatalf("the report sealed %d times, want once", len(sealed))
	}
	cp := sealed[0]
	want := reportsv1alpha1.ReportSeal{Origin: "auditops/" + ns, Size: cp.Size, RootHash: base64.StdEncoding.EncodeToString(cp.Root[:])}
	if got.Status.Seal == nil || *got.Status.Seal != want || cp.Size == 0 {
		t.Fatalf("status.seal %+v, want %+v", got.Status.Seal, want)
	}
	data, _ := readConfigMapReport(t, got)
	checkDigest(t, got, data)
	p := report.Params{Type: reportsv1alpha1.AuditDetails, Namespace: ns, Range: store.TimeRange{From: day1, To: day1.Add(48 * time.Hour)}}
	unpinned := generated(t, st, p)
	p.InLog = &cp.Size
	pinned := generated(t, st, p)
	if !bytes.Equal(data, pinned) {
		t.Errorf("the report (%d bytes) is not the pinned read (%d bytes)", len(data), len(pinned))
	}
	if bytes.Contains(data, []byte("late-arrival")) || !bytes.Contains(unpinned, []byte("late-arrival")) {
		t.Errorf("the event stored after the seal: in the report %v, in an unpinned read %v",
			bytes.Contains(data, []byte("late-arrival")), bytes.Contains(unpinned, []byte("late-arrival")))
	}
	// seedSmall stores 7 events in ns, 6 in the window.
	if cp.Size != 7 || got.Status.Records != 6 {
		t.Errorf("%d records of a checkpoint of %d leaves, want 6 of 7", got.Status.Records, cp.Size)
	}

	// manager verify report's check: equal now, and after the log grew
	// (the late event sealed); not after a row of the report is edited
	// with SQL; equal again once it is put back; a rollback finding once
	// the log is cut below the report's checkpoint, also from verify
	// with the report as a witness.
	ctx := context.Background()
	verify := func(what string, wantEqual bool, wantFindings int) {
		t.Helper()
		res, err := sealverify.VerifyReport(ctx, st, st, got)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if res.Equal() != wantEqual || len(res.Findings) != wantFindings || (wantFindings == 0 && res.Records != 6) {
			t.Errorf("%s: %+v, want equal %v with %d findings", what, res, wantEqual, wantFindings)
		}
	}
	verify("as generated", true, 0)
	if _, err := sealer.Sealer.Seal(ctx, ns); err != nil {
		t.Fatal(err)
	}
	verify("after the log grew", true, 0)
	db, err := sql.Open("sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec("UPDATE events SET user_name = 'nobody' WHERE namespace = ? AND id = 'b2'", ns)
	verify("a row edited", false, 0)
	exec("UPDATE events SET user_name = 'bob' WHERE namespace = ? AND id = 'b2'", ns)
	verify("the row put back", true, 0)

	witness, err := sealverify.Witness(*got.Status.Seal)
	if err != nil {
		t.Fatal(err)
	}
	var findings []sealverify.Finding
	if _, err := sealverify.Verify(ctx, st, sealverify.Options{Verifiers: mustVerifiers(t, kr), Witnesses: []seal.Checkpoint{witness}},
		func(f sealverify.Finding) { findings = append(findings, f) }); err != nil || len(findings) != 0 {
		t.Fatalf("verify with the report as witness, before the rollback: %v, %+v", err, findings)
	}
	// The intruder cuts the log and its checkpoints back to 3 leaves and
	// deletes the events past them, as if they had never been stored.
	exec("DELETE FROM events WHERE namespace = ? AND seq IN (SELECT seq FROM leaves WHERE namespace = ? AND place >= 3)", ns, ns)
	exec("DELETE FROM leaves WHERE namespace = ? AND (place IS NULL OR place >= 3)", ns)
	exec("DELETE FROM checkpoints WHERE namespace = ? AND size > 3", ns)
	verify("the log cut back", false, 1)
	findings = nil
	if _, err := sealverify.Verify(ctx, st, sealverify.Options{Verifiers: mustVerifiers(t, kr), Witnesses: []seal.Checkpoint{witness}},
		func(f sealverify.Finding) { findings = append(findings, f) }); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(findings, func(f sealverify.Finding) bool { return f.Problem == sealverify.Rollback && f.Namespace == ns }) {
		t.Errorf("verify with the report as witness after the rollback: %+v, want a rollback of %s", findings, ns)
	}
}

func mustVerifiers(t *testing.T, kr *seal.Keyring) note.Verifiers {
	t.Helper()
	vs, err := seal.Verifiers(kr.VerifierKeys()...)
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

// TestVeryLateEventIsFlagged: an event of an hourly run's window stored
// after that run sealed and read the log (later than the settle delay, as
// after a long webhook outage) is in no run: the run read its checkpoint,
// and the next run's window starts where its ended. The schedule counts
// such events at its next run and says so: the run's LateEventsAnnotation
// and a LateEvents Warning on the parent. Before, nothing showed it.
func TestVeryLateEventIsFlagged(t *testing.T) {
	kr, err := seal.NewKeyring(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.New(context.Background(), filepath.Join(t.TempDir(), "audit.db"), store.Options{
		TokenKey: []byte("controllers-test-token-key-0123456789"), Leaves: seal.LeafMaker{Keys: kr},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	clock := &fakeClock{}
	clock.Set(time.Now())
	sealer := &seal.Sealer{Store: st, Keys: kr, Origin: seal.DefaultOriginPrefix, Now: time.Now}
	metrics := NewMetrics(prometheus.NewRegistry())
	startManager(t, &AuditReportReconciler{Store: st, Clock: clock, SettleDelay: time.Minute, Sealer: sealer, Metrics: metrics})
	ns := createNamespace(t, "very-late")
	run := createHourly(t, ns)
	ev := func(id string, at time.Time) store.Event {
		return store.Event{ID: id, Time: at, Namespace: ns, User: "alice", Method: "delete", API: "/pods",
			Status: store.StatusSuccess, StatusCode: 200, Category: store.CategoryData}
	}
	if _, err := st.Insert(context.Background(), []store.Event{ev("on-time", run.Add(-time.Minute))}); err != nil {
		t.Fatal(err)
	}
	finished := func(at time.Time) *reportsv1alpha1.AuditReport {
		t.Helper()
		clock.Set(at.Add(61 * time.Second))
		poke(t, ns, "hourly")
		var rep reportsv1alpha1.AuditReport
		eventually(t, 30*time.Second, fmt.Sprintf("run hourly-%d", at.Unix()), func(ctx context.Context) (bool, error) {
			err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: fmt.Sprintf("hourly-%d", at.Unix())}, &rep)
			return err == nil && rep.Status.Phase == reportsv1alpha1.PhaseSucceeded, client.IgnoreNotFound(err)
		})
		return &rep
	}
	first := finished(run)
	if first.Status.Seal == nil || first.Status.Records != 1 {
		t.Fatalf("the first run read %d records, seal %+v; want the on-time event, pinned", first.Status.Records, first.Status.Seal)
	}
	// Ten minutes after the window closed: past the settle delay, after
	// the run sealed and read.
	if _, err := st.Insert(context.Background(), []store.Event{ev("very-late", run.Add(-30*time.Second))}); err != nil {
		t.Fatal(err)
	}
	second := finished(run.Add(time.Hour))
	if second.Status.Records != 0 {
		t.Fatalf("the second run read %d records; its window starts after the late event", second.Status.Records)
	}
	eventually(t, 30*time.Second, "the first run flagged with one late event", func(ctx context.Context) (bool, error) {
		var rep reportsv1alpha1.AuditReport
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(first), &rep); err != nil {
			return false, err
		}
		return rep.Annotations[LateEventsAnnotation] == "1", nil
	})
	eventually(t, 30*time.Second, "a LateEvents Warning on the parent", func(ctx context.Context) (bool, error) {
		var evs eventsv1.EventList
		if err := k8sClient.List(ctx, &evs, client.InNamespace(ns)); err != nil {
			return false, err
		}
		for _, e := range evs.Items {
			if e.Regarding.Name == "hourly" && e.Reason == ReasonLateEvents && e.Type == "Warning" &&
				strings.Contains(e.Note, "1 events of run "+first.Name) {
				return true, nil
			}
		}
		return false, nil
	})
	if n := testutil.ToFloat64(metrics.late.WithLabelValues(string(first.Spec.Type))); n != 1 {
		t.Errorf("auditops_report_late_events_total = %v, want 1", n)
	}
}

// TestLateEventsSeriesStartAtZero: each report type's late-events series
// exists from the start at 0, so increase() sees the first late events and
// AuditopsLateEvents fires (a series born at its first value shows none).
func TestLateEventsSeriesStartAtZero(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	if n := testutil.CollectAndCount(m.late); n != 5 {
		t.Errorf("%d late-events series at start, want one per report type (5)", n)
	}
	if v := testutil.ToFloat64(m.late.WithLabelValues(string(reportsv1alpha1.AuditDetails))); v != 0 {
		t.Errorf("AuditDetails starts at %v", v)
	}
}
