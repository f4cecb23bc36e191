#!/usr/bin/env bash
# make run: the whole product on one machine. Starts etcd and kube-apiserver
# (built by hack/build-control-plane.sh) on loopback with the aggregation
# layer on and an audit webhook pointing at the manager, installs the CRDs,
# RBAC and APIService, and runs the manager with the SQLite store under
# .local/ (kept between runs). Ctrl-C stops everything it started; a run
# after a crash cleans up what the crashed one left.
#
# Environment: K8S_VERSION (v1.37.1), AUDITOPS_SECURE_PORT (8443),
# AUDITOPS_METRICS_SECURE (false: plain HTTP metrics on loopback),
# LOCAL_DIR (.local), MANAGER_BIN (bin/manager),
# RUN_LOCAL_DETACH=1 returns once ready and leaves it running (tests use
# it; hack/run-local.sh stop ends it), RUN_LOCAL_DEMO=1 runs hack/demo.sh
# once the manager is ready (make run sets it: activity in team-a by two
# users and the sample reports over it).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
K8S_VERSION="${K8S_VERSION:-v1.37.1}"
bin="${root}/bin/k8s/${K8S_VERSION}"
local_dir="${LOCAL_DIR:-${root}/.local}"
run="${local_dir}/run"
pki="${local_dir}/pki"
secure_port="${AUDITOPS_SECURE_PORT:-8443}"
kubectl="${bin}/kubectl"

log() { printf '[make run] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

stop_all() {
  local pidfile pid
  for pidfile in "${run}"/manager.pid "${run}"/kube-apiserver.pid "${run}"/etcd.pid; do
    [ -f "${pidfile}" ] || continue
    pid="$(cat "${pidfile}")"
    if kill -0 "${pid}" 2>/dev/null; then
      kill -TERM "${pid}" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "${pid}" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "${pid}" 2>/dev/null || true
    fi
    rm -f "${pidfile}"
  done
}

if [ "${1:-}" = "stop" ]; then
  stop_all
  exit 0
fi

for b in etcd kube-apiserver kubectl; do
  [ -x "${bin}/${b}" ] || die "${bin}/${b} is missing: run 'make control-plane' (make run does it)"
done
manager_bin="${MANAGER_BIN:-${root}/bin/manager}"
[ -x "${manager_bin}" ] || die "${manager_bin} is missing: run 'make build' (make run does it)"
command -v openssl >/dev/null || die "openssl is missing: hack/deps.sh installs it"

mkdir -p "${run}" "${pki}" "${local_dir}/data"
# A run that crashed leaves pids behind: stop what still runs.
stop_all

free_port() { python3 - <<'PY' 2>/dev/null || shuf -i 20000-40000 -n1
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if port_busy "${secure_port}"; then
  die "port ${secure_port} is in use: set AUDITOPS_SECURE_PORT to another port"
fi

# --- certificates (made once, kept in .local/pki) -------------------------
ca() { # name cn
  [ -f "${pki}/$1.crt" ] && return
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=$2" \
    -keyout "${pki}/$1.key" -out "${pki}/$1.crt" 2>/dev/null
}
cert() { # name ca subject [san]
  [ -f "${pki}/$1.crt" ] && return
  openssl req -newkey rsa:2048 -nodes -subj "$3" -keyout "${pki}/$1.key" -out "${pki}/$1.csr" 2>/dev/null
  local ext="${pki}/$1.ext"
  if [ -n "${4:-}" ]; then
    printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$4" >"${ext}"
  else
    printf 'extendedKeyUsage=clientAuth\n' >"${ext}"
  fi
  openssl x509 -req -in "${pki}/$1.csr" -CA "${pki}/$2.crt" -CAkey "${pki}/$2.key" -CAcreateserial \
    -days 3650 -extfile "${ext}" -out "${pki}/$1.crt" 2>/dev/null
  rm -f "${pki}/$1.csr" "${ext}"
}
ca ca "auditops-local-ca"
ca front-proxy-ca "auditops-local-front-proxy-ca"
cert apiserver ca "/CN=kube-apiserver" "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc,IP:127.0.0.1"
cert admin ca "/O=system:masters/CN=admin"
cert front-proxy-client front-proxy-ca "/CN=front-proxy-client"
cert auditops ca "/CN=auditops-api" "DNS:localhost,DNS:auditops-api.auditops-system.svc,IP:127.0.0.1"
# The audit webhook's client certificate: the manager authenticates it like any client.
cert audit-webhook ca "/O=auditops:audit-webhook/CN=system:auditops:audit-webhook"
# The manager's own identity, the user name its ServiceAccount has in a
# cluster, so the audit policy's rule for it is the one the README gives.
# (system:masters here for now: config/rbac's rules are for the deployed SA.)
cert manager ca "/O=system:masters/CN=system:serviceaccount:auditops-system:auditops-manager"
[ -f "${pki}/sa.key" ] || { openssl genrsa -out "${pki}/sa.key" 2048 2>/dev/null; openssl rsa -in "${pki}/sa.key" -pubout -out "${pki}/sa.pub" 2>/dev/null; }

# --- etcd ------------------------------------------------------------------
etcd_port="$(free_port)"; etcd_peer="$(free_port)"
"${bin}/etcd" --data-dir "${local_dir}/etcd" --name local \
  --listen-client-urls "http://127.0.0.1:${etcd_port}" --advertise-client-urls "http://127.0.0.1:${etcd_port}" \
  --listen-peer-urls "http://127.0.0.1:${etcd_peer}" --initial-advertise-peer-urls "http://127.0.0.1:${etcd_peer}" \
  --initial-cluster "local=http://127.0.0.1:${etcd_peer}" --log-level warn >"${run}/etcd.log" 2>&1 &
echo $! >"${run}/etcd.pid"

trap 'log "stopping"; stop_all; exit 0' INT TERM
trap 'stop_all' ERR

# --- kube-apiserver with audit webhook --------------------------------------
cat >"${run}/audit-policy.yaml" <<'POLICY'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
# Never record secret values or token review payloads.
- level: Metadata
  resources:
  - group: ""
    resources: ["secrets"]
  - group: authentication.k8s.io
    resources: ["tokenreviews"]
# Health probes and discovery.
- level: None
  nonResourceURLs: ["/healthz*", "/livez*", "/readyz*", "/version", "/openapi*"]
# The manager's own requests, its writes of report outputs among them, at
# Metadata: a report's bytes (up to ~900 KiB per ConfigMap) must not be fed
# back into the store and into the next AuditDetails report. (kube-apiserver
# does not audit its own webhook deliveries, so no rule is needed for them.)
- level: Metadata
  users: ["system:serviceaccount:auditops-system:auditops-manager"]
- level: Metadata
  verbs: ["get", "list", "watch"]
- level: RequestResponse
  verbs: ["create", "update", "patch", "delete", "deletecollection"]
- level: Metadata
POLICY
cat >"${run}/audit-webhook.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: auditops
  cluster:
    server: https://127.0.0.1:${secure_port}/ingest/v1/kube-audit
    certificate-authority: ${pki}/ca.crt
users:
- name: kube-apiserver
  user:
    client-certificate: ${pki}/audit-webhook.crt
    client-key: ${pki}/audit-webhook.key
contexts:
- name: default
  context: {cluster: auditops, user: kube-apiserver}
current-context: default
KC
api_port="$(free_port)"
"${bin}/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:${etcd_port}" \
  --bind-address 127.0.0.1 --secure-port "${api_port}" \
  --cert-dir "${run}/apiserver-certs" \
  --tls-cert-file "${pki}/apiserver.crt" --tls-private-key-file "${pki}/apiserver.key" \
  --client-ca-file "${pki}/ca.crt" \
  --authorization-mode RBAC \
  --service-cluster-ip-range 10.0.0.0/24 \
  --disable-admission-plugins ServiceAccount \
  --service-account-issuer https://kubernetes.default.svc --service-account-key-file "${pki}/sa.pub" \
  --service-account-signing-key-file "${pki}/sa.key" \
  --requestheader-client-ca-file "${pki}/front-proxy-ca.crt" \
  --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
  --requestheader-extra-headers-prefix X-Remote-Extra- --requestheader-allowed-names front-proxy-client \
  --proxy-client-cert-file "${pki}/front-proxy-client.crt" --proxy-client-key-file "${pki}/front-proxy-client.key" \
  --audit-policy-file "${run}/audit-policy.yaml" \
  --audit-webhook-config-file "${run}/audit-webhook.kubeconfig" --audit-webhook-mode batch \
  --audit-webhook-batch-max-wait 1s \
  --audit-webhook-truncate-enabled --audit-webhook-truncate-max-event-size 3145728 \
  >"${run}/kube-apiserver.log" 2>&1 &
echo $! >"${run}/kube-apiserver.pid"

kc="${local_dir}/kubeconfig"
"${kubectl}" config --kubeconfig "${kc}" set-cluster local --server "https://127.0.0.1:${api_port}" --certificate-authority "${pki}/ca.crt" --embed-certs >/dev/null
"${kubectl}" config --kubeconfig "${kc}" set-credentials admin --client-certificate "${pki}/admin.crt" --client-key "${pki}/admin.key" --embed-certs >/dev/null
"${kubectl}" config --kubeconfig "${kc}" set-context local --cluster local --user admin >/dev/null
"${kubectl}" config --kubeconfig "${kc}" use-context local >/dev/null
k() { "${kubectl}" --kubeconfig "${kc}" "$@"; }

for _ in $(seq 100); do k get --raw /readyz >/dev/null 2>&1 && break; sleep 0.2; done
k get --raw /readyz >/dev/null 2>&1 || die "kube-apiserver did not become ready: see ${run}/kube-apiserver.log"
log "control plane ready on https://127.0.0.1:${api_port}"

# --- CRDs, RBAC, APIService ----------------------------------------------------
for ns in auditops-system team-a; do
  k create namespace "${ns}" --dry-run=client -o yaml | k apply -f - >/dev/null
done
k apply --server-side -f "${root}/config/crd/bases" >/dev/null
k apply -k "${root}/config/rbac" >/dev/null
k apply -k "${root}/config/admission" >/dev/null
if [ -d "${root}/config/apiservice" ]; then
  cabundle="$(base64 -w0 <"${pki}/ca.crt")"
  cat <<APISVC | k apply -f - >/dev/null
apiVersion: v1
kind: Service
metadata: {name: auditops-api, namespace: auditops-system}
spec:
  # Loopback Endpoints are refused; an ExternalName to 127.0.0.1 reaches a
  # server on this machine through the aggregator.
  type: ExternalName
  externalName: 127.0.0.1
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1alpha1.audit.auditops.dev}
spec:
  group: audit.auditops.dev
  version: v1alpha1
  service: {name: auditops-api, namespace: auditops-system, port: ${secure_port}}
  caBundle: ${cabundle}
  groupPriorityMinimum: 1000
  versionPriority: 15
APISVC
  cat <<RBAC | k apply -f - >/dev/null
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: auditops-local-audit-webhook}
rules:
- apiGroups: [audit.auditops.dev]
  resources: [events]
  verbs: [create]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: auditops-local-audit-webhook}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: auditops-local-audit-webhook}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:auditops:audit-webhook"}
RBAC
fi

# --- the manager -----------------------------------------------------------------
mkc="${run}/manager.kubeconfig"
"${kubectl}" config --kubeconfig "${mkc}" set-cluster local --server "https://127.0.0.1:${api_port}" --certificate-authority "${pki}/ca.crt" --embed-certs >/dev/null
"${kubectl}" config --kubeconfig "${mkc}" set-credentials manager --client-certificate "${pki}/manager.crt" --client-key "${pki}/manager.key" --embed-certs >/dev/null
"${kubectl}" config --kubeconfig "${mkc}" set-context local --cluster local --user manager >/dev/null
"${kubectl}" config --kubeconfig "${mkc}" use-context local >/dev/null
# Metrics on loopback, plain HTTP unless AUDITOPS_METRICS_SECURE=true, which
# serves them as a deployed manager does (HTTPS, a bearer token allowed to
# get /metrics; test/e2e checks that).
metrics_secure="${AUDITOPS_METRICS_SECURE:-false}"
metrics_port="$(free_port)"
manager_args=(
  --kubeconfig "${mkc}"
  --store "sqlite://${local_dir}/data/audit.db"
  --metrics-bind-address "127.0.0.1:${metrics_port}" --metrics-secure="${metrics_secure}"
  --health-probe-bind-address "127.0.0.1:$(free_port)"
)
manager_args+=(--bind-address 127.0.0.1 --secure-port "${secure_port}"
  --tls-cert-file "${pki}/auditops.crt" --tls-private-key-file "${pki}/auditops.key"
  --authentication-kubeconfig "${mkc}" --authorization-kubeconfig "${mkc}")
# One argument per line, for tests that restart the manager (test/faults).
printf '%s\n' "${manager_args[@]}" >"${run}/manager.args"
"${manager_bin}" "${manager_args[@]}" >"${run}/manager.log" 2>&1 &
echo $! >"${run}/manager.pid"
for _ in $(seq 100); do
  kill -0 "$(cat "${run}/manager.pid")" 2>/dev/null || die "the manager exited: see ${run}/manager.log"
  k get apiservice v1alpha1.audit.auditops.dev -o jsonpath='{.status.conditions[?(@.type=="Available")].status}' 2>/dev/null | grep -q True && break
  sleep 0.2
done
k get apiservice v1alpha1.audit.auditops.dev -o jsonpath='{.status.conditions[?(@.type=="Available")].status}' | grep -q True ||
  die "the audit API did not become available: see ${run}/manager.log"

if [ "${RUN_LOCAL_DEMO:-}" = 1 ]; then
  # A failed demo leaves a working environment: say so and carry on.
  LOCAL_DIR="${local_dir}" K8S_VERSION="${K8S_VERSION}" "${root}/hack/demo.sh" ||
    log "the demo failed (see above); the environment runs without it"
fi

echo "auditops ready: export KUBECONFIG=${kc}"
echo "  kubectl get auditreports -n team-a"
echo "  kubectl get auditdetails -n team-a"
echo "  kubectl get namespaceuserssummaries -n team-a"
echo "  kubectl get --raw '/apis/audit.auditops.dev/v1alpha1/namespaces/team-a/auditdetails?start_date=2026-01-01%2000:00:00&end_date=2030-01-01%2000:00:00'"
if [ "${metrics_secure}" = true ]; then
  echo "  metrics: https://127.0.0.1:${metrics_port}/metrics (a bearer token bound to auditops-metrics-reader)"
else
  echo "  metrics: http://127.0.0.1:${metrics_port}/metrics"
fi

if [ "${RUN_LOCAL_DETACH:-}" = 1 ]; then
  trap - INT TERM ERR
  exit 0
fi
log "logs in ${run}/; Ctrl-C stops everything"
while kill -0 "$(cat "${run}/manager.pid" 2>/dev/null)" 2>/dev/null && kill -0 "$(cat "${run}/kube-apiserver.pid")" 2>/dev/null; do
  sleep 1 &
  wait $! || true
done
log "a component exited; stopping (logs in ${run}/)"
stop_all
