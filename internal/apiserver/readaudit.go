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
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/auditops/auditops/internal/store"
)

// A read of the audit data is itself an audit event (PCI DSS 10.2.1.3).
// kube-apiserver audits the requests it proxies to us; a request made to
// our port directly is audited nowhere else, so the server records it in
// the store, in the namespace whose data it asked for, after answering it.

// readAccess is what a request's authorization decided, for its audit
// event; authorize fills it in.
type readAccess struct {
	verb, resource, ns, name string
	allowed, decided         bool
}

type readAccessKey struct{}

// noteReadAccess records an authorization decision of a read, when the
// request is one whose reads are audited here.
func noteReadAccess(ctx context.Context, verb, resource, ns, name string, allowed bool) {
	if a, ok := ctx.Value(readAccessKey{}).(*readAccess); ok && verb != "create" {
		*a = readAccess{verb: verb, resource: resource, ns: ns, name: name, allowed: allowed, decided: true}
	}
}

// recordDirectReads wraps the route table: a read that did not come
// through the front proxy (kube-apiserver) is stored as an audit event once
// it is answered, allowed or denied. A read that was refused before any
// authorization decision (a malformed parameter) touched no data and is not
// recorded.
func (s *Server) recordDirectReads(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead || s.viaFrontProxy(r) {
			next.ServeHTTP(w, r)
			return
		}
		access := &readAccess{}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), readAccessKey{}, access)))
		if !access.decided {
			return
		}
		// The reader has its answer before the store is written: the
		// record costs the reader no wait on the store.
		_ = http.NewResponseController(sw).Flush()
		s.storeReadEvent(r, access, sw.code())
	})
}

// storeReadEvent writes the audit event of a direct read. The answer has
// been sent: a failure is logged and counted, the reader is not told.
func (s *Server) storeReadEvent(r *http.Request, a *readAccess, code int) {
	ev, err := readEvent(r, a, code, time.Now())
	if err == nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.cfg.storeTimeout)
		defer cancel()
		_, err = s.st.Insert(ctx, []store.Event{ev})
	}
	if err != nil {
		s.log.Error(err, "recording a direct read of the audit data", "path", r.URL.Path, "namespace", a.ns)
	}
}

// readEvent is the audit event of a read: category data when it was
// allowed, access (a denial) when not.
func readEvent(r *http.Request, a *readAccess, code int, now time.Time) (store.Event, error) {
	u, ok := request.UserFrom(r.Context())
	if !ok || u == nil {
		return store.Event{}, fmt.Errorf("no authenticated user")
	}
	principal, err := json.Marshal(map[string]any{
		"username": u.GetName(), "uid": u.GetUID(), "groups": u.GetGroups(), "extra": u.GetExtra(),
	})
	if err != nil {
		return store.Event{}, fmt.Errorf("encoding the principal: %w", err)
	}
	req, err := json.Marshal(map[string]string{"method": r.Method, "path": r.URL.Path, "query": r.URL.RawQuery})
	if err != nil {
		return store.Event{}, fmt.Errorf("encoding the request: %w", err)
	}
	when := now
	if t, ok := request.ReceivedTimestampFrom(r.Context()); ok {
		when = t
	}
	ns := a.ns
	if ns == "" {
		ns = store.ClusterNamespace
	}
	// A denial goes to the cluster's log, not to the namespace asked for:
	// anyone authenticated can be denied, and in a namespace's log each
	// denial would be an event no one with rights there sent, under any
	// namespace name the caller makes up (each one a new log to seal).
	at := ns
	if !a.allowed {
		at = store.ClusterNamespace
	}
	ev := store.Event{
		ID:         "auditops-read-" + string(uuid.NewUUID()),
		Time:       when.UTC(),
		Namespace:  at,
		User:       u.GetName(),
		Principal:  principal,
		Method:     a.verb,
		API:        "/" + a.resource,
		Status:     store.StatusSuccess,
		StatusCode: code,
		Category:   store.CategoryData,
		EntityKind: a.resource,
		EntityID:   ns,
		Request:    req,
		Details:    r.UserAgent(),
	}
	if a.name != "" {
		ev.EntityID = ns + "/" + a.name
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		ev.DeviceID = host
	}
	verb := "read"
	if !a.allowed {
		verb, ev.Category = "was denied", store.CategoryAccess
	}
	if code >= 400 {
		ev.Status = store.StatusFailure
		msg := http.StatusText(code)
		ev.Error = &msg
	}
	ev.Message = fmt.Sprintf("%s %s %s of %s directly on the audit API, not through kube-apiserver: %d", u.GetName(), verb, a.resource, ns, code)
	return ev, nil
}

// viaFrontProxy says whether r came through kube-apiserver's aggregator:
// its client certificate verifies against the front-proxy CA and names an
// allowed proxy, as the request-header authenticator requires. Checked on
// the certificate, not on X-Remote-* headers, which any client can send.
func (s *Server) viaFrontProxy(r *http.Request) bool {
	return verifiedFrontProxy(s.requestHeader, r)
}

func verifiedFrontProxy(rh *authenticatorfactory.RequestHeaderConfig, r *http.Request) bool {
	if rh == nil || rh.CAContentProvider == nil || r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return false
	}
	opts, ok := rh.CAContentProvider.VerifyOptions()
	if !ok {
		return false
	}
	certs := r.TLS.PeerCertificates
	opts.Intermediates = x509.NewCertPool()
	for _, c := range certs[1:] {
		opts.Intermediates.AddCert(c)
	}
	opts.KeyUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if _, err := certs[0].Verify(opts); err != nil {
		return false
	}
	var allowed []string
	if rh.AllowedClientNames != nil {
		allowed = rh.AllowedClientNames.Value()
	}
	return len(allowed) == 0 || slices.Contains(allowed, certs[0].Subject.CommonName)
}

// statusWriter remembers the status code written. Unwrap lets
// http.ResponseController reach the connection (flushes, deadlines).
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}
