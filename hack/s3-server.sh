#!/usr/bin/env bash
# Runs a real S3-compatible server (versitygw, posix backend) on loopback for
# the object-store tests and for local runs. versitygw is built once from the
# Go module proxy at a pinned version into bin/; there is no in-memory fake,
# because the sink must be checked against real S3 semantics (SigV4, multipart
# uploads, path-style addressing).
#
#   hack/s3-server.sh build       build bin/versitygw-<version> (once) and print its path
#   hack/s3-server.sh start DIR   start a server storing under DIR/data; print env lines
#   hack/s3-server.sh stop DIR    stop the server started with DIR
#
# start prints, one per line (also saved in DIR/env):
#   S3_ENDPOINT=http://127.0.0.1:<port>
#   S3_ACCESS_KEY=<key>
#   S3_SECRET_KEY=<secret>
#   S3_REGION=us-east-1
# S3_ACCESS_KEY / S3_SECRET_KEY in the environment override the random ones.
set -euo pipefail

VERSITYGW_VERSION="${VERSITYGW_VERSION:-v1.8.0}"
REGION="us-east-1"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${root}/bin/versitygw-${VERSITYGW_VERSION}"

log() { printf '[s3-server] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=hack/pidfile.sh
. "$(dirname "${BASH_SOURCE[0]}")/pidfile.sh"

build() {
  if [ -x "${bin}" ]; then return; fi
  mkdir -p "${root}/bin"
  # Test packages run in parallel and each may start a server: one builds
  # while the others wait on the lock, then find the binary.
  exec 9>"${root}/bin/.versitygw.lock"
  flock 9
  if [ -x "${bin}" ]; then exec 9>&-; return; fi
  log "building versitygw ${VERSITYGW_VERSION} (about a minute on 2 cores)"
  local gobin
  gobin="$(mktemp -d "${root}/bin/.versitygw-${VERSITYGW_VERSION}.XXXXXX")"
  # GOFLAGS=-mod=mod: `go install pkg@version` ignores the repo's go.mod, but
  # an inherited -mod=vendor/readonly would still make it refuse.
  (cd "${root}" && GOFLAGS=-mod=mod GOBIN="${gobin}" CGO_ENABLED=0 \
    go install -trimpath -ldflags "-s -w" "github.com/versity/versitygw/cmd/versitygw@${VERSITYGW_VERSION}")
  # Rename only a finished binary, so an interrupted build is never mistaken
  # for a good one on the next run.
  mv "${gobin}/versitygw" "${bin}"
  rm -rf "${gobin}"
  exec 9>&-
}

random_hex() { # bytes
  od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'
}

port_in_use() { # port
  # Connecting succeeds only when something already listens there.
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

start() {
  local dir="$1"
  [ -n "${dir}" ] || die "usage: $0 start DIR"
  build
  mkdir -p "${dir}/data"
  dir="$(cd "${dir}" && pwd)"
  if [ -f "${dir}/pid" ] && kill -0 "$(cat "${dir}/pid")" 2>/dev/null; then
    die "a server already runs for ${dir} (pid $(cat "${dir}/pid")); stop it first"
  fi
  local access="${S3_ACCESS_KEY:-AK$(random_hex 8)}"
  local secret="${S3_SECRET_KEY:-SK$(random_hex 16)}"
  local attempt port pid
  # A port picked here can be taken before versitygw binds it; when the server
  # dies at start-up, try another one instead of failing the whole test run.
  for attempt in 1 2 3 4 5 6 7 8 9 10; do
    port=$((20000 + RANDOM % 40000))
    if port_in_use "${port}"; then continue; fi
    # setsid + redirected stdio: the server outlives this script and does not
    # hold the caller's pipes open (a Go test reading our stdout would hang).
    setsid "${bin}" --port "127.0.0.1:${port}" --access "${access}" --secret "${secret}" \
      --region "${REGION}" --health /health --quiet posix "${dir}/data" \
      </dev/null >"${dir}/versitygw.log" 2>&1 &
    pid=$!
    local i
    for i in $(seq 1 100); do # up to 10 s
      if ! kill -0 "${pid}" 2>/dev/null; then break; fi
      if curl -fsS -o /dev/null "http://127.0.0.1:${port}/health" 2>/dev/null; then
        echo "${pid}" >"${dir}/pid"
        {
          echo "S3_ENDPOINT=http://127.0.0.1:${port}"
          echo "S3_ACCESS_KEY=${access}"
          echo "S3_SECRET_KEY=${secret}"
          echo "S3_REGION=${REGION}"
        } >"${dir}/env"
        log "versitygw ${VERSITYGW_VERSION} listening on 127.0.0.1:${port} (pid ${pid})"
        cat "${dir}/env"
        return
      fi
      sleep 0.1
    done
    kill "${pid}" 2>/dev/null || true
    wait "${pid}" 2>/dev/null || true
    log "attempt ${attempt}: versitygw did not become healthy on port ${port}: $(tail -n 5 "${dir}/versitygw.log" 2>/dev/null)"
  done
  die "could not start versitygw (log: ${dir}/versitygw.log)"
}

stop() {
  [ -n "$1" ] || die "usage: $0 stop DIR"
  stop_recorded "$1" "versitygw"
}

case "${1:-}" in
  build) build && echo "${bin}" ;;
  start) start "${2:-}" ;;
  stop) stop "${2:-}" ;;
  *) die "usage: $0 build | start DIR | stop DIR" ;;
esac
