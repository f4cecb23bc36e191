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
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/auditops/auditops/internal/apiserver/httpbody"
	"github.com/auditops/auditops/internal/report"
	"github.com/auditops/auditops/internal/store"
)

// shape is an endpoint family's error body (spec/API.md section 3).
type shape int

const (
	// shapeProtecto: {"data":null,"success":false,"error":{"message":"…"}} (3.1, 3.2).
	shapeProtecto shape = iota
	// shapeMessage: {"message":"…"} (3.3 and ingest).
	shapeMessage
	// shapeKobil: {"message":"…","status":"…","subSystem":5} (3.4).
	shapeKobil
	// shapeStatus: a Kubernetes Status object, for Table requests (kubectl
	// prints its reason and message).
	shapeStatus
)

// kobilSubSystem is the subSystem of the user-logs API (seed 003).
const kobilSubSystem = "5"

// writeError writes an error body of shape sh. Messages are built by us and
// name the parameter at fault.
func writeError(w http.ResponseWriter, sh shape, code int, msg string) {
	var b []byte
	switch sh {
	case shapeProtecto:
		b = append(b, `{"data":null,"success":false,"error":{"message":`...)
		b = report.AppendJSONString(b, msg)
		b = append(b, `}}`...)
	case shapeKobil:
		if code == http.StatusUnauthorized {
			// The seed's exact 401 body, whatever the cause.
			msg = "HTTP 401 Unauthorized"
		}
		b = append(b, `{"message":`...)
		b = report.AppendJSONString(b, msg)
		b = append(b, `,"status":`...)
		b = report.AppendJSONString(b, kobilStatus(code))
		b = append(b, `,"subSystem":`+kobilSubSystem+`}`...)
	case shapeStatus:
		// metav1.Status as kube-apiserver writes it.
		b = append(b, `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":`...)
		b = report.AppendJSONString(b, msg)
		b = append(b, `,"reason":`...)
		b = report.AppendJSONString(b, string(statusReason(code)))
		b = append(b, `,"code":`...)
		b = strconv.AppendInt(b, int64(code), 10)
		b = append(b, '}')
	default:
		httpbody.Message(w, code, msg)
		return
	}
	httpbody.Write(w, code, append(b, '\n'))
}

// kobilStatus is the status string of a KOBIL error body.
func kobilStatus(code int) string {
	switch code {
	case http.StatusBadRequest:
		return "BAD_REQUEST"
	case http.StatusUnauthorized:
		return "Unauthorized"
	case http.StatusForbidden:
		return "FORBIDDEN"
	case http.StatusNotFound:
		return "USER_NOT_FOUND"
	case http.StatusServiceUnavailable:
		return "SERVICE_UNAVAILABLE"
	default:
		return "INTERNAL_SERVER_ERROR"
	}
}

// statusReason is the Kubernetes reason of an HTTP code we answer.
func statusReason(code int) metav1.StatusReason {
	switch code {
	case http.StatusBadRequest:
		return metav1.StatusReasonBadRequest
	case http.StatusUnauthorized:
		return metav1.StatusReasonUnauthorized
	case http.StatusForbidden:
		return metav1.StatusReasonForbidden
	case http.StatusNotFound:
		return metav1.StatusReasonNotFound
	case http.StatusServiceUnavailable:
		return metav1.StatusReasonServiceUnavailable
	default:
		return metav1.StatusReasonInternalError
	}
}

// badRequest is a client's mistake: 400 with a message naming the parameter.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func badParam(msg string) error { return &badRequest{msg: msg} }

// forbidden is an authorization denial: 403.
type forbidden struct{ msg string }

func (e *forbidden) Error() string { return e.msg }

// unavailable is a dependency that cannot answer now (store, authorizer):
// 503 with Retry-After.
type unavailable struct {
	msg string
	err error
}

func (e *unavailable) Error() string { return e.msg + ": " + e.err.Error() }
func (e *unavailable) Unwrap() error { return e.err }

// fail answers err in shape sh: 400, 403, 503 for what they mean, 500 for
// everything else (logged, with a generic message: server faults are not the
// client's business). tokenParam names the page-token parameter, so a store
// token error reads as a bad parameter.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, sh shape, tokenParam string, err error) {
	var br *badRequest
	var fb *forbidden
	var un *unavailable
	var nf *notFound
	var qe *store.QueryError
	switch {
	case errors.As(err, &br):
		writeError(w, sh, http.StatusBadRequest, br.msg)
	case errors.As(err, &qe):
		// The parameters were checked already (textParam); this is the
		// store's own check, for a value that came another way.
		writeError(w, sh, http.StatusBadRequest, qe.Field+" "+qe.Problem+": parameters must be UTF-8 text without NUL characters")
	case errors.As(err, &nf):
		writeError(w, sh, http.StatusNotFound, nf.msg)
	case errors.As(err, &fb):
		writeError(w, sh, http.StatusForbidden, fb.msg)
	case errors.Is(err, store.ErrInvalidToken):
		writeError(w, sh, http.StatusBadRequest, tokenParam+" is invalid: it was tampered with, has expired, or belongs to another query, tenant or page size; start again without it")
	case errors.As(err, &un):
		s.log.V(1).Info("dependency unavailable", "path", r.URL.Path, "error", err.Error())
		s.retryAfter(w)
		writeError(w, sh, http.StatusServiceUnavailable, un.msg+", retry later")
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		s.log.V(1).Info("audit store unavailable", "path", r.URL.Path, "error", err.Error())
		s.retryAfter(w)
		writeError(w, sh, http.StatusServiceUnavailable, "audit store unavailable or busy, retry later")
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; nobody reads the answer.
		writeError(w, sh, http.StatusServiceUnavailable, "request canceled")
	default:
		s.log.Error(err, "serving audit request", "path", r.URL.Path)
		writeError(w, sh, http.StatusInternalServerError, "internal server error")
	}
}

func (s *Server) retryAfter(w http.ResponseWriter) { httpbody.RetryAfter(w, s.cfg.retryAfter) }

// shapeOf says which error shape a path of ours uses, from routeTable: the
// shape of the route whose pattern matches, else (a seed path no route
// matches) the shape of the routes under its first segment; false for
// other paths, which answer Kubernetes Status objects.
func shapeOf(p string) (shape, bool) {
	if _, pattern := shapes.mux.Handler(&http.Request{Method: http.MethodGet, URL: &url.URL{Path: p}}); pattern != "" {
		sh, ok := shapes.byPattern[pattern]
		return sh, ok
	}
	if strings.HasPrefix(p, groupVersionPath+"/") {
		return 0, false
	}
	first, _, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	sh, ok := shapes.byFirstSegment[first]
	return sh, ok
}

// shapes indexes routeTable's error shapes for shapeOf.
var shapes = func() (idx struct {
	mux            *http.ServeMux
	byPattern      map[string]shape
	byFirstSegment map[string]shape
}) {
	idx.mux = http.NewServeMux()
	idx.byPattern = map[string]shape{}
	idx.byFirstSegment = map[string]shape{}
	for _, rt := range routeTable {
		for _, p := range rt.patterns() {
			if _, dup := idx.byPattern[p]; !dup {
				idx.byPattern[p] = rt.shape
				idx.mux.Handle(p, http.NotFoundHandler())
			}
		}
		if rt.seed != "" {
			first, _, _ := strings.Cut(strings.TrimPrefix(rt.seed, "/"), "/")
			idx.byFirstSegment[first] = rt.shape
		}
	}
	return idx
}()
