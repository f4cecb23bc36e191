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
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestClientCAWarmup: within a minute of the start, a TLS request that
// failed authentication, with a certificate or without one, is a 503
// (kube-apiserver's webhook retries it; the client CAs may not be loaded
// yet), not a 401 (which it drops); after the warm-up it is a 401.
func TestClientCAWarmup(t *testing.T) {
	for _, tc := range []struct {
		name     string
		since    time.Duration // since the start
		started  bool
		withCert bool
		loading  bool
		read     bool // a read of the audit API instead of ingest
	}{
		{"just started, a certificate", time.Second, true, true, true, false},
		{"after the warm-up", 2 * clientCAWarmup, true, true, false, false},
		// The webhook may have withheld it: the CAs the server asked for
		// did not include its issuer yet.
		{"ingest without a certificate", time.Second, true, false, true, false},
		{"ingest without a certificate, after the warm-up", 2 * clientCAWarmup, true, false, false, false},
		{"not serving yet", 0, false, true, false, false},
		{"a read without a certificate", time.Second, true, false, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Server{}
			if tc.started {
				s.started.Store(time.Now().Add(-tc.since).UnixNano())
			}
			r := httptest.NewRequest("POST", "/ingest/v1/kube-audit", nil)
			if tc.read {
				r = httptest.NewRequest("GET", "/namespace/reports/audit-details", nil)
			}
			r.TLS = &tls.ConnectionState{}
			if tc.withCert {
				r.TLS.PeerCertificates = []*x509.Certificate{{}}
			}
			if got := s.clientCAsLoading(r); got != tc.loading {
				t.Fatalf("clientCAsLoading = %v, want %v", got, tc.loading)
			}
		})
	}
}

// TestCertlessIngestConnectionCloses: an ingest request that came without
// a client certificate is answered with Connection: close, in the warm-up
// (503) and after it (401): the certificate goes with the handshake, so a
// sender that kept the connection alive would be refused on it for good.
// A read keeps its connection.
func TestCertlessIngestConnectionCloses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		method string
		path   string
		since  time.Duration
		code   int
		closes bool
	}{
		{"ingest in the warm-up", "POST", "/ingest/v1/kube-audit", time.Second, 503, true},
		{"ingest after the warm-up", "POST", "/ingest/v1/kube-audit", 2 * clientCAWarmup, 401, true},
		{"a read", "GET", "/namespace/reports/audit-details", time.Second, 401, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Server{cfg: &Config{retryAfter: time.Second}}
			s.started.Store(time.Now().Add(-tc.since).UnixNano())
			r := httptest.NewRequest(tc.method, tc.path, nil)
			r.TLS = &tls.ConnectionState{}
			w := httptest.NewRecorder()
			s.unauthorized(http.NotFoundHandler()).ServeHTTP(w, r)
			if w.Code != tc.code || (w.Header().Get("Connection") == "close") != tc.closes {
				t.Fatalf("%d, Connection %q; want %d, closing %v", w.Code, w.Header().Get("Connection"), tc.code, tc.closes)
			}
		})
	}
}
