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
	"fmt"
	"net/http"
	"strconv"

	"github.com/auditops/auditops/internal/report"
	"github.com/auditops/auditops/internal/store"
)

// flushSize is how much of a body is buffered before it is written and
// flushed: rows go out as they are encoded, and memory stays flat whatever a
// row holds.
const flushSize = 32 << 10

// bodyWriter writes a response body in chunks (Transfer-Encoding: chunked,
// no Content-Length), flushing each so the client and any proxy in between
// receive rows as they are produced.
type bodyWriter struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	buf []byte
	err error
}

func newBodyWriter(w http.ResponseWriter) *bodyWriter {
	return &bodyWriter{w: w, rc: http.NewResponseController(w), buf: make([]byte, 0, flushSize+4096)}
}

// maybeFlush writes the buffer once it is large enough.
func (b *bodyWriter) maybeFlush() {
	if len(b.buf) >= flushSize {
		b.flush()
	}
}

func (b *bodyWriter) flush() {
	if b.err != nil || len(b.buf) == 0 {
		b.buf = b.buf[:0]
		return
	}
	_, b.err = b.w.Write(b.buf)
	b.buf = b.buf[:0]
	if b.err == nil {
		// A writer that cannot flush still gets every byte, at the end.
		_ = b.rc.Flush()
	}
}

// storeCtx bounds one store call.
func (s *Server) storeCtx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), s.cfg.storeTimeout)
}

// summary serves 3.1; pathNS is the namespace of the namespaced path, "" for
// the seed path (namespace query parameter).
func (s *Server) summary(w http.ResponseWriter, r *http.Request, pathNS string) {
	const sh, tokenParam = shapeProtecto, "next_page_token"
	q, err := readQuery(r)
	if err == nil {
		err = textParam("namespace", pathNS)
	}
	if err != nil {
		s.fail(w, r, sh, tokenParam, err)
		return
	}
	ns := pathNS
	if ns != "" {
		if err := pathNamespace(q, "namespace", ns); err != nil {
			s.fail(w, r, sh, tokenParam, err)
			return
		}
	} else if ns = q.Get("namespace"); ns == "" {
		s.fail(w, r, sh, tokenParam, badParam("namespace is required: the tenant namespace to summarize"))
		return
	}
	rng, err := protectoRange(q)
	if err != nil {
		s.fail(w, r, sh, tokenParam, err)
		return
	}
	size, err := intParam(q, "page_size", protectoDefaultPageSize, 1, protectoMaxPageSize)
	if err != nil {
		s.fail(w, r, sh, tokenParam, err)
		return
	}
	if err := s.authorize(r.Context(), "get", resSummaries, ns, ""); err != nil {
		s.fail(w, r, sh, tokenParam, err)
		return
	}
	ctx, cancel := s.storeCtx(r)
	page, err := s.st.Summary(ctx, store.SummaryQuery{
		Namespace: ns, Range: rng, Page: store.Page{Size: size, Token: q.Get(tokenParam)},
	})
	cancel()
	if err != nil {
		s.fail(w, r, sh, tokenParam, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	b := newBodyWriter(w)
	b.buf = append(b.buf, `{"data":{"details":[`...)
	for i := range page.Rows {
		if i > 0 {
			b.buf = append(b.buf, ',')
		}
		b.buf = report.AppendSummaryRow(b.buf, page.Rows[i])
		b.maybeFlush()
	}
	b.buf = append(b.buf, `],"next_page_token":`...)
	b.buf = report.AppendJSONString(b.buf, page.NextToken)
	b.buf = append(b.buf, `},"success":true,"error":{"message":""}}`+"\n"...)
	b.flush()
}

// auditDetails serves 3.2. The tenant is the namespaced path's, else the
// namespace query parameter, else a service account's own namespace.
func (s *Server) auditDetails(w http.ResponseWriter, r *http.Request, pathNS string) {
	const sh, tokenParam = shapeProtecto, "next_page_token"
	q, err := readQuery(r)
	if err == nil {
		err = textParam("namespace", pathNS)
	}
	if err != nil {
		s.fail(w, r, sh, tokenParam, err)
		return
	}
	ns := pathNS
	if ns != "" {
		if err := pathNamespace(q, "namespace", ns); err != nil {
			s.fail(w, r, sh, tokenParam, err)
			return
		}
	} else if ns = q.Get("namespace"); ns == "" {
		if ns = serviceAccountNamespace(r.Context()); ns == "" {
			s.fail(w, r, sh, tokenParam, badParam("namespace is required when the caller is not a service account (a service account's token reads its own namespace)"))
			return
		}
	}
	rng, err := protectoRange(q)
	if err != nil {
		s.fail(w, r, sh, tokenParam, err)
		return
	}
	size, err := intParam(q, "page_size", protectoDefaultPageSize, 1, protectoMaxPageSize)
	if err != nil {
		s.fail(w, r, sh, tokenParam, err)
		return
	}
	if err := s.authorize(r.Context(), "get", resAuditDetails, ns, ""); err != nil {
		s.fail(w, r, sh, tokenParam, err)
		return
	}
	ctx, cancel := s.storeCtx(r)
	page, err := s.st.Events(ctx, store.EventQuery{
		View: report.ViewAuditDetails, Namespace: ns, Range: rng, Fields: report.AuditDetailFields,
		Page: store.Page{Size: size, Token: q.Get(tokenParam)},
	})
	cancel()
	if err != nil {
		s.fail(w, r, sh, tokenParam, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	b := newBodyWriter(w)
	b.buf = append(b.buf, `{"data":{"details":[`...)
	for i := range page.Events {
		if i > 0 {
			b.buf = append(b.buf, ',')
		}
		b.buf = report.AppendAuditDetail(b.buf, &page.Events[i])
		b.maybeFlush()
	}
	b.buf = append(b.buf, `],"next_page_token":`...)
	b.buf = report.AppendJSONString(b.buf, page.NextToken)
	b.buf = append(b.buf, `},"success":true,"error":{"message":""}}`+"\n"...)
	b.flush()
}

// networkView is an events view: one of the two CSV views of 3.3, or
// (for Tables, tableEvents) audit details.
type networkView struct {
	resource, view, category string
}

// network serves 3.3: one page of CSV with its paging headers. nsParam
// names where the tenant ns came from (accountId or the namespace of the
// path).
func (s *Server) network(w http.ResponseWriter, r *http.Request, v networkView, nsParam, ns, userID string, named bool) {
	const sh, tokenParam = shapeMessage, "nextContinuationToken"
	q, err := readQuery(r)
	if err == nil {
		err = textParam(nsParam, ns)
	}
	if err == nil {
		err = textParam("userId", userID)
	}
	if err != nil {
		s.fail(w, r, sh, tokenParam, err)
		return
	}
	if ns == "" {
		s.fail(w, r, sh, tokenParam, badParam(nsParam+" is required"))
		return
	}
	if named && userID == "" {
		s.fail(w, r, sh, tokenParam, badParam("userId must not be empty"))
		return
	}
	rng, err := networkRange(q)
	if err != nil {
		s.fail(w, r, sh, tokenParam, err)
		return
	}
	size, err := intParam(q, "pageSize", networkDefaultPageSize, 1, networkMaxPageSize)
	if err != nil {
		s.fail(w, r, sh, tokenParam, err)
		return
	}
	if err := s.authorize(r.Context(), "get", v.resource, ns, userID); err != nil {
		s.fail(w, r, sh, tokenParam, err)
		return
	}
	ctx, cancel := s.storeCtx(r)
	page, err := s.st.Events(ctx, store.EventQuery{
		View: v.view, Namespace: ns, Range: rng, Category: v.category, User: userID,
		Page: store.Page{Size: size, Token: q.Get(tokenParam)}, WithTotal: true, Fields: report.CSVFields,
	})
	cancel()
	if err != nil {
		s.fail(w, r, sh, tokenParam, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/csv")
	// The seed's spelling; HTTP/1.1 sends keys as set here (they are
	// case-insensitive anyway), so bypass Go's canonicalization.
	h["totalRecords"] = []string{strconv.FormatInt(page.Total, 10)}
	next, nextFrom := page.NextToken, ""
	if next != "" {
		nextFrom = report.FormatCSVTime(page.NextTime)
	}
	h["nextcontinuationtoken"] = []string{next}
	h["nextfromdate"] = []string{nextFrom}
	w.WriteHeader(http.StatusOK)
	b := newBodyWriter(w)
	b.buf = append(b.buf, report.CSVHeader...)
	for i := range page.Events {
		b.buf = report.AppendCSVRow(b.buf, &page.Events[i])
		b.maybeFlush()
	}
	b.flush()
}

// userLogs serves 3.4. tenantParam names where the tenant came from, for
// the 400 when it is missing.
func (s *Server) userLogs(w http.ResponseWriter, r *http.Request, tenant, tenantParam, userName string) {
	const sh = shapeKobil
	q, err := readQuery(r)
	if err == nil {
		err = textParam(tenantParam, tenant)
	}
	if err == nil {
		err = textParam("userName", userName)
	}
	if err != nil {
		s.fail(w, r, sh, "", err)
		return
	}
	if tenant == "" {
		s.fail(w, r, sh, "", badParam(fmt.Sprintf("%s is required: the tenant whose user logs to read", tenantParam)))
		return
	}
	if userName == "" {
		s.fail(w, r, sh, "", badParam("userName must not be empty"))
		return
	}
	limit, err := intParam(q, "limit", kobilDefaultLimit, 1, kobilMaxLimit)
	if err != nil {
		s.fail(w, r, sh, "", err)
		return
	}
	offset, err := intParam(q, "offset", 0, 0, maxOffset)
	if err != nil {
		s.fail(w, r, sh, "", err)
		return
	}
	deviceID := q.Get("deviceId")
	if err := s.authorize(r.Context(), "get", resUserLogs, tenant, userName); err != nil {
		s.fail(w, r, sh, "", err)
		return
	}
	ctx, cancel := s.storeCtx(r)
	defer cancel()
	exists, err := s.st.UserExists(ctx, tenant, userName)
	if err != nil {
		s.fail(w, r, sh, "", err)
		return
	}
	if !exists {
		writeError(w, sh, http.StatusNotFound, "User does not exist")
		return
	}
	page, err := s.st.UserLogs(ctx, store.UserLogsQuery{
		Namespace: tenant, User: userName, DeviceID: deviceID, Limit: limit, Offset: offset,
		Fields: report.UserLogFields,
	})
	if err != nil {
		s.fail(w, r, sh, "", err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	b := newBodyWriter(w)
	b.buf = append(b.buf, `{"data":{"moreResultsAvailable":`...)
	b.buf = strconv.AppendBool(b.buf, page.More)
	b.buf = append(b.buf, `,"reportingFilterUsed":{"deviceId":`...)
	if deviceID == "" {
		// The seed prints the string "null" for no device filter.
		b.buf = append(b.buf, `"null"`...)
	} else {
		b.buf = report.AppendJSONString(b.buf, deviceID)
	}
	b.buf = append(b.buf, `,"limit":`...)
	b.buf = strconv.AppendInt(b.buf, int64(limit), 10)
	b.buf = append(b.buf, `,"offset":`...)
	b.buf = strconv.AppendInt(b.buf, int64(offset), 10)
	b.buf = append(b.buf, `,"userId":`...)
	b.buf = report.AppendJSONString(b.buf, userName)
	b.buf = append(b.buf, `},"reportingInfoItems":[`...)
	for i := range page.Events {
		if i > 0 {
			b.buf = append(b.buf, ',')
		}
		b.buf = report.AppendUserLogItem(b.buf, &page.Events[i])
		b.maybeFlush()
	}
	b.buf = append(b.buf, `]},"message":"Logs fetched successfully","status":"OK","subSystem":5}`+"\n"...)
	b.flush()
}
