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

package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/auditops/auditops/internal/report"
	"github.com/auditops/auditops/internal/store"
)

// kubectlAccept is what kubectl get sends (k8s.io/kubectl get.go).
const kubectlAccept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"

// kubectlEvents are recent events of team-a by users no other test uses, so
// the default window (the last 24 h) holds them. Times are relative to now.
func kubectlEvents(now time.Time) []store.Event {
	forbidden := "pods \"web-1\" is forbidden"
	return []store.Event{
		{ID: "k4", Namespace: nsA, User: "kc-alice", Time: now.Add(-30 * time.Hour), Method: "get", API: "/secrets",
			Status: store.StatusSuccess, StatusCode: 200, EntityKind: "secrets", EntityID: "team-a/db"},
		{ID: "k1", Namespace: nsA, User: "kc-alice", Time: now.Add(-2 * time.Hour), Method: "get", API: "/pods",
			Status: store.StatusSuccess, StatusCode: 200, EntityKind: "pods", EntityID: "team-a/web-1", Message: "read pod web-1"},
		{ID: "k2", Namespace: nsA, User: "kc-alice", Time: now.Add(-time.Hour), Method: "delete", API: "/pods",
			Status: store.StatusFailure, StatusCode: 403, Category: store.CategoryAccess, EntityKind: "pods", EntityID: "team-a/web-1", Error: &forbidden},
		{ID: "k3", Namespace: nsA, User: "kc-bob", Time: now.Add(-30 * time.Minute), Method: "create", API: "/rolebindings",
			Status: store.StatusSuccess, StatusCode: 201, Category: store.CategoryUser, EntityKind: "rolebindings", EntityID: "team-a/edit"},
		// Client-chosen text with a terminal escape, a tab and a newline.
		{ID: "k5", Namespace: nsA, User: "kc-alice", Time: now.Add(-10 * time.Minute), Method: "patch", API: "/configmaps",
			Status: store.StatusSuccess, StatusCode: 200, EntityKind: "configmaps", EntityID: "team-a/cfg", Message: "\x1b[31mred\tand\nnew"},
	}
}

// kubectlUser writes a kubeconfig for a new user of the suite's control
// plane, bound to role in team-a when role is set.
func kubectlUser(t *testing.T, name, role string) string {
	t.Helper()
	u, err := ts.env.AddUser(envtest.User{Name: name}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := u.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name+".kubeconfig")
	if err := os.WriteFile(path, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	if role != "" {
		rb := roleBinding(nsA, name+"-"+role, role, rbacv1.Subject{Kind: "User", Name: name})
		if _, err := ts.kube.RbacV1().RoleBindings(nsA).Create(context.Background(), &rb, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// kubectlRun runs the real kubectl of the control plane (bin/k8s, next to
// kube-apiserver) with kubeconfig.
func kubectlRun(t *testing.T, kubeconfig string, args ...string) (stdout, stderr string, exit int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl"), append([]string{"--kubeconfig", kubeconfig}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		exit = ee.ExitCode()
	default:
		t.Fatalf("kubectl %v: %v", args, err)
	}
	return out.String(), errb.String(), exit
}

// tableLines splits kubectl's table output into cells: kubectl pads columns
// with at least three spaces.
func tableLines(out string) [][]string {
	var lines [][]string
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if l == "" {
			continue
		}
		lines = append(lines, regexp.MustCompile(` {3,}`).Split(strings.TrimRight(l, " "), -1))
	}
	return lines
}

// TestKubectlTables (issue 17.1): the real kubectl, through kube-apiserver
// and the aggregation layer, prints the group's lists as tables, with the
// default window, field selectors, -o wide, paging by --chunk-size, a 400
// that lists the known selectors, api-resources and RBAC.
func TestKubectlTables(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	evs := kubectlEvents(now)
	if _, err := ts.st.Insert(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	byID := map[string]store.Event{}
	for _, e := range evs {
		byID[e.ID] = e
	}
	row := func(id string, wide bool) []string {
		e := byID[id]
		msg := e.Message
		if msg == "" && e.Error != nil {
			msg = *e.Error
		}
		r := []string{report.FormatCSVTime(e.Time), e.User, e.Method, e.API, e.Status, strconv.Itoa(e.StatusCode)}
		if wide {
			r = append(r, e.EntityID, cell(msg), e.ID)
		}
		return r
	}
	header := []string{"TIME", "USER", "VERB", "RESOURCE", "STATUS", "CODE"}
	wideHeader := append(slices.Clone(header), "OBJECT", "MESSAGE", "ID")
	rows := func(wide bool, ids ...string) [][]string {
		h := header
		if wide {
			h = wideHeader
		}
		out := [][]string{h}
		for _, id := range ids {
			out = append(out, row(id, wide))
		}
		return out
	}
	// The summary of kc-alice's rows in the default window: one row per
	// (date, user, api, status); her events are more than the session gap
	// apart, so each session has no span.
	summary := [][]string{{"DATE", "USER", "RESOURCE", "STATUS", "COUNT", "ACTIVE"}}
	for _, id := range []string{"k1", "k2", "k5"} {
		e := byID[id]
		summary = append(summary, []string{e.Time.Format(time.DateOnly), e.User, e.API, e.Status, "1", "0s"})
	}
	slices.SortFunc(summary[1:], func(a, b []string) int {
		return strings.Compare(strings.Join(a[:4], "\x00"), strings.Join(b[:4], "\x00"))
	})

	// kc-alice's logs in the default window, newest first.
	logs := [][]string{{"TIME", "ACTION", "STATUS", "CODE", "DEVICE"}}
	for _, id := range []string{"k5", "k2", "k1"} {
		e := byID[id]
		logs = append(logs, []string{report.FormatCSVTime(e.Time), e.Method, e.Status, strconv.Itoa(e.StatusCode), "<none>"})
	}

	reader := kubectlUser(t, "kubectl-reader", "auditops-report-reader")
	nobody := kubectlUser(t, "kubectl-nobody", "")
	since48h := "since=" + now.Add(-48*time.Hour).Format(time.RFC3339)

	for _, tc := range []struct {
		name string
		args []string
		want [][]string
	}{
		{"default window, one user", []string{"get", "auditdetails", "-n", nsA, "--field-selector", "user=kc-alice"}, rows(false, "k1", "k2", "k5")},
		{"wide", []string{"get", "auditdetails", "-n", nsA, "--field-selector", "user=kc-alice", "-o", "wide"}, rows(true, "k1", "k2", "k5")},
		{"since a time", []string{"get", "auditdetails", "-n", nsA, "--field-selector", "user=kc-alice," + since48h}, rows(false, "k4", "k1", "k2", "k5")},
		{"since a duration", []string{"get", "auditdetails", "-n", nsA, "--field-selector", "user=kc-alice,since=90m"}, rows(false, "k2", "k5")},
		{"until", []string{"get", "auditdetails", "-n", nsA, "--field-selector", "user=kc-alice,until=" + now.Add(-90*time.Minute).Format(time.RFC3339Nano)}, rows(false, "k1")},
		{"status", []string{"get", "auditdetails", "-n", nsA, "--field-selector", "user=kc-alice,status=failure"}, rows(false, "k2")},
		{"pages of one row", []string{"get", "auditdetails", "-n", nsA, "--field-selector", "user=kc-alice," + since48h, "--chunk-size=1"}, rows(false, "k4", "k1", "k2", "k5")},
		{"pages of one row, status filtered", []string{"get", "auditdetails", "-n", nsA, "--field-selector", "status=success,user=kc-alice," + since48h, "--chunk-size=1"}, rows(false, "k4", "k1", "k5")},
		{"summary", []string{"get", "namespaceuserssummaries", "-n", nsA, "--field-selector", "user=kc-alice"}, summary},
		{"user access", []string{"get", "useraccess", "-n", nsA, "--field-selector", "user=kc-alice"}, rows(false, "k2")},
		{"user access of one user", []string{"get", "useraccess", "kc-alice", "-n", nsA}, rows(false, "k2")},
		{"users", []string{"get", "users.audit.auditops.dev", "-n", nsA, "--field-selector", "user=kc-bob", "-o", "wide"}, rows(true, "k3")},
		{"user logs, newest first", []string{"get", "userlogs", "kc-alice", "-n", nsA}, logs},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := kubectlRun(t, reader, tc.args...)
			if code != 0 {
				t.Fatalf("kubectl %v: exit %d: %s", tc.args, code, errOut)
			}
			t.Logf("$ kubectl %s\n%s", strings.Join(tc.args, " "), out)
			if got := tableLines(out); !slices.EqualFunc(got, tc.want, slices.Equal) {
				t.Errorf("kubectl %v printed\n%s\nwant rows %q", tc.args, out, tc.want)
			}
			if strings.ContainsAny(out, "\x1b\t") {
				t.Errorf("kubectl %v printed a control character: %q", tc.args, out)
			}
		})
	}

	t.Run("no selector", func(t *testing.T) {
		out, errOut, code := kubectlRun(t, reader, "get", "auditdetails", "-n", nsA)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		t.Logf("$ kubectl get auditdetails -n %s\n%s", nsA, out)
		got := tableLines(out)
		for _, id := range []string{"k1", "k2", "k3", "k5"} {
			if !slices.ContainsFunc(got, func(l []string) bool { return slices.Equal(l, row(id, false)) }) {
				t.Errorf("the default window lacks %s: %s", id, out)
			}
		}
		if slices.ContainsFunc(got, func(l []string) bool { return slices.Equal(l, row("k4", false)) }) {
			t.Errorf("the default window holds k4, 30 h old: %s", out)
		}
	})

	for _, tc := range []struct {
		name       string
		kubeconfig string
		args       []string
		reason     string // kubectl's "Error from server (reason): "
		msg        string // our message, which kubectl quotes after its own words
	}{
		{"unknown selector", reader, []string{"get", "auditdetails", "-n", nsA, "--field-selector", "verb=get"},
			"BadRequest", `unknown field selector "verb": known ones are user, status, since, until`},
		{"bad status", reader, []string{"get", "namespaceuserssummaries", "-n", nsA, "--field-selector", "status=ok"},
			"BadRequest", `field selector status must be success or failure, got "ok"`},
		{"labels", reader, []string{"get", "useraccess", "-n", nsA, "-l", "app=web"},
			"BadRequest", `labelSelector "app=web": audit rows have no labels`},
		{"empty window", reader, []string{"get", "auditdetails", "-n", nsA, "--field-selector", "since=1h,until=2h"},
			"BadRequest", `field selector until (`},
		{"page too large", reader, []string{"get", "auditdetails", "-n", nsA, "--chunk-size=1001"},
			"BadRequest", `limit must be an integer between 1 and 1000, got "1001"`},
		{"user logs of an unknown user", reader, []string{"get", "userlogs", "kc-nobody", "-n", nsA},
			"NotFound", `user "kc-nobody" has no logs in namespace "team-a"`},
		{"denied by kube-apiserver", nobody, []string{"get", "auditdetails", "-n", nsA},
			"Forbidden", `auditdetails.audit.auditops.dev is forbidden: User "kubectl-nobody" cannot list resource "auditdetails"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := kubectlRun(t, tc.kubeconfig, tc.args...)
			t.Logf("$ kubectl %s\n%s", strings.Join(tc.args, " "), errOut)
			if code == 0 || !strings.HasPrefix(errOut, "Error from server ("+tc.reason+"): ") || !strings.Contains(errOut, tc.msg) {
				t.Errorf("kubectl %v: exit %d, stdout %q, stderr %q; want (%s) with %q", tc.args, code, out, errOut, tc.reason, tc.msg)
			}
		})
	}

	t.Run("api-resources and RBAC", func(t *testing.T) {
		out, errOut, code := kubectlRun(t, reader, "api-resources", "--api-group="+Group, "-o", "name")
		if code != 0 {
			t.Fatalf("api-resources: exit %d: %s", code, errOut)
		}
		var names []string
		for _, r := range groupResources {
			names = append(names, r.name+"."+Group)
		}
		got := strings.Fields(out)
		slices.Sort(got)
		slices.Sort(names)
		if !slices.Equal(got, names) {
			t.Errorf("api-resources: %q, want %q", got, names)
		}
		for _, tc := range []struct{ kubeconfig, want string }{{reader, "yes"}, {nobody, "no"}} {
			out, _, _ := kubectlRun(t, tc.kubeconfig, "auth", "can-i", "list", "auditdetails."+Group, "-n", nsA)
			if strings.TrimSpace(out) != tc.want {
				t.Errorf("auth can-i list auditdetails: %q, want %q", out, tc.want)
			}
		}
	})
}

// TestTableNegotiation: only a client that prefers a Table gets one, only
// on the group's list paths; every other client gets the seed answer byte
// for byte, and a Table request's errors are Status objects.
func TestTableNegotiation(t *testing.T) {
	c := viaKube(t, "reader")
	group := P + "/namespaces/" + nsA + "/auditdetails?" + qDates
	seed := P + "/namespace/reports/audit-details?namespace=" + nsA + "&" + qDates
	plain := c.get(t, group)
	if plain.code != http.StatusOK {
		t.Fatalf("seed answer: %d %s", plain.code, plain.body)
	}
	for _, tc := range []struct {
		name, path, accept string
		table              bool
	}{
		{"no Accept", group, "", false},
		{"plain JSON", group, "application/json", false},
		{"JSON preferred over Table", group, "application/json,application/json;as=Table;v=v1;g=meta.k8s.io", false},
		{"Table with a lower q", group, "application/json;as=Table;v=v1;g=meta.k8s.io;q=0.5,application/json", false},
		{"Table of another group", group, "application/json;as=Table;v=v1;g=example.com,application/json", false},
		{"kubectl on a seed path", seed, kubectlAccept, false},
		{"kubectl", P + "/namespaces/" + nsA + "/auditdetails?fieldSelector=user%3Dalice%40example.com%2Csince%3D2024-05-21", kubectlAccept, true},
		{"v1beta1", P + "/namespaces/" + nsA + "/auditdetails?fieldSelector=user%3Dalice%40example.com%2Csince%3D2024-05-21", "application/json;as=Table;v=v1beta1;g=meta.k8s.io", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.accept != "" {
				hdr = []string{"Accept", tc.accept}
			}
			r := c.do(t, http.MethodGet, tc.path, nil, hdr...)
			if r.code != http.StatusOK {
				t.Fatalf("%d %s", r.code, r.body)
			}
			if !tc.table {
				if !bytes.Equal(r.body, plain.body) {
					t.Errorf("not the seed answer:\n%s\nwant\n%s", r.body, plain.body)
				}
				return
			}
			var tbl metav1.Table
			if err := json.Unmarshal(r.body, &tbl); err != nil || tbl.Kind != "Table" {
				t.Fatalf("not a Table (%v): %s", err, r.body)
			}
			if want := "meta.k8s.io/" + strings.Split(strings.Split(tc.accept, "v=")[1], ";")[0]; tbl.APIVersion != want {
				t.Errorf("apiVersion %s, want %s", tbl.APIVersion, want)
			}
			if len(tbl.Rows) != 2 || tbl.Rows[0].Cells[1] != "alice@example.com" || tbl.Continue != "" {
				t.Errorf("rows %+v continue %q, want alice's two rows of 2024-05-21 (a1, a2) and no continue", tbl.Rows, tbl.Continue)
			}
		})
	}

	t.Run("user logs pages", func(t *testing.T) {
		// sony's two seed events of 2024 (a4, a5), newest first, one a page.
		path := P + "/namespaces/" + nsA + "/userlogs/" + logUser + "?limit=1&fieldSelector=" + url.QueryEscape("since=2024-05-01,until=2024-06-01")
		var got []any
		for page, cont := 0, ""; page < 3; page++ {
			p := path
			if cont != "" {
				p += "&continue=" + url.QueryEscape(cont)
			}
			r := c.do(t, http.MethodGet, p, nil, "Accept", kubectlAccept)
			var tbl metav1.Table
			if r.code != http.StatusOK || json.Unmarshal(r.body, &tbl) != nil {
				t.Fatalf("page %d: %d %s", page, r.code, r.body)
			}
			for _, row := range tbl.Rows {
				got = append(got, row.Cells[1])
			}
			if cont = tbl.Continue; cont == "" {
				break
			}
		}
		if want := []any{"13", "35"}; !slices.Equal(got, want) {
			t.Errorf("actions %v, want %v (a5 then a4)", got, want)
		}
	})

	// Every group read path gives a client that asks for no Table the
	// same bytes, whatever else its Accept says.
	for _, rt := range namespacedRoutes(nsA) {
		want := c.get(t, rt.path)
		for _, accept := range []string{"application/json", "*/*", "text/csv", "application/json;as=Table;v=v1;g=meta.k8s.io;q=0.1,application/json"} {
			if r := c.do(t, http.MethodGet, rt.path, nil, "Accept", accept); r.code != want.code || !bytes.Equal(r.body, want.body) {
				t.Errorf("%s with Accept %s: %d %s, want the seed answer %d %s", rt.path, accept, r.code, r.body, want.code, want.body)
			}
		}
	}

	// Continue tokens: bound to the window, the filters and the page size.
	base := P + "/namespaces/" + nsA + "/auditdetails?limit=1&fieldSelector=" + url.QueryEscape("user=alice@example.com,since=2024-05-21,until=2024-05-22")
	first := c.do(t, http.MethodGet, base, nil, "Accept", kubectlAccept)
	var tbl metav1.Table
	if err := json.Unmarshal(first.body, &tbl); err != nil || len(tbl.Rows) != 1 || tbl.Continue == "" {
		t.Fatalf("first page: %v %s", err, first.body)
	}
	tampered := strings.Replace(tbl.Continue, ".", ".1", 1)
	for _, tc := range []struct{ name, path, msg string }{
		{"next page", base + "&continue=" + url.QueryEscape(tbl.Continue), ""},
		{"tampered window", base + "&continue=" + url.QueryEscape(tampered), "continue is invalid"},
		{"other page size", strings.Replace(base, "limit=1", "limit=2", 1) + "&continue=" + url.QueryEscape(tbl.Continue), "continue is invalid"},
		{"other status", base + url.QueryEscape(",status=success") + "&continue=" + url.QueryEscape(tbl.Continue), "continue belongs to another fieldSelector"},
		{"other since", strings.Replace(base, "since%3D2024-05-21", "since%3D2024-05-20", 1) + "&continue=" + url.QueryEscape(tbl.Continue), "continue belongs to another fieldSelector"},
		{"seed parameter", base + "&start_date=2024-05-21+00:00:00", `unknown query parameter "start_date" for a Table request`},
		{"not a continue", base + "&continue=abc", "continue is invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := c.do(t, http.MethodGet, tc.path, nil, "Accept", kubectlAccept)
			if tc.msg == "" {
				var next metav1.Table
				if r.code != http.StatusOK || json.Unmarshal(r.body, &next) != nil || len(next.Rows) != 1 || next.Continue != "" {
					t.Errorf("next page: %d %s", r.code, r.body)
				}
				return
			}
			var st metav1.Status
			if r.code != http.StatusBadRequest || json.Unmarshal(r.body, &st) != nil || st.Kind != "Status" || st.Reason != metav1.StatusReasonBadRequest ||
				!strings.Contains(st.Message, tc.msg) {
				t.Errorf("%d %s, want a 400 Status with %q", r.code, r.body, tc.msg)
			}
		})
	}
}

// TestKubectlSlashUserName: kube-apiserver's OIDC user names hold '/'
// (https://issuer#sub), which kube-apiserver cannot pass as one path
// segment (it decodes %2F): the lists name such a user by field selector,
// as the README says, for a reader bound by a Role.
func TestKubectlSlashUserName(t *testing.T) {
	const user = "https://issuer.example.com#abc"
	now := time.Now().UTC().Truncate(time.Millisecond)
	e := store.Event{ID: "oidc-1", Namespace: nsA, User: user, Time: now.Add(-time.Minute), Method: "get", API: "/secrets",
		Status: store.StatusSuccess, StatusCode: 200, Category: store.CategoryAccess}
	if _, err := ts.st.Insert(context.Background(), []store.Event{e}); err != nil {
		t.Fatal(err)
	}
	reader := kubectlUser(t, "kubectl-oidc-reader", "auditops-report-reader")
	for _, resource := range []string{"auditdetails", "useraccess"} {
		out, errOut, exit := kubectlRun(t, reader, "get", resource, "-n", nsA, "--field-selector", "user="+user, "-o", "wide")
		lines := tableLines(out)
		if exit != 0 || len(lines) != 2 || lines[1][1] != user || lines[1][len(lines[1])-1] != "oidc-1" {
			t.Fatalf("kubectl get %s --field-selector user=%s: exit %d\n%s%s", resource, user, exit, out, errOut)
		}
	}
}
