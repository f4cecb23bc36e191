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
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	reportsv1alpha1 "github.com/auditops/auditops/api/v1alpha1"
	"github.com/auditops/auditops/internal/store"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// children lists the runs of a parent, oldest first.
func children(t *testing.T, ns, parent string) []reportsv1alpha1.AuditReport {
	t.Helper()
	var list reportsv1alpha1.AuditReportList
	if err := k8sClient.List(context.Background(), &list, client.InNamespace(ns), client.MatchingLabels{ParentLabel: parent}); err != nil {
		t.Fatal(err)
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	return list.Items
}

// poke makes the controller look at the parent again, as its RequeueAfter
// would once the (fake) time had come.
func poke(t *testing.T, ns, name string) {
	t.Helper()
	var p reportsv1alpha1.AuditReport
	if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &p); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(p.DeepCopy())
	if p.Annotations == nil {
		p.Annotations = map[string]string{}
	}
	p.Annotations["test/poke"] = fmt.Sprint(time.Now().UnixNano())
	if err := k8sClient.Patch(context.Background(), &p, patch); err != nil {
		t.Fatal(err)
	}
}

func TestScheduledReportCreatesRunsAndPrunesHistory(t *testing.T) {
	st := newSQLiteStore(t)
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{}
	// The parent is created "now"; its first run is the next 06:00 Berlin.
	clock.Set(time.Now())
	startManager(t, &AuditReportReconciler{Store: st, Clock: clock})
	ns := createNamespace(t, "schedule")
	parent := &reportsv1alpha1.AuditReport{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "daily"},
		Spec: reportsv1alpha1.AuditReportSpec{
			Type:                       reportsv1alpha1.AuditDetails,
			Schedule:                   "0 6 * * *",
			TimeZone:                   ptrTo("Europe/Berlin"),
			Range:                      reportsv1alpha1.ReportRange{Last: &metav1.Duration{Duration: 24 * time.Hour}},
			SuccessfulRunsHistoryLimit: ptrTo(int32(2)),
		},
	}
	if err := k8sClient.Create(context.Background(), parent); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the parent to be Scheduled", func(ctx context.Context) (bool, error) {
		var p reportsv1alpha1.AuditReport
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(parent), &p); err != nil {
			return false, err
		}
		return p.Status.Phase == reportsv1alpha1.PhaseScheduled, nil
	})
	if got := children(t, ns, "daily"); len(got) != 0 {
		t.Fatalf("%d runs before the first 06:00", len(got))
	}

	// Four mornings, one after another: each makes one run over the 24 h
	// before 06:00 Berlin; only the latest two succeeded runs are kept.
	created := parent.CreationTimestamp.Time.In(berlin)
	first := time.Date(created.Year(), created.Month(), created.Day(), 6, 0, 0, 0, berlin)
	if !first.After(created) {
		first = first.AddDate(0, 0, 1)
	}
	var runs []time.Time
	for i := 0; i < 4; i++ {
		run := first.AddDate(0, 0, i)
		runs = append(runs, run)
		clock.Set(run.Add(30 * time.Second))
		poke(t, ns, "daily")
		name := fmt.Sprintf("daily-%d", run.Unix())
		eventually(t, 30*time.Second, "run "+name, func(ctx context.Context) (bool, error) {
			var c reportsv1alpha1.AuditReport
			err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &c)
			return err == nil && c.Status.Phase == reportsv1alpha1.PhaseSucceeded, client.IgnoreNotFound(err)
		})
		var c reportsv1alpha1.AuditReport
		if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &c); err != nil {
			t.Fatal(err)
		}
		if !c.Spec.Range.From.Time.Equal(run.Add(-24*time.Hour)) || !c.Spec.Range.To.Time.Equal(run) || c.Spec.Range.Last != nil || c.Spec.Schedule != "" {
			t.Errorf("run %s covers %v..%v (last %v, schedule %q), want the 24 h before %v", name, c.Spec.Range.From, c.Spec.Range.To, c.Spec.Range.Last, c.Spec.Schedule, run)
		}
		if owner := metav1.GetControllerOf(&c); owner == nil || owner.Name != "daily" {
			t.Errorf("run %s is not owned by its parent", name)
		}
	}
	poke(t, ns, "daily")
	eventually(t, 30*time.Second, "history pruned to two runs", func(ctx context.Context) (bool, error) {
		return len(children(t, ns, "daily")) == 2, nil
	})
	got := children(t, ns, "daily")
	for i, c := range got {
		if want := fmt.Sprintf("daily-%d", runs[2+i].Unix()); c.Name != want {
			t.Errorf("kept run %s, want %s (the newest two)", c.Name, want)
		}
	}
	var p reportsv1alpha1.AuditReport
	if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(parent), &p); err != nil {
		t.Fatal(err)
	}
	if p.Status.LastScheduleTime == nil || !p.Status.LastScheduleTime.Time.Equal(runs[3]) {
		t.Errorf("lastScheduleTime = %v, want %v", p.Status.LastScheduleTime, runs[3])
	}

	// Ten days down: one run for the latest missed 06:00, and an event saying so.
	latest := runs[3].AddDate(0, 0, 10)
	clock.Set(latest.Add(time.Hour))
	poke(t, ns, "daily")
	name := fmt.Sprintf("daily-%d", latest.Unix())
	eventually(t, 30*time.Second, "the run after the gap", func(ctx context.Context) (bool, error) {
		var c reportsv1alpha1.AuditReport
		err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &c)
		return err == nil && c.Status.Phase == reportsv1alpha1.PhaseSucceeded, client.IgnoreNotFound(err)
	})
	eventually(t, 30*time.Second, "a MissedRuns event", func(ctx context.Context) (bool, error) {
		var evs eventsv1.EventList
		if err := k8sClient.List(ctx, &evs, client.InNamespace(ns)); err != nil {
			return false, err
		}
		for _, ev := range evs.Items {
			if ev.Regarding.Name == "daily" && ev.Reason == "MissedRuns" {
				return true, nil
			}
		}
		return false, nil
	})

	// Suspended: no new run.
	if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(parent), &p); err != nil {
		t.Fatal(err)
	}
	// A merge patch, not an Update: the controller may write the status
	// between our Get and our write, and an Update would then conflict.
	suspend := client.MergeFrom(p.DeepCopy())
	p.Spec.Suspend = ptrTo(true)
	if err := k8sClient.Patch(context.Background(), &p, suspend); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the parent to be Suspended", func(ctx context.Context) (bool, error) {
		var p reportsv1alpha1.AuditReport
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(parent), &p); err != nil {
			return false, err
		}
		return p.Status.Phase == reportsv1alpha1.PhaseSuspended, nil
	})
	clock.Set(latest.AddDate(0, 0, 1).Add(time.Hour))
	poke(t, ns, "daily")
	time.Sleep(500 * time.Millisecond)
	for _, c := range children(t, ns, "daily") {
		if c.Name == fmt.Sprintf("daily-%d", latest.AddDate(0, 0, 1).Unix()) {
			t.Error("a suspended schedule started a run")
		}
	}
}

func TestLastMissedRun(t *testing.T) {
	every := func(spec string) cron.Schedule {
		s, err := cron.ParseStandard(spec)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name       string
		sched      string
		earliest   time.Time
		now        time.Time
		wantLast   time.Time
		wantMissed int
	}{
		{"none yet", "0 6 * * *", base, base.Add(5 * time.Hour), time.Time{}, 0},
		{"exactly at the run", "0 6 * * *", base, base.Add(6 * time.Hour), base.Add(6 * time.Hour), 1},
		{"three days", "0 6 * * *", base, base.Add(3*24*time.Hour + 7*time.Hour), base.Add(3*24*time.Hour + 6*time.Hour), 4},
		{"a year of minutes is bounded", "* * * * *", base, base.AddDate(1, 0, 0).Add(30 * time.Second), base.AddDate(1, 0, 0), maxMissedRunsCounted + 1},
		{"every second for a day", "@every 1s", base, base.Add(24 * time.Hour), base.Add(24 * time.Hour), maxMissedRunsCounted + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			last, missed := lastMissedRun(every(tc.sched), tc.earliest, tc.now)
			if !last.Equal(tc.wantLast) || missed != tc.wantMissed {
				t.Errorf("got %v, %d; want %v, %d", last, missed, tc.wantLast, tc.wantMissed)
			}
		})
	}
}

// TestLastMissedRunTerminates is a property test over random cron
// expressions, impossible dates among them ("0 0 31 4 *" made the missed-run
// search loop forever): every call returns within a second, and what it
// returns is consistent.
func TestLastMissedRunTerminates(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(opts ...string) string { return opts[rng.IntN(len(opts))] }
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 2000 {
		spec := strings.Join([]string{
			pick("0", "*", "*/7", "5,35", "59"),
			pick("0", "*", "*/3", "23", "12-14"),
			pick("*", "1", "15", "28", "29", "30", "31", "*/10"),
			pick("*", "1", "2", "4", "6", "9", "11", "2,4", "*/5"),
			pick("*", "0", "1-5", "6", "*/2"),
		}, " ")
		s, err := cron.ParseStandard(spec)
		if err != nil {
			t.Fatalf("%q: %v", spec, err)
		}
		earliest := base.Add(time.Duration(rng.Int64N(int64(400 * 24 * time.Hour))))
		now := earliest.Add(time.Duration(rng.Int64N(int64(3 * 365 * 24 * time.Hour))))
		done := make(chan struct{})
		var last time.Time
		var missed int
		go func() {
			defer close(done)
			last, missed = lastMissedRun(s, earliest, now)
		}()
		select {
		case <-done:
		case <-time.After(time.Second):
			t.Fatalf("case %d: lastMissedRun(%q, %v, %v) still runs after 1s", i, spec, earliest, now)
		}
		if (missed == 0) != last.IsZero() || last.After(now) || (!last.IsZero() && !last.After(earliest)) {
			t.Fatalf("case %d: %q from %v to %v: last %v, missed %d", i, spec, earliest, now, last, missed)
		}
	}
	for _, spec := range []string{"0 0 31 4 *", "0 0 30 2 *", "0 0 31 2,4,6,9,11 *"} {
		s, _ := cron.ParseStandard(spec)
		if _, ok := nextFire(s, base); ok {
			t.Errorf("%q fires?", spec)
		}
		if last, missed := lastMissedRun(s, base, base.AddDate(2, 0, 0)); missed != 0 || !last.IsZero() {
			t.Errorf("%q: %v, %d", spec, last, missed)
		}
	}
}

// TestScheduleThatNeverFires: "0 0 31 4 *" and "0 0 30 2 *" parse, but no
// time matches them. Two such reports used to pin both workers in the
// missed-run search for good; now each fails with InvalidSchedule, and a
// report created after them still runs.
func TestScheduleThatNeverFires(t *testing.T) {
	st := newSQLiteStore(t)
	startManager(t, &AuditReportReconciler{Store: st})
	ns := createNamespace(t, "never")
	for name, spec := range map[string]string{"april-31": "0 0 31 4 *", "february-30": "0 0 30 2 *"} {
		rep := &reportsv1alpha1.AuditReport{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: reportsv1alpha1.AuditReportSpec{Type: reportsv1alpha1.AuditDetails, Schedule: spec,
				Range: reportsv1alpha1.ReportRange{Last: &metav1.Duration{Duration: time.Hour}}},
		}
		if err := k8sClient.Create(context.Background(), rep); err != nil {
			t.Fatal(err)
		}
	}
	later := &reportsv1alpha1.AuditReport{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "one-shot"},
		Spec: reportsv1alpha1.AuditReportSpec{Type: reportsv1alpha1.AuditDetails,
			Range: reportsv1alpha1.ReportRange{Last: &metav1.Duration{Duration: time.Hour}}},
	}
	if err := k8sClient.Create(context.Background(), later); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"april-31", "february-30"} {
		eventually(t, 30*time.Second, name+" to fail with InvalidSchedule", func(ctx context.Context) (bool, error) {
			var p reportsv1alpha1.AuditReport
			if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &p); err != nil {
				return false, err
			}
			for _, c := range p.Status.Conditions {
				if c.Type == reportsv1alpha1.ConditionFailed && c.Reason == "InvalidSchedule" && strings.Contains(c.Message, "never fires") {
					return p.Status.Phase == reportsv1alpha1.PhaseFailed, nil
				}
			}
			return false, nil
		})
	}
	eventually(t, 30*time.Second, "the report created after them to succeed", func(ctx context.Context) (bool, error) {
		var p reportsv1alpha1.AuditReport
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(later), &p); err != nil {
			return false, err
		}
		return p.Status.Phase == reportsv1alpha1.PhaseSucceeded, nil
	})
}

// TestLateEventLandsInExactlyOneRun delivers an event of an hourly window
// 30 s after the window ended, as kube-apiserver's batching webhook does.
// With the settle delay the window's run starts after it arrived, so the
// event is in that run; the next run's window starts where this one ended,
// so it is in exactly one run. (Started on time, the run missed it, and so
// did every later run.)
func TestLateEventLandsInExactlyOneRun(t *testing.T) {
	st := newSQLiteStore(t)
	clock := &fakeClock{}
	clock.Set(time.Now())
	startManager(t, &AuditReportReconciler{Store: st, Clock: clock, SettleDelay: time.Minute})
	ns := createNamespace(t, "settle")
	run := createHourly(t, ns)
	runName := func(at time.Time) string { return fmt.Sprintf("hourly-%d", at.Unix()) }

	// On time plus 10 s: the webhook has not delivered the event yet, and
	// the run waits for the settle delay.
	clock.Set(run.Add(10 * time.Second))
	poke(t, ns, "hourly")
	time.Sleep(500 * time.Millisecond)
	if got := children(t, ns, "hourly"); len(got) != 0 {
		t.Fatalf("run %s started within the settle delay", got[0].Name)
	}
	late := store.Event{ID: "late-event", Time: run.Add(-time.Second), Namespace: ns, User: "alice",
		Method: "delete", API: "/pods", Status: store.StatusSuccess, StatusCode: 200, Category: store.CategoryData}
	if _, err := st.Insert(context.Background(), []store.Event{late}); err != nil {
		t.Fatal(err)
	}

	seen := 0
	for _, at := range []time.Time{run, run.Add(time.Hour)} {
		clock.Set(at.Add(61 * time.Second))
		poke(t, ns, "hourly")
		var rep *reportsv1alpha1.AuditReport
		eventually(t, 30*time.Second, "run "+runName(at), func(ctx context.Context) (bool, error) {
			var c reportsv1alpha1.AuditReport
			err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: runName(at)}, &c)
			rep = &c
			return err == nil && c.Status.Phase == reportsv1alpha1.PhaseSucceeded, client.IgnoreNotFound(err)
		})
		data, _ := readConfigMapReport(t, rep)
		if n := strings.Count(string(data), `"requested_method":"delete"`); n > 0 {
			seen += n
			if !at.Equal(run) {
				t.Errorf("the late event is in run %s, whose window starts after it", rep.Name)
			}
		}
	}
	if seen != 1 {
		t.Fatalf("the late event is in %d runs, want exactly 1", seen)
	}
}

// createHourly creates the AuditDetails parent "hourly" in ns, over the
// hour before each run, and returns the time of its first run.
func createHourly(t *testing.T, ns string) time.Time {
	t.Helper()
	parent := &reportsv1alpha1.AuditReport{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hourly"},
		Spec: reportsv1alpha1.AuditReportSpec{
			Type:     reportsv1alpha1.AuditDetails,
			Schedule: "0 * * * *",
			Range:    reportsv1alpha1.ReportRange{Last: &metav1.Duration{Duration: time.Hour}},
		},
	}
	if err := k8sClient.Create(context.Background(), parent); err != nil {
		t.Fatal(err)
	}
	return parent.CreationTimestamp.Time.Truncate(time.Hour).Add(time.Hour)
}

// TestScheduleFiresWhileLongReportsRun: two long reports hold both
// generation workers (each blocks at its first checkpoint until released),
// and a scheduled parent still starts its run on time: scheduling has its
// own controller. With one queue for both, the parent waited for a worker.
func TestScheduleFiresWhileLongReportsRun(t *testing.T) {
	st := newSQLiteStore(t)
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	defer unblock()
	var blocked sync.WaitGroup
	blocked.Add(2)
	// Each report blocks at its first checkpoint, so the first two calls
	// are the two reports'.
	var calls atomic.Int32
	clock := &fakeClock{}
	clock.Set(time.Now())
	startManager(t, &AuditReportReconciler{
		Store: st, Clock: clock, MaxConcurrentReconciles: 2,
		checkpointed: func(ctx context.Context, _ int64) {
			if calls.Add(1) <= 2 {
				blocked.Done()
			}
			select {
			case <-release:
			case <-ctx.Done():
			}
		},
	})
	ns := createNamespace(t, "busy")
	seedLarge(t, st, ns, 3000, 1000, true) // several shards: a checkpoint comes early
	for _, name := range []string{"long-1", "long-2"} {
		rep := newReport(ns, name, reportsv1alpha1.AuditDetails, day1, day1.Add(24*time.Hour))
		rep.Spec.PageSize = 100
		if err := k8sClient.Create(context.Background(), rep); err != nil {
			t.Fatal(err)
		}
	}
	waited := make(chan struct{})
	go func() { blocked.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(60 * time.Second):
		t.Fatal("the two long reports did not both reach a checkpoint")
	}

	parent := &reportsv1alpha1.AuditReport{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hourly"},
		Spec: reportsv1alpha1.AuditReportSpec{
			Type: reportsv1alpha1.Users, Schedule: "0 * * * *",
			Range: reportsv1alpha1.ReportRange{Last: &metav1.Duration{Duration: time.Hour}},
		},
	}
	if err := k8sClient.Create(context.Background(), parent); err != nil {
		t.Fatal(err)
	}
	due := clock.Now().Truncate(time.Hour).Add(time.Hour)
	clock.Set(due.Add(time.Second))
	poke(t, ns, "hourly")
	name := fmt.Sprintf("hourly-%d", due.Unix())
	eventually(t, 15*time.Second, "run "+name+" created while both workers generate", func(ctx context.Context) (bool, error) {
		var c reportsv1alpha1.AuditReport
		err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &c)
		return err == nil, client.IgnoreNotFound(err)
	})
	unblock()
	for _, n := range []string{"long-1", "long-2", name} {
		if got := waitFinished(t, ns, n); got.Status.Phase != reportsv1alpha1.PhaseSucceeded {
			t.Errorf("%s: phase %s", n, got.Status.Phase)
		}
	}
}

// TestChildOutputNames: each scheduled run writes its shards under a
// prefix of its own, for Secrets as for ConfigMaps: under the parent's
// prefix the second run would find the first run's objects and fail.
func TestChildOutputNames(t *testing.T) {
	at := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		out  reportsv1alpha1.ReportOutput
		want func(*reportsv1alpha1.ReportOutput) string
	}{
		{"configMap", reportsv1alpha1.ReportOutput{ConfigMap: &reportsv1alpha1.ConfigMapOutput{NamePrefix: "audit"}},
			func(o *reportsv1alpha1.ReportOutput) string { return o.ConfigMap.NamePrefix }},
		{"secret", reportsv1alpha1.ReportOutput{Secret: &reportsv1alpha1.SecretOutput{NamePrefix: "audit"}},
			func(o *reportsv1alpha1.ReportOutput) string { return o.Secret.NamePrefix }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent := &reportsv1alpha1.AuditReport{
				ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "daily"},
				Spec: reportsv1alpha1.AuditReportSpec{Type: reportsv1alpha1.AuditDetails, Schedule: "0 6 * * *",
					Range: reportsv1alpha1.ReportRange{Last: &metav1.Duration{Duration: 24 * time.Hour}}, Output: &tc.out},
			}
			child, err := (&AuditReportReconciler{Scheme: testScheme}).childFor(parent, at, at.Add(-24*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := tc.want(child.Spec.Output), fmt.Sprintf("audit-%d", at.Unix()); got != want {
				t.Fatalf("the run's namePrefix is %q, want %q", got, want)
			}
			if got := tc.want(parent.Spec.Output); got != "audit" {
				t.Fatalf("the parent's namePrefix became %q", got)
			}
		})
	}
}

// TestRunWindowsAcrossDST: runStart across DST changes, in zones that
// shift by an hour in spring and autumn (Berlin, New York), by half an
// hour (Lord Howe), at midnight (Santiago, Beirut, Asunción). A series
// whose last is its period, on the wall clock or in real time (@every),
// tiles time: each run starts where the one before ended, also where cron
// skips a fire time (02:30 in spring) or fires twice (02:30 in autumn). A
// window shorter than the period stays last long (a repeated fire's, at
// most), is never empty, and after downtime is last long. A fixed last
// left an hour in no run's window each autumn; a first wall-clock version
// broke @every, emptied subset windows and widened them (two attacker
// reviews, whose cases these are).
func TestRunWindowsAcrossDST(t *testing.T) {
	type window struct{ from, to time.Time }
	series := func(t *testing.T, schedule string, last time.Duration, loc *time.Location, around time.Time, n int) []window {
		sched, err := cron.ParseStandard(schedule)
		if err != nil {
			t.Fatal(err)
		}
		var prev *time.Time
		at := around.In(loc)
		var out []window
		for range n {
			at = sched.Next(at)
			out = append(out, window{runStart(at, last, loc, prev), at})
			p := at
			prev = &p
		}
		return out
	}
	zone := func(name string) *time.Location {
		l, err := time.LoadLocation(name)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	utc := func(y int, m time.Month, d, h int) time.Time { return time.Date(y, m, d, h, 0, 0, 0, time.UTC) }
	for _, tc := range []struct {
		schedule, zone string
		last           time.Duration
		around         time.Time
		tiles          bool // else: a subset of the period
	}{
		{"0 6 * * *", "Europe/Berlin", 24 * time.Hour, utc(2026, 3, 26, 0), true},
		{"0 6 * * *", "Europe/Berlin", 24 * time.Hour, utc(2026, 10, 22, 0), true},
		{"30 2 * * *", "Europe/Berlin", 24 * time.Hour, utc(2026, 3, 26, 0), true},
		{"30 2 * * *", "Europe/Berlin", 24 * time.Hour, utc(2026, 10, 22, 0), true},
		{"0 * * * *", "Europe/Berlin", time.Hour, utc(2026, 3, 28, 20), true},
		{"0 * * * *", "Europe/Berlin", time.Hour, utc(2026, 10, 24, 20), true},
		{"0 */2 * * *", "Europe/Berlin", 2 * time.Hour, utc(2027, 3, 27, 12), true},
		{"30 */2 * * *", "Europe/Berlin", 2 * time.Hour, utc(2026, 10, 24, 12), true},
		{"0 6 * * *", "UTC", 24 * time.Hour, utc(2026, 3, 26, 0), true},
		{"@every 6h", "Europe/Berlin", 6 * time.Hour, utc(2027, 3, 27, 0), true},
		{"@every 6h", "Europe/Berlin", 6 * time.Hour, utc(2026, 10, 24, 0), true},
		{"@every 24h", "Europe/Berlin", 24 * time.Hour, utc(2027, 3, 26, 5), true},
		{"@every 1h", "Europe/Berlin", time.Hour, utc(2026, 10, 24, 20), true},
		{"30 2 * * *", "America/New_York", 24 * time.Hour, utc(2026, 3, 6, 12), true},
		{"30 1 * * *", "America/New_York", 24 * time.Hour, utc(2026, 10, 30, 12), true},
		{"0 * * * *", "Australia/Lord_Howe", time.Hour, utc(2026, 10, 3, 12), true},
		{"45 * * * *", "Australia/Lord_Howe", time.Hour, utc(2026, 4, 4, 12), true},
		{"15 2 * * *", "Australia/Lord_Howe", 24 * time.Hour, utc(2026, 10, 1, 12), true},
		{"@daily", "America/Santiago", 24 * time.Hour, utc(2026, 9, 3, 0), true},
		{"@daily", "Asia/Beirut", 24 * time.Hour, utc(2026, 3, 26, 0), true},
		{"0 0 * * 0", "Asia/Beirut", 168 * time.Hour, utc(2026, 3, 10, 0), true},
		{"0 0 * * *", "America/Asuncion", 24 * time.Hour, utc(2023, 9, 28, 12), true},
		{"0 18 * * *", "Europe/Berlin", 8 * time.Hour, utc(2027, 3, 25, 12), false},
		{"0 18 * * *", "America/New_York", 8 * time.Hour, utc(2026, 3, 6, 12), false},
		{"0 * * * *", "Europe/Berlin", 30 * time.Minute, utc(2027, 3, 27, 22), false},
		{"0 3 * * *", "Europe/Berlin", time.Hour, utc(2027, 3, 26, 12), false},
		{"30 2 * * *", "Europe/Berlin", 30 * time.Minute, utc(2026, 10, 23, 12), false},
		{"0 6 * * *", "Europe/Berlin", time.Hour, utc(2027, 3, 26, 12), false},
		{"@every 6h", "Europe/Berlin", 24 * time.Hour, utc(2026, 10, 23, 0), false},
	} {
		loc := zone(tc.zone)
		ws := series(t, tc.schedule, tc.last, loc, tc.around, 24*5)
		for i, w := range ws {
			switch {
			case !w.from.Before(w.to):
				t.Fatalf("%s, last %s, %s: the run at %s has an empty window from %s", tc.schedule, tc.last, tc.zone, w.to, w.from)
			case tc.tiles && i > 0 && !w.from.Equal(ws[i-1].to):
				t.Fatalf("%s, last %s, %s: the run at %s starts at %s, the run before ended at %s", tc.schedule, tc.last, tc.zone, w.to, w.from.In(loc), ws[i-1].to.In(loc))
			case !tc.tiles && w.to.Sub(w.from) > tc.last:
				t.Fatalf("%s, last %s, %s: the run at %s is %s long", tc.schedule, tc.last, tc.zone, w.to, w.to.Sub(w.from))
			}
		}
	}
	// After downtime, the latest missed run covers last, whatever the run
	// before the outage was next to.
	berlin := zone("Europe/Berlin")
	prev := time.Date(2027, 3, 28, 1, 30, 0, 0, berlin)
	for _, at := range []time.Time{time.Date(2027, 3, 29, 10, 30, 0, 0, berlin), time.Date(2027, 4, 28, 10, 30, 0, 0, berlin)} {
		if from := runStart(at, time.Hour, berlin, &prev); !from.Equal(at.Add(-time.Hour)) {
			t.Fatalf("the run at %s after downtime starts at %s", at, from)
		}
	}
}

// TestScheduleAcrossDSTReportsEveryEvent: a daily AuditDetails schedule at
// 02:30 Europe/Berlin, last: 24h, as a manager runs it. Around the
// spring-forward night (2027-03-28, when 02:30 does not exist, and cron
// skips it), an event stored before any run read its window is in exactly
// one run's report; before runStart it was in none, and no run said so (an
// attacker review).
func TestScheduleAcrossDSTReportsEveryEvent(t *testing.T) {
	st := newSQLiteStore(t)
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{}
	clock.Set(time.Date(2027, 3, 27, 0, 0, 0, 0, loc))
	startManager(t, &AuditReportReconciler{Store: st, Clock: clock, SettleDelay: time.Minute})
	ns := createNamespace(t, "dst")
	tz := "Europe/Berlin"
	keep := int32(10)
	parent := &reportsv1alpha1.AuditReport{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "daily"},
		Spec: reportsv1alpha1.AuditReportSpec{
			Type: reportsv1alpha1.AuditDetails, Schedule: "30 2 * * *", TimeZone: &tz,
			Range:                      reportsv1alpha1.ReportRange{Last: &metav1.Duration{Duration: 24 * time.Hour}},
			SuccessfulRunsHistoryLimit: &keep,
		},
	}
	if err := k8sClient.Create(context.Background(), parent); err != nil {
		t.Fatal(err)
	}
	// Stored before every run: nothing about it is late.
	e := store.Event{ID: "in-the-gap", Time: time.Date(2027, 3, 27, 12, 0, 0, 0, time.UTC), Namespace: ns, User: "mallory",
		Method: "delete", API: "/secrets", Status: store.StatusSuccess, StatusCode: 200, Category: store.CategoryData}
	if _, err := st.Insert(context.Background(), []store.Event{e}); err != nil {
		t.Fatal(err)
	}
	seen := 0
	var names []string
	waitAll := func() {
		time.Sleep(time.Second)
		eventually(t, 30*time.Second, "runs finished", func(ctx context.Context) (bool, error) {
			for _, c := range children(t, ns, "daily") {
				if c.Status.Phase != reportsv1alpha1.PhaseSucceeded {
					return false, nil
				}
			}
			return true, nil
		})
	}
	waitAll() // the run the parent's creation started (03-26)
	for _, day := range []int{27, 28, 29, 30} {
		clock.Set(time.Date(2027, 3, day, 4, 0, 0, 0, loc)) // well after 02:30 + settle
		poke(t, ns, "daily")
		waitAll()
	}
	for _, c := range children(t, ns, "daily") {
		var rep reportsv1alpha1.AuditReport
		if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: c.Name}, &rep); err != nil {
			t.Fatal(err)
		}
		data, _ := readConfigMapReport(t, &rep)
		n := strings.Count(string(data), `"requested_method":"delete"`)
		seen += n
		names = append(names, fmt.Sprintf("%s [%s, %s) has it %d times; late-events=%q", rep.Name,
			rep.Status.Range.From.UTC().Format(time.RFC3339), rep.Status.Range.To.UTC().Format(time.RFC3339), n,
			rep.Annotations[LateEventsAnnotation]))
	}
	for _, n := range names {
		t.Log(n)
	}
	if seen != 1 {
		t.Fatalf("the event of %s is in %d runs' reports, want exactly 1", e.Time.Format(time.RFC3339), seen)
	}
}
