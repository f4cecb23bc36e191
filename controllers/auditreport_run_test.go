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
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/yaml"

	reportsv1alpha1 "github.com/auditops/auditops/api/v1alpha1"
	"github.com/auditops/auditops/internal/report"
	"github.com/auditops/auditops/internal/sink"
	"github.com/auditops/auditops/internal/sink/sinktest"
	"github.com/auditops/auditops/internal/store"
)

var day1 = time.Date(2024, 5, 21, 0, 0, 0, 0, time.UTC)

func ptrTo[T any](v T) *T { return &v }

// seedSmall stores a small data set whose every report is written out by
// hand below, from the definitions in spec/API.md.
func seedSmall(t *testing.T, st store.Store, ns string) {
	t.Helper()
	at := func(h, m, s, ns int) time.Time {
		return day1.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(s)*time.Second + time.Duration(ns))
	}
	alice := json.RawMessage(`{"username":"alice"}`)
	events := []store.Event{
		{ID: "a1", Time: at(10, 0, 0, 0), Namespace: ns, User: "alice", Principal: alice, Method: "create", API: "/pods", Status: "success", StatusCode: 201, Category: "data",
			EntityKind: "pods", EntityID: ns + "/web-1", Message: "alice create pods", Request: json.RawMessage(`{"kind":"Pod"}`), Response: json.RawMessage(`{"ok":true}`),
			DeviceID: "10.0.0.1", Details: "kubectl"},
		{ID: "a2", Time: at(10, 20, 0, 0), Namespace: ns, User: "alice", Principal: alice, Method: "get", API: "/pods", Status: "failure", StatusCode: 403, Category: "access",
			EntityKind: "pods", EntityID: ns + "/web-1", Message: `denied, "quoted"`, Error: ptrTo("forbidden")},
		{ID: "a3", Time: at(10, 50, 0, 0), Namespace: ns, User: "alice", Principal: alice, Method: "create", API: "/rolebindings", Status: "success", StatusCode: 201, Category: "user",
			EntityKind: "rolebindings", EntityID: ns + "/admins", Message: "alice granted admin", CurrentState: json.RawMessage(`{"kind":"RoleBinding"}`)},
		{ID: "b1", Time: at(11, 0, 0, 0), Namespace: ns, User: "bob", Method: "get", API: "/pods", Status: "success", StatusCode: 200, Category: "data"},
		{ID: "b2", Time: at(12, 0, 0, 5e8), Namespace: ns, User: "bob", Method: "delete", API: "/pods", Status: "success", StatusCode: 200, Category: "data"},
		{ID: "a4", Time: at(33, 0, 0, 0), Namespace: ns, User: "alice", Method: "get", API: "/pods", Status: "success", StatusCode: 200, Category: "data"},
		// Outside the window, and another tenant: in no report.
		{ID: "a5", Time: at(48, 0, 0, 0), Namespace: ns, User: "alice", Method: "get", API: "/pods", Status: "success", StatusCode: 200, Category: "data"},
		{ID: "c1", Time: at(10, 0, 0, 0), Namespace: ns + "-other", User: "alice", Method: "get", API: "/pods", Status: "success", StatusCode: 200, Category: "access"},
	}
	if _, err := st.Insert(context.Background(), events); err != nil {
		t.Fatalf("seeding: %v", err)
	}
}

// wantSmall is each report of seedSmall over [day1, day1+48h), by hand.
func wantSmall(ns string, typ reportsv1alpha1.ReportType) string {
	unix := func(h int) int64 { return day1.Add(time.Duration(h) * time.Hour).Unix() }
	switch typ {
	case reportsv1alpha1.NamespaceUsersSummary:
		// alice's day-1 events are 20 and 30 minutes apart: one 50-minute session.
		// bob's are 60 minutes apart: two sessions of one event each.
		return `[{"date":"2024-05-21","api_type":"/pods","status":"failure","user":"alice","logged_in_time":3000,"count":1},` +
			`{"date":"2024-05-21","api_type":"/pods","status":"success","user":"alice","logged_in_time":3000,"count":1},` +
			`{"date":"2024-05-21","api_type":"/rolebindings","status":"success","user":"alice","logged_in_time":3000,"count":1},` +
			`{"date":"2024-05-21","api_type":"/pods","status":"success","user":"bob","logged_in_time":0,"count":2},` +
			`{"date":"2024-05-22","api_type":"/pods","status":"success","user":"alice","logged_in_time":0,"count":1}]`
	case reportsv1alpha1.AuditDetails:
		return `[{"requested_method":"create","requested_user":"alice","status":"success","input_payload":{"kind":"Pod"},"response":{"ok":true},"requested_time":"2024-05-21 10:00:00","error_log":null},` +
			`{"requested_method":"get","requested_user":"alice","status":"failure","input_payload":null,"response":null,"requested_time":"2024-05-21 10:20:00","error_log":"forbidden"},` +
			`{"requested_method":"create","requested_user":"alice","status":"success","input_payload":null,"response":null,"requested_time":"2024-05-21 10:50:00","error_log":null},` +
			`{"requested_method":"get","requested_user":"bob","status":"success","input_payload":null,"response":null,"requested_time":"2024-05-21 11:00:00","error_log":null},` +
			`{"requested_method":"delete","requested_user":"bob","status":"success","input_payload":null,"response":null,"requested_time":"2024-05-21 12:00:00","error_log":null},` +
			`{"requested_method":"get","requested_user":"alice","status":"success","input_payload":null,"response":null,"requested_time":"2024-05-22 09:00:00","error_log":null}]`
	case reportsv1alpha1.UserAccess:
		return report.CSVHeader +
			"a2,pods," + ns + `/web-1,2024-05-21T10:20:00.000Z,"{""username"":""alice""}","denied, ""quoted""",,` + "\r\n"
	case reportsv1alpha1.Users:
		return report.CSVHeader +
			"a3,rolebindings," + ns + `/admins,2024-05-21T10:50:00.000Z,"{""username"":""alice""}",alice granted admin,,"{""kind"":""RoleBinding""}"` + "\r\n"
	case reportsv1alpha1.UserLogs:
		// Newest first; ids are the store's sequence numbers, in insert order.
		return fmt.Sprintf(`[{"action":"get","archived":false,"deviceId":"","id":6,"logDate":"%d","status":"0","userId":"alice"},`, unix(33)) +
			fmt.Sprintf(`{"action":"create","archived":false,"deviceId":"","id":3,"logDate":"%d","status":"0","userId":"alice"},`, unix(10)+50*60) +
			fmt.Sprintf(`{"action":"get","archived":false,"deviceId":"","id":2,"logDate":"%d","status":"403","userId":"alice"},`, unix(10)+20*60) +
			fmt.Sprintf(`{"action":"create","archived":false,"details":"kubectl","deviceId":"10.0.0.1","id":1,"logDate":"%d","status":"0","userId":"alice"}]`, unix(10))
	}
	return ""
}

func newReport(ns, name string, typ reportsv1alpha1.ReportType, from, to time.Time) *reportsv1alpha1.AuditReport {
	rep := &reportsv1alpha1.AuditReport{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: reportsv1alpha1.AuditReportSpec{
			Type:  typ,
			Range: reportsv1alpha1.ReportRange{From: &metav1.Time{Time: from}, To: &metav1.Time{Time: to}},
		},
	}
	if typ == reportsv1alpha1.UserLogs {
		rep.Spec.User = "alice"
	}
	return rep
}

// waitFinished waits until the report succeeded or failed and returns it.
func waitFinished(t *testing.T, ns, name string) *reportsv1alpha1.AuditReport {
	t.Helper()
	var rep reportsv1alpha1.AuditReport
	eventually(t, 60*time.Second, "report "+name+" to finish", func(ctx context.Context) (bool, error) {
		if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &rep); err != nil {
			return false, err
		}
		return rep.Status.ObservedGeneration == rep.Generation &&
			(rep.Status.Phase == reportsv1alpha1.PhaseSucceeded || rep.Status.Phase == reportsv1alpha1.PhaseFailed), nil
	})
	return &rep
}

// readConfigMapReport reassembles a report from the ConfigMaps its status
// lists: concatenated values, gunzipped when compressed (spec/API.md 5).
func readConfigMapReport(t *testing.T, rep *reportsv1alpha1.AuditReport) (data []byte, compressed bool) {
	t.Helper()
	if len(rep.Status.Outputs) == 0 {
		t.Fatalf("report %s lists no outputs", rep.Name)
	}
	var joined bytes.Buffer
	for _, out := range rep.Status.Outputs {
		var cm corev1.ConfigMap
		if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: rep.Namespace, Name: out.ConfigMap}, &cm); err != nil {
			t.Fatalf("reading output ConfigMap %s: %v", out.ConfigMap, err)
		}
		owner := metav1.GetControllerOf(&cm)
		if owner == nil || owner.UID != rep.UID {
			t.Errorf("ConfigMap %s is not owned by report %s", cm.Name, rep.Name)
		}
		if strings.HasSuffix(out.Key, ".gz") {
			compressed = true
			joined.Write(cm.BinaryData[out.Key])
		} else {
			joined.WriteString(cm.Data[out.Key])
		}
	}
	if !compressed {
		return joined.Bytes(), false
	}
	zr, err := gzip.NewReader(&joined)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	return plain, true
}

func checkDigest(t *testing.T, rep *reportsv1alpha1.AuditReport, data []byte) {
	t.Helper()
	sum := sha256.Sum256(data)
	out := rep.Status.Outputs[0]
	if out.SHA256 != hex.EncodeToString(sum[:]) || out.Bytes != int64(len(data)) {
		t.Errorf("outputs[0] says %d bytes sha256 %s; the report has %d bytes sha256 %x", out.Bytes, out.SHA256, len(data), sum)
	}
}

func TestReportOfEveryType(t *testing.T) {
	st := newSQLiteStore(t)
	metrics := NewMetrics(prometheus.NewRegistry())
	startManager(t, &AuditReportReconciler{Store: st, Metrics: metrics})
	ns := createNamespace(t, "types")
	seedSmall(t, st, ns)
	for _, typ := range []reportsv1alpha1.ReportType{reportsv1alpha1.NamespaceUsersSummary, reportsv1alpha1.AuditDetails, reportsv1alpha1.UserAccess, reportsv1alpha1.Users, reportsv1alpha1.UserLogs} {
		t.Run(string(typ), func(t *testing.T) {
			rep := newReport(ns, strings.ToLower(string(typ)), typ, day1, day1.Add(48*time.Hour))
			rep.Spec.PageSize = 2 // several pages joined
			if err := k8sClient.Create(context.Background(), rep); err != nil {
				t.Fatal(err)
			}
			got := waitFinished(t, ns, rep.Name)
			if got.Status.Phase != reportsv1alpha1.PhaseSucceeded {
				t.Fatalf("phase %s: %+v", got.Status.Phase, got.Status.Conditions)
			}
			data, compressed := readConfigMapReport(t, got)
			if compressed {
				t.Error("a small report was compressed")
			}
			if want := wantSmall(ns, typ); string(data) != want {
				t.Errorf("report:\n%s\nwant:\n%s", data, want)
			}
			checkDigest(t, got, data)
			ext, _ := report.Format(typ)
			if got.Status.Outputs[0].Key != "report."+ext {
				t.Errorf("key %q, want report.%s", got.Status.Outputs[0].Key, ext)
			}
			if got.Status.Range == nil || !got.Status.Range.From.Time.Equal(day1) || !got.Status.Range.To.Time.Equal(day1.Add(48*time.Hour)) {
				t.Errorf("status.range = %+v", got.Status.Range)
			}
			if got.Status.Pages < 2 && typ != reportsv1alpha1.UserAccess && typ != reportsv1alpha1.Users {
				t.Errorf("pages = %d, want several at page size 2", got.Status.Pages)
			}
			if c := meta.FindStatusCondition(got.Status.Conditions, reportsv1alpha1.ConditionReady); c == nil || c.Status != metav1.ConditionTrue {
				t.Errorf("Ready condition = %+v", c)
			}
			if got.Status.StartTime == nil || got.Status.CompletionTime == nil {
				t.Error("start or completion time missing")
			}
			if n := testutil.ToFloat64(metrics.reports.WithLabelValues(string(typ), "succeeded")); n != 1 {
				t.Errorf("auditops_reports_total{type=%s,result=succeeded} = %v, want 1", typ, n)
			}
			if n := testutil.ToFloat64(metrics.rows.WithLabelValues(string(typ))); n != float64(got.Status.Records) {
				t.Errorf("auditops_report_rows_written_total{type=%s} = %v, want %d", typ, n, got.Status.Records)
			}
			if n := testutil.CollectAndCount(metrics.duration, "auditops_report_duration_seconds"); n < 1 {
				t.Errorf("no duration observed")
			}
		})
	}
}

// TestReportOfAnUnqueryableUserFails: a user name no store can query (a
// NUL byte) fails the report for good instead of retrying forever.
func TestReportOfAnUnqueryableUserFails(t *testing.T) {
	st := newSQLiteStore(t)
	startManager(t, &AuditReportReconciler{Store: st})
	ns := createNamespace(t, "nul-user")
	rep := newReport(ns, "nul", reportsv1alpha1.UserLogs, day1, day1.Add(48*time.Hour))
	rep.Spec.User = "alice\x00"
	if err := k8sClient.Create(context.Background(), rep); err != nil {
		t.Fatal(err)
	}
	got := waitFinished(t, ns, "nul")
	c := meta.FindStatusCondition(got.Status.Conditions, reportsv1alpha1.ConditionFailed)
	if got.Status.Phase != reportsv1alpha1.PhaseFailed || c == nil || c.Reason != ReasonInvalidSpec {
		t.Fatalf("phase %s, Failed %+v; want Failed with reason %s", got.Status.Phase, c, ReasonInvalidSpec)
	}
}

func TestReportRefusesAnotherTenant(t *testing.T) {
	st := newSQLiteStore(t)
	startManager(t, &AuditReportReconciler{Store: st})
	ns := createNamespace(t, "isolation")
	victim := createNamespace(t, "victim")
	seedSmall(t, st, victim)
	rep := newReport(ns, "peek", reportsv1alpha1.AuditDetails, day1, day1.Add(48*time.Hour))
	rep.Spec.Namespace = victim
	if err := k8sClient.Create(context.Background(), rep); err != nil {
		t.Fatal(err)
	}
	got := waitFinished(t, ns, "peek")
	if got.Status.Phase != reportsv1alpha1.PhaseFailed {
		t.Fatalf("phase = %s, want Failed", got.Status.Phase)
	}
	c := meta.FindStatusCondition(got.Status.Conditions, reportsv1alpha1.ConditionFailed)
	if c == nil || c.Reason != ReasonTenantIsolation || !strings.Contains(c.Message, "only AuditReports in the admin namespace") {
		t.Errorf("Failed condition = %+v", c)
	}
	if got.Status.Records != 0 || len(got.Status.Outputs) != 0 {
		t.Errorf("a refused report read %d records into %v", got.Status.Records, got.Status.Outputs)
	}
	var cms corev1.ConfigMapList
	if err := k8sClient.List(context.Background(), &cms, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, cm := range cms.Items {
		if strings.HasPrefix(cm.Name, "peek") {
			t.Errorf("refused report wrote ConfigMap %s", cm.Name)
		}
	}

	// The same report from the admin namespace reads the other tenant.
	admin := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "auditops-system"}}
	if err := k8sClient.Create(context.Background(), admin); client.IgnoreAlreadyExists(err) != nil {
		t.Fatal(err)
	}
	rep = newReport("auditops-system", "admin-view-"+victim, reportsv1alpha1.AuditDetails, day1, day1.Add(48*time.Hour))
	rep.Spec.Namespace = victim
	if err := k8sClient.Create(context.Background(), rep); err != nil {
		t.Fatal(err)
	}
	got = waitFinished(t, "auditops-system", rep.Name)
	if got.Status.Phase != reportsv1alpha1.PhaseSucceeded || got.Status.Records != 6 {
		t.Fatalf("admin report: phase %s, %d records; want Succeeded, 6", got.Status.Phase, got.Status.Records)
	}
}

// seedLarge stores n events in ns with payloads of size bytes, random (so
// gzip cannot shrink them) or repetitive.
func seedLarge(t *testing.T, st store.Store, ns string, n, size int, random bool) {
	t.Helper()
	batch := make([]store.Event, 0, 500)
	pad := strings.Repeat("x", size)
	for i := 0; i < n; i++ {
		payload := pad
		if random {
			raw := make([]byte, size*3/4)
			_, _ = rand.Read(raw)
			payload = base64.StdEncoding.EncodeToString(raw)
		}
		batch = append(batch, store.Event{
			ID: fmt.Sprintf("ev-%06d", i), Time: day1.Add(time.Duration(i) * time.Second), Namespace: ns,
			User: fmt.Sprintf("user-%d", i%7), Method: "create", API: "/configmaps", Status: "success", StatusCode: 201, Category: "data",
			Request: json.RawMessage(`{"data":"` + payload + `"}`),
		})
		if len(batch) == cap(batch) || i == n-1 {
			if _, err := st.Insert(context.Background(), batch); err != nil {
				t.Fatalf("seeding: %v", err)
			}
			batch = batch[:0]
		}
	}
}

// generated is the report as the generator writes it in one pass with big pages.
func generated(t *testing.T, st store.Store, p report.Params) []byte {
	t.Helper()
	p.PageSize = 5000
	var out bytes.Buffer
	err := report.Generate(context.Background(), st, p, report.Cursor{}, func(_ context.Context, chunk []byte, _ report.Cursor) error {
		out.Write(chunk)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestLargeReportsCompressThenShard(t *testing.T) {
	st := newSQLiteStore(t)
	startManager(t, &AuditReportReconciler{Store: st})
	for _, tc := range []struct {
		name       string
		random     bool
		n, size    int
		wantShards int // at least
	}{
		{"gzip", false, 3000, 500, 1},
		{"shards", true, 3000, 1000, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := createNamespace(t, tc.name)
			seedLarge(t, st, ns, tc.n, tc.size, tc.random)
			rep := newReport(ns, "big", reportsv1alpha1.AuditDetails, day1, day1.Add(24*time.Hour))
			rep.Spec.PageSize = 100
			if err := k8sClient.Create(context.Background(), rep); err != nil {
				t.Fatal(err)
			}
			got := waitFinished(t, ns, "big")
			if got.Status.Phase != reportsv1alpha1.PhaseSucceeded {
				t.Fatalf("phase %s: %+v", got.Status.Phase, got.Status.Conditions)
			}
			data, compressed := readConfigMapReport(t, got)
			if !compressed {
				t.Error("a report past 900 KiB was not compressed")
			}
			if len(data) < 900<<10 {
				t.Fatalf("test data too small: %d bytes", len(data))
			}
			if len(got.Status.Outputs) < tc.wantShards {
				t.Errorf("%d ConfigMaps, want at least %d", len(got.Status.Outputs), tc.wantShards)
			}
			want := generated(t, st, report.Params{Type: reportsv1alpha1.AuditDetails, Namespace: ns, Range: store.TimeRange{From: day1, To: day1.Add(24 * time.Hour)}})
			if !bytes.Equal(data, want) {
				t.Errorf("reassembled report (%d bytes) differs from the generator's (%d bytes)", len(data), len(want))
			}
			checkDigest(t, got, data)
			if got.Status.Records != int64(tc.n) {
				t.Errorf("records = %d, want %d", got.Status.Records, tc.n)
			}
		})
	}
}

func TestReportToObjectStore(t *testing.T) {
	st := newSQLiteStore(t)
	dir := t.TempDir()
	startManager(t, &AuditReportReconciler{Store: st, Destinations: allowDestinations(t, "file://"+dir+"/reports")})
	ns := createNamespace(t, "objects")
	seedSmall(t, st, ns)
	// file:// names an existing directory, as a mounted volume would be.
	for _, sub := range []string{"reports", "store"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	rep := newReport(ns, "to-files", reportsv1alpha1.UserAccess, day1, day1.Add(48*time.Hour))
	rep.Spec.Output = &reportsv1alpha1.ReportOutput{ObjectStore: &reportsv1alpha1.ObjectStoreOutput{URL: "file://" + dir + "/reports"}}
	if err := k8sClient.Create(context.Background(), rep); err != nil {
		t.Fatal(err)
	}
	got := waitFinished(t, ns, "to-files")
	if got.Status.Phase != reportsv1alpha1.PhaseSucceeded {
		t.Fatalf("phase %s: %+v", got.Status.Phase, got.Status.Conditions)
	}
	data, err := os.ReadFile(filepath.Join(dir, "reports", ns, "to-files", "report.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if want := wantSmall(ns, reportsv1alpha1.UserAccess); string(data) != want {
		t.Errorf("object:\n%q\nwant:\n%q", data, want)
	}
	checkDigest(t, got, data)

	// Destinations the operator did not list fail the report and write
	// nothing: a directory beside the listed one (as the store's volume
	// would be), a way out of it, the pod's cloud identity, an endpoint.
	for _, tc := range []struct{ name, url string }{
		{"beside", "file://" + dir + "/store"},
		{"escape", "file://" + dir + "/reports/../store"},
		{"identity", "s3://bucket/x?region=us-east-1"},
	} {
		rep := newReport(ns, "refused-"+tc.name, reportsv1alpha1.UserAccess, day1, day1.Add(48*time.Hour))
		rep.Spec.Output = &reportsv1alpha1.ReportOutput{ObjectStore: &reportsv1alpha1.ObjectStoreOutput{URL: tc.url}}
		if err := k8sClient.Create(context.Background(), rep); err != nil {
			t.Fatal(err)
		}
		got := waitFinished(t, ns, rep.Name)
		c := meta.FindStatusCondition(got.Status.Conditions, reportsv1alpha1.ConditionReady)
		if got.Status.Phase != reportsv1alpha1.PhaseFailed || c == nil || c.Reason != ReasonOutputNotAllowed || !strings.Contains(c.Message, "output destination not allowed") {
			t.Errorf("%s: phase %s, Ready %+v; want Failed with reason %s", tc.url, got.Status.Phase, c, ReasonOutputNotAllowed)
		}
		if len(got.Status.Outputs) != 0 {
			t.Errorf("%s: outputs %+v", tc.url, got.Status.Outputs)
		}
	}
	if entries, err := os.ReadDir(filepath.Join(dir, "store")); err != nil || len(entries) != 0 {
		t.Errorf("the unlisted directory holds %d entries (%v), want none", len(entries), err)
	}
}

// allowDestinations parses --allowed-output-urls prefixes for a test's reconciler.
func allowDestinations(t *testing.T, prefixes ...string) *sink.Destinations {
	t.Helper()
	d, err := sink.NewDestinations(prefixes)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestReportResumesAfterManagerStop(t *testing.T) {
	st := newSQLiteStore(t)
	ns := createNamespace(t, "resume")
	const n = 4000
	seedLarge(t, st, ns, n, 300, true)

	stopping := make(chan struct{})
	var once sync.Once
	stop := startManager(t, &AuditReportReconciler{
		Store: st, ChunkSize: 64 << 10,
		checkpointed: func(ctx context.Context, records int64) {
			if records < n/4 {
				return
			}
			once.Do(func() { close(stopping) })
			<-ctx.Done() // hold the report here until the manager stops
		},
	})
	rep := newReport(ns, "resumable", reportsv1alpha1.AuditDetails, day1, day1.Add(24*time.Hour))
	rep.Spec.PageSize = 50
	if err := k8sClient.Create(context.Background(), rep); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stopping:
	case <-time.After(60 * time.Second):
		t.Fatal("the report never reached a quarter of its rows")
	}
	stop()

	var mid reportsv1alpha1.AuditReport
	if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(rep), &mid); err != nil {
		t.Fatal(err)
	}
	if mid.Status.Phase != reportsv1alpha1.PhaseRunning || mid.Status.Checkpoint == "" || mid.Status.Records < n/4 || mid.Status.Records >= n {
		t.Fatalf("after the stop: phase %s, %d records, checkpoint %q", mid.Status.Phase, mid.Status.Records, mid.Status.Checkpoint)
	}

	startManager(t, &AuditReportReconciler{Store: st, ChunkSize: 64 << 10})
	got := waitFinished(t, ns, "resumable")
	if got.Status.Phase != reportsv1alpha1.PhaseSucceeded {
		t.Fatalf("phase %s: %+v", got.Status.Phase, got.Status.Conditions)
	}
	data, _ := readConfigMapReport(t, got)
	want := generated(t, st, report.Params{Type: reportsv1alpha1.AuditDetails, Namespace: ns, Range: store.TimeRange{From: day1, To: day1.Add(24 * time.Hour)}})
	if !bytes.Equal(data, want) {
		t.Fatalf("resumed report (%d bytes) differs from a one-pass report (%d bytes)", len(data), len(want))
	}
	var rows []json.RawMessage
	if err := json.Unmarshal(data, &rows); err != nil || len(rows) != n {
		t.Fatalf("resumed report holds %d rows (err %v), want %d exactly once", len(rows), err, n)
	}
	checkDigest(t, got, data)
	eventually(t, 30*time.Second, "a Resumed event", func(ctx context.Context) (bool, error) {
		var evs eventsv1.EventList
		if err := k8sClient.List(ctx, &evs, client.InNamespace(ns)); err != nil {
			return false, err
		}
		for _, ev := range evs.Items {
			if ev.Regarding.Name == "resumable" && ev.Reason == "Resumed" {
				return true, nil
			}
		}
		return false, nil
	})
}

func TestFinishedReportIsNotRerunAndSpecChangeReruns(t *testing.T) {
	st := newSQLiteStore(t)
	stop := startManager(t, &AuditReportReconciler{Store: st})
	ns := createNamespace(t, "rerun")
	seedSmall(t, st, ns)
	rep := newReport(ns, "once", reportsv1alpha1.AuditDetails, day1, day1.Add(48*time.Hour))
	if err := k8sClient.Create(context.Background(), rep); err != nil {
		t.Fatal(err)
	}
	first := waitFinished(t, ns, "once")
	stop()
	startManager(t, &AuditReportReconciler{Store: st})
	// Give the new manager time to see the report; it must leave it alone.
	time.Sleep(time.Second)
	var again reportsv1alpha1.AuditReport
	if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(rep), &again); err != nil {
		t.Fatal(err)
	}
	if !again.Status.CompletionTime.Equal(first.Status.CompletionTime) || again.ResourceVersion != first.ResourceVersion {
		t.Errorf("a finished report was touched after a restart")
	}

	again.Spec.Range.To = &metav1.Time{Time: day1.Add(24 * time.Hour)}
	if err := k8sClient.Update(context.Background(), &again); err != nil {
		t.Fatal(err)
	}
	got := waitFinished(t, ns, "once")
	if got.Status.Records != 5 {
		t.Errorf("after narrowing the range to day 1: %d records, want 5", got.Status.Records)
	}
}

func TestStoreOutageRetriesThenSucceeds(t *testing.T) {
	ns := createNamespace(t, "outage")
	down := newSQLiteStore(t)
	if err := down.Close(); err != nil { // a store that is down: every call fails
		t.Fatal(err)
	}
	stop := startManager(t, &AuditReportReconciler{Store: down})
	rep := newReport(ns, "patient", reportsv1alpha1.AuditDetails, day1, day1.Add(48*time.Hour))
	if err := k8sClient.Create(context.Background(), rep); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "a Retrying condition", func(ctx context.Context) (bool, error) {
		var r reportsv1alpha1.AuditReport
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(rep), &r); err != nil {
			return false, err
		}
		c := meta.FindStatusCondition(r.Status.Conditions, reportsv1alpha1.ConditionProgressing)
		return r.Status.Phase == reportsv1alpha1.PhaseRunning && c != nil && c.Reason == ReasonRetrying && strings.Contains(c.Message, "retrying after"), nil
	})
	stop()

	// The store is back (here: a manager with a working one): the report completes.
	st := newSQLiteStore(t)
	seedSmall(t, st, ns)
	startManager(t, &AuditReportReconciler{Store: st})
	got := waitFinished(t, ns, "patient")
	if got.Status.Phase != reportsv1alpha1.PhaseSucceeded || got.Status.Records != 6 {
		t.Fatalf("after the outage: phase %s, %d records", got.Status.Phase, got.Status.Records)
	}
}

// startS3 runs a real S3-compatible server (versitygw, hack/s3-server.sh)
// for one test and returns its endpoint, keys and a client.
func startS3(t *testing.T) (endpoint, access, secret string, c *s3.Client) {
	t.Helper()
	srv := sinktest.StartS3(t)
	return srv.Endpoint, srv.AccessKey, srv.SecretKey, srv.Client
}

func TestReportToS3WithCredentialsSecret(t *testing.T) {
	endpoint, access, secret, s3c := startS3(t)
	ctx := context.Background()
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("reports")}); err != nil {
		t.Fatal(err)
	}
	st := newSQLiteStore(t)
	startManager(t, &AuditReportReconciler{Store: st, Destinations: allowDestinations(t, "s3://reports?endpoint="+endpoint)})
	ns := createNamespace(t, "s3")
	seedLarge(t, st, ns, 1500, 600, true) // ~1.3 MB: several chunks, staged then joined
	creds := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "s3-creds"},
		Data:       map[string][]byte{"accessKeyID": []byte(access), "secretAccessKey": []byte(secret)},
	}
	if err := k8sClient.Create(ctx, creds); err != nil {
		t.Fatal(err)
	}
	rep := newReport(ns, "to-s3", reportsv1alpha1.AuditDetails, day1, day1.Add(24*time.Hour))
	rep.Spec.PageSize = 100
	rep.Spec.Output = &reportsv1alpha1.ReportOutput{ObjectStore: &reportsv1alpha1.ObjectStoreOutput{
		URL:                  "s3://reports/audit?endpoint=" + endpoint + "&use_path_style=true&region=us-east-1",
		CredentialsSecretRef: &corev1.LocalObjectReference{Name: "s3-creds"},
	}}
	if err := k8sClient.Create(ctx, rep); err != nil {
		t.Fatal(err)
	}
	got := waitFinished(t, ns, "to-s3")
	if got.Status.Phase != reportsv1alpha1.PhaseSucceeded {
		t.Fatalf("phase %s: %+v", got.Status.Phase, got.Status.Conditions)
	}
	key := "audit/" + ns + "/to-s3/report.json"
	if len(got.Status.Outputs) != 1 || got.Status.Outputs[0].URL != "s3://reports/"+key {
		t.Fatalf("outputs = %+v, want one s3://reports/%s", got.Status.Outputs, key)
	}
	obj, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("reports"), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Body.Close()
	data, err := io.ReadAll(obj.Body)
	if err != nil {
		t.Fatal(err)
	}
	want := generated(t, st, report.Params{Type: reportsv1alpha1.AuditDetails, Namespace: ns, Range: store.TimeRange{From: day1, To: day1.Add(24 * time.Hour)}})
	if !bytes.Equal(data, want) {
		t.Fatalf("object (%d bytes) differs from the generator's report (%d bytes)", len(data), len(want))
	}
	if ct := aws.ToString(obj.ContentType); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("content type %q", ct)
	}
	checkDigest(t, got, data)
	list, err := s3c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("reports")})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Contents) != 1 {
		t.Errorf("bucket holds %d objects, want only the report (staging parts removed)", len(list.Contents))
	}

	// A report whose Secret is missing waits and says why, rather than failing.
	rep2 := newReport(ns, "no-creds", reportsv1alpha1.AuditDetails, day1, day1.Add(24*time.Hour))
	rep2.Spec.Output = &reportsv1alpha1.ReportOutput{ObjectStore: &reportsv1alpha1.ObjectStoreOutput{
		URL: rep.Spec.Output.ObjectStore.URL, CredentialsSecretRef: &corev1.LocalObjectReference{Name: "missing"},
	}}
	if err := k8sClient.Create(ctx, rep2); err != nil {
		t.Fatal(err)
	}
	waitRetrying(t, rep2, "missing")

	// An empty Secret is no credentials: the report waits for its keys
	// instead of writing with the manager's own identity, which the
	// destination check allows only under a listed prefix.
	empty := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "empty"}}
	if err := k8sClient.Create(ctx, empty); err != nil {
		t.Fatal(err)
	}
	rep3 := newReport(ns, "empty-creds", reportsv1alpha1.AuditDetails, day1, day1.Add(24*time.Hour))
	rep3.Spec.Output = &reportsv1alpha1.ReportOutput{ObjectStore: &reportsv1alpha1.ObjectStoreOutput{
		URL: "s3://other-bucket/x?region=us-east-1", CredentialsSecretRef: &corev1.LocalObjectReference{Name: "empty"},
	}}
	if err := k8sClient.Create(ctx, rep3); err != nil {
		t.Fatal(err)
	}
	waitRetrying(t, rep3, "holds no data")
}

// waitRetrying waits until rep's Progressing condition says it retries,
// with a message that contains why.
func waitRetrying(t *testing.T, rep *reportsv1alpha1.AuditReport, why string) {
	t.Helper()
	eventually(t, 30*time.Second, "a condition of "+rep.Name+" saying "+why, func(ctx context.Context) (bool, error) {
		var r reportsv1alpha1.AuditReport
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(rep), &r); err != nil {
			return false, err
		}
		c := meta.FindStatusCondition(r.Status.Conditions, reportsv1alpha1.ConditionProgressing)
		return c != nil && c.Reason == ReasonRetrying && strings.Contains(c.Message, why), nil
	})
}

// TestResolveRange: a relative window ends at the run's start rounded up to
// the whole second status.range can hold, so nothing audited in the start's
// own second is left out; absolute windows are kept as given.
func TestResolveRange(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	hour := &metav1.Duration{Duration: time.Hour}
	tests := []struct {
		name     string
		rg       reportsv1alpha1.ReportRange
		now      string
		from, to string
	}{
		{"last, mid-second", reportsv1alpha1.ReportRange{Last: hour}, "2026-12-01T10:48:44.900Z", "2026-12-01T09:48:45Z", "2026-12-01T10:48:45Z"},
		{"last, whole second", reportsv1alpha1.ReportRange{Last: hour}, "2026-12-01T10:48:44Z", "2026-12-01T09:48:44Z", "2026-12-01T10:48:44Z"},
		{"absolute", reportsv1alpha1.ReportRange{From: &metav1.Time{Time: at("2026-11-01T00:00:00Z")}, To: &metav1.Time{Time: at("2026-11-02T00:00:00Z")}},
			"2026-12-01T10:48:44.5Z", "2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := resolveRange(tc.rg, at(tc.now))
			if !got.From.Time.Equal(at(tc.from)) || !got.To.Time.Equal(at(tc.to)) {
				t.Fatalf("range [%s, %s), want [%s, %s)", got.From.Time.Format(time.RFC3339Nano), got.To.Time.Format(time.RFC3339Nano), tc.from, tc.to)
			}
			// What status.range stores (whole seconds) is what was resolved.
			if !got.To.Time.Equal(got.To.Time.Truncate(time.Second)) || !got.From.Time.Equal(got.From.Time.Truncate(time.Second)) {
				t.Fatalf("range [%s, %s) has fractions of a second that status.range would drop", got.From.Time, got.To.Time)
			}
			if ev := at(tc.now).Add(-time.Millisecond); tc.rg.Last != nil && !ev.Before(got.To.Time) {
				t.Fatalf("an event audited just before the start (%s) is outside the window ending %s", ev, got.To.Time)
			}
		})
	}
}

// panickingEvents is a store whose event pages panic, the one way to make
// a generator panic (a bug we cannot cause otherwise).
type panickingEvents struct{ store.Store }

func (panickingEvents) Events(context.Context, store.EventQuery) (store.EventPage, error) {
	panic("injected: a bug in the events page")
}

// TestGeneratorPanicFailsOnlyItsReport: the report whose generator panics
// fails with InternalError instead of being retried forever, and the
// controller goes on generating other reports.
func TestGeneratorPanicFailsOnlyItsReport(t *testing.T) {
	ns := createNamespace(t, "panic")
	st := newSQLiteStore(t)
	seedSmall(t, st, ns)
	startManager(t, &AuditReportReconciler{Store: panickingEvents{st}})
	bad := newReport(ns, "bad", reportsv1alpha1.AuditDetails, day1, day1.Add(48*time.Hour))
	if err := k8sClient.Create(context.Background(), bad); err != nil {
		t.Fatal(err)
	}
	got := waitFinished(t, ns, "bad")
	c := meta.FindStatusCondition(got.Status.Conditions, reportsv1alpha1.ConditionFailed)
	if got.Status.Phase != reportsv1alpha1.PhaseFailed || c == nil || c.Reason != ReasonInternalError || !strings.Contains(c.Message, "panicked") {
		t.Fatalf("the panicking report: phase %s, Failed condition %+v", got.Status.Phase, c)
	}
	good := newReport(ns, "good", reportsv1alpha1.NamespaceUsersSummary, day1, day1.Add(48*time.Hour))
	if err := k8sClient.Create(context.Background(), good); err != nil {
		t.Fatal(err)
	}
	if got := waitFinished(t, ns, "good"); got.Status.Phase != reportsv1alpha1.PhaseSucceeded {
		t.Fatalf("a report after the panic: phase %s", got.Status.Phase)
	}
}

// TestTwoManagersOneReport runs two managers at once without leader
// election, as two replicas do while their leases overlap: both reconcile
// the same multi-shard reports, the first to take a report's hold
// generates it. Every write is optimistic (ConfigMaps and status by
// resourceVersion): each finished report must equal the generator's bytes,
// list exactly its shards, and leave no stale one.
func TestTwoManagersOneReport(t *testing.T) {
	st := newSQLiteStore(t)
	startManager(t, &AuditReportReconciler{Store: st, Identity: "manager-a", HoldFor: time.Minute})
	startManager(t, &AuditReportReconciler{Store: st, Identity: "manager-b", HoldFor: time.Minute})
	ns := createNamespace(t, "two-writers")
	seedLarge(t, st, ns, 3000, 1000, true)
	want := generated(t, st, report.Params{Type: reportsv1alpha1.AuditDetails, Namespace: ns, Range: store.TimeRange{From: day1, To: day1.Add(24 * time.Hour)}})
	const reports = 4
	for i := range reports {
		rep := newReport(ns, fmt.Sprintf("both-%d", i), reportsv1alpha1.AuditDetails, day1, day1.Add(24*time.Hour))
		rep.Spec.PageSize = 50
		if err := k8sClient.Create(context.Background(), rep); err != nil {
			t.Fatal(err)
		}
	}
	for i := range reports {
		got := waitFinished(t, ns, fmt.Sprintf("both-%d", i))
		if got.Status.Phase != reportsv1alpha1.PhaseSucceeded {
			t.Fatalf("%s: phase %s: %+v", got.Name, got.Status.Phase, got.Status.Conditions)
		}
		data, _ := readConfigMapReport(t, got)
		if !bytes.Equal(data, want) {
			t.Errorf("%s: %d bytes, want the generator's %d", got.Name, len(data), len(want))
		}
		checkDigest(t, got, data)
		var cms corev1.ConfigMapList
		if err := k8sClient.List(context.Background(), &cms, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		listed := map[string]bool{}
		for _, o := range got.Status.Outputs {
			listed[o.ConfigMap] = true
		}
		for _, cm := range cms.Items {
			if strings.HasPrefix(cm.Name, got.Name+"-") && !listed[cm.Name] {
				t.Errorf("%s: stale shard %s left", got.Name, cm.Name)
			}
		}
	}
}

// TestReportHold stops a manager in the middle of a report (its
// checkpoint hook blocks) and starts a second one. While the first one's
// hold is fresh the second leaves the report alone: it would otherwise
// resume from the checkpoint and delete the shards past it, which the
// first may be about to list as done (how TestTwoManagersOneReport failed
// 1 run in 6 before holds). Once the hold has expired the second takes the
// report over and finishes it; the first, let go, can no longer write the
// status (its resourceVersion is stale), and the finished report is the
// generator's bytes with every listed shard in place.
func TestReportHold(t *testing.T) {
	tests := []struct {
		name     string
		holdFor  time.Duration
		takeOver bool
	}{
		{"honoured while fresh", time.Hour, false},
		{"taken over once expired", 500 * time.Millisecond, true},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := newSQLiteStore(t)
			ns := createNamespace(t, fmt.Sprintf("hold-%d", i))
			// Several shards: a checkpoint is stored when one is.
			seedLarge(t, st, ns, 8000, 300, true)
			blocked, release := make(chan struct{}), make(chan struct{})
			var once sync.Once
			startManager(t, &AuditReportReconciler{
				Store: st, ChunkSize: 64 << 10, Identity: "slow", HoldFor: tc.holdFor,
				checkpointed: func(ctx context.Context, _ int64) {
					once.Do(func() {
						close(blocked)
						select {
						case <-release:
						case <-ctx.Done():
						}
					})
				},
			})
			rep := newReport(ns, "held", reportsv1alpha1.AuditDetails, day1, day1.Add(24*time.Hour))
			rep.Spec.PageSize = 50
			if err := k8sClient.Create(context.Background(), rep); err != nil {
				t.Fatal(err)
			}
			select {
			case <-blocked:
			case <-time.After(60 * time.Second):
				t.Fatal("the first manager never stored a checkpoint")
			}
			var mid reportsv1alpha1.AuditReport
			if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(rep), &mid); err != nil {
				t.Fatal(err)
			}
			if h := mid.Status.Holder; h == nil || h.Identity != "slow" {
				t.Fatalf("mid-report status.holder %+v, want the first manager", h)
			}
			startManager(t, &AuditReportReconciler{Store: st, ChunkSize: 64 << 10, Identity: "fast", HoldFor: tc.holdFor})

			if !tc.takeOver {
				// The second manager reconciles the report at once (its
				// informer lists it); give it time to do harm.
				time.Sleep(3 * time.Second)
				var now reportsv1alpha1.AuditReport
				if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(rep), &now); err != nil {
					t.Fatal(err)
				}
				if now.ResourceVersion != mid.ResourceVersion {
					t.Fatalf("the second manager wrote a report the first holds: holder %+v, phase %s", now.Status.Holder, now.Status.Phase)
				}
				close(release)
				got := waitFinished(t, ns, "held")
				checkHeldReport(t, st, got, "slow")
				return
			}
			got := waitFinished(t, ns, "held")
			close(release)
			checkHeldReport(t, st, got, "fast")
			// The first manager, let go, goes on from where it stopped
			// and fails at its next status write; the report stays the
			// second one's.
			time.Sleep(2 * time.Second)
			var after reportsv1alpha1.AuditReport
			if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(rep), &after); err != nil {
				t.Fatal(err)
			}
			if after.ResourceVersion != got.ResourceVersion {
				t.Fatalf("the report changed after it finished: phase %s, outputs %+v", after.Status.Phase, after.Status.Outputs)
			}
			checkHeldReport(t, st, &after, "fast")
		})
	}
}

// checkHeldReport checks a finished report of TestReportHold: the
// generator's bytes in the listed shards, no other shard, and an event
// naming the manager that took it over when one did.
func checkHeldReport(t *testing.T, st store.Store, got *reportsv1alpha1.AuditReport, by string) {
	t.Helper()
	if got.Status.Phase != reportsv1alpha1.PhaseSucceeded || got.Status.Holder != nil {
		t.Fatalf("phase %s, holder %+v: %+v", got.Status.Phase, got.Status.Holder, got.Status.Conditions)
	}
	data, _ := readConfigMapReport(t, got)
	want := generated(t, st, report.Params{Type: reportsv1alpha1.AuditDetails, Namespace: got.Namespace, Range: store.TimeRange{From: day1, To: day1.Add(24 * time.Hour)}})
	if !bytes.Equal(data, want) {
		t.Fatalf("%d bytes, want the generator's %d", len(data), len(want))
	}
	checkDigest(t, got, data)
	var cms corev1.ConfigMapList
	if err := k8sClient.List(context.Background(), &cms, client.InNamespace(got.Namespace)); err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, o := range got.Status.Outputs {
		listed[o.ConfigMap] = true
	}
	for _, cm := range cms.Items {
		if strings.HasPrefix(cm.Name, got.Name+"-") && !listed[cm.Name] {
			t.Errorf("stale shard %s left", cm.Name)
		}
	}
	var evs eventsv1.EventList
	if err := k8sClient.List(context.Background(), &evs, client.InNamespace(got.Namespace)); err != nil {
		t.Fatal(err)
	}
	var takenOver bool
	for _, e := range evs.Items {
		if e.Reason == ReasonTakenOver && e.Regarding.Name == got.Name {
			takenOver = true
			if !strings.Contains(e.Note, "from slow") {
				t.Errorf("TakenOver event %q does not name the manager it took the report from", e.Note)
			}
		}
	}
	if takenOver != (by == "fast") {
		t.Errorf("a TakenOver event: %v, want %v", takenOver, by == "fast")
	}
}

// TestManagerRoleIsEnough runs the manager as a user bound to nothing but
// config/rbac's ClusterRole auditops-manager (generated from the markers)
// and has it write a multi-shard ConfigMap report and an S3 report with a
// credentials Secret, and a multi-shard Secret report: the least-privilege
// role (Secrets: never list or watch) is all the controller needs.
func TestManagerRoleIsEnough(t *testing.T) {
	ctx := context.Background()
	raw, err := os.ReadFile(filepath.Join("..", "config", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	if err := yaml.Unmarshal(raw, &role); err != nil {
		t.Fatal(err)
	}
	role.Name = "auditops-manager-under-test"
	if err := k8sClient.Create(ctx, &role); err != nil {
		t.Fatal(err)
	}
	const user = "system:serviceaccount:auditops-system:auditops-manager-under-test"
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: user}},
	}
	if err := k8sClient.Create(ctx, binding); err != nil {
		t.Fatal(err)
	}
	asManager := rest.CopyConfig(cfg)
	asManager.Impersonate = rest.ImpersonationConfig{UserName: user}
	// RBAC is enforced: the identity may not list Secrets.
	c, err := client.New(asManager, client.Options{Scheme: testScheme})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.List(ctx, &corev1.SecretList{}); !apierrors.IsForbidden(err) {
		t.Fatalf("listing Secrets as the manager: %v, want Forbidden", err)
	}

	endpoint, access, secret, s3c := startS3(t)
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("least")}); err != nil {
		t.Fatal(err)
	}
	st := newSQLiteStore(t)
	startManagerAs(t, &AuditReportReconciler{Store: st, Destinations: allowDestinations(t, "s3://least?endpoint="+endpoint)}, asManager)
	ns := createNamespace(t, "least-privilege")
	seedLarge(t, st, ns, 3000, 1000, true)
	if err := k8sClient.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "s3-creds"},
		Data:       map[string][]byte{"accessKeyID": []byte(access), "secretAccessKey": []byte(secret)},
	}); err != nil {
		t.Fatal(err)
	}
	shards := newReport(ns, "shards", reportsv1alpha1.AuditDetails, day1, day1.Add(24*time.Hour))
	shards.Spec.PageSize = 100
	toS3 := newReport(ns, "to-s3", reportsv1alpha1.AuditDetails, day1, day1.Add(24*time.Hour))
	toS3.Spec.Output = &reportsv1alpha1.ReportOutput{ObjectStore: &reportsv1alpha1.ObjectStoreOutput{
		URL:                  "s3://least/audit?endpoint=" + endpoint + "&use_path_style=true&region=us-east-1",
		CredentialsSecretRef: &corev1.LocalObjectReference{Name: "s3-creds"},
	}}
	secretShards := newReport(ns, "secret-shards", reportsv1alpha1.AuditDetails, day1, day1.Add(24*time.Hour))
	secretShards.Spec.PageSize = 100
	secretShards.Spec.Output = &reportsv1alpha1.ReportOutput{Secret: &reportsv1alpha1.SecretOutput{}}
	for _, rep := range []*reportsv1alpha1.AuditReport{shards, toS3, secretShards} {
		if err := k8sClient.Create(ctx, rep); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"shards", "to-s3", "secret-shards"} {
		got := waitFinished(t, ns, name)
		if got.Status.Phase != reportsv1alpha1.PhaseSucceeded {
			t.Fatalf("%s as the manager's role: phase %s: %+v", name, got.Status.Phase, got.Status.Conditions)
		}
	}
	for _, name := range []string{"shards", "secret-shards"} {
		if got := waitFinished(t, ns, name); len(got.Status.Outputs) < 3 {
			t.Errorf("%s: %d shards: the test needs several (create, update, patch, list or probe, delete)", name, len(got.Status.Outputs))
		}
	}
}

// countingStore counts the reads of a report generation.
type countingStore struct {
	store.Store
	calls atomic.Int64
}

func (c *countingStore) Events(ctx context.Context, q store.EventQuery) (store.EventPage, error) {
	c.calls.Add(1)
	return c.Store.Events(ctx, q)
}

// TestFailingReportBacksOff: a report that fails on every attempt retries
// with the work queue's growing backoff, not in a loop driven by its own
// status writes (each of which kube-apiserver audits).
func TestFailingReportBacksOff(t *testing.T) {
	ns := createNamespace(t, "backoff")
	down := newSQLiteStore(t)
	if err := down.Close(); err != nil {
		t.Fatal(err)
	}
	counted := &countingStore{Store: down}
	stop := startManager(t, &AuditReportReconciler{Store: counted})
	defer stop()
	rep := newReport(ns, "failing", reportsv1alpha1.AuditDetails, day1, day1.Add(48*time.Hour))
	if err := k8sClient.Create(context.Background(), rep); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "a first attempt", func(context.Context) (bool, error) { return counted.calls.Load() > 0, nil })
	start := counted.calls.Load()
	time.Sleep(4 * time.Second)
	// Backoff from 5 ms doubling: about 10 attempts in 4 s; the loop through
	// status events made hundreds.
	if n := counted.calls.Load() - start; n > 20 {
		t.Fatalf("%d attempts in 4 s: the report retries in a loop, not with backoff", n)
	} else {
		t.Logf("%d attempts in 4 s", n)
	}
}

// TestRetryDelayIsCapped: a report failing through a long outage retries
// at most maxRetryDelay apart, so it goes on soon after the store is back.
func TestRetryDelayIsCapped(t *testing.T) {
	l := retryLimiter()
	req := reconcile.Request{}
	var last time.Duration
	for range 40 {
		last = l.When(req)
	}
	if last != maxRetryDelay {
		t.Fatalf("delay after 40 failures = %s, want the cap %s", last, maxRetryDelay)
	}
}
