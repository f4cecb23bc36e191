package apiserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http/httptest"
	"testing"
	"time"

	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
)

// TestClientCAWarmup: right after start, a client certificate that the CA
// bundle loaded so far does not verify is a 503 (kube-apiserver's webhook
// retries it), not a 401 (which it drops); a verified one, one without a
// certificate, and any after the warm-up are not.
func TestClientCAWarmup(t *testing.T) {
	ca, caPEM, client := newCAAndClient(t)
	_, otherPEM, _ := newCAAndClient(t)
	for _, tc := range []struct {
		name     string
		bundle   []byte // the client CAs loaded so far
		since    time.Duration
		withCert bool
		loading  bool
	}{
		{"nothing loaded yet", nil, time.Second, true, true},
		{"another CA loaded (the front-proxy's)", otherPEM, time.Second, true, true},
		{"the client's CA loaded", append(append([]byte{}, otherPEM...), caPEM...), time.Second, true, false},
		{"after the warm-up", nil, 2 * clientCAWarmup, true, false},
		{"no certificate", nil, time.Second, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var provider dynamiccertificates.CAContentProvider
			if tc.bundle != nil {
				p, err := dynamiccertificates.NewStaticCAContent("test", tc.bundle)
				if err != nil {
					t.Fatal(err)
				}
				provider = p
			} else {
				provider = emptyCA{}
			}
			s := &Server{cfg: &Config{generic: &genericapiserver.RecommendedConfig{Config: genericapiserver.Config{
				SecureServing: &genericapiserver.SecureServingInfo{ClientCA: provider}}}}}
			s.started.Store(time.Now().Add(-tc.since).UnixNano())
			r := httptest.NewRequest("POST", "/ingest/v1/kube-audit", nil)
			r.TLS = &tls.ConnectionState{}
			if tc.withCert {
				r.TLS.PeerCertificates = []*x509.Certificate{client}
			}
			if got := s.clientCAsLoading(r); got != tc.loading {
				t.Fatalf("clientCAsLoading = %v, want %v (CA %s)", got, tc.loading, ca.Subject.CommonName)
			}
		})
	}
}

// emptyCA is a client-CA provider before its ConfigMap was read.
type emptyCA struct{}

func (emptyCA) Name() string                              { return "empty" }
func (emptyCA) CurrentCABundleContent() []byte            { return nil }
func (emptyCA) VerifyOptions() (x509.VerifyOptions, bool) { return x509.VerifyOptions{}, false }
func (emptyCA) AddListener(dynamiccertificates.Listener)  {}

func newCAAndClient(t *testing.T) (*x509.Certificate, []byte, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "system:auditops:audit-webhook"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(leafDER)
	return ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), leaf
}
