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
	"errors"
	"fmt"
	"github.com/auditops/auditops/internal/urlredact"
	"net/url"
	"path"
	"slices"
	"strings"
)

// ErrOutputNotAllowed is wrapped by Destinations.Check's refusals: the
// operator has not allowed the destination (spec/API.md section 5).
var ErrOutputNotAllowed = errors.New("output destination not allowed")

// Destinations are the object-store destinations a report may write to,
// beyond the default: --allowed-output-urls. By default a report writes
// to s3://, gs:// or azblob:// only with its own credentials Secret and
// without an endpoint; everything that would lend it the manager's own
// reach is allowed only under a listed prefix: the pod's ambient cloud
// identity (no credentials Secret), an endpoint (the manager would connect
// wherever it points), and file:// (the manager's own volumes, where the
// SQLite store lives).
type Destinations struct {
	prefixes []*url.URL
}

// freeParams are the URL parameters a report may set or change under a
// listed prefix: none of them changes where the manager connects, which
// identity it uses or which files it reads. Every other parameter (endpoint,
// disable_https, gocloud's profile, access_id, private_key_path,
// secret_key_path, dir_file_mode, …) must appear in the prefix with the same
// value.
var freeParams = []string{
	"region", "use_path_style", "s3ForcePathStyle",
	"request_checksum_calculation", "response_checksum_validation",
	"ssetype", "no_tmp_dir",
}

// freeWithCredentials are free too for a report with its own credentials:
// its KMS key and its Azure storage account are its own. Under the
// manager's identity they must match a prefix: the tenant would otherwise
// choose which key the manager's role encrypts with (one the tenant can
// revoke) or which account it writes to.
var freeWithCredentials = []string{"kmskeyid", "storage_account"}

func free(name string, withCredentials bool) bool {
	return slices.Contains(freeParams, name) || (withCredentials && slices.Contains(freeWithCredentials, name))
}

// NewDestinations parses --allowed-output-urls prefixes: s3://, gs://,
// azblob:// or file:// URLs without credentials or "..".
func NewDestinations(prefixes []string) (*Destinations, error) {
	d := &Destinations{}
	for _, p := range prefixes {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		u, err := parseDestination(p)
		if err != nil {
			return nil, fmt.Errorf("allowed output URL %q: %w", p, err)
		}
		d.prefixes = append(d.prefixes, u)
	}
	return d, nil
}

// parseDestination parses an object-store URL and refuses what could make
// a prefix comparison lie: credentials, "." or ".." path segments, a host
// on a file:// URL, an unknown scheme.
func parseDestination(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("not a URL")
	}
	if u.User != nil {
		return nil, errors.New("a URL must not carry credentials")
	}
	switch u.Scheme {
	case "s3", "gs", "azblob":
		if u.Host == "" {
			return nil, fmt.Errorf("%s:// needs a bucket", u.Scheme)
		}
	case "file":
		if u.Host != "" || !strings.HasPrefix(u.Path, "/") {
			return nil, errors.New("file:// needs an absolute path and no host: file:///dir")
		}
	default:
		return nil, fmt.Errorf("scheme %q is not one of s3, gs, azblob, file", u.Scheme)
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if seg == "." || seg == ".." {
			return nil, errors.New(`the path must not hold "." or ".." segments`)
		}
	}
	if strings.Contains(u.Path, "\\") || strings.ContainsRune(u.Path, 0) {
		return nil, errors.New("the path must not hold backslashes or NUL bytes")
	}
	return u, nil
}

// Check says whether a report may write to rawURL; withCredentials is
// whether it names its own credentials Secret. A refusal wraps
// ErrOutputNotAllowed and says why and what the operator can list.
func (d *Destinations) Check(rawURL string, withCredentials bool) error {
	u, err := parseDestination(rawURL)
	if err != nil {
		return fmt.Errorf("%w: objectStore.url: %w", ErrOutputNotAllowed, err)
	}
	q := u.Query()
	var needs string
	switch {
	case u.Scheme == "file":
		needs = "file:// writes to the manager's own volumes"
	case !withCredentials:
		needs = u.Scheme + ":// without credentialsSecretRef uses the manager's own cloud identity"
	case q.Has("endpoint"):
		needs = "an endpoint makes the manager connect where it points"
	default:
		for name := range q {
			if !free(name, true) {
				needs = fmt.Sprintf("URL parameter %q", name)
				break
			}
		}
		if needs == "" {
			return nil
		}
	}
	for _, p := range d.prefixes {
		if under(u, p, withCredentials) {
			if u.Scheme == "file" {
				return linksBelow(p.Path, u.Path)
			}
			return nil
		}
	}
	return fmt.Errorf("%w: %s is allowed only under a prefix the operator lists in --allowed-output-urls (%s); %s",
		ErrOutputNotAllowed, urlredact.Redact(u.String()), needs, d.describe())
}

func (d *Destinations) describe() string {
	if len(d.prefixes) == 0 {
		return "none are listed"
	}
	names := make([]string, len(d.prefixes))
	for i, p := range d.prefixes {
		names[i] = urlredact.Redact(p.String())
	}
	return "listed: " + strings.Join(names, ", ")
}

// under reports whether u lies under prefix p: same scheme and bucket, a
// path at or below p's (whole segments), and every parameter of u either
// free or the same in p, and every parameter of p the same in u.
// linksBelow refuses a file:// directory reached through a symbolic link
// below the listed prefix dir (the prefix itself is the operator's).
func linksBelow(dir, target string) error {
	dir, target = path.Clean("/"+dir), path.Clean("/"+target)
	rel := strings.TrimPrefix(strings.TrimPrefix(target, dir), "/")
	if rel == "" {
		return nil
	}
	p := dir
	for _, part := range strings.Split(rel, "/") {
		p = path.Join(p, part)
		if err := notALink(p); err != nil {
			return fmt.Errorf("%w: %w", ErrOutputNotAllowed, err)
		}
	}
	return nil
}

func under(u, p *url.URL, withCredentials bool) bool {
	if u.Scheme != p.Scheme || u.Host != p.Host {
		return false
	}
	dir := strings.TrimSuffix(path.Clean("/"+p.Path), "/")
	got := path.Clean("/" + u.Path)
	if got != dir && !strings.HasPrefix(got, dir+"/") {
		return false
	}
	uq, pq := u.Query(), p.Query()
	for name, want := range pq {
		if !slices.Equal(uq[name], want) {
			return false
		}
	}
	for name := range uq {
		if _, ok := pq[name]; !ok && !free(name, withCredentials) {
			return false
		}
	}
	return true
}
