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
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/auditops/auditops/internal/apiserver/ingesthttp"
	"github.com/auditops/auditops/internal/seal"
	"github.com/auditops/auditops/internal/store"
	"github.com/auditops/auditops/internal/store/sqlite"
)

// One control plane (etcd + kube-apiserver with the front-proxy flags of
// the aggregation layer) and one audit API server, registered through a real
// APIService, serve every test of this package.
type suite struct {
	env   *envtest.Environment
	admin *rest.Config // system:masters, for setup
	kube  kubernetes.Interface
	st    store.Store
	// sealKeys make the store's leaves and sign its checkpoints, as the
	// manager's seal key does.
	sealKeys     *seal.Keyring
	port         int
	directURL    string // https://127.0.0.1:port
	servingCAPEM []byte // verifies our serving certificate
	kubeconfig   string // the server's authn/authz kubeconfig
	users        map[string]*rest.Config
	saToken      string // token of team-a/reporter (TokenRequest)
	// started is just before the server's start: its client-CA warm-up
	// runs from then (see Server.clientCAsLoading).
	started time.Time
}

var ts *suite

const (
	nsA = "team-a"
	nsB = "team-b"
)

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	flag.Parse()
	if fuzzingOnly() {
		// The fuzz targets serve from the route table (handlerServer) and
		// need no control plane; every fuzzing worker process runs TestMain.
		return m.Run()
	}
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		// Fail, never skip: these tests are the aggregation layer's only check.
		fmt.Fprintln(os.Stderr, "KUBEBUILDER_ASSETS is not set: run the tests with 'make test', which builds the control plane into bin/k8s")
		return 1
	}
	dir, err := os.MkdirTemp("", "auditops-apiserver-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, stop, err := startSuite(ctx, dir)
	if stop != nil {
		defer stop()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the test suite:", err)
		return 1
	}
	ts = s
	return m.Run()
}

// fuzzingOnly is true in a fuzzing worker process, and in a fuzzing run that
// runs no test (-run '^$', as make fuzz does).
func fuzzingOnly() bool {
	flagValue := func(name string) string {
		if f := flag.Lookup(name); f != nil {
			return f.Value.String()
		}
		return ""
	}
	return flagValue("test.fuzzworker") == "true" || (flagValue("test.fuzz") != "" && flagValue("test.run") == "^$")
}

func startSuite(ctx context.Context, dir string) (*suite, func(), error) {
	s := &suite{users: map[string]*rest.Config{}}
	var stops []func()
	stop := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}

	// The front proxy: kube-apiserver authenticates to us with this client
	// certificate and says who the user is in X-Remote-* headers.
	proxyCA, err := newCA("front-proxy-ca")
	if err != nil {
		return nil, stop, err
	}
	proxyCert, proxyKey, err := proxyCA.issue("front-proxy-client", nil, nil, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return nil, stop, err
	}
	files := map[string][]byte{"proxy-ca.crt": proxyCA.certPEM, "proxy.crt": proxyCert, "proxy.key": proxyKey}
	// Our serving certificate, from a CA that becomes the APIService's
	// caBundle: it must name auditops-api.auditops-system.svc.
	servingCA, err := newCA("auditops-serving-ca")
	if err != nil {
		return nil, stop, err
	}
	svc := DefaultServiceName + "." + DefaultServiceNamespace + ".svc"
	srvCert, srvKey, err := servingCA.issue("auditops-api", []string{svc, "localhost"},
		[]net.IP{net.ParseIP("127.0.0.1")}, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return nil, stop, err
	}
	files["serving.crt"], files["serving.key"] = srvCert, srvKey
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return nil, stop, err
		}
	}
	s.servingCAPEM = servingCA.certPEM

	s.env = &envtest.Environment{}
	args := s.env.ControlPlane.GetAPIServer().Configure()
	args.Set("requestheader-client-ca-file", filepath.Join(dir, "proxy-ca.crt"))
	args.Set("requestheader-username-headers", "X-Remote-User")
	args.Set("requestheader-group-headers", "X-Remote-Group")
	args.Set("requestheader-extra-headers-prefix", "X-Remote-Extra-")
	args.Set("requestheader-allowed-names", "front-proxy-client")
	args.Set("proxy-client-cert-file", filepath.Join(dir, "proxy.crt"))
	args.Set("proxy-client-key-file", filepath.Join(dir, "proxy.key"))
	if _, err := s.env.Start(); err != nil {
		return nil, stop, fmt.Errorf("starting the control plane: %w", err)
	}
	stops = append(stops, func() { _ = s.env.Stop() })

	// The server's own identity for TokenReview/SubjectAccessReview. It is
	// not system:masters, so what it may do is exactly what
	// config/rbac grants the manager (system:auth-delegator and the
	// authentication ConfigMap reader).
	adminUser, err := s.env.AddUser(envtest.User{Name: "test-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, stop, err
	}
	s.admin = adminUser.Config()
	s.kube, err = kubernetes.NewForConfig(s.admin)
	if err != nil {
		return nil, stop, err
	}
	if err := s.setupCluster(ctx); err != nil {
		return nil, stop, err
	}
	mgrUser, err := s.env.AddUser(envtest.User{Name: "system:serviceaccount:auditops-system:auditops-manager"}, nil)
	if err != nil {
		return nil, stop, err
	}
	kc, err := mgrUser.KubeConfig()
	if err != nil {
		return nil, stop, err
	}
	s.kubeconfig = filepath.Join(dir, "manager.kubeconfig")
	if err := os.WriteFile(s.kubeconfig, kc, 0o600); err != nil {
		return nil, stop, err
	}

	if s.sealKeys, err = seal.NewKeyring(rand.Reader); err != nil {
		return nil, stop, err
	}
	s.st, err = sqlite.New(ctx, filepath.Join(dir, "audit.db"), store.Options{
		TokenKey: []byte("apiserver-test-token-key-0123456789"), Leaves: seal.LeafMaker{Keys: s.sealKeys},
	})
	if err != nil {
		return nil, stop, err
	}
	stops = append(stops, func() { _ = s.st.Close() })
	if _, err := s.st.Insert(ctx, seedEvents()); err != nil {
		return nil, stop, fmt.Errorf("seeding the store: %w", err)
	}

	o := NewOptions()
	o.SecureServing.ServerCert.CertKey.CertFile = filepath.Join(dir, "serving.crt")
	o.SecureServing.ServerCert.CertKey.KeyFile = filepath.Join(dir, "serving.key")
	s.started = time.Now()
	runStop, port, err := startServer(ctx, o, s.kubeconfig, s.st)
	if err != nil {
		return nil, stop, err
	}
	stops = append(stops, runStop)
	s.port = port
	s.directURL = "https://127.0.0.1:" + strconv.Itoa(port)
	if err := s.register(ctx, servingCA.certPEM); err != nil {
		return nil, stop, err
	}
	if err := s.addUsers(ctx); err != nil {
		return nil, stop, err
	}
	return s, stop, nil
}

// startServer runs a server with options o on a free loopback port until
// the returned stop is called.
// tweak, when given, changes the configuration and dependencies first.
func startServer(ctx context.Context, o *Options, kubeconfig string, st store.Store, tweak ...func(*Config, *Deps)) (stop func(), port int, err error) {
	ln, port, err := genericoptions.CreateListener("tcp", "127.0.0.1:0", net.ListenConfig{})
	if err != nil {
		return nil, 0, err
	}
	o.SecureServing.Listener = ln
	o.SecureServing.BindAddress = net.ParseIP("127.0.0.1")
	o.SecureServing.BindPort = port
	o.Authentication.RemoteKubeConfigFile = kubeconfig
	o.Authorization.RemoteKubeConfigFile = kubeconfig
	cfg, err := o.Config()
	if err != nil {
		ln.Close()
		return nil, 0, err
	}
	// A small ingest limit, so the 413 test sends 70 KiB, not 32 MiB.
	deps := Deps{Store: st, IngestHTTP: ingesthttp.Options{MaxBytes: 64 << 10}}
	if logs, ok := st.(seal.LogReader); ok {
		deps.Logs = logs
	}
	for _, f := range tweak {
		f(cfg, &deps)
	}
	srv, err := New(cfg, deps)
	if err != nil {
		ln.Close()
		return nil, 0, err
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Run(rctx) }()
	stop = func() {
		cancel()
		<-done
	}
	return stop, port, nil
}

// setupCluster applies what config/rbac ships for the server and its
// readers, and the tenant namespaces.
func (s *suite) setupCluster(ctx context.Context) error {
	for _, ns := range []string{DefaultServiceNamespace, nsA, nsB} {
		if _, err := s.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating namespace %s: %w", ns, err)
		}
	}
	rbacDir := filepath.Join("..", "..", "config", "rbac")
	for _, f := range []string{"report_reader_role.yaml", "ingest_writer_role.yaml", "seed_paths_role.yaml"} {
		var cr rbacv1.ClusterRole
		if err := readYAML(filepath.Join(rbacDir, f), &cr); err != nil {
			return err
		}
		if _, err := s.kube.RbacV1().ClusterRoles().Create(ctx, &cr, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("applying %s: %w", f, err)
		}
	}
	var crb rbacv1.ClusterRoleBinding
	if err := readYAML(filepath.Join(rbacDir, "auth_delegator_binding.yaml"), &crb); err != nil {
		return err
	}
	if _, err := s.kube.RbacV1().ClusterRoleBindings().Create(ctx, &crb, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("applying auth_delegator_binding.yaml: %w", err)
	}
	var rb rbacv1.RoleBinding
	if err := readYAML(filepath.Join(rbacDir, "auth_reader_binding.yaml"), &rb); err != nil {
		return err
	}
	if _, err := s.kube.RbacV1().RoleBindings(rb.Namespace).Create(ctx, &rb, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("applying auth_reader_binding.yaml: %w", err)
	}
	return nil
}

func readYAML(path string, into any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := yaml.UnmarshalStrict(b, into); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// register points the APIService at our loopback port: an ExternalName
// Service to 127.0.0.1 (Endpoints may not be loopback) and the serving CA
// as caBundle.
func (s *suite) register(ctx context.Context, caPEM []byte) error {
	_, err := s.kube.CoreV1().Services(DefaultServiceNamespace).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: DefaultServiceName},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "127.0.0.1"},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("creating the Service: %w", err)
	}
	dyn, err := dynamic.NewForConfig(s.admin)
	if err != nil {
		return err
	}
	gvr := schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1",
		"kind":       "APIService",
		"metadata":   map[string]any{"name": Version + "." + Group},
		"spec": map[string]any{
			"group":                Group,
			"version":              Version,
			"groupPriorityMinimum": int64(1000),
			"versionPriority":      int64(15),
			"caBundle":             caPEM, // []byte: base64 in JSON, as the API wants
			"service": map[string]any{
				"name": DefaultServiceName, "namespace": DefaultServiceNamespace, "port": int64(s.port),
			},
		},
	}}
	// unstructured needs JSON-compatible values.
	raw, err := json.Marshal(obj.Object)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, &obj.Object); err != nil {
		return err
	}
	if _, err := dyn.Resource(gvr).Create(ctx, obj, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating the APIService: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var last string
	err = wait.PollUntilContextCancel(pctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		got, err := dyn.Resource(gvr).Get(ctx, Version+"."+Group, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
		for _, c := range conds {
			m, _ := c.(map[string]any)
			if m["type"] == "Available" {
				last = fmt.Sprintf("%v: %v", m["reason"], m["message"])
				if m["status"] == "True" {
					return true, nil
				}
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the APIService to be Available (last: %s): %w", last, err)
	}
	return nil
}

// addUsers makes the identities the tests call with:
//   - admin: cluster-admin through RBAC (not system:masters, so our
//     SubjectAccessReviews really run);
//   - reader: auditops-report-reader in team-a by RoleBinding, the seed
//     paths cluster role, and auditops-ingest-writer in team-a;
//   - nobody: authenticated, no RBAC;
//   - the service account team-a/reporter, reader in team-a, by token.
func (s *suite) addUsers(ctx context.Context) error {
	for _, name := range []string{"admin", "reader", "nobody"} {
		u, err := s.env.AddUser(envtest.User{Name: name}, nil)
		if err != nil {
			return err
		}
		s.users[name] = u.Config()
	}
	rbac := s.kube.RbacV1()
	crbs := []rbacv1.ClusterRoleBinding{
		clusterBinding("admin-cluster-admin", "cluster-admin", rbacv1.Subject{Kind: "User", Name: "admin"}),
		clusterBinding("reader-seed-paths", "auditops-seed-paths", rbacv1.Subject{Kind: "User", Name: "reader"}),
	}
	for i := range crbs {
		if _, err := rbac.ClusterRoleBindings().Create(ctx, &crbs[i], metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	sa := rbacv1.Subject{Kind: "ServiceAccount", Name: "reporter", Namespace: nsA}
	rbs := []rbacv1.RoleBinding{
		roleBinding(nsA, "reader-reports", "auditops-report-reader", rbacv1.Subject{Kind: "User", Name: "reader"}),
		roleBinding(nsA, "reader-ingest", "auditops-ingest-writer", rbacv1.Subject{Kind: "User", Name: "reader"}),
		roleBinding(nsA, "reporter-reports", "auditops-report-reader", sa),
	}
	for i := range rbs {
		if _, err := rbac.RoleBindings(rbs[i].Namespace).Create(ctx, &rbs[i], metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	if _, err := s.kube.CoreV1().ServiceAccounts(nsA).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "reporter"}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	tr, err := s.kube.CoreV1().ServiceAccounts(nsA).CreateToken(ctx, "reporter", &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(3600))}}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("requesting a service account token: %w", err)
	}
	s.saToken = tr.Status.Token
	return nil
}

func clusterBinding(name, role string, subj rbacv1.Subject) rbacv1.ClusterRoleBinding {
	return rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{subj},
	}
}

func roleBinding(ns, name, role string, subj rbacv1.Subject) rbacv1.RoleBinding {
	return rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{subj},
	}
}

// ca is a test certificate authority.
type ca struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
	serial  int64
}

func newCA(cn string) (*ca, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &ca{cert: cert, key: key, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

func (c *ca) issue(cn string, dns []string, ips []net.IP, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	c.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(c.serial + 1),
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     dns,
		IPAddresses:  ips,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		return nil, nil, err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), nil
}

// httpClient returns a client for cfg (certificates or token), for raw
// requests whose status, headers and bytes the tests check.
func httpClient(t *testing.T, cfg *rest.Config) *http.Client {
	t.Helper()
	c, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatalf("http client: %v", err)
	}
	return c
}
