#!/usr/bin/env bash
# make run: the local environment. Not built yet (issue 6): it will start etcd
# and kube-apiserver from bin/k8s with an audit webhook pointing at the
# manager, install the CRDs and APIService, and run the manager with SQLite.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
echo "make run: the control plane binaries are ready in ${root}/bin/k8s and the manager in ${root}/bin/manager."
echo "What is still missing: the local environment script (etcd + kube-apiserver with the audit webhook,"
echo "CRDs, APIService, the manager on SQLite). Until it lands, 'make run-cluster' runs the manager"
echo "against the cluster of your current kubeconfig (after 'make install')."
exit 1
