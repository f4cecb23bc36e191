#!/usr/bin/env bash
# Builds etcd, kube-apiserver and kubectl from the Go module proxy at pinned
# versions into bin/k8s/<version>/, once. controller-runtime's setup-envtest
# cannot download here, and `go install` of either fails on their replace
# directives, so each is built from a throwaway wrapper module that requires
# it (replaces in dependencies are ignored).
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.37.1}"
STAGING_VERSION="${STAGING_VERSION:-v0.37.1}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${root}/bin/k8s/${K8S_VERSION}"
work="${root}/bin/.build"
mkdir -p "${dest}" "${work}"

log() { printf '[build-control-plane] %s\n' "$*" >&2; }

has_version() { # binary, expected substring of its version output
  local out
  [ -x "$1" ] || return 1
  case "$(basename "$1")" in
    kubectl) out="$("$1" version --client 2>/dev/null)" ;;
    *) out="$("$1" --version 2>/dev/null)" ;;
  esac
  grep -q -- "$2" <<<"${out}"
}

build_etcd() {
  if has_version "${dest}/etcd" "${ETCD_VERSION#v}"; then return; fi
  log "building etcd ${ETCD_VERSION} (about a minute on 2 cores)"
  local mod="${work}/etcd-${ETCD_VERSION}"
  rm -rf "${mod}" && mkdir -p "${mod}"
  cat >"${mod}/go.mod" <<MOD
module auditops.dev/build/etcd

go 1.26

require go.etcd.io/etcd/server/v3 ${ETCD_VERSION}
MOD
  cat >"${mod}/tools.go" <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
  (cd "${mod}" && GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1 || GOFLAGS=-mod=mod go mod tidy)
  (cd "${mod}" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "${dest}/etcd.tmp" go.etcd.io/etcd/server/v3)
  mv "${dest}/etcd.tmp" "${dest}/etcd"
}

build_kubernetes() {
  if has_version "${dest}/kube-apiserver" "${K8S_VERSION}" && has_version "${dest}/kubectl" "${K8S_VERSION}"; then return; fi
  log "building kube-apiserver and kubectl ${K8S_VERSION} (about 5 minutes cold on 2 cores)"
  local mod="${work}/kubernetes-${K8S_VERSION}"
  rm -rf "${mod}" && mkdir -p "${mod}"
  local upstream
  upstream="$(cd "${mod}" && go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  {
    printf 'module auditops.dev/build/kubernetes\n\ngo 1.26\n\nrequire k8s.io/kubernetes %s\n\n' "${K8S_VERSION}"
    # kubernetes' own go.mod points every staging module at ./staging; point
    # them at the published staging modules of the same release instead.
    sed -n 's#^[[:space:]]*\(k8s.io/[^[:space:]]*\) => ./staging/src/k8s.io/.*#replace \1 => \1 '"${STAGING_VERSION}"'#p' "${upstream}"
  } >"${mod}/go.mod"
  cat >"${mod}/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  (cd "${mod}" && GOFLAGS=-mod=mod go mod tidy)
  local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=${K8S_VERSION} -X k8s.io/client-go/pkg/version.gitVersion=${K8S_VERSION} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(cut -d. -f2 <<<"${K8S_VERSION}")"
  for cmd in kube-apiserver kubectl; do
    (cd "${mod}" && CGO_ENABLED=0 go build -trimpath -ldflags "${ldflags}" -o "${dest}/${cmd}.tmp" "k8s.io/kubernetes/cmd/${cmd}")
    mv "${dest}/${cmd}.tmp" "${dest}/${cmd}"
  done
}

build_etcd
build_kubernetes
log "control plane ready in ${dest}"
echo "${dest}"
