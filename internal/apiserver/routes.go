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
	"net/http"
	"slices"
	"strings"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/endpoints/discovery"

	"github.com/auditops/auditops/internal/ingest"
	"github.com/auditops/auditops/internal/report"
	"github.com/auditops/auditops/internal/store"
)

// route is one entry of the route table. Everything the server knows of a
// path comes from it: the mux patterns (routes), the prefixes our routes
// authorize themselves (ownsPath), a path's error shape before any handler
// runs (shapeOf) and the group's discovery (installDiscovery).
type route struct {
	method string
	// seed is the documented path (spec/API.md section 3), also served
	// under the group-version prefix, where kube-apiserver reads it as a
	// cluster-scoped resource/subresource pair; "" for none.
	seed string
	// group is the Kubernetes-shaped path under the group version
	// (section 4), e.g. "/namespaces/{ns}/auditdetails"; "" for none.
	group string
	// resource and kind name the RBAC resource our SubjectAccessReview
	// checks with verb (discovery lists get and list for a get).
	resource, kind, verb string
	shape                shape
	handle               func(s *Server, w http.ResponseWriter, r *http.Request)
	// table, when set, answers the requests that ask for a meta.k8s.io
	// Table (kubectl get, wantsTable) instead of handle; only group
	// paths have one, so seed clients always get handle's answer.
	table func(s *Server, w http.ResponseWriter, r *http.Request, apiVersion string)
}

const nsPath = "/namespaces/{ns}/"

// network serves a CSV view whose tenant is the path value param, named
// in errors as paramName (seed paths: accountId; group paths: the
// namespace).
func network(v networkView, param, paramName string, named bool) func(*Server, http.ResponseWriter, *http.Request) {
	return func(s *Server, w http.ResponseWriter, r *http.Request) {
		s.network(w, r, v, paramName, r.PathValue(param), r.PathValue("userId"), named)
	}
}

// eventsTable answers Table requests on an events view whose tenant is the
// path's namespace and whose user, when named, is the path's userId.
func eventsTable(v networkView, named bool, maxSize int) func(*Server, http.ResponseWriter, *http.Request, string) {
	return func(s *Server, w http.ResponseWriter, r *http.Request, apiVersion string) {
		s.tableEvents(w, r, apiVersion, v, r.PathValue("ns"), r.PathValue("userId"), named, maxSize)
	}
}

var (
	viewAuditDetails = networkView{resource: resAuditDetails, view: report.ViewAuditDetails}
	viewUserAccess   = networkView{resource: resUserAccess, view: report.ViewUserAccess, category: store.CategoryAccess}
	viewUsers        = networkView{resource: resUsers, view: report.ViewUsers, category: store.CategoryUser}
)

// routeTable is the route table (spec/API.md sections 2, 3 and 4).
var routeTable = []route{
	// 3.1 namespace users summary.
	{method: "GET", seed: "/api/vault/reports/namespace-users-summary", resource: resSummaries, kind: "NamespaceUsersSummary", verb: "get", shape: shapeProtecto,
		handle: func(s *Server, w http.ResponseWriter, r *http.Request) { s.summary(w, r, "") }},
	{method: "GET", group: nsPath + resSummaries, resource: resSummaries, kind: "NamespaceUsersSummary", verb: "get", shape: shapeProtecto,
		handle: func(s *Server, w http.ResponseWriter, r *http.Request) { s.summary(w, r, r.PathValue("ns")) },
		table: func(s *Server, w http.ResponseWriter, r *http.Request, apiVersion string) {
			s.tableSummary(w, r, apiVersion, r.PathValue("ns"))
		}},
	// 3.2 audit details.
	{method: "GET", seed: "/namespace/reports/audit-details", resource: resAuditDetails, kind: "AuditDetail", verb: "get", shape: shapeProtecto,
		handle: func(s *Server, w http.ResponseWriter, r *http.Request) { s.auditDetails(w, r, "") }},
	{method: "GET", group: nsPath + resAuditDetails, resource: resAuditDetails, kind: "AuditDetail", verb: "get", shape: shapeProtecto,
		handle: func(s *Server, w http.ResponseWriter, r *http.Request) { s.auditDetails(w, r, r.PathValue("ns")) },
		table:  eventsTable(viewAuditDetails, false, protectoMaxPageSize)},
	// 3.3 network audit CSV.
	{method: "GET", seed: "/network/audit/accounts/{accountId}/userAccess", resource: resUserAccess, kind: "UserAccess", verb: "get", shape: shapeMessage, handle: network(viewUserAccess, "accountId", "accountId", false)},
	{method: "GET", seed: "/network/audit/accounts/{accountId}/userAccess/{userId}", resource: resUserAccess, kind: "UserAccess", verb: "get", shape: shapeMessage, handle: network(viewUserAccess, "accountId", "accountId", true)},
	{method: "GET", group: nsPath + resUserAccess, resource: resUserAccess, kind: "UserAccess", verb: "get", shape: shapeMessage, handle: network(viewUserAccess, "ns", "namespace", false),
		table: eventsTable(viewUserAccess, false, networkMaxPageSize)},
	{method: "GET", group: nsPath + resUserAccess + "/{userId}", resource: resUserAccess, kind: "UserAccess", verb: "get", shape: shapeMessage, handle: network(viewUserAccess, "ns", "namespace", true),
		table: eventsTable(viewUserAccess, true, networkMaxPageSize)},
	{method: "GET", seed: "/network/audit/accounts/{accountId}/users", resource: resUsers, kind: "User", verb: "get", shape: shapeMessage, handle: network(viewUsers, "accountId", "accountId", false)},
	{method: "GET", seed: "/network/audit/accounts/{accountId}/users/{userId}", resource: resUsers, kind: "User", verb: "get", shape: shapeMessage, handle: network(viewUsers, "accountId", "accountId", true)},
	{method: "GET", group: nsPath + resUsers, resource: resUsers, kind: "User", verb: "get", shape: shapeMessage, handle: network(viewUsers, "ns", "namespace", false),
		table: eventsTable(viewUsers, false, networkMaxPageSize)},
	{method: "GET", group: nsPath + resUsers + "/{userId}", resource: resUsers, kind: "User", verb: "get", shape: shapeMessage, handle: network(viewUsers, "ns", "namespace", true),
		table: eventsTable(viewUsers, true, networkMaxPageSize)},
	// 3.4 user logs.
	{method: "GET", seed: "/auth/realms/{tenantId}/v3_user/{userName}/logs", resource: resUserLogs, kind: "UserLog", verb: "get", shape: shapeKobil,
		handle: func(s *Server, w http.ResponseWriter, r *http.Request) {
			s.userLogs(w, r, r.PathValue("tenantId"), "tenantId", r.PathValue("userName"))
		}},
	{method: "GET", seed: "/digitanium/v4/user/{userName}/logs", resource: resUserLogs, kind: "UserLog", verb: "get", shape: shapeKobil,
		handle: (*Server).digitaniumLogs},
	{method: "GET", group: nsPath + resUserLogs + "/{userName}", resource: resUserLogs, kind: "UserLog", verb: "get", shape: shapeKobil,
		handle: func(s *Server, w http.ResponseWriter, r *http.Request) {
			s.userLogs(w, r, r.PathValue("ns"), "namespace", r.PathValue("userName"))
		},
		table: func(s *Server, w http.ResponseWriter, r *http.Request, apiVersion string) {
			s.tableUserLogs(w, r, apiVersion, r.PathValue("ns"), r.PathValue("userName"))
		}},
	// 6 tamper evidence: a namespace's log, its checkpoints and proofs.
	{method: "GET", group: nsPath + resCheckpoints, resource: resCheckpoints, kind: "Checkpoint", verb: "list", shape: shapeStatus,
		handle: (*Server).checkpoints,
		table: func(s *Server, w http.ResponseWriter, r *http.Request, apiVersion string) {
			s.tableCheckpoints(w, r, apiVersion)
		}},
	{method: "GET", group: nsPath + resLeaves, resource: resLeaves, kind: "Leaf", verb: "list", shape: shapeStatus, handle: (*Server).leaves},
	{method: "GET", group: nsPath + resProofs, resource: resProofs, kind: "Proof", verb: "list", shape: shapeStatus, handle: (*Server).proofs},
	// 2 ingest: internal/apiserver/ingesthttp authorizes every batch through
	// authorizeIngest before it reads or stores anything.
	{method: "POST", seed: ingest.KubeAuditPath, resource: resEvents, kind: "Event", verb: "create", shape: shapeMessage,
		handle: func(s *Server, w http.ResponseWriter, r *http.Request) { s.ingest.HandleKubeAudit(w, r) }},
	{method: "POST", seed: ingest.EventsPath, group: "/" + resEvents, resource: resEvents, kind: "Event", verb: "create", shape: shapeMessage,
		handle: func(s *Server, w http.ResponseWriter, r *http.Request) { s.ingest.HandleEvents(w, r, "") }},
	{method: "POST", group: nsPath + resEvents, resource: resEvents, kind: "Event", verb: "create", shape: shapeMessage,
		handle: func(s *Server, w http.ResponseWriter, r *http.Request) {
			if err := textParam("namespace", r.PathValue("ns")); err != nil {
				s.fail(w, r, shapeMessage, "", err)
				return
			}
			s.ingest.HandleEvents(w, r, r.PathValue("ns"))
		}},
}

// patterns are the mux patterns of rt: the seed path at the root and under
// the group version, the group path under the group version.
func (rt route) patterns() []string {
	var ps []string
	if rt.seed != "" {
		ps = append(ps, rt.seed, groupVersionPath+rt.seed)
	}
	if rt.group != "" {
		ps = append(ps, groupVersionPath+rt.group)
	}
	return ps
}

// ownedPrefixes are the paths whose requests our routes authorize
// themselves: each seed path's first segment and the group version. Anything
// below them that no route matches is a 404 from our mux, so no data is
// reachable without a route's authorization.
var ownedPrefixes = func() []string {
	ps := []string{groupVersionPath + "/"}
	for _, rt := range routeTable {
		if rt.seed == "" {
			continue
		}
		first, _, _ := strings.Cut(strings.TrimPrefix(rt.seed, "/"), "/")
		if p := "/" + first + "/"; !slices.Contains(ps, p) {
			ps = append(ps, p)
		}
	}
	return ps
}()

func ownsPath(p string) bool {
	for _, prefix := range ownedPrefixes {
		if strings.HasPrefix(p, prefix) {
			return true
		}
	}
	return false
}

// routes is the mux of routeTable, each pattern with its method.
func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	for _, rt := range routeTable {
		h, table := rt.handle, rt.table
		for _, p := range rt.patterns() {
			mux.HandleFunc(rt.method+" "+p, func(w http.ResponseWriter, r *http.Request) {
				if table != nil {
					if apiVersion, ok := wantsTable(r); ok {
						table(s, w, r, apiVersion)
						return
					}
				}
				h(s, w, r)
			})
		}
	}
	return mux
}

// digitaniumLogs serves /digitanium/v4/user/{userName}/logs, whose tenant
// is the Host's first label when --tenant-host-suffix is set and matches,
// else the tenantId query parameter.
func (s *Server) digitaniumLogs(w http.ResponseWriter, r *http.Request) {
	if s.tenantHostSuffix != "" {
		// Checked whole: hostTenant lowercases, which turns invalid UTF-8
		// into U+FFFD.
		if err := textParam("Host", r.Host); err != nil {
			s.fail(w, r, shapeKobil, "", err)
			return
		}
	}
	tenant, ok := s.hostTenant(r)
	param := "Host"
	if !ok {
		// userLogs reads the query again, strictly (readQuery).
		tenant, param = r.URL.Query().Get("tenantId"), "tenantId"
	}
	s.userLogs(w, r, tenant, param, r.PathValue("userName"))
}

// hostTenant is the tenant named by the Host (first label before
// --tenant-host-suffix), when the flag is set and the Host ends with it.
func (s *Server) hostTenant(r *http.Request) (string, bool) {
	if s.tenantHostSuffix == "" {
		return "", false
	}
	host := strings.ToLower(r.Host)
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		host = host[:i]
	}
	rest, ok := strings.CutSuffix(host, strings.ToLower(s.tenantHostSuffix))
	if !ok || rest == "" {
		return "", false
	}
	label, _, _ := strings.Cut(rest, ".")
	return label, label != ""
}

// resource describes one resource of the group for both discovery formats.
type resource struct {
	name, singular, kind string
	verbs                []string
}

// groupResources are the resources of routeTable's group paths, in table
// order: a get route is listed with get and list, as RBAC rules name them.
var groupResources = func() []resource {
	var out []resource
	for _, rt := range routeTable {
		if rt.group == "" || slices.ContainsFunc(out, func(r resource) bool { return r.name == rt.resource }) {
			continue
		}
		verbs := []string{rt.verb}
		if rt.verb == "get" {
			verbs = []string{"get", "list"}
		}
		out = append(out, resource{name: rt.resource, singular: strings.ToLower(rt.kind), kind: rt.kind, verbs: verbs})
	}
	return out
}()

// installDiscovery publishes the group in /apis (legacy and aggregated
// form), /apis/audit.auditops.dev and /apis/audit.auditops.dev/v1alpha1, so
// kube-apiserver's aggregated discovery, kubectl api-resources and RBAC
// tooling know the resources.
func (s *Server) installDiscovery() {
	gv := schema.GroupVersion{Group: Group, Version: Version}
	gvd := metav1.GroupVersionForDiscovery{GroupVersion: gv.String(), Version: Version}
	group := metav1.APIGroup{Name: Group, Versions: []metav1.GroupVersionForDiscovery{gvd}, PreferredVersion: gvd}

	list := make([]metav1.APIResource, 0, len(groupResources))
	agg := make([]apidiscoveryv2.APIResourceDiscovery, 0, len(groupResources))
	for _, r := range groupResources {
		list = append(list, metav1.APIResource{
			Name: r.name, SingularName: r.singular, Namespaced: true, Kind: r.kind,
			Verbs: metav1.Verbs(r.verbs),
		})
		agg = append(agg, apidiscoveryv2.APIResourceDiscovery{
			Resource:         r.name,
			SingularResource: r.singular,
			ResponseKind:     &metav1.GroupVersionKind{Group: Group, Version: Version, Kind: r.kind},
			Scope:            apidiscoveryv2.ScopeNamespace,
			Verbs:            r.verbs,
		})
	}
	s.generic.DiscoveryGroupManager.AddGroup(group)
	if s.generic.AggregatedDiscoveryGroupManager != nil {
		s.generic.AggregatedDiscoveryGroupManager.AddGroupVersion(Group, apidiscoveryv2.APIVersionDiscovery{
			Version:   Version,
			Resources: agg,
			Freshness: apidiscoveryv2.DiscoveryFreshnessCurrent,
		})
	}
	mux := s.generic.Handler.NonGoRestfulMux
	groupHandler := discovery.NewAPIGroupHandler(s.cfg.codecs, group)
	mux.Handle(groupPath, groupHandler)
	mux.Handle(groupPath+"/", groupHandler)
	mux.Handle(groupVersionPath, discovery.NewAPIVersionHandler(s.cfg.codecs, gv,
		discovery.APIResourceListerFunc(func() []metav1.APIResource { return list })))
}
