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
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	genericapiserver "k8s.io/apiserver/pkg/server"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	"k8s.io/apiserver/pkg/util/compatibility"
	netutils "k8s.io/utils/net"
)

// Defaults of Options.
const (
	// DefaultSecurePort is --secure-port's default (spec/API.md).
	DefaultSecurePort = 8443
	// DefaultServiceName and DefaultServiceNamespace name the Service the
	// APIService points at (config/apiservice); the aggregator verifies the
	// serving certificate against <service>.<namespace>.svc.
	DefaultServiceName      = "auditops-api"
	DefaultServiceNamespace = "auditops-system"
	// DefaultRetryAfter is what a 503 tells the client to wait.
	DefaultRetryAfter = 2 * time.Second
	// DefaultStoreTimeout bounds one store call of any route: a query's
	// page, an ingest batch's insert. Past it the client gets 503 with
	// Retry-After and retries, instead of requests piling up on a store
	// that does not answer.
	DefaultStoreTimeout = 10 * time.Second
)

// Options are the audit API server's flags. NewOptions gives the defaults;
// AddFlags registers them (on main.go's pflag set); Config turns them into
// a runnable configuration.
type Options struct {
	SecureServing  *genericoptions.SecureServingOptionsWithLoopback
	Authentication *genericoptions.DelegatingAuthenticationOptions
	Authorization  *genericoptions.DelegatingAuthorizationOptions

	// ServiceName and ServiceNamespace are the APIService's Service; the
	// self-signed certificate (when no --tls-cert-file is given) names it.
	ServiceName      string
	ServiceNamespace string
	// TenantHostSuffix, when set, makes /digitanium requests take their
	// tenant from the first label of a Host ending with it (spec/API.md 3.4).
	TenantHostSuffix string
	// StoreTimeout bounds one store call of a query endpoint.
	StoreTimeout time.Duration
	// RetryAfter is sent with every 503.
	RetryAfter time.Duration
}

// NewOptions returns the defaults: port 8443, delegated authentication and
// authorization against the cluster the process runs in.
func NewOptions() *Options {
	o := &Options{
		SecureServing:    genericoptions.NewSecureServingOptions().WithLoopback(),
		Authentication:   genericoptions.NewDelegatingAuthenticationOptions(),
		Authorization:    genericoptions.NewDelegatingAuthorizationOptions(),
		ServiceName:      DefaultServiceName,
		ServiceNamespace: DefaultServiceNamespace,
		StoreTimeout:     DefaultStoreTimeout,
		RetryAfter:       DefaultRetryAfter,
	}
	o.SecureServing.BindPort = DefaultSecurePort
	// An empty directory keeps a generated certificate in memory: the
	// manager's image has a read-only root file system, and a certificate
	// regenerated on restart is fine because a self-signed one is only for
	// development (production uses --tls-cert-file, see config/apiservice).
	o.SecureServing.ServerCert.CertDirectory = ""
	// The store's readiness is reported by /readyz itself; the paths stay
	// reachable for kubelet probes, which carry no credentials (see
	// isHealthPath).
	o.Authorization.AlwaysAllowPaths = []string{"/healthz", "/readyz", "/livez"}
	return o
}

// AddFlags registers the options on a pflag set.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	o.SecureServing.AddFlags(fs)
	o.Authentication.AddFlags(fs)
	o.Authorization.AddFlags(fs)
	fs.StringVar(&o.ServiceName, "apiserver-service-name", o.ServiceName,
		"name of the Service the APIService v1alpha1.audit.auditops.dev points at; a self-signed serving certificate names <service>.<namespace>.svc")
	fs.StringVar(&o.ServiceNamespace, "apiserver-service-namespace", o.ServiceNamespace,
		"namespace of that Service")
	fs.StringVar(&o.TenantHostSuffix, "tenant-host-suffix", o.TenantHostSuffix,
		"when set (e.g. .audit.example.com), /digitanium/v4/user/{userName}/logs takes its tenant from the first label of a Host ending with it; otherwise from the tenantId query parameter")
	fs.DurationVar(&o.StoreTimeout, "apiserver-store-timeout", o.StoreTimeout,
		"longest wait for the audit store in one store call of any route (a query page, an ingest insert); past it the client gets 503 with Retry-After")
}

// Validate reports every invalid option.
func (o *Options) Validate() error {
	var errs []error
	errs = append(errs, o.SecureServing.Validate()...)
	errs = append(errs, o.Authentication.Validate()...)
	errs = append(errs, o.Authorization.Validate()...)
	if o.SecureServing.BindPort <= 0 {
		// Plain HTTP is never served (spec/API.md 3.4): without a secure
		// port the server would not serve at all.
		errs = append(errs, errors.New("--secure-port must be > 0"))
	}
	if o.ServiceName == "" || o.ServiceNamespace == "" {
		errs = append(errs, errors.New("--apiserver-service-name and --apiserver-service-namespace must not be empty"))
	}
	if o.TenantHostSuffix != "" && !strings.HasPrefix(o.TenantHostSuffix, ".") {
		errs = append(errs, fmt.Errorf("--tenant-host-suffix %q must start with a dot", o.TenantHostSuffix))
	}
	if o.StoreTimeout <= 0 {
		errs = append(errs, errors.New("--apiserver-store-timeout must be > 0"))
	}
	return errors.Join(errs...)
}

// Config is a validated, applied configuration: serving certificate loaded
// or generated, delegated authenticator and authorizer built. New turns it
// into a Server.
type Config struct {
	generic          *genericapiserver.RecommendedConfig
	codecs           serializer.CodecFactory
	tenantHostSuffix string
	storeTimeout     time.Duration
	retryAfter       time.Duration
}

// Config validates the options and builds the server configuration. It
// reads the cluster's extension-apiserver-authentication ConfigMap (client
// and front-proxy CAs), so it needs the authentication kubeconfig (or the
// in-cluster config) to work.
func (o *Options) Config() (*Config, error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("audit API server options: %w", err)
	}
	svc := o.ServiceName + "." + o.ServiceNamespace
	altDNS := []string{o.ServiceName, svc, svc + ".svc", svc + ".svc.cluster.local"}
	if err := o.SecureServing.MaybeDefaultWithSelfSignedCerts("localhost", altDNS,
		[]net.IP{netutils.ParseIPSloppy("127.0.0.1")}); err != nil {
		return nil, fmt.Errorf("generating a self-signed serving certificate: %w", err)
	}

	scheme := runtime.NewScheme()
	// The discovery documents and Status errors are the only typed objects
	// this server writes; they are unversioned meta types.
	metav1.AddToGroupVersion(scheme, schema.GroupVersion{Version: "v1"})
	unversioned := schema.GroupVersion{Group: "", Version: "v1"}
	scheme.AddUnversionedTypes(unversioned, &metav1.Status{}, &metav1.APIVersions{},
		&metav1.APIGroupList{}, &metav1.APIGroup{}, &metav1.APIResourceList{})
	codecs := serializer.NewCodecFactory(scheme)

	gc := genericapiserver.NewRecommendedConfig(codecs)
	gc.EffectiveVersion = compatibility.DefaultBuildEffectiveVersion()
	// pprof and /debug/flags would be one more surface to authorize; the
	// manager's metrics port already serves Go runtime metrics.
	gc.EnableProfiling = false
	if err := o.SecureServing.ApplyTo(&gc.SecureServing, &gc.LoopbackClientConfig); err != nil {
		return nil, fmt.Errorf("applying serving options: %w", err)
	}
	// Authentication after serving: it installs the client CAs on the
	// listener's TLS configuration.
	if err := o.Authentication.ApplyTo(&gc.Authentication, gc.SecureServing, nil); err != nil {
		return nil, fmt.Errorf("applying delegated authentication options: %w", err)
	}
	if err := o.Authorization.ApplyTo(&gc.Authorization); err != nil {
		return nil, fmt.Errorf("applying delegated authorization options: %w", err)
	}
	return &Config{
		generic:          gc,
		codecs:           codecs,
		tenantHostSuffix: o.TenantHostSuffix,
		storeTimeout:     o.StoreTimeout,
		retryAfter:       o.RetryAfter,
	}, nil
}
