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

package sink

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"cloud.google.com/go/auth/credentials"
	"cloud.google.com/go/storage"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"gocloud.dev/blob"
	"gocloud.dev/blob/azureblob"
	"gocloud.dev/blob/gcsblob"
	"google.golang.org/api/option"
)

// Keys of the credentials Secret for gs:// URLs.
const (
	// CredGCSServiceAccountKey is a service-account key file's JSON, as
	// `gcloud iam service-accounts keys create` writes it.
	CredGCSServiceAccountKey = "serviceAccountKey"
)

// isAzureAccountName says whether s is a storage account's name as Azure
// allows them: 3 to 24 lowercase letters and digits.
func isAzureAccountName(s string) bool {
	if len(s) < 3 || len(s) > 24 {
		return false
	}
	for _, c := range []byte(s) {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// Keys of the credentials Secret for azblob:// URLs: accountName with
// accountKey or sasToken, or connectionString alone.
const (
	CredAzureAccountName      = "accountName"
	CredAzureAccountKey       = "accountKey"
	CredAzureSASToken         = "sasToken"
	CredAzureConnectionString = "connectionString"
)

// gcsScope is what a report needs: objects read, written, listed, deleted.
const gcsScope = "https://www.googleapis.com/auth/devstorage.read_write"

// openGCS opens a GCS bucket with the Secret's service-account key. Only a
// key of type service_account is accepted: the other credential files
// (external_account, impersonated_service_account, authorized_user) name
// URLs to fetch tokens from, files to read or programs to run, all with the
// manager's own reach. The key signs its own tokens (a self-signed JWT, as
// Google's APIs accept for service accounts), so its token_uri is never
// contacted either: the only host the manager talks to is the storage
// endpoint. The one URL parameter, endpoint, points at another storage
// endpoint (an emulator, a private one); Destinations allows it only under a
// listed prefix. The returned close releases the storage client, which the
// bucket does not own.
func openGCS(ctx context.Context, u *url.URL, creds map[string][]byte) (*blob.Bucket, func() error, error) {
	key := creds[CredGCSServiceAccountKey]
	if len(key) == 0 {
		return nil, nil, fmt.Errorf("the credentials Secret of a gs:// URL needs %s (a service-account key's JSON)", CredGCSServiceAccountKey)
	}
	c, err := credentials.NewCredentialsFromJSON(credentials.ServiceAccount, key, &credentials.DetectOptions{
		Scopes:           []string{gcsScope},
		UseSelfSignedJWT: true,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("the credentials Secret's %s is not a service-account key: %w", CredGCSServiceAccountKey, err)
	}
	opts := []option.ClientOption{option.WithAuthCredentials(c), storage.WithDisabledClientMetrics()}
	for name, values := range u.Query() {
		v := values[0]
		switch name {
		case "endpoint":
			ep, err := endpointURL(v)
			if err != nil {
				return nil, nil, fmt.Errorf("gs URL parameter endpoint=%q: %w", v, err)
			}
			// The JSON API lives under /storage/v1/; the client derives the
			// upload and download paths from the same host.
			opts = append(opts, option.WithEndpoint(ep.JoinPath("storage", "v1").String()+"/"))
		default:
			return nil, nil, fmt.Errorf("unsupported gs URL parameter %q (with credentialsSecretRef: endpoint)", name)
		}
	}
	client, err := storage.NewClient(ctx, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("creating the GCS client: %w", err)
	}
	bucket, err := gcsblob.OpenBucket(ctx, nil, u.Host, &gcsblob.Options{Client: client})
	if err != nil {
		_ = client.Close()
		return nil, nil, err
	}
	return bucket, client.Close, nil
}

// openAzure opens an Azure blob container with the Secret's shared key, SAS
// token or connection string. Where the manager connects comes from the URL
// alone: https://<account>.blob.core.windows.net, or the URL's endpoint
// (Azurite: http://127.0.0.1:10000/devstoreaccount1) or domain (another
// Azure cloud), which Destinations allows only under a listed prefix. A
// connection string may name an endpoint too (BlobEndpoint, EndpointSuffix,
// DefaultEndpointsProtocol): it is used only when it points where the URL
// does, so a Secret never moves the manager elsewhere.
func openAzure(ctx context.Context, u *url.URL, creds map[string][]byte) (*blob.Bucket, error) {
	var endpoint, domain, urlAccount string
	for name, values := range u.Query() {
		v := values[0]
		switch name {
		case "storage_account":
			if !isAzureAccountName(v) {
				return nil, fmt.Errorf("azblob URL parameter storage_account=%q is not a storage account name (3 to 24 lowercase letters and digits)", v)
			}
			urlAccount = v
		case "endpoint":
			ep, err := endpointURL(v)
			if err != nil {
				return nil, fmt.Errorf("azblob URL parameter endpoint=%q: %w", v, err)
			}
			endpoint = strings.TrimSuffix(ep.String(), "/")
		case "domain":
			if v == "" || strings.ContainsAny(v, "/:@?#") {
				return nil, fmt.Errorf("azblob URL parameter domain=%q: want a host name like blob.core.usgovcloudapi.net", v)
			}
			domain = v
		default:
			return nil, fmt.Errorf("unsupported azblob URL parameter %q (with credentialsSecretRef: storage_account, endpoint, domain)", name)
		}
	}
	if endpoint != "" && domain != "" {
		return nil, errors.New("azblob URL: endpoint and domain exclude each other")
	}

	account, key, sas := string(creds[CredAzureAccountName]), string(creds[CredAzureAccountKey]), string(creds[CredAzureSASToken])
	var cs connString
	if raw := string(creds[CredAzureConnectionString]); raw != "" {
		if account != "" || key != "" || sas != "" {
			return nil, fmt.Errorf("the credentials Secret holds %s and also %s, %s or %s: give one or the other",
				CredAzureConnectionString, CredAzureAccountName, CredAzureAccountKey, CredAzureSASToken)
		}
		var err error
		if cs, err = parseConnString(raw); err != nil {
			return nil, err
		}
		account, key, sas = cs.accountName, cs.accountKey, cs.sas
	}
	// The account names the host the manager connects to (below): a name
	// that is not an account's could point it at any host and port.
	if account != "" && !isAzureAccountName(account) {
		return nil, fmt.Errorf("the credentials Secret's account name %q is not a storage account name (3 to 24 lowercase letters and digits)", account)
	}
	// The URL, which the report's author wrote and admission checked,
	// names the account the report goes to; the Secret only signs in to it.
	// Taken from the Secret, anyone who may edit that Secret but not read
	// the audit data could send every later run to an account of theirs.
	switch {
	case endpoint == "" && urlAccount == "":
		return nil, errors.New("an azblob:// URL with credentialsSecretRef names its storage account: azblob://CONTAINER?storage_account=NAME (the URL decides where reports go; the Secret only signs in)")
	case urlAccount != "" && account != "" && account != urlAccount:
		return nil, fmt.Errorf("the credentials Secret is for storage account %q, the URL names %q: the URL decides where reports go", account, urlAccount)
	case urlAccount != "":
		account = urlAccount
	}
	if key == "" && sas == "" {
		return nil, fmt.Errorf("the credentials Secret of an azblob:// URL needs %s or %s (or %s)", CredAzureAccountKey, CredAzureSASToken, CredAzureConnectionString)
	}

	service := endpoint
	if service == "" {
		if domain == "" {
			domain = "blob.core.windows.net"
		}
		service = "https://" + account + "." + domain
	}
	if cs.serviceURL != "" && strings.TrimSuffix(cs.serviceURL, "/") != service {
		return nil, fmt.Errorf("the connection string points at %s, the URL at %s: the URL decides where reports go (an endpoint= the operator allows)",
			cs.serviceURL, service)
	}
	containerURL, err := url.JoinPath(service, u.Host)
	if err != nil {
		return nil, fmt.Errorf("azblob container URL: %w", err)
	}

	var client *container.Client
	if key != "" {
		if account == "" {
			return nil, fmt.Errorf("the credentials Secret needs %s with %s", CredAzureAccountName, CredAzureAccountKey)
		}
		cred, err := container.NewSharedKeyCredential(account, key)
		if err != nil {
			return nil, fmt.Errorf("the credentials Secret's account key: %w", err)
		}
		client, err = container.NewClientWithSharedKeyCredential(containerURL, cred, nil)
		if err != nil {
			return nil, fmt.Errorf("creating the Azure container client: %w", err)
		}
	} else {
		q, err := url.ParseQuery(strings.TrimPrefix(sas, "?"))
		if err != nil || q.Get("sig") == "" {
			return nil, fmt.Errorf("the credentials Secret's %s is not a SAS token (a query string with sig=…)", CredAzureSASToken)
		}
		client, err = container.NewClientWithNoCredential(containerURL+"?"+q.Encode(), nil)
		if err != nil {
			return nil, fmt.Errorf("creating the Azure container client: %w", err)
		}
	}
	return azureblob.OpenBucket(ctx, client, nil)
}

// connString is what a report may take from an Azure storage connection
// string: the account, its key or SAS, and where the string points
// (checked against the URL).
type connString struct {
	accountName, accountKey, sas, serviceURL string
}

// parseConnString reads an Azure storage connection string
// (Key=Value;Key=Value) and works out its blob service URL the way the
// Azure SDK does, so that it can be compared with the report URL's.
func parseConnString(raw string) (connString, error) {
	fields := map[string]string{}
	for part := range strings.SplitSeq(strings.TrimRight(strings.TrimSpace(raw), ";"), ";") {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return connString{}, fmt.Errorf("the credentials Secret's %s is not Key=Value;Key=Value", CredAzureConnectionString)
		}
		fields[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	if fields["UseDevelopmentStorage"] != "" {
		return connString{}, fmt.Errorf("the credentials Secret's %s uses UseDevelopmentStorage: give AccountName, AccountKey and BlobEndpoint instead", CredAzureConnectionString)
	}
	cs := connString{accountName: fields["AccountName"], accountKey: fields["AccountKey"], sas: fields["SharedAccessSignature"]}
	switch {
	case fields["BlobEndpoint"] != "":
		cs.serviceURL = fields["BlobEndpoint"]
	case cs.accountName != "":
		scheme, suffix := "https", "core.windows.net"
		if v := fields["DefaultEndpointsProtocol"]; v != "" {
			scheme = v
		}
		if v := fields["EndpointSuffix"]; v != "" {
			suffix = v
		}
		cs.serviceURL = scheme + "://" + cs.accountName + ".blob." + suffix
	default:
		return connString{}, fmt.Errorf("the credentials Secret's %s needs AccountName or BlobEndpoint", CredAzureConnectionString)
	}
	return cs, nil
}

// endpointURL checks an endpoint parameter: an http(s) URL of a host,
// without credentials, query or fragment.
func endpointURL(v string) (*url.URL, error) {
	ep, err := url.Parse(v)
	if err != nil || (ep.Scheme != "http" && ep.Scheme != "https") || ep.Host == "" {
		return nil, errors.New("want an http:// or https:// URL")
	}
	if ep.User != nil || ep.RawQuery != "" || ep.Fragment != "" {
		return nil, errors.New("want a URL without credentials, query or fragment")
	}
	return ep, nil
}
