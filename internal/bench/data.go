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

package bench

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"time"
)

// The synthetic data set: kube-apiserver audit events (audit.k8s.io/v1, stage
// ResponseComplete) over one month, for tenants tenant-00..tenant-07.
// tenant-00 holds 25% of the events (so that its page 1000 exists at any
// realistic size); the rest are spread evenly. About 15% fail (403, 404,
// 409); about a quarter are "access" events (denials, token and access
// reviews) and a tenth "user" events (service accounts, role bindings).
// Each event maps to a store row of 1-2 KB.

// BigTenant is the tenant the reports and pages read.
const BigTenant = "tenant-00"

// Tenants is the number of tenants.
const Tenants = 8

// Users per tenant.
const usersPerTenant = 40

// DataStart is the first event's time; the events span DataSpan.
var DataStart = time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)

// DataSpan is the time the data set covers.
const DataSpan = 30 * 24 * time.Hour

// tenantOf spreads events: 1 in 4 to the big tenant, the rest round-robin.
func tenantOf(i int) int {
	if i%4 == 0 {
		return 0
	}
	return 1 + (i/4*3+i%4-1)%(Tenants-1)
}

// TenantName names tenant t.
func TenantName(t int) string { return fmt.Sprintf("tenant-%02d", t) }

// BigTenantUser is a user of the big tenant with events (the UserLogs report's user).
const BigTenantUser = "user-07@tenant-00.example.com"

type kind struct {
	group, version, resource, sub, kind string
}

var kinds = []kind{
	{"", "v1", "pods", "", "Pod"},
	{"", "v1", "pods", "log", "Pod"},
	{"", "v1", "pods", "exec", "Pod"},
	{"", "v1", "configmaps", "", "ConfigMap"},
	{"", "v1", "secrets", "", "Secret"},
	{"apps", "v1", "deployments", "", "Deployment"},
	{"", "v1", "services", "", "Service"},
	{"apps", "v1", "deployments", "scale", "Deployment"},
	// access: token requests and access reviews
	{"", "v1", "serviceaccounts", "token", "TokenRequest"},
	{"authorization.k8s.io", "v1", "localsubjectaccessreviews", "", "LocalSubjectAccessReview"},
	// user: identities and grants (mutating verbs)
	{"", "v1", "serviceaccounts", "", "ServiceAccount"},
	{"rbac.authorization.k8s.io", "v1", "rolebindings", "", "RoleBinding"},
}

var verbs = []string{"get", "list", "create", "update", "patch", "delete", "watch"}

// AppendEvent appends event i of n as one JSON line (no newline) of a
// kube-apiserver audit log, and returns its tenant.
func AppendEvent(b []byte, i, n int) ([]byte, int) {
	t := tenantOf(i)
	ns := TenantName(t)
	// Times rise through the log, as a real log's do, with sub-second jitter.
	step := int64(DataSpan) / int64(max(n, 1))
	ts := DataStart.Add(time.Duration(int64(i)*step + int64((i*7919)%1000)*int64(time.Microsecond)))
	// Users: a few busy ones and a long tail.
	u := (i * 2654435761 >> 7) % usersPerTenant
	if i%3 == 0 {
		u = i % 5
	}
	user := fmt.Sprintf("user-%02d@%s.example.com", u, ns)
	k := kinds[(i/7+i)%len(kinds)]
	verb := verbs[(i/3+i)%len(verbs)]
	switch k.resource {
	case "serviceaccounts", "rolebindings":
		if k.sub == "" {
			verb = []string{"create", "update", "patch", "delete"}[i%4]
		} else {
			verb = "create"
		}
	case "localsubjectaccessreviews":
		verb = "create"
	}
	code := 200
	switch i % 20 {
	case 0, 7:
		code = 403
	case 11:
		code = 404
	}
	if code == 200 && verb == "create" {
		code = 201
	}
	if i%97 == 3 {
		code = 409
	}
	name := fmt.Sprintf("web-%d-%x", i%500, (i*31)%4096)
	uri := "/api/" + k.version
	if k.group != "" {
		uri = "/apis/" + k.group + "/" + k.version
	}
	uri += "/namespaces/" + ns + "/" + k.resource + "/" + name
	if k.sub != "" {
		uri += "/" + k.sub
	}
	apiVersion := k.version
	if k.group != "" {
		apiVersion = k.group + "/" + k.version
	}
	// kube-apiserver's audit ids are random UUIDs (v4): an id that grew
	// with i would make any index on ids an append, which real ones never
	// are. Deterministic, so every run has the same data.
	r1, r2 := splitmix64(uint64(i)), splitmix64(uint64(i)^0x9e3779b97f4a7c15)
	auditID := fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", uint32(r1>>32), uint16(r1>>16), uint16(r1)&0xfff,
		0x8000|uint16(r2>>48)&0x3fff, r2&0xffffffffffff)

	b = append(b, `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"`...)
	b = append(b, auditID...)
	b = append(b, `","stage":"ResponseComplete","requestURI":"`...)
	b = append(b, uri...)
	b = append(b, `","verb":"`...)
	b = append(b, verb...)
	b = append(b, `","user":{"username":"`...)
	b = append(b, user...)
	b = append(b, `","uid":"`...)
	b = strconv.AppendInt(b, int64(t*1000+u), 10)
	b = append(b, `","groups":["system:authenticated","team-`...)
	b = strconv.AppendInt(b, int64(u%6), 10)
	b = append(b, `"],"extra":{"authentication.kubernetes.io/credential-id":["X509SHA256=`...)
	b = fmt.Appendf(b, "%016x%016x", u*7919+t, u*104729+t)
	b = append(b, `"]}},"sourceIPs":["10.`...)
	b = fmt.Appendf(b, "%d.%d.%d", t, u, 10+i%200)
	b = append(b, `"],"userAgent":"kubectl/v1.37.1 (linux/amd64) kubernetes/4e2a6f1","objectRef":{"resource":"`...)
	b = append(b, k.resource...)
	b = append(b, `","namespace":"`...)
	b = append(b, ns...)
	b = append(b, `","name":"`...)
	b = append(b, name...)
	if k.sub != "" {
		b = append(b, `","subresource":"`...)
		b = append(b, k.sub...)
	}
	if k.group != "" {
		b = append(b, `","apiGroup":"`...)
		b = append(b, k.group...)
	}
	b = append(b, `","apiVersion":"`...)
	b = append(b, k.version...)
	b = append(b, `"},"responseStatus":{"metadata":{},"code":`...)
	b = strconv.AppendInt(b, int64(code), 10)
	if code >= 400 {
		reason := map[int]string{403: "Forbidden", 404: "NotFound", 409: "Conflict"}[code]
		b = append(b, `,"status":"Failure","reason":"`...)
		b = append(b, reason...)
		b = append(b, `","message":"`...)
		switch code {
		case 403:
			b = fmt.Appendf(b, `%s \"%s\" is forbidden: User \"%s\" cannot %s resource \"%s\" in API group \"%s\" in the namespace \"%s\"`, k.resource, name, user, verb, k.resource, k.group, ns)
		case 404:
			b = fmt.Appendf(b, `%s \"%s\" not found`, k.resource, name)
		default:
			b = fmt.Appendf(b, `Operation cannot be fulfilled on %s \"%s\": the object has been modified; please apply your changes to the latest version and try again`, k.resource, name)
		}
		b = append(b, '"')
	}
	b = append(b, '}')
	// Objects: a request body for writes, a response object for successes.
	obj := func(b []byte, rv int) []byte {
		b = append(b, `{"kind":"`...)
		b = append(b, k.kind...)
		b = append(b, `","apiVersion":"`...)
		b = append(b, apiVersion...)
		b = append(b, `","metadata":{"name":"`...)
		b = append(b, name...)
		b = append(b, `","namespace":"`...)
		b = append(b, ns...)
		b = fmt.Appendf(b, `","uid":"6a2b9f3e-%08x-4c1d-9e8f-%012x","resourceVersion":"%d","labels":{"app":"web","tier":"frontend","release":"r%d"`, i%65536, i, 100000+i+rv, i%7)
		for j := 0; j < i%5; j++ {
			b = fmt.Appendf(b, `,"team.example.com/label-%d":"value-%d-%d"`, j, j, i%100)
		}
		b = append(b, `},"annotations":{"kubernetes.io/change-cause":"kubectl apply --filename=web.yaml --record=true"}},"spec":{"containers":[{"name":"web","image":"registry.example.com/team/web:1.`...)
		b = strconv.AppendInt(b, int64(i%30), 10)
		b = append(b, `.0","ports":[{"containerPort":8080,"protocol":"TCP"}],"resources":{"limits":{"cpu":"500m","memory":"256Mi"}}}],"serviceAccountName":"web","nodeName":"node-`...)
		b = strconv.AppendInt(b, int64(i%12), 10)
		return append(b, `"}}`...)
	}
	if verb != "get" && verb != "list" && verb != "watch" && verb != "delete" {
		b = append(b, `,"requestObject":`...)
		b = obj(b, 0)
	}
	if code < 400 {
		b = append(b, `,"responseObject":`...)
		b = obj(b, 1)
	}
	b = append(b, `,"requestReceivedTimestamp":"`...)
	b = ts.Add(-3*time.Millisecond).AppendFormat(b, "2006-01-02T15:04:05.000000Z")
	b = append(b, `","stageTimestamp":"`...)
	b = ts.AppendFormat(b, "2006-01-02T15:04:05.000000Z")
	b = append(b, `","annotations":{"authorization.k8s.io/decision":"`...)
	if code == 403 {
		b = append(b, `forbid","authorization.k8s.io/reason":""}}`...)
	} else {
		b = append(b, `allow","authorization.k8s.io/reason":"RBAC: allowed by RoleBinding \"edit\" of ClusterRole \"edit\" to Group \"team"}}`...)
	}
	return b, t
}

// DataSet is the generated log on disk.
type DataSet struct {
	// Log is the whole audit log (JSONL), TenantLog the big tenant's lines.
	Log, TenantLog string
	Events         int
	TenantEvents   int
	Bytes          int64
}

// Generate writes n events to dir/audit.jsonl and the big tenant's to
// dir/tenant.jsonl.
func Generate(dir string, n int) (DataSet, error) {
	ds := DataSet{Log: dir + "/audit.jsonl", TenantLog: dir + "/tenant.jsonl", Events: n}
	f, err := os.Create(ds.Log)
	if err != nil {
		return ds, err
	}
	defer f.Close()
	g, err := os.Create(ds.TenantLog)
	if err != nil {
		return ds, err
	}
	defer g.Close()
	w, tw := bufio.NewWriterSize(f, 1<<20), bufio.NewWriterSize(g, 1<<20)
	var b []byte
	for i := range n {
		var t int
		b, t = AppendEvent(b[:0], i, n)
		b = append(b, '\n')
		ds.Bytes += int64(len(b))
		if _, err := w.Write(b); err != nil {
			return ds, err
		}
		if t == 0 {
			ds.TenantEvents++
			if _, err := tw.Write(b); err != nil {
				return ds, err
			}
		}
	}
	if err := w.Flush(); err != nil {
		return ds, err
	}
	if err := tw.Flush(); err != nil {
		return ds, err
	}
	return ds, nil
}

// splitmix64 is a bijective mix of x (Steele, Lea, Flood 2014).
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
