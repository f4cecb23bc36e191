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
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	authnv1 "k8s.io/api/authentication/v1"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"

	"github.com/auditops/auditops/internal/jsoncut"
	"github.com/auditops/auditops/internal/store"
)

// credentialIDKey is the user.extra key kube-apiserver's authenticators fill
// with an identifier of the credential used (k8s.io/apiserver
// pkg/authentication/user.CredentialIDKey; copied so this package need not
// import the authentication machinery for one constant).
const credentialIDKey = "authentication.kubernetes.io/credential-id"

// unauthenticatedUser names the principal of an event whose request failed
// authentication: kube-apiserver then records an empty user, but the model
// requires one, and refusing the event would make the webhook retry forever.
const unauthenticatedUser = "system:unauthenticated"

// auditAPIVersion is the only audit.k8s.io version we accept.
const auditAPIVersion = "audit.k8s.io/v1"

// principal is the JSON shape of store.Event.Principal for Kubernetes events:
// the authenticated user and, when the request was impersonated, the identity
// it was authorized as.
type principal struct {
	User             authnv1.UserInfo  `json:"user"`
	ImpersonatedUser *authnv1.UserInfo `json:"impersonatedUser,omitempty"`
}

// storedStage reports whether events of this stage are stored. Only the final
// stages carry the outcome; RequestReceived and ResponseStarted would count
// every request twice.
func storedStage(s auditv1.Stage) bool {
	return s == auditv1.StageResponseComplete || s == auditv1.StagePanic
}

// MapKubeAudit maps one audit.k8s.io/v1 event to the store model as
// spec/API.md section 1 says. ok is false, with no error, for a stage that is
// not stored. A stored-stage event missing what the model requires (auditID, a
// timestamp) is a *FieldError.
//
// Decisions where the spec is silent (see also kubeCategory, kubeEntityID,
// kubeCertificateID):
//   - time is stageTimestamp, or requestReceivedTimestamp when that is unset.
//   - a Panic event without responseStatus gets statusCode 500: it failed.
//   - error is responseStatus.message on failure, or its reason, or the HTTP
//     status text when the message is empty, so a failure always has a log.
//   - an empty user.username (failed authentication) becomes
//     "system:unauthenticated".
func MapKubeAudit(ev *auditv1.Event) (out store.Event, ok bool, err error) {
	return mapKubeAudit(ev, jsoncut.Item{})
}

// mapKubeAudit is MapKubeAudit of an event whose objects were cut as they
// streamed in (cut).
func mapKubeAudit(ev *auditv1.Event, cut jsoncut.Item) (out store.Event, ok bool, err error) {
	if !storedStage(ev.Stage) {
		return store.Event{}, false, nil
	}
	if ev.AuditID == "" {
		return store.Event{}, false, &FieldError{Field: "auditID", Msg: "is required"}
	}
	t := ev.StageTimestamp.Time
	if t.IsZero() {
		t = ev.RequestReceivedTimestamp.Time
	}
	if t.IsZero() {
		return store.Event{}, false, &FieldError{Field: "stageTimestamp", Msg: "is required"}
	}

	code := 0
	if ev.ResponseStatus != nil {
		code = int(ev.ResponseStatus.Code)
	}
	if code == 0 && ev.Stage == auditv1.StagePanic {
		code = http.StatusInternalServerError
	}

	user := ev.User.Username
	if ev.ImpersonatedUser != nil && ev.ImpersonatedUser.Username != "" {
		user = ev.ImpersonatedUser.Username
	}
	if user == "" {
		user = unauthenticatedUser
	}

	pr, err := json.Marshal(principal{User: ev.User, ImpersonatedUser: ev.ImpersonatedUser})
	if err != nil {
		// UserInfo holds only strings; this cannot happen, but say so if it does.
		return store.Event{}, false, &FieldError{Field: "user", Msg: "cannot be encoded: " + err.Error()}
	}

	ns := store.ClusterNamespace
	var resource string
	if ref := ev.ObjectRef; ref != nil {
		if ref.Namespace != "" {
			ns = ref.Namespace
		}
		resource = ref.Resource
	}

	out = store.Event{
		ID:         string(ev.AuditID),
		Time:       t.UTC(),
		Namespace:  ns,
		User:       user,
		Principal:  pr,
		Method:     ev.Verb,
		API:        kubeAPI(ev),
		StatusCode: code,
		Status:     store.StatusSuccess,
		Category:   kubeCategory(ev, code),
		EntityKind: resource,
		EntityID:   kubeEntityID(ev, cut),
		Details:    kubeDetails(ev),
		// The authenticated user's credential: under impersonation the
		// impersonated user's extra is asserted, not a credential.
		CertificateSerialNumber: kubeCertificateID(ev.User.Extra),
	}
	if code >= 400 {
		out.Status = store.StatusFailure
		msg := failureMessage(ev, code)
		out.Error = &msg
	}
	if len(ev.SourceIPs) > 0 {
		out.DeviceID = ev.SourceIPs[0]
	}
	if ev.RequestObject != nil && len(ev.RequestObject.Raw) > 0 {
		out.Request = json.RawMessage(ev.RequestObject.Raw)
	}
	if ev.ResponseObject != nil && len(ev.ResponseObject.Raw) > 0 {
		out.Response = json.RawMessage(ev.ResponseObject.Raw)
		out.CurrentState = out.Response
	}
	out.Message = kubeMessage(ev, user, out.API, out.EntityID, ns, code)
	sanitize(&out)
	// Everything else store.NormalizeEvent checks holds by construction
	// (status, category, JSON from a JSON decoder, UTC); it is not called
	// here because it re-validates every payload and this is the hot path.
	if p := store.EventTimeProblem(out.Time); p != "" {
		return store.Event{}, false, &FieldError{Field: "stageTimestamp", Msg: p}
	}
	return out, true, nil
}

// truncatedAnnotation is set by kube-apiserver's webhook truncation
// (--audit-webhook-truncate-enabled) on an event whose objects it dropped.
const truncatedAnnotation = "audit.k8s.io/truncated"

// kubeDetails is the user agent, and kube-apiserver's truncation
// annotation when it is set, so that a report shows the event lost its
// objects before it reached us (spec/API.md 2).
func kubeDetails(ev *auditv1.Event) string {
	v, ok := ev.Annotations[truncatedAnnotation]
	if !ok {
		return ev.UserAgent
	}
	d := truncatedAnnotation + "=" + v
	if ev.UserAgent == "" {
		return d
	}
	return ev.UserAgent + "; " + d
}

// sanitize makes an event fit the store whatever the request looked like.
// A client controls much of what kube-apiserver records: the Audit-ID
// header (auditID, untruncated), the URL (requestURI, objectRef namespace
// and name, even unauthenticated), the User-Agent. Refusing such an event
// would make one crafted request drop the whole webhook batch with it, so
// NUL characters (which no store keeps in text) are replaced and over-long
// indexed fields are cut to the store's limits, but for the id: an id
// longer than store.MaxIDLen is kept as the SHA-256 of the whole id,
// because two ids cut to a shared prefix would be one id (spec/API.md 1).
func sanitize(ev *store.Event) {
	ev.ID = clean(ev.ID, 0)
	if len(ev.ID) > store.MaxIDLen {
		ev.ID = store.HashID(ev.ID)
	}
	ev.Namespace = clean(ev.Namespace, store.MaxNamespaceLen)
	ev.User = clean(ev.User, store.MaxUserLen)
	ev.API = clean(ev.API, store.MaxAPILen)
	for _, p := range []*string{&ev.Method, &ev.EntityKind, &ev.EntityID, &ev.Message, &ev.DeviceID,
		&ev.CertificateSerialNumber, &ev.Details} {
		*p = clean(*p, 0)
	}
	if ev.Error != nil {
		s := clean(*ev.Error, 0)
		ev.Error = &s
	}
}

// clean replaces NUL characters and invalid UTF-8 (encoding/json replaces
// it while decoding, goccy/go-json does not) and, when max > 0, cuts s to
// at most max bytes on a rune boundary.
func clean(s string, max int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	}
	if max > 0 && len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}

// isResourceRequest reports whether the event is about an API resource (it
// has an objectRef naming one) rather than a non-resource URL like /healthz.
func isResourceRequest(ev *auditv1.Event) bool {
	return ev.ObjectRef != nil && ev.ObjectRef.Resource != ""
}

// kubeAPI is "/"+resource[+"/"+subresource], or the request path without its
// query for non-resource requests.
func kubeAPI(ev *auditv1.Event) string {
	if isResourceRequest(ev) {
		if ev.ObjectRef.Subresource != "" {
			return "/" + ev.ObjectRef.Resource + "/" + ev.ObjectRef.Subresource
		}
		return "/" + ev.ObjectRef.Resource
	}
	p, _, _ := strings.Cut(ev.RequestURI, "?")
	p, _, _ = strings.Cut(p, "#")
	return p
}

// kubeEntityID names the object acted on:
//   - "namespace/name" for a namespaced object;
//   - "name" for a cluster-scoped object, and for a Namespace itself
//     (kube-apiserver puts a namespace's own name in objectRef.namespace,
//     which would otherwise give "team-a/team-a");
//   - for a successful create whose objectRef has no name (generateName), the
//     name from the response object's metadata, formatted as above (from
//     cut when the object was cut as it streamed in);
//   - "" when no single object is targeted (list, watch, deletecollection,
//     non-resource URLs); the tenant is still in the event's namespace.
func kubeEntityID(ev *auditv1.Event, cut jsoncut.Item) string {
	if !isResourceRequest(ev) {
		return ""
	}
	ref := ev.ObjectRef
	name := ref.Name
	if name == "" && ev.Verb == "create" && ev.ResponseObject != nil && len(ev.ResponseObject.Raw) > 0 &&
		ev.ResponseStatus != nil && ev.ResponseStatus.Code < 400 {
		if cut.NameCut {
			name = cut.Name
		} else {
			name = responseObjectName(ev.ResponseObject.Raw)
		}
	}
	if name == "" {
		return ""
	}
	if ref.Namespace == "" || (ref.Resource == "namespaces" && ref.APIGroup == "" && ref.Namespace == name) {
		return name
	}
	return ref.Namespace + "/" + name
}

// responseObjectName returns metadata.name of a JSON object, or "".
func responseObjectName(raw []byte) string {
	var obj struct {
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if json.Unmarshal(raw, &obj) != nil {
		return ""
	}
	return obj.Metadata.Name
}

// kubeCertificateID returns the credential id of an X.509 client certificate
// from user.extra, or "". kube-apiserver's x509 authenticator records
// "X509SHA256=<hex sha256 of the DER certificate>"; tokens record "JTI=…" and
// are not certificates. We keep the first value whose scheme (the part before
// "=") starts with "X509", verbatim with its scheme, because it is a
// fingerprint rather than a serial number and must say so, and a later hash
// (X509SHA512=…) should not silently drop out.
func kubeCertificateID(extra map[string]authnv1.ExtraValue) string {
	for _, v := range extra[credentialIDKey] {
		scheme, val, ok := strings.Cut(v, "=")
		if ok && val != "" && strings.HasPrefix(scheme, "X509") {
			return v
		}
	}
	return ""
}

// failureMessage is the error log of a failed request.
func failureMessage(ev *auditv1.Event, code int) string {
	if st := ev.ResponseStatus; st != nil {
		if st.Message != "" {
			return st.Message
		}
		if st.Reason != "" {
			return string(st.Reason)
		}
	}
	if t := http.StatusText(code); t != "" {
		return t
	}
	return "status " + strconv.Itoa(code)
}

// kubeMessage is the one-line summary, e.g.
// "alice create pods team-a/web-1: 201", "bob (as alice) list pods in team-a: 200",
// "alice get /healthz: 200".
func kubeMessage(ev *auditv1.Event, user, api, entityID, ns string, code int) string {
	var b strings.Builder
	b.Grow(64)
	if ev.ImpersonatedUser != nil && ev.ImpersonatedUser.Username != "" && ev.User.Username != "" {
		b.WriteString(ev.User.Username)
		b.WriteString(" (as ")
		b.WriteString(user)
		b.WriteString(")")
	} else {
		b.WriteString(user)
	}
	b.WriteByte(' ')
	b.WriteString(ev.Verb)
	b.WriteByte(' ')
	if isResourceRequest(ev) {
		b.WriteString(strings.TrimPrefix(api, "/"))
		switch {
		case entityID != "":
			b.WriteByte(' ')
			b.WriteString(entityID)
		case ns != store.ClusterNamespace:
			b.WriteString(" in ")
			b.WriteString(ns)
		}
	} else {
		b.WriteString(api)
	}
	if code != 0 {
		b.WriteString(": ")
		b.WriteString(strconv.Itoa(code))
	}
	return b.String()
}

// categoryRule is one row of the category table: the first rule whose match
// returns true decides.
type categoryRule struct {
	name     string
	category string
	match    func(ev *auditv1.Event, code int) bool
}

// accessResources are the authentication and access-review APIs, and the
// credential-issuing ones (token requests, certificate signing requests):
// calls to them are about who may act, not about data. Keyed by
// "group/resource/subresource".
var accessResources = map[string]bool{
	"authentication.k8s.io/tokenreviews/":             true,
	"authentication.k8s.io/selfsubjectreviews/":       true,
	"authorization.k8s.io/subjectaccessreviews/":      true,
	"authorization.k8s.io/selfsubjectaccessreviews/":  true,
	"authorization.k8s.io/localsubjectaccessreviews/": true,
	"authorization.k8s.io/selfsubjectrulesreviews/":   true,
	"/serviceaccounts/token":                          true,
	// Issuing a client certificate is issuing a credential; every
	// subresource (approval, status) is part of that flow.
	"certificates.k8s.io/certificatesigningrequests/":         true,
	"certificates.k8s.io/certificatesigningrequests/approval": true,
	"certificates.k8s.io/certificatesigningrequests/status":   true,
}

// identityResources are identities and their grants, keyed by
// "group/resource". OpenShift's user API is included because there users and
// groups are real objects.
var identityResources = map[string]bool{
	"/serviceaccounts":                              true,
	"rbac.authorization.k8s.io/roles":               true,
	"rbac.authorization.k8s.io/rolebindings":        true,
	"rbac.authorization.k8s.io/clusterroles":        true,
	"rbac.authorization.k8s.io/clusterrolebindings": true,
	"user.openshift.io/users":                       true,
	"user.openshift.io/groups":                      true,
	"user.openshift.io/identities":                  true,
	"user.openshift.io/useridentitymappings":        true,
}

// mutatingVerbs change objects.
var mutatingVerbs = map[string]bool{
	"create": true, "update": true, "patch": true, "delete": true, "deletecollection": true,
}

// kubeCategoryRules is the category table of spec/API.md section 1, in
// precedence order: a denied or impersonated change to a RoleBinding is
// "access" first, because who was refused or who acted as whom is what an
// access review looks for.
var kubeCategoryRules = []categoryRule{
	{"denied", store.CategoryAccess, func(_ *auditv1.Event, code int) bool {
		return code == http.StatusUnauthorized || code == http.StatusForbidden
	}},
	{"impersonated", store.CategoryAccess, func(ev *auditv1.Event, _ int) bool {
		return ev.ImpersonatedUser != nil
	}},
	{"authn/authz API", store.CategoryAccess, func(ev *auditv1.Event, _ int) bool {
		if !isResourceRequest(ev) {
			return false
		}
		r := ev.ObjectRef
		return accessResources[r.APIGroup+"/"+r.Resource+"/"+r.Subresource]
	}},
	{"identity change", store.CategoryUser, func(ev *auditv1.Event, _ int) bool {
		if !isResourceRequest(ev) || !mutatingVerbs[ev.Verb] {
			return false
		}
		r := ev.ObjectRef
		// Only the object itself: a subresource call (serviceaccounts/token
		// is caught above) does not change the identity or its grants.
		return r.Subresource == "" && identityResources[r.APIGroup+"/"+r.Resource]
	}},
}

// kubeCategory classifies an event by kubeCategoryRules; "data" when no rule
// matches.
func kubeCategory(ev *auditv1.Event, code int) string {
	for _, r := range kubeCategoryRules {
		if r.match(ev, code) {
			return r.category
		}
	}
	return store.CategoryData
}
