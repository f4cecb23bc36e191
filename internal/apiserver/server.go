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

// Package apiserver is auditops' aggregated API server: the seed endpoints of
// spec/API.md sections 2 and 3, the Kubernetes-shaped paths of section 4
// under /apis/audit.auditops.dev/v1alpha1, discovery, and health.
//
// It is a k8s.io/apiserver GenericAPIServer with delegated authentication
// (TokenReview, client certificates, front-proxy headers) and delegated
// authorization (SubjectAccessReview). The endpoints do not use the
// path-derived RequestInfo for authorization: every route builds its own
// attributes (resource, tenant namespace, name) and asks the delegated
// authorizer, whether the request came straight to the secure port or
// through kube-apiserver, because the seed paths do not say their tenant in
// a way kube-apiserver understands (spec/API.md section 4).
package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authentication/user"
	genericapifilters "k8s.io/apiserver/pkg/endpoints/filters"
	"k8s.io/apiserver/pkg/endpoints/filters/impersonation"
	genericapiserver "k8s.io/apiserver/pkg/server"
	genericfilters "k8s.io/apiserver/pkg/server/filters"
	"k8s.io/apiserver/pkg/server/healthz"

	"github.com/auditops/auditops/internal/apiserver/ingesthttp"
	"github.com/auditops/auditops/internal/ingest"
	"github.com/auditops/auditops/internal/seal"
	"github.com/auditops/auditops/internal/store"
)

// Deps are what the server serves from.
type Deps struct {
	// Store answers the query endpoints and readyz.
	Store store.Store
	// Inserter stores ingest batches; nil means Store. (A coalescing
	// inserter can be put in front of the store here.)
	Inserter ingest.BatchInserter
	// Ingest configures decoding and storing batches; its StoreTimeout
	// defaults to the server's (--apiserver-store-timeout).
	Ingest ingest.Options
	// IngestHTTP configures the ingest routes (body limit, budgets, read
	// deadlines). Its Authorizer is always replaced by the server's own
	// SubjectAccessReview, so ingest can never be mounted unauthorized by
	// mistake.
	IngestHTTP ingesthttp.Options
	// Logs are the store's tamper-evident logs (spec/API.md 6), served by
	// the checkpoints, leaves and proofs endpoints; nil: those answer 404.
	Logs seal.LogReader
	// Log receives the server's own failures; the zero value discards them.
	Log logr.Logger
}

// Server is the audit API server.
type Server struct {
	generic          *genericapiserver.GenericAPIServer
	cfg              *Config
	st               store.Store
	logs             seal.LogReader
	ingest           *ingesthttp.Handler
	authz            authorizerFunc
	mux              *http.ServeMux
	log              logr.Logger
	tenantHostSuffix string
	// requestHeader tells requests kube-apiserver proxied (whose reads it
	// audits) from direct ones (recordDirectReads).
	requestHeader *authenticatorfactory.RequestHeaderConfig
	// started is when Run began serving (unix nanoseconds), for the
	// client-CA warm-up (see unauthorized).
	started atomic.Int64
}

// New builds the server from a Config (Options.Config) and its dependencies.
// It does not listen yet: Run does.
func New(cfg *Config, deps Deps) (*Server, error) {
	if cfg == nil || cfg.generic == nil {
		return nil, errors.New("apiserver: New needs a Config from Options.Config")
	}
	if deps.Store == nil {
		return nil, errors.New("apiserver: Deps.Store is required")
	}
	if deps.Log.GetSink() == nil {
		deps.Log = logr.Discard()
	}
	s := &Server{
		cfg:              cfg,
		st:               deps.Store,
		logs:             deps.Logs,
		log:              deps.Log,
		tenantHostSuffix: cfg.tenantHostSuffix,
	}
	gc := cfg.generic
	gc.BuildHandlerChainFunc = s.buildHandlerChain
	// readyz fails while the store cannot answer: the aggregator then marks
	// the APIService unavailable instead of proxying into errors, and the
	// Service stops routing to this replica.
	gc.ReadyzChecks = append(gc.ReadyzChecks, healthz.NamedCheck("audit-store", StoreCheck(deps.Store)))

	generic, err := gc.Complete().New("auditops-api", genericapiserver.NewEmptyDelegate())
	if err != nil {
		return nil, fmt.Errorf("apiserver: creating the generic API server: %w", err)
	}
	s.generic = generic
	// Complete wraps the delegated authorizer (loopback identity); use the
	// completed one so every route decides exactly as the filters do.
	az := gc.Authorization.Authorizer
	if az == nil {
		return nil, errors.New("apiserver: no authorizer configured")
	}
	s.authz = az.Authorize

	ins := deps.Inserter
	if ins == nil {
		ins = deps.Store
	}
	so := deps.Ingest
	if so.StoreTimeout <= 0 {
		so.StoreTimeout = cfg.storeTimeout
	}
	if so.Log.GetSink() == nil {
		so.Log = deps.Log
	}
	ho := deps.IngestHTTP
	ho.Authorizer = ingesthttp.AuthorizerFunc(s.authorizeIngest)
	if ho.RetryAfter <= 0 {
		ho.RetryAfter = cfg.retryAfter
	}
	if ho.Log.GetSink() == nil {
		ho.Log = deps.Log
	}
	s.ingest = ingesthttp.NewHandler(ingest.NewService(ins, so), ho)

	s.mux = s.routes()
	s.installDiscovery()
	s.requestHeader = gc.Authentication.RequestHeaderConfig
	routes := s.recordDirectReads(s.mux)
	for _, p := range ownedPrefixes {
		generic.Handler.NonGoRestfulMux.HandlePrefix(p, routes)
	}
	return s, nil
}

// Run serves until ctx is done, then shuts down gracefully.
func (s *Server) Run(ctx context.Context) error {
	s.started.Store(time.Now().UnixNano())
	if err := s.generic.PrepareRun().RunWithContext(ctx); err != nil {
		return fmt.Errorf("apiserver: %w", err)
	}
	return nil
}

// Start is Run, so the server is a controller-runtime Runnable:
// mgr.Add(srv) runs it with the manager.
func (s *Server) Start(ctx context.Context) error { return s.Run(ctx) }

// NeedLeaderElection is false: every replica serves the API; only the
// controllers are elected.
func (s *Server) NeedLeaderElection() bool { return false }

// StoreCheck is a readiness check that fails while st does not answer; the
// manager can add it to its own probe port too (it has the signature of
// controller-runtime's healthz.Checker).
func StoreCheck(st store.Store) func(*http.Request) error {
	return func(r *http.Request) error {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		if err := st.Ping(ctx); err != nil {
			return fmt.Errorf("audit store: %w", err)
		}
		return nil
	}
}

// buildHandlerChain is k8s.io/apiserver's DefaultBuildHandlerChain with three
// deliberate differences:
//   - Authorization by path (RequestInfo) runs only for paths that are not
//     ours (discovery, /version, /metrics): our routes authorize with
//     attributes built from the route, which the path cannot give for the
//     seed paths.
//   - Authentication refuses anonymous requests and answers 401 in the
//     endpoint's own error shape; health paths skip it, because kubelet
//     probes carry no credentials and must see the store's readiness.
//   - Ingest requests skip the shared in-flight limit: each ingest route
//     has its own budget (ingesthttp.Budget), the audit webhook's apart.
//
// Filters that depend on the server's private lifecycle signals (retry-after
// during shutdown, watch termination) are left out: nothing here is a watch.
// genericapiserver's own builder cannot be used for these reasons; the copy
// follows DefaultBuildHandlerChain of the k8s.io/apiserver in go.mod, which
// TestHandlerChainPinnedToUpstream pins, so an upgrade makes us compare.
func (s *Server) buildHandlerChain(api http.Handler, c *genericapiserver.Config) http.Handler {
	byPath := genericapifilters.WithAuthorization(api, c.Authorization.Authorizer, c.Serializer)
	h := http.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ownsPath(r.URL.Path) {
			// Every route authorizes itself first (see route.serve).
			api.ServeHTTP(w, r)
			return
		}
		byPath.ServeHTTP(w, r)
	}))
	limited := genericfilters.WithMaxInFlightLimit(h, c.MaxRequestsInFlight, c.MaxMutatingRequestsInFlight, c.LongRunningFunc)
	unlimited := h
	h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && ownsPath(r.URL.Path) {
			// Ingest (our only POSTs) has per-route budgets of its own
			// (ingesthttp.Budget): in the shared mutating pool a flood of
			// generic ingest would get the audit webhook 429s, and
			// kube-apiserver drops what it cannot deliver.
			unlimited.ServeHTTP(w, r)
			return
		}
		limited.ServeHTTP(w, r)
	})
	h = impersonation.WithImpersonation(h, c.Authorization.Authorizer, c.Serializer)
	h = genericapifilters.WithAudit(h, c.AuditBackend, c.AuditPolicyRuleEvaluator, c.LongRunningFunc)
	h = genericapifilters.WithTracing(h, c.TracerProvider)
	authenticated := genericapifilters.WithAuthentication(h, refuseAnonymous(c.Authentication.Authenticator),
		s.unauthorized(genericapifilters.Unauthorized(c.Serializer)), c.Authentication.APIAudiences, c.Authentication.RequestHeaderConfig)
	h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isHealthPath(r.URL.Path) && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			api.ServeHTTP(w, r)
			return
		}
		authenticated.ServeHTTP(w, r)
	})
	h = genericapifilters.WithWarningRecorder(h)
	h = genericfilters.WithTimeoutForNonLongRunningRequests(h, c.LongRunningFunc)
	h = genericapifilters.WithRequestDeadline(h, c.AuditBackend, c.AuditPolicyRuleEvaluator, c.LongRunningFunc, c.Serializer, c.RequestTimeout)
	h = genericfilters.WithWaitGroup(h, c.LongRunningFunc, c.NonLongRunningRequestWaitGroup)
	h = genericapifilters.WithCacheControl(h)
	h = genericfilters.WithHTTPLogging(h)
	h = genericapifilters.WithLatencyTrackers(h)
	h = genericapifilters.WithRequestInfo(h, c.RequestInfoResolver)
	h = genericapifilters.WithRequestReceivedTimestamp(h)
	h = genericfilters.WithPanicRecovery(h, c.RequestInfoResolver)
	h = genericapifilters.WithAuditInit(h)
	return h
}

// isHealthPath is true for the probe endpoints and their per-check subpaths.
func isHealthPath(p string) bool {
	for _, h := range []string{"/healthz", "/livez", "/readyz"} {
		if p == h || strings.HasPrefix(p, h+"/") {
			return true
		}
	}
	return false
}

// refuseAnonymous makes the delegated authenticator fail where it would
// fall back to system:anonymous: the delegating options always enable the
// anonymous authenticator, and spec/API.md refuses anonymous requests (401).
func refuseAnonymous(a authenticator.Request) authenticator.Request {
	return authenticator.RequestFunc(func(r *http.Request) (*authenticator.Response, bool, error) {
		if a == nil {
			return nil, false, nil
		}
		resp, ok, err := a.AuthenticateRequest(r)
		if err != nil || !ok || resp == nil || resp.User == nil {
			return nil, false, err
		}
		if resp.User.GetName() == user.Anonymous {
			return nil, false, nil
		}
		for _, g := range resp.User.GetGroups() {
			if g == user.AllUnauthenticated {
				return nil, false, nil
			}
		}
		return resp, true, nil
	})
}

// clientCAWarmup is how long after start a request whose client
// certificate failed authentication is answered 503 instead of 401 (see
// unauthorized).
const clientCAWarmup = time.Minute

const clientCAsLoadingMessage = "the server is starting: its client certificate authorities are still loading, retry"

// unauthorized answers a failed authentication in the shape of the endpoint
// asked for, or as a Kubernetes Status elsewhere.
//
// The client CAs come from a ConfigMap (kube-system/extension-apiserver-
// authentication) whose informer syncs after the port is open, so for a
// moment after every start a valid client certificate fails to verify, or
// is not even sent. kube-apiserver's audit webhook authenticates with one
// and never retries a 401: its batch would be lost. So, during the
// warm-up, a TLS request that failed authentication gets 503 with
// Retry-After, which it retries; past the warm-up it gets its 401.
func (s *Server) unauthorized(status http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if certlessIngest(r) {
			// A client certificate goes with the TLS handshake: a
			// connection made without one stays without one, and a
			// webhook that kept it alive would get this answer for every
			// batch (TestReplicasFailover saw a replica answer 401 for 90 s
			// on a kept-alive connection, 200 on a new one). Closing it
			// makes the sender shake hands again, with the CAs loaded.
			w.Header().Set("Connection", "close")
		}
		if s.clientCAsLoading(r) {
			s.retryAfter(w)
			if sh, ok := shapeOf(r.URL.Path); ok {
				writeError(w, sh, http.StatusServiceUnavailable, clientCAsLoadingMessage)
			} else {
				http.Error(w, clientCAsLoadingMessage, http.StatusServiceUnavailable)
			}
			return
		}
		sh, ok := shapeOf(r.URL.Path)
		if !ok {
			status.ServeHTTP(w, r)
			return
		}
		writeError(w, sh, http.StatusUnauthorized, "authentication required: send a bearer token or a client certificate")
	})
}

// certlessIngest is an ingest request (our only POSTs) that came over TLS
// without a client certificate.
func certlessIngest(r *http.Request) bool {
	return r.TLS != nil && len(r.TLS.PeerCertificates) == 0 && r.Method == http.MethodPost && ownsPath(r.URL.Path)
}

// clientCAsLoading says whether r's failed authentication may have failed
// only because the client CAs were not loaded yet: a TLS request within
// clientCAWarmup of the start. (Whether the bundle loaded so far verifies
// a certificate does not tell: the CAs can arrive between the
// authenticator's check and this one, which the fault suite hit.) An
// ingest request without a certificate counts too: while the front
// proxy's CA is loaded and the cluster's client CA not yet, the server
// asks for certificates of the front proxy's CA only, and a Go client (as
// kube-apiserver's webhook is) then sends none (the fault suite hit that
// as well: a 401 after a restart, and the batch lost). Other requests
// without one keep their 401: their clients can retry it.
func (s *Server) clientCAsLoading(r *http.Request) bool {
	if r.TLS == nil {
		return false
	}
	if len(r.TLS.PeerCertificates) == 0 && !certlessIngest(r) {
		return false
	}
	started := s.started.Load()
	return started != 0 && time.Since(time.Unix(0, started)) <= clientCAWarmup
}
