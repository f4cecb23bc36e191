package apiserver

import (
	"net/http"
	"strings"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/endpoints/discovery"

	"github.com/auditops/auditops/internal/report"
	"github.com/auditops/auditops/internal/store"
)

// ownedPrefixes are the paths whose requests our routes authorize
// themselves. Anything below them that no route matches is a 404 from our
// mux, so no data is reachable without a route's authorization.
var ownedPrefixes = []string{
	"/api/vault/",
	"/namespace/",
	"/network/",
	"/auth/",
	"/digitanium/",
	"/ingest/",
	groupVersionPath + "/",
}

func ownsPath(p string) bool {
	for _, prefix := range ownedPrefixes {
		if strings.HasPrefix(p, prefix) {
			return true
		}
	}
	return false
}

// routes is the route table (spec/API.md sections 2, 3 and 4). Every seed
// route is served at its documented path and under the group-version prefix
// (where kube-apiserver reads it as a cluster-scoped resource/subresource
// pair and our SubjectAccessReview decides per tenant); the namespaced
// Kubernetes-shaped paths exist only under the prefix.
func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	seed := func(method, path string, h http.HandlerFunc) {
		mux.HandleFunc(method+" "+path, h)
		mux.HandleFunc(method+" "+groupVersionPath+path, h)
	}
	ns := func(method, path string, h http.HandlerFunc) {
		mux.HandleFunc(method+" "+groupVersionPath+"/namespaces/{ns}"+path, h)
	}

	// 3.1 namespace users summary.
	seed("GET", "/api/vault/reports/namespace-users-summary", func(w http.ResponseWriter, r *http.Request) {
		s.summary(w, r, "")
	})
	ns("GET", "/"+resSummaries, func(w http.ResponseWriter, r *http.Request) {
		s.summary(w, r, r.PathValue("ns"))
	})
	// 3.2 audit details.
	seed("GET", "/namespace/reports/audit-details", func(w http.ResponseWriter, r *http.Request) {
		s.auditDetails(w, r, "")
	})
	ns("GET", "/"+resAuditDetails, func(w http.ResponseWriter, r *http.Request) {
		s.auditDetails(w, r, r.PathValue("ns"))
	})
	// 3.3 network audit CSV.
	for _, v := range []networkView{
		{seedPath: "userAccess", resource: resUserAccess, view: report.ViewUserAccess, category: store.CategoryAccess},
		{seedPath: "users", resource: resUsers, view: report.ViewUsers, category: store.CategoryUser},
	} {
		seed("GET", "/network/audit/accounts/{accountId}/"+v.seedPath, func(w http.ResponseWriter, r *http.Request) {
			s.network(w, r, v, "accountId", r.PathValue("accountId"), "", false)
		})
		seed("GET", "/network/audit/accounts/{accountId}/"+v.seedPath+"/{userId}", func(w http.ResponseWriter, r *http.Request) {
			s.network(w, r, v, "accountId", r.PathValue("accountId"), r.PathValue("userId"), true)
		})
		ns("GET", "/"+v.resource, func(w http.ResponseWriter, r *http.Request) {
			s.network(w, r, v, "namespace", r.PathValue("ns"), "", false)
		})
		ns("GET", "/"+v.resource+"/{userId}", func(w http.ResponseWriter, r *http.Request) {
			s.network(w, r, v, "namespace", r.PathValue("ns"), r.PathValue("userId"), true)
		})
	}
	// 3.4 user logs.
	seed("GET", "/auth/realms/{tenantId}/v3_user/{userName}/logs", func(w http.ResponseWriter, r *http.Request) {
		s.userLogs(w, r, r.PathValue("tenantId"), "tenantId", r.PathValue("userName"))
	})
	seed("GET", "/digitanium/v4/user/{userName}/logs", func(w http.ResponseWriter, r *http.Request) {
		if s.tenantHostSuffix != "" {
			// Checked whole: hostTenant lowercases, which turns invalid
			// UTF-8 into U+FFFD.
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
	})
	ns("GET", "/"+resUserLogs+"/{userName}", func(w http.ResponseWriter, r *http.Request) {
		s.userLogs(w, r, r.PathValue("ns"), "namespace", r.PathValue("userName"))
	})
	// 2 ingest; the ingest handler authorizes every batch through
	// authorizeIngest before it stores anything.
	seed("POST", "/ingest/v1/kube-audit", s.ingest.HandleKubeAudit)
	seed("POST", "/ingest/v1/events", func(w http.ResponseWriter, r *http.Request) {
		s.ingest.HandleEvents(w, r, "")
	})
	mux.HandleFunc("POST "+groupVersionPath+"/"+resEvents, func(w http.ResponseWriter, r *http.Request) {
		s.ingest.HandleEvents(w, r, "")
	})
	ns("POST", "/"+resEvents, func(w http.ResponseWriter, r *http.Request) {
		if err := textParam("namespace", r.PathValue("ns")); err != nil {
			s.fail(w, r, shapeMessage, "", err)
			return
		}
		s.ingest.HandleEvents(w, r, r.PathValue("ns"))
	})
	return mux
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

var readVerbs = []string{"get", "list"}

var groupResources = []resource{
	{resSummaries, "namespaceuserssummary", "NamespaceUsersSummary", readVerbs},
	{resAuditDetails, "auditdetail", "AuditDetail", readVerbs},
	{resUserAccess, "useraccess", "UserAccess", readVerbs},
	{resUsers, "user", "User", readVerbs},
	{resUserLogs, "userlog", "UserLog", readVerbs},
	{resEvents, "event", "Event", []string{"create"}},
}

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
