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

package ingest

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"

	"github.com/auditops/auditops/internal/store"
)

// stageTime is the stageTimestamp of baseEvent, with microseconds as
// kube-apiserver writes them.
var stageTime = time.Date(2024, 5, 22, 10, 0, 0, 123456000, time.UTC)

// baseEvent is a successful create of pod team-a/web-1 by alice, as
// kube-apiserver records it at stage ResponseComplete.
func baseEvent() *auditv1.Event {
	return &auditv1.Event{
		TypeMeta:   metav1.TypeMeta{Kind: "Event", APIVersion: "audit.k8s.io/v1"},
		Level:      auditv1.LevelRequestResponse,
		AuditID:    "a1",
		Stage:      auditv1.StageResponseComplete,
		RequestURI: "/api/v1/namespaces/team-a/pods?fieldManager=kubectl",
		Verb:       "create",
		User: authnv1.UserInfo{
			Username: "alice",
			UID:      "u-1",
			Groups:   []string{"devs", "system:authenticated"},
		},
		SourceIPs:                []string{"10.0.0.7", "10.0.0.1"},
		UserAgent:                "kubectl/v1.37.1",
		ObjectRef:                &auditv1.ObjectReference{Resource: "pods", Namespace: "team-a", Name: "web-1", APIVersion: "v1"},
		ResponseStatus:           &metav1.Status{Code: 201},
		RequestObject:            &runtime.Unknown{Raw: []byte(`{"kind":"Pod","metadata":{"name":"web-1"}}`)},
		ResponseObject:           &runtime.Unknown{Raw: []byte(`{"kind":"Pod","metadata":{"name":"web-1","uid":"p1"}}`)},
		RequestReceivedTimestamp: metav1.NewMicroTime(stageTime.Add(-20 * time.Millisecond)),
		StageTimestamp:           metav1.NewMicroTime(stageTime.In(time.FixedZone("CEST", 2*3600))),
	}
}

func TestMapKubeAudit(t *testing.T) {
	strp := func(s string) *string { return &s }
	tests := []struct {
		name   string
		mutate func(ev *auditv1.Event)
		// check compares only the fields named; want is filled from base.
		want func(w *store.Event)
	}{
		{
			name:   "namespaced create",
			mutate: func(*auditv1.Event) {},
			want:   func(*store.Event) {},
		},
		{
			name: "impersonation: user is the impersonated identity, category access",
			mutate: func(ev *auditv1.Event) {
				ev.User = authnv1.UserInfo{Username: "admin", Groups: []string{"system:masters"}}
				ev.ImpersonatedUser = &authnv1.UserInfo{Username: "alice", Groups: []string{"devs"}}
				ev.Verb = "get"
				ev.ResponseStatus.Code = 200
			},
			want: func(w *store.Event) {
				w.User = "alice"
				w.Principal = json.RawMessage(`{"user":{"username":"admin","groups":["system:masters"]},"impersonatedUser":{"username":"alice","groups":["devs"]}}`)
				w.Method = "get"
				w.StatusCode = 200
				w.Category = store.CategoryAccess
				w.Message = "admin (as alice) get pods team-a/web-1: 200"
			},
		},
		{
			name: "cluster-scoped object",
			mutate: func(ev *auditv1.Event) {
				ev.Verb = "get"
				ev.RequestURI = "/api/v1/nodes/node-1"
				ev.ObjectRef = &auditv1.ObjectReference{Resource: "nodes", Name: "node-1", APIVersion: "v1"}
				ev.ResponseStatus.Code = 200
				ev.RequestObject = nil
			},
			want: func(w *store.Event) {
				w.Namespace = store.ClusterNamespace
				w.Method = "get"
				w.API = "/nodes"
				w.StatusCode = 200
				w.EntityKind = "nodes"
				w.EntityID = "node-1"
				w.Request = nil
				w.Message = "alice get nodes node-1: 200"
			},
		},
		{
			name: "a namespace itself is its own tenant, entityId just the name",
			mutate: func(ev *auditv1.Event) {
				ev.Verb = "delete"
				ev.ObjectRef = &auditv1.ObjectReference{Resource: "namespaces", Namespace: "team-a", Name: "team-a", APIVersion: "v1"}
				ev.ResponseStatus.Code = 200
			},
			want: func(w *store.Event) {
				w.Method = "delete"
				w.API = "/namespaces"
				w.StatusCode = 200
				w.EntityKind = "namespaces"
				w.EntityID = "team-a"
				w.Message = "alice delete namespaces team-a: 200"
			},
		},
		{
			name: "non-resource URL: path without query",
			mutate: func(ev *auditv1.Event) {
				ev.Verb = "get"
				ev.RequestURI = "/healthz/etcd?verbose=1"
				ev.ObjectRef = nil
				ev.ResponseStatus.Code = 200
				ev.RequestObject, ev.ResponseObject = nil, nil
			},
			want: func(w *store.Event) {
				w.Namespace = store.ClusterNamespace
				w.Method = "get"
				w.API = "/healthz/etcd"
				w.StatusCode = 200
				w.EntityKind, w.EntityID = "", ""
				w.Request, w.Response, w.CurrentState = nil, nil, nil
				w.Message = "alice get /healthz/etcd: 200"
			},
		},
		{
			name: "subresource",
			mutate: func(ev *auditv1.Event) {
				ev.ObjectRef.Subresource = "exec"
				ev.ResponseStatus.Code = 101
				ev.ResponseObject = nil
			},
			want: func(w *store.Event) {
				w.API = "/pods/exec"
				w.StatusCode = 101
				w.Response, w.CurrentState = nil, nil
				w.Message = "alice create pods/exec team-a/web-1: 101"
			},
		},
		{
			name: "list in a namespace targets no single entity",
			mutate: func(ev *auditv1.Event) {
				ev.Verb = "list"
				ev.ObjectRef.Name = ""
				ev.ResponseStatus.Code = 200
				ev.RequestObject = nil
			},
			want: func(w *store.Event) {
				w.Method = "list"
				w.StatusCode = 200
				w.EntityID = ""
				w.Request = nil
				w.Message = "alice list pods in team-a: 200"
			},
		},
		{
			name: "create with generateName takes the name from the response",
			mutate: func(ev *auditv1.Event) {
				ev.ObjectRef.Name = ""
				ev.ResponseObject = &runtime.Unknown{Raw: []byte(`{"kind":"Pod","metadata":{"name":"web-x7k2p"}}`)}
			},
			want: func(w *store.Event) {
				w.EntityID = "team-a/web-x7k2p"
				w.Response = json.RawMessage(`{"kind":"Pod","metadata":{"name":"web-x7k2p"}}`)
				w.CurrentState = w.Response
				w.Message = "alice create pods team-a/web-x7k2p: 201"
			},
		},
		{
			name: "failure with message",
			mutate: func(ev *auditv1.Event) {
				ev.Verb = "get"
				ev.ObjectRef.Name = "gone"
				ev.ResponseStatus = &metav1.Status{Code: 404, Status: "Failure", Reason: metav1.StatusReasonNotFound, Message: `pods "gone" not found`}
				ev.RequestObject = nil
				ev.ResponseObject = nil
			},
			want: func(w *store.Event) {
				w.Method = "get"
				w.StatusCode = 404
				w.Status = store.StatusFailure
				w.Error = strp(`pods "gone" not found`)
				w.EntityID = "team-a/gone"
				w.Request, w.Response, w.CurrentState = nil, nil, nil
				w.Message = "alice get pods team-a/gone: 404"
			},
		},
		{
			name: "failure without message falls back to the reason",
			mutate: func(ev *auditv1.Event) {
				ev.ResponseStatus = &metav1.Status{Code: 409, Reason: metav1.StatusReasonAlreadyExists}
				ev.ResponseObject = nil
			},
			want: func(w *store.Event) {
				w.StatusCode = 409
				w.Status = store.StatusFailure
				w.Error = strp("AlreadyExists")
				w.Response, w.CurrentState = nil, nil
				w.Message = "alice create pods team-a/web-1: 409"
			},
		},
		{
			name: "denial 403 is access",
			mutate: func(ev *auditv1.Event) {
				ev.Verb = "get"
				ev.ObjectRef.Resource = "secrets"
				ev.ObjectRef.Name = "db"
				ev.ResponseStatus = &metav1.Status{Code: 403, Status: "Failure", Reason: metav1.StatusReasonForbidden,
					Message: `secrets "db" is forbidden: User "alice" cannot get resource "secrets"`}
				ev.RequestObject, ev.ResponseObject = nil, nil
			},
			want: func(w *store.Event) {
				w.Method = "get"
				w.API = "/secrets"
				w.StatusCode = 403
				w.Status = store.StatusFailure
				w.Category = store.CategoryAccess
				w.Error = strp(`secrets "db" is forbidden: User "alice" cannot get resource "secrets"`)
				w.EntityKind = "secrets"
				w.EntityID = "team-a/db"
				w.Request, w.Response, w.CurrentState = nil, nil, nil
				w.Message = "alice get secrets team-a/db: 403"
			},
		},
		{
			name: "failed authentication: empty user, 401",
			mutate: func(ev *auditv1.Event) {
				ev.User = authnv1.UserInfo{}
				ev.Verb = "list"
				ev.ObjectRef = nil
				ev.RequestURI = "/api/v1/pods"
				ev.ResponseStatus = &metav1.Status{Code: 401, Status: "Failure", Reason: metav1.StatusReasonUnauthorized, Message: "Unauthorized"}
				ev.RequestObject, ev.ResponseObject = nil, nil
			},
			want: func(w *store.Event) {
				w.Namespace = store.ClusterNamespace
				w.User = "system:unauthenticated"
				w.Principal = json.RawMessage(`{"user":{}}`)
				w.Method = "list"
				w.API = "/api/v1/pods"
				w.StatusCode = 401
				w.Status = store.StatusFailure
				w.Category = store.CategoryAccess
				w.Error = strp("Unauthorized")
				w.EntityKind, w.EntityID = "", ""
				w.Request, w.Response, w.CurrentState = nil, nil, nil
				w.Message = "system:unauthenticated list /api/v1/pods: 401"
			},
		},
		{
			name: "X509 credential id is the certificate id",
			mutate: func(ev *auditv1.Event) {
				ev.User.Extra = map[string]authnv1.ExtraValue{
					"authentication.kubernetes.io/credential-id": {"X509SHA256=04adf2b65e6325a8c467256eb3a9a373d818398d9a1f1d9eca1cbc2c237fe75f"},
				}
			},
			want: func(w *store.Event) {
				w.Principal = json.RawMessage(`{"user":{"username":"alice","uid":"u-1","groups":["devs","system:authenticated"],"extra":{"authentication.kubernetes.io/credential-id":["X509SHA256=04adf2b65e6325a8c467256eb3a9a373d818398d9a1f1d9eca1cbc2c237fe75f"]}}}`)
				w.CertificateSerialNumber = "X509SHA256=04adf2b65e6325a8c467256eb3a9a373d818398d9a1f1d9eca1cbc2c237fe75f"
			},
		},
		{
			name: "token credential id is not a certificate",
			mutate: func(ev *auditv1.Event) {
				ev.User.Extra = map[string]authnv1.ExtraValue{
					"authentication.kubernetes.io/credential-id": {"JTI=7f1c2a"},
				}
			},
			want: func(w *store.Event) {
				w.Principal = json.RawMessage(`{"user":{"username":"alice","uid":"u-1","groups":["devs","system:authenticated"],"extra":{"authentication.kubernetes.io/credential-id":["JTI=7f1c2a"]}}}`)
			},
		},
		{
			name: "impersonated user's extra is not the credential",
			mutate: func(ev *auditv1.Event) {
				ev.User = authnv1.UserInfo{Username: "admin"}
				ev.ImpersonatedUser = &authnv1.UserInfo{Username: "alice", Extra: map[string]authnv1.ExtraValue{
					"authentication.kubernetes.io/credential-id": {"X509SHA256=ff"},
				}}
			},
			want: func(w *store.Event) {
				w.Principal = json.RawMessage(`{"user":{"username":"admin"},"impersonatedUser":{"username":"alice","extra":{"authentication.kubernetes.io/credential-id":["X509SHA256=ff"]}}}`)
				w.Category = store.CategoryAccess
				w.Message = "admin (as alice) create pods team-a/web-1: 201"
			},
		},
		{
			name: "panic without status is a 500 failure",
			mutate: func(ev *auditv1.Event) {
				ev.Stage = auditv1.StagePanic
				ev.ResponseStatus = nil
				ev.ResponseObject = nil
			},
			want: func(w *store.Event) {
				w.StatusCode = 500
				w.Status = store.StatusFailure
				w.Error = strp("Internal Server Error")
				w.Response, w.CurrentState = nil, nil
				w.Message = "alice create pods team-a/web-1: 500"
			},
		},
		{
			name: "no stageTimestamp: requestReceivedTimestamp",
			mutate: func(ev *auditv1.Event) {
				ev.StageTimestamp = metav1.MicroTime{}
			},
			want: func(w *store.Event) {
				w.Time = stageTime.Add(-20 * time.Millisecond)
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := baseEvent()
			tc.mutate(ev)
			got, ok, err := MapKubeAudit(ev)
			if err != nil || !ok {
				t.Fatalf("MapKubeAudit: ok=%v err=%v", ok, err)
			}
			want := store.Event{
				ID:           "a1",
				Time:         stageTime,
				Namespace:    "team-a",
				User:         "alice",
				Principal:    json.RawMessage(`{"user":{"username":"alice","uid":"u-1","groups":["devs","system:authenticated"]}}`),
				Method:       "create",
				API:          "/pods",
				Status:       store.StatusSuccess,
				StatusCode:   201,
				Category:     store.CategoryData,
				EntityKind:   "pods",
				EntityID:     "team-a/web-1",
				Message:      "alice create pods team-a/web-1: 201",
				Request:      json.RawMessage(`{"kind":"Pod","metadata":{"name":"web-1"}}`),
				Response:     json.RawMessage(`{"kind":"Pod","metadata":{"name":"web-1","uid":"p1"}}`),
				CurrentState: json.RawMessage(`{"kind":"Pod","metadata":{"name":"web-1","uid":"p1"}}`),
				DeviceID:     "10.0.0.7",
				Details:      "kubectl/v1.37.1",
			}
			tc.want(&want)
			assertEvent(t, got, want)
		})
	}
}

// assertEvent compares two events field by field, times by instant and
// location (stored UTC), JSON by bytes.
func assertEvent(t *testing.T, got, want store.Event) {
	t.Helper()
	if !got.Time.Equal(want.Time) || got.Time.Location() != time.UTC {
		t.Errorf("time = %v (%v), want %v UTC", got.Time, got.Time.Location(), want.Time)
	}
	got.Time, want.Time = time.Time{}, time.Time{}
	gj, _ := json.Marshal(got)
	wj, _ := json.Marshal(want)
	if string(gj) != string(wj) {
		t.Errorf("event mismatch\n got: %s\nwant: %s", gj, wj)
	}
}

func TestMapKubeAuditStagesAndErrors(t *testing.T) {
	for _, stage := range []auditv1.Stage{auditv1.StageRequestReceived, auditv1.StageResponseStarted} {
		ev := baseEvent()
		ev.Stage = stage
		if _, ok, err := MapKubeAudit(ev); ok || err != nil {
			t.Errorf("stage %s: ok=%v err=%v, want not stored and no error", stage, ok, err)
		}
	}
	tests := []struct {
		name   string
		mutate func(*auditv1.Event)
		field  string
	}{
		{"missing auditID", func(ev *auditv1.Event) { ev.AuditID = "" }, "auditID"},
		{"no timestamp at all", func(ev *auditv1.Event) {
			ev.StageTimestamp, ev.RequestReceivedTimestamp = metav1.MicroTime{}, metav1.MicroTime{}
		}, "stageTimestamp"},
		{"time the store cannot represent", func(ev *auditv1.Event) {
			ev.StageTimestamp = metav1.NewMicroTime(time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC))
		}, "stageTimestamp"},
	}
	for _, tc := range tests {
		ev := baseEvent()
		tc.mutate(ev)
		_, _, err := MapKubeAudit(ev)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%s: err = %v, want a FieldError on %q", tc.name, err, tc.field)
		}
	}
}

// TestMapKubeAuditHostileInput: what a client controls (Audit-ID header, URL)
// must not make an event the store refuses, or one request would drop a
// whole webhook batch.
func TestMapKubeAuditHostileInput(t *testing.T) {
	ev := baseEvent()
	ev.AuditID = types.UID(strings.Repeat("i", 600))
	ev.ObjectRef.Namespace = strings.Repeat("n", 300)
	ev.ObjectRef.Name = "a\x00b"
	ev.ResponseStatus = &metav1.Status{Code: 401, Message: "no\x00pe"}
	ev.User = authnv1.UserInfo{Username: strings.Repeat("é", 300)} // 600 bytes
	got, ok, err := MapKubeAudit(ev)
	if err != nil || !ok {
		t.Fatalf("ok=%v err=%v", ok, err)
	}
	if got.ID != string(ev.AuditID) || len(got.Namespace) != store.MaxNamespaceLen || len(got.User) != 512 {
		t.Errorf("lengths id %d (want kept whole) namespace %d user %d", len(got.ID), len(got.Namespace), len(got.User))
	}
	if !utf8.ValidString(got.User) {
		t.Errorf("user cut inside a rune: %q", got.User)
	}
	if strings.Contains(got.EntityID+got.Message+*got.Error, "\x00") {
		t.Errorf("NUL kept: %q %q %q", got.EntityID, got.Message, *got.Error)
	}
	if _, err := store.NormalizeEvent(got); err != nil {
		t.Errorf("store refuses the mapped event: %v", err)
	}
}

func TestKubeCategory(t *testing.T) {
	type req struct {
		verb, group, resource, sub string
		code                       int
		impersonated, nonResource  bool
	}
	tests := []struct {
		req  req
		want string
	}{
		{req{verb: "create", group: "authentication.k8s.io", resource: "tokenreviews", code: 201}, store.CategoryAccess},
		{req{verb: "create", group: "authentication.k8s.io", resource: "selfsubjectreviews", code: 201}, store.CategoryAccess},
		{req{verb: "create", group: "authorization.k8s.io", resource: "subjectaccessreviews", code: 201}, store.CategoryAccess},
		{req{verb: "create", group: "authorization.k8s.io", resource: "selfsubjectaccessreviews", code: 201}, store.CategoryAccess},
		{req{verb: "create", group: "authorization.k8s.io", resource: "localsubjectaccessreviews", code: 201}, store.CategoryAccess},
		{req{verb: "create", group: "authorization.k8s.io", resource: "selfsubjectrulesreviews", code: 201}, store.CategoryAccess},
		{req{verb: "create", resource: "serviceaccounts", sub: "token", code: 201}, store.CategoryAccess},
		{req{verb: "create", group: "certificates.k8s.io", resource: "certificatesigningrequests", code: 201}, store.CategoryAccess},
		{req{verb: "update", group: "certificates.k8s.io", resource: "certificatesigningrequests", sub: "approval", code: 200}, store.CategoryAccess},
		{req{verb: "get", resource: "pods", code: 401}, store.CategoryAccess},
		{req{verb: "get", resource: "pods", code: 403}, store.CategoryAccess},
		{req{verb: "get", resource: "pods", code: 200, impersonated: true}, store.CategoryAccess},
		{req{verb: "get", code: 403, nonResource: true}, store.CategoryAccess},
		{req{verb: "create", group: "rbac.authorization.k8s.io", resource: "rolebindings", code: 403}, store.CategoryAccess},
		{req{verb: "create", group: "rbac.authorization.k8s.io", resource: "rolebindings", code: 201, impersonated: true}, store.CategoryAccess},
		{req{verb: "create", group: "rbac.authorization.k8s.io", resource: "rolebindings", code: 201}, store.CategoryUser},
		{req{verb: "update", group: "rbac.authorization.k8s.io", resource: "roles", code: 200}, store.CategoryUser},
		{req{verb: "patch", group: "rbac.authorization.k8s.io", resource: "clusterroles", code: 200}, store.CategoryUser},
		{req{verb: "delete", group: "rbac.authorization.k8s.io", resource: "clusterrolebindings", code: 200}, store.CategoryUser},
		{req{verb: "deletecollection", group: "rbac.authorization.k8s.io", resource: "rolebindings", code: 200}, store.CategoryUser},
		{req{verb: "create", resource: "serviceaccounts", code: 201}, store.CategoryUser},
		{req{verb: "delete", resource: "serviceaccounts", code: 200}, store.CategoryUser},
		{req{verb: "create", group: "rbac.authorization.k8s.io", resource: "rolebindings", code: 422}, store.CategoryUser},
		{req{verb: "create", group: "user.openshift.io", resource: "users", code: 201}, store.CategoryUser},
		{req{verb: "get", group: "rbac.authorization.k8s.io", resource: "rolebindings", code: 200}, store.CategoryData},
		{req{verb: "list", resource: "serviceaccounts", code: 200}, store.CategoryData},
		{req{verb: "create", group: "example.com", resource: "roles", code: 201}, store.CategoryData},
		{req{verb: "create", resource: "pods", code: 201}, store.CategoryData},
		{req{verb: "get", resource: "secrets", code: 404}, store.CategoryData},
		{req{verb: "get", code: 200, nonResource: true}, store.CategoryData},
	}
	for _, tc := range tests {
		ev := &auditv1.Event{Verb: tc.req.verb, User: authnv1.UserInfo{Username: "u"}}
		if !tc.req.nonResource {
			ev.ObjectRef = &auditv1.ObjectReference{APIGroup: tc.req.group, Resource: tc.req.resource, Subresource: tc.req.sub, Namespace: "ns"}
		}
		if tc.req.impersonated {
			ev.ImpersonatedUser = &authnv1.UserInfo{Username: "v"}
		}
		if got := kubeCategory(ev, tc.req.code); got != tc.want {
			t.Errorf("%+v: category %q, want %q", tc.req, got, tc.want)
		}
	}
}

func TestKubeCertificateID(t *testing.T) {
	tests := []struct {
		values []string
		want   string
	}{
		{nil, ""},
		{[]string{"X509SHA256=abc"}, "X509SHA256=abc"},
		{[]string{"JTI=1", "X509SHA256=abc"}, "X509SHA256=abc"},
		{[]string{"JTI=1"}, ""},
		{[]string{"X509SHA256="}, ""},
		{[]string{"X509SHA256"}, ""},
		{[]string{"x509sha256=abc"}, ""},
	}
	for _, tc := range tests {
		extra := map[string]authnv1.ExtraValue{"authentication.kubernetes.io/credential-id": tc.values}
		if got := kubeCertificateID(extra); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.values, got, tc.want)
		}
	}
}

// TestDecodeAuditLogLine decodes a line exactly as kube-apiserver's log
// backend writes it (JSON format) and maps it.
func TestDecodeAuditLogLine(t *testing.T) {
	line := `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"9c1b8a58-7f5e-4c1e-9f65-3d3e0bb4f0aa","stage":"ResponseComplete","requestURI":"/apis/rbac.authorization.k8s.io/v1/namespaces/team-a/rolebindings","verb":"create","user":{"username":"kubernetes-admin","groups":["kubeadm:cluster-admins","system:authenticated"],"extra":{"authentication.kubernetes.io/credential-id":["X509SHA256=6f337bb6576b6f942bd5ac5256f621e352aa7b34d971bda9b8f8981f51bba456"]}},"sourceIPs":["172.18.0.1"],"userAgent":"kubectl/v1.37.1 (linux/amd64) kubernetes/abc","objectRef":{"resource":"rolebindings","namespace":"team-a","name":"edit-alice","apiGroup":"rbac.authorization.k8s.io","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":201},"requestReceivedTimestamp":"2026-11-22T08:15:30.120011Z","stageTimestamp":"2026-11-22T08:15:30.131592Z","annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":""}}`
	var ev auditv1.Event
	if err := decodeAuditLine([]byte(line), &ev); err != nil {
		t.Fatal(err)
	}
	got, ok, err := MapKubeAudit(&ev)
	if err != nil || !ok {
		t.Fatalf("ok=%v err=%v", ok, err)
	}
	want := store.Event{
		ID:                      "9c1b8a58-7f5e-4c1e-9f65-3d3e0bb4f0aa",
		Time:                    time.Date(2026, 11, 22, 8, 15, 30, 131592000, time.UTC),
		Namespace:               "team-a",
		User:                    "kubernetes-admin",
		Principal:               json.RawMessage(`{"user":{"username":"kubernetes-admin","groups":["kubeadm:cluster-admins","system:authenticated"],"extra":{"authentication.kubernetes.io/credential-id":["X509SHA256=6f337bb6576b6f942bd5ac5256f621e352aa7b34d971bda9b8f8981f51bba456"]}}}`),
		Method:                  "create",
		API:                     "/rolebindings",
		Status:                  store.StatusSuccess,
		StatusCode:              201,
		Category:                store.CategoryUser,
		EntityKind:              "rolebindings",
		EntityID:                "team-a/edit-alice",
		Message:                 "kubernetes-admin create rolebindings team-a/edit-alice: 201",
		DeviceID:                "172.18.0.1",
		Details:                 "kubectl/v1.37.1 (linux/amd64) kubernetes/abc",
		CertificateSerialNumber: "X509SHA256=6f337bb6576b6f942bd5ac5256f621e352aa7b34d971bda9b8f8981f51bba456",
	}
	assertEvent(t, got, want)

	bad := []struct{ line, want string }{
		{`{"apiVersion":"audit.k8s.io/v1beta1","kind":"Event"}`, `field "apiVersion"`},
		{`{"auditID":"x","stageTimestamp":"yesterday"}`, `invalid timestamp "yesterday"`},
		{`{"auditID":"x","responseStatus":{"code":"201"}}`, `field "responseStatus.code": expected an integer`},
		{`{"auditID":"x",`, `unexpected end of JSON`},
	}
	for _, tc := range bad {
		err := decodeAuditLine([]byte(tc.line), &ev)
		if err == nil || !contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to contain %q", tc.line, err, tc.want)
		}
	}
}

// TestMapKubeAuditLongIDsHashedNotCut: kube-apiserver copies any Audit-ID
// header into auditID, so ids are kept whole up to store.MaxIDLen and
// longer ones become the SHA-256 of the whole id: two long ids sharing a
// prefix stay two ids (spec/API.md 1).
func TestMapKubeAuditLongIDsHashedNotCut(t *testing.T) {
	prefix := strings.Repeat("p", store.MaxIDLen)
	ids := map[string]string{}
	for _, id := range []string{strings.Repeat("q", store.MaxIDLen), prefix + "1", prefix + "2"} {
		ev := baseEvent()
		ev.AuditID = types.UID(id)
		got, ok, err := MapKubeAudit(ev)
		if err != nil || !ok {
			t.Fatalf("ok=%v err=%v", ok, err)
		}
		if _, err := store.NormalizeEvent(got); err != nil {
			t.Fatalf("the store refuses the mapped id: %v", err)
		}
		ids[id] = got.ID
	}
	if ids[strings.Repeat("q", store.MaxIDLen)] != strings.Repeat("q", store.MaxIDLen) {
		t.Errorf("an id of MaxIDLen bytes was not kept whole")
	}
	a, b := ids[prefix+"1"], ids[prefix+"2"]
	if a == b || !strings.HasPrefix(a, store.HashedIDPrefix) || len(a) != len(store.HashedIDPrefix)+64 {
		t.Errorf("long ids sharing a prefix map to %q and %q; want two sha256:<hex> ids", a, b)
	}
	if a != store.HashID(prefix+"1") {
		t.Errorf("hashed id %q is not the SHA-256 of the whole id", a)
	}
}
