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

// Package urlredact shows URLs in messages and logs without their secrets:
// the store's (a PostgreSQL password, ?password=) and the object stores'
// (tokens in query parameters). It depends on nothing but the standard
// library, so every package that prints a URL can use it.
package urlredact

import (
	"net/url"
	"regexp"
	"strings"
)

// hidden stands for what Redact hides, as in url.URL.Redacted.
const hidden = "xxxxx"

// shownParams are the query parameters, of pgx and of gocloud.dev's
// object-store URLs, whose values Redact shows: none holds a secret, and
// they are what an operator reads a message for (which sslmode, which
// endpoint). Any other parameter shows as name=xxxxx.
var shownParams = map[string]bool{
	// pgx / libpq
	"host": true, "port": true, "dbname": true, "database": true, "user": true,
	"sslmode": true, "sslrootcert": true, "sslcert": true, "sslkey": true, "sslsni": true,
	"sslnegotiation": true, "channel_binding": true, "require_auth": true,
	"connect_timeout": true, "target_session_attrs": true, "application_name": true,
	"search_path": true, "statement_cache_capacity": true, "description_cache_capacity": true,
	"default_query_exec_mode": true, "pool_max_conns": true, "pool_min_conns": true,
	"pool_min_idle_conns": true, "pool_max_conn_lifetime": true, "pool_max_conn_lifetime_jitter": true,
	"pool_max_conn_idle_time": true, "pool_health_check_period": true,
	// gocloud.dev blob URLs (s3, gs, azblob, file)
	"region": true, "endpoint": true, "use_path_style": true, "disable_https": true,
	"dualstack": true, "fips": true, "accelerate": true, "hostname_immutable": true,
	"awssdk": true, "profile": true, "anonymous": true, "domain": true, "protocol": true,
	"cdn": true, "localemulator": true, "storage_account": true, "prefix": true,
	"create_dir": true, "no_tmp_dir": true, "dir_file_mode": true, "base_url": true,
}

// Redact returns a store or object-store URL fit for logs and error
// messages. It is url.URL.Redacted (the password of the URL's user reads
// xxxxx) with the value of every query parameter but shownParams' hidden too,
// since pgx takes ?password= and an object store's URL may carry a token.
//
// A string that does not parse as a URL with a scheme and an authority (a
// password with an unescaped '/', '#', '?' or '@' breaks it, and url.Error
// would repeat it whole) is hidden by its shape instead: from the first ':'
// after "scheme://" (or after the start) to the last '@', the values of its
// query, and the values of keyword=value pairs (pgx's other connection
// string form). Redact hides more than it must rather than less.
func Redact(rawURL string) string {
	if u, err := url.Parse(rawURL); err == nil && u.Scheme != "" && u.Opaque == "" {
		u.RawQuery = redactQuery(u.RawQuery)
		return u.Redacted()
	}
	s := rawURL
	at := strings.LastIndex(s, "@")
	if at >= 0 {
		start := 0
		if i := strings.Index(s, "://"); i >= 0 && i < at {
			start = i + len("://")
		}
		if c := strings.IndexByte(s[start:at], ':'); c >= 0 {
			s = s[:start+c+1] + hidden + s[at:]
			at = start + c + 1 + len(hidden)
		}
	}
	if q := strings.IndexByte(s[max(at, 0):], '?'); q >= 0 {
		q += max(at, 0) + 1
		end := len(s)
		if f := strings.IndexByte(s[q:], '#'); f >= 0 {
			end = q + f
		}
		s = s[:q] + redactQuery(s[q:end]) + s[end:]
	}
	return keywordValue.ReplaceAllStringFunc(s, func(kv string) string {
		m := keywordValue.FindStringSubmatch(kv)
		if shownParams[m[2]] {
			return kv
		}
		return m[1] + m[2] + "=" + hidden
	})
}

// keywordValue matches one keyword=value pair of a pgx keyword/value
// connection string ("host=db password='s e c r e t'").
var keywordValue = regexp.MustCompile(`(^|\s)([A-Za-z_]+)\s*=\s*('(?:[^'\\]|\\.)*'?|[^\s']*)`)

// redactQuery hides the value of every parameter of a raw query but
// shownParams', and of those any that names a user (an endpoint URL with a
// password) or holds a ';' (which some parsers take for '&'). It keeps the
// parameters' order and their escaping.
func redactQuery(rawQuery string) string {
	if rawQuery == "" {
		return ""
	}
	params := strings.Split(rawQuery, "&")
	for i, p := range params {
		k, v, ok := strings.Cut(p, "=")
		if !ok || v == "" {
			continue
		}
		name, err := url.QueryUnescape(k)
		if err != nil {
			name = k
		}
		value, err := url.QueryUnescape(v)
		if err != nil {
			value = v
		}
		if !shownParams[name] || strings.ContainsAny(value, "@;") {
			params[i] = k + "=" + hidden
		}
	}
	return strings.Join(params, "&")
}

// secretsOf returns the password of rawURL's user and of its password and
// sslpassword options, read whether or not the URL parses, for scrubbing
// a message that may repeat them (the shape rules are Redact's).
func secretsOf(rawURL string) []string {
	var secrets []string
	if u, err := url.Parse(rawURL); err == nil && u.Scheme != "" && u.Opaque == "" {
		if pw, ok := u.User.Password(); ok && pw != "" {
			secrets = append(secrets, pw)
		}
		for _, k := range []string{"password", "sslpassword"} {
			if v := u.Query().Get(k); v != "" {
				secrets = append(secrets, v)
			}
		}
		return secrets
	}
	if _, rest, ok := strings.Cut(rawURL, "://"); ok {
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if _, pw, ok := strings.Cut(rest[:at], ":"); ok && pw != "" {
				secrets = append(secrets, pw)
			}
		}
	}
	return secrets
}

// urlInText is a URL as messages quote it (url.Error quotes it with %q).
var urlInText = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^\s"'<>]+`)

// RedactText is msg with every URL in it Redacted: for messages of SDKs
// that quote a request's URL, whose query may carry a token (an Azure SAS
// token's sig=…) that no configured URL holds, so Scrub cannot know it.
func RedactText(msg string) string {
	return urlInText.ReplaceAllStringFunc(msg, Redact)
}

// Scrub replaces in msg every secret of rawURL (its user's password, its
// password and sslpassword options): a second guard for messages of
// drivers that may repeat them.
func Scrub(msg, rawURL string) string {
	for _, secret := range secretsOf(rawURL) {
		msg = strings.ReplaceAll(msg, secret, hidden)
	}
	return msg
}
