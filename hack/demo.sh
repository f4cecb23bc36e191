#!/usr/bin/env bash
# make demo (and make run, which calls it once the manager is ready): a
# little real activity in team-a, so that the sample reports and the audit
# API show rows on a first run. Two users act through the local
# kube-apiserver by impersonation (kubectl --as), so their requests reach
# auditops through the real audit webhook:
#   alice (Role demo-editor: ConfigMaps, read Pods) creates, patches and
#         deletes a ConfigMap, and is denied the Secrets;
#   bob   (Role demo-viewer: read ConfigMaps and Pods) reads them, and is
#         denied deleting the ConfigMap and the Pod.
# It waits until the audit API shows alice's last action, then (re)creates
# the team-a sample reports of config/samples, so that they run over the
# activity, waits for them and prints what kubectl shows.
#
# Idempotent: every run starts from the same objects and ends with the
# ConfigMap gone, so a second run repeats the same actions (and adds the
# same rows again: it is an audit trail).
#
# Environment: LOCAL_DIR (.local: its kubeconfig), K8S_VERSION (v1.37.1),
# DEMO_TIMEOUT (60: seconds to wait for the rows and for the reports).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
K8S_VERSION="${K8S_VERSION:-v1.37.1}"
local_dir="${LOCAL_DIR:-${root}/.local}"
kubectl="${root}/bin/k8s/${K8S_VERSION}/kubectl"
kc="${local_dir}/kubeconfig"
timeout="${DEMO_TIMEOUT:-60}"
ns=team-a

log() { printf '[demo] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
k() { "${kubectl}" --kubeconfig "${kc}" "$@"; }
# as USER ARGS...: one action of a demo user, echoed as the user would type it.
as() {
  local user="$1"; shift
  log "${user}: kubectl $*"
  k --as "${user}" -n "${ns}" "$@" >/dev/null
}
# denied USER ARGS...: an action RBAC must refuse.
denied() {
  local user="$1" out; shift
  log "${user}: kubectl $*   (denied)"
  if out="$(k --as "${user}" -n "${ns}" "$@" 2>&1)"; then
    die "${user} was allowed to: kubectl $*"
  fi
  grep -q Forbidden <<<"${out}" || die "kubectl $* as ${user} failed otherwise: ${out}"
}
# wait_for WHAT CMD...: retry CMD for up to ${timeout} seconds.
wait_for() {
  local what="$1"; shift
  for _ in $(seq $((timeout * 2))); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  die "timed out after ${timeout}s waiting for ${what}"
}

[ -x "${kubectl}" ] || die "${kubectl} is missing: run 'make control-plane'"
[ -f "${kc}" ] || die "${kc} is missing: start the environment with 'make run' first"
k get --raw /readyz >/dev/null 2>&1 || die "the control plane of ${kc} does not answer: start it with 'make run'"

# --- the users' grants and a Pod to look at (admin, idempotent) -------------
k create namespace "${ns}" --dry-run=client -o yaml | k apply -f - >/dev/null
k apply -f - >/dev/null <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: demo-editor, namespace: ${ns}}
rules:
- {apiGroups: [""], resources: [configmaps], verbs: [get, list, watch, create, update, patch, delete]}
- {apiGroups: [""], resources: [pods], verbs: [get, list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: demo-viewer, namespace: ${ns}}
rules:
- {apiGroups: [""], resources: [configmaps, pods], verbs: [get, list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: demo-alice, namespace: ${ns}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: demo-editor}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: alice}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: demo-bob, namespace: ${ns}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: demo-viewer}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: bob}]
---
# No scheduler runs here: the Pod stays Pending, an object to read and to
# be refused deleting.
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: ${ns}, labels: {app: web}}
spec:
  containers: [{name: web, image: registry.k8s.io/pause:3.10}]
EOF
# A run interrupted half-way leaves the ConfigMap behind.
k delete configmap app-settings -n "${ns}" --ignore-not-found >/dev/null
# RBAC reaches the authorizer through an informer: wait for the bindings.
wait_for "alice's and bob's RoleBindings to take effect" \
  bash -c "'${kubectl}' --kubeconfig '${kc}' auth can-i delete configmaps -n ${ns} --as alice &&
           '${kubectl}' --kubeconfig '${kc}' auth can-i get pods -n ${ns} --as bob"

# --- the activity --------------------------------------------------------------
# The window of the two users' actions, to the millisecond: the rows of the
# set-up above are before it.
since="$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)"
as alice create configmap app-settings --from-literal=color=blue
as alice patch configmap app-settings --type merge -p '{"data":{"color":"green"}}'
as bob get configmap app-settings
as bob get pods
as bob get pod web
denied bob delete configmap app-settings
denied bob delete pod web
denied alice get secrets
as alice get pods
as alice delete configmap app-settings
until="$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)"

# kube-apiserver's webhook sends batches once a second: wait for the last action.
# (Output in a variable: grep -q stops reading early, and with pipefail
# kubectl's broken pipe would fail the test.)
alice_deleted() {
  local rows
  rows="$(k get auditdetails -n "${ns}" --field-selector "user=alice,since=${since}" --no-headers)" &&
    grep -q 'delete .*/configmaps .*success' <<<"${rows}"
}
wait_for "the audit webhook to deliver the demo's events" alice_deleted
log "the audit API shows the activity since ${since}"

# --- the sample reports of team-a, run over it ------------------------------------
samples=() names=()
for f in "${root}"/config/samples/reports_v1alpha1_*.yaml; do
  grep -q "^  namespace: ${ns}$" "${f}" || continue
  samples+=(-f "${f}")
  names+=("$(sed -n 's/^  name: //p' "${f}" | head -1)")
done
# A report runs once: re-create them so that they cover this activity. No
# garbage collector runs here (no kube-controller-manager), so their outputs
# go too, or the new reports would find them in the way.
k delete "${samples[@]}" --ignore-not-found --wait >/dev/null
selector="app.kubernetes.io/managed-by=auditops,reports.auditops.dev/report in ($(IFS=,; echo "${names[*]}"))"
k delete configmaps,secrets -n "${ns}" -l "${selector}" --ignore-not-found >/dev/null
k apply "${samples[@]}" >/dev/null
reports_done() {
  local phases
  phases="$(k get auditreports -n "${ns}" --no-headers -o custom-columns=P:.status.phase)" &&
    [ -n "${phases}" ] && ! grep -qvE '^(Succeeded|Scheduled)$' <<<"${phases}"
}
wait_for "the sample reports to finish" reports_done
log "sample reports done"

echo "\$ kubectl get auditreports -n ${ns}"
k get auditreports -n "${ns}"
echo "\$ kubectl get auditdetails -n ${ns} --field-selector since=${since},until=${until}"
k get auditdetails -n "${ns}" --field-selector "since=${since},until=${until}"
