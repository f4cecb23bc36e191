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
	"fmt"
	"net/http"
	"strconv"

	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/auditops/auditops/internal/ingest"
	"github.com/auditops/auditops/internal/store"
)

// The aggregated API group and its resources (spec/API.md sections 3, 4).
const (
	Group            = "audit.auditops.dev"
	Version          = "v1alpha1"
	groupPath        = "/apis/" + Group
	groupVersionPath = groupPath + "/" + Version

	resSummaries    = "namespaceuserssummaries"
	resAuditDetails = "auditdetails"
	resUserAccess   = "useraccess"
	resUsers        = "users"
	resUserLogs     = "userlogs"
	resEvents       = "events"
	resCheckpoints  = "checkpoints"
	resLeaves       = "leaves"
	resProofs       = "proofs"
)

type authorizerFunc func(ctx context.Context, a authorizer.Attributes) (authorizer.Decision, string, error)

// authorize asks the delegated authorizer (a SubjectAccessReview, cached
// briefly) whether the caller may verb resource in namespace ns, naming the
// object when the route has one, so a Role restricted by resourceNames
// works as it does in kube-apiserver. The attributes come from the route,
// never from the path: the seed paths carry their tenant in a query
// parameter, a path segment or the Host.
func (s *Server) authorize(ctx context.Context, verb, resource, ns, name string) error {
	u, ok := request.UserFrom(ctx)
	if !ok || u == nil {
		// The chain authenticates every route; this is a wiring fault.
		return errors.New("no authenticated user in the request context")
	}
	attrs := authorizer.AttributesRecord{
		User:            u,
		Verb:            verb,
		Namespace:       ns,
		APIGroup:        Group,
		APIVersion:      Version,
		Resource:        resource,
		Name:            name,
		ResourceRequest: true,
	}
	decision, reason, err := s.authz(ctx, attrs)
	if decision == authorizer.DecisionAllow {
		noteReadAccess(ctx, verb, resource, ns, name, true)
		return nil
	}
	if err != nil {
		// The SubjectAccessReview could not be made (kube-apiserver down or
		// slow): not a denial, and not the client's fault.
		return &unavailable{msg: "authorization check unavailable", err: err}
	}
	noteReadAccess(ctx, verb, resource, ns, name, false)
	return &forbidden{msg: forbiddenMessage(u, verb, resource, ns, name, reason)}
}

// forbiddenMessage reads like kube-apiserver's own.
func forbiddenMessage(u user.Info, verb, resource, ns, name, reason string) string {
	msg := fmt.Sprintf("%s %q cannot %s resource %q in API group %q", userKind(u), u.GetName(), verb, resource, Group)
	if name != "" {
		msg = fmt.Sprintf("%s %q cannot %s resource %q named %q in API group %q", userKind(u), u.GetName(), verb, resource, name, Group)
	}
	if ns != "" {
		msg += " in the namespace " + strconv.Quote(ns)
	} else {
		msg += " at the cluster scope"
	}
	if reason != "" {
		msg += ": " + reason
	}
	return msg
}

func userKind(u user.Info) string {
	if _, _, err := serviceaccount.SplitUsername(u.GetName()); err == nil {
		return "serviceaccount"
	}
	return "user"
}

// authorizeIngest is the ingest handler's Authorizer: create events in every
// namespace of the batch, or cluster-wide when namespaces is nil.
func (s *Server) authorizeIngest(ctx context.Context, _ *http.Request, namespaces []string) error {
	check := func(ns string) error {
		err := s.authorize(ctx, "create", resEvents, ns, "")
		var fb *forbidden
		var un *unavailable
		switch {
		case err == nil:
			return nil
		case errors.As(err, &fb):
			var nss []string
			if ns != "" {
				nss = []string{ns}
			}
			return &ingest.ForbiddenError{Namespaces: nss, Reason: fb.msg}
		case errors.As(err, &un):
			// The ingest handler answers store.ErrUnavailable with 503.
			return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
		default:
			return err
		}
	}
	if namespaces == nil {
		return check("")
	}
	for _, ns := range namespaces {
		if err := check(ns); err != nil {
			return err
		}
	}
	return nil
}

// serviceAccountNamespace is the namespace of a service-account caller, ""
// for anyone else.
func serviceAccountNamespace(ctx context.Context) string {
	u, ok := request.UserFrom(ctx)
	if !ok || u == nil {
		return ""
	}
	ns, _, err := serviceaccount.SplitUsername(u.GetName())
	if err != nil {
		return ""
	}
	return ns
}
