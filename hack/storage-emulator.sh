#!/usr/bin/env bash
# Runs a real Google Cloud Storage or Azure Blob Storage emulator on loopback
# for the gs:// and azblob:// sink tests, as hack/s3-server.sh does for s3://:
#   gcs    fake-gcs-server, built once from the Go module proxy at a pinned
#          version into bin/fake-gcs-server-<version>
#   azure  Azurite (blob service), installed once from npm at the version and
#          lockfile of hack/azurite/ into bin/azurite-<version>/ (needs node
#          and npm: hack/deps.sh installs them when missing)
#
#   hack/storage-emulator.sh gcs|azure build       build/install (once), print the program's path
#   hack/storage-emulator.sh gcs|azure start DIR   start one storing under DIR/data; print env lines
#   hack/storage-emulator.sh gcs|azure stop DIR    stop the one started with DIR
#
# start prints, one per line (also saved in DIR/env):
#   gcs:   GCS_ENDPOINT=http://127.0.0.1:<port>
#   azure: AZURE_BLOB_ENDPOINT=http://127.0.0.1:<port>/<account>
#          AZURE_ACCOUNT_NAME=<account>  AZURE_ACCOUNT_KEY=<base64 key>
# Azurite serves one account with a random key (AZURITE_ACCOUNTS), so a test
# with a wrong key is refused as Azure would refuse it.
set -euo pipefail

FAKE_GCS_VERSION="${FAKE_GCS_VERSION:-v1.56.1}"
AZURITE_VERSION="$(sed -n 's/.*"azurite": *"\([0-9.]*\)".*/\1/p' "$(dirname "${BASH_SOURCE[0]}")/azurite/package.json")"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
kind="${1:-}"
case "${kind}" in
  gcs) bin="${root}/bin/fake-gcs-server-${FAKE_GCS_VERSION}" ;;
  azure) bin="${root}/bin/azurite-${AZURITE_VERSION}/node_modules/.bin/azurite-blob" ;;
  *) echo "usage: $0 gcs|azure build | start DIR | stop DIR" >&2; exit 1 ;;
esac

log() { printf '[%s-emulator] %s\n' "${kind}" "$*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=hack/pidfile.sh
. "$(dirname "${BASH_SOURCE[0]}")/pidfile.sh"

build() {
  if [ -x "${bin}" ]; then return; fi
  mkdir -p "${root}/bin"
  # Test packages run in parallel and each may start an emulator: one builds
  # while the others wait on the lock, then find the program.
  exec 9>"${root}/bin/.${kind}-emulator.lock"
  flock 9
  if [ -x "${bin}" ]; then exec 9>&-; return; fi
  local tmp
  if [ "${kind}" = gcs ]; then
    log "building fake-gcs-server ${FAKE_GCS_VERSION} (about a minute on 2 cores)"
    tmp="$(mktemp -d "${root}/bin/.fake-gcs-server.XXXXXX")"
    # Its go.mod has no replace directives, so go install works as it is.
    (cd "${root}" && GOFLAGS=-mod=mod GOBIN="${tmp}" CGO_ENABLED=0 \
      go install -trimpath -ldflags "-s -w" "github.com/fsouza/fake-gcs-server@${FAKE_GCS_VERSION}")
    mv "${tmp}/fake-gcs-server" "${bin}"
    rm -rf "${tmp}"
  else
    command -v npm >/dev/null || die "npm is missing: run hack/deps.sh"
    log "installing azurite ${AZURITE_VERSION} (npm ci of hack/azurite, about 20 s)"
    tmp="$(mktemp -d "${root}/bin/.azurite.XXXXXX")"
    cp "${root}/hack/azurite/package.json" "${root}/hack/azurite/package-lock.json" "${tmp}/"
    (cd "${tmp}" && npm ci --omit=dev --no-audit --no-fund --loglevel=error >&2)
    # Rename only a finished install, so an interrupted one is never
    # mistaken for a good one on the next run.
    rm -rf "${root}/bin/azurite-${AZURITE_VERSION}"
    mv "${tmp}" "${root}/bin/azurite-${AZURITE_VERSION}"
  fi
  exec 9>&-
}

port_in_use() { # port
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# ready PORT: the emulator answers HTTP (any status: Azurite refuses an
# unsigned request, which still shows it listens).
ready() {
  local code
  code="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/" 2>/dev/null || true)"
  [ -n "${code}" ] && [ "${code}" != 000 ]
}

start() {
  local dir="$1"
  [ -n "${dir}" ] || die "usage: $0 ${kind} start DIR"
  build
  mkdir -p "${dir}/data"
  dir="$(cd "${dir}" && pwd)"
  if [ -f "${dir}/pid" ] && kill -0 "$(cat "${dir}/pid")" 2>/dev/null; then
    die "an emulator already runs for ${dir} (pid $(cat "${dir}/pid")); stop it first"
  fi
  local account key
  account="auditops$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
  key="$(head -c 64 /dev/urandom | base64 -w0)"
  local attempt port pid
  # A port picked here can be taken before the emulator binds it; when it
  # dies at start-up, try another one.
  for attempt in 1 2 3 4 5 6 7 8 9 10; do
    port=$((20000 + RANDOM % 40000))
    if port_in_use "${port}"; then continue; fi
    # setsid + redirected stdio: the emulator outlives this script and does
    # not hold the caller's pipes open.
    if [ "${kind}" = gcs ]; then
      setsid "${bin}" -scheme http -host 127.0.0.1 -port "${port}" \
        -public-host "127.0.0.1:${port}" -external-url "http://127.0.0.1:${port}" \
        -backend filesystem -filesystem-root "${dir}/data" -log-level warn \
        </dev/null >"${dir}/emulator.log" 2>&1 &
    else
      AZURITE_ACCOUNTS="${account}:${key}" setsid "${bin}" --blobHost 127.0.0.1 --blobPort "${port}" \
        --location "${dir}/data" --silent --disableTelemetry --skipApiVersionCheck \
        </dev/null >"${dir}/emulator.log" 2>&1 &
    fi
    pid=$!
    local i
    for i in $(seq 1 150); do # up to 15 s (node starts in ~1 s)
      if ! kill -0 "${pid}" 2>/dev/null; then break; fi
      if ready "${port}"; then
        echo "${pid}" >"${dir}/pid"
        if [ "${kind}" = gcs ]; then
          echo "GCS_ENDPOINT=http://127.0.0.1:${port}" >"${dir}/env"
        else
          {
            echo "AZURE_BLOB_ENDPOINT=http://127.0.0.1:${port}/${account}"
            echo "AZURE_ACCOUNT_NAME=${account}"
            echo "AZURE_ACCOUNT_KEY=${key}"
          } >"${dir}/env"
        fi
        log "listening on 127.0.0.1:${port} (pid ${pid})"
        cat "${dir}/env"
        return
      fi
      sleep 0.1
    done
    kill "${pid}" 2>/dev/null || true
    wait "${pid}" 2>/dev/null || true
    log "attempt ${attempt}: the emulator did not answer on port ${port}: $(tail -n 5 "${dir}/emulator.log" 2>/dev/null)"
  done
  die "could not start the emulator (log: ${dir}/emulator.log)"
}

stop() {
  [ -n "$1" ] || die "usage: $0 ${kind} stop DIR"
  stop_recorded "$1" "the emulator"
}

case "${2:-}" in
  build) build && echo "${bin}" ;;
  start) start "${3:-}" ;;
  stop) stop "${3:-}" ;;
  *) die "usage: $0 ${kind} build | start DIR | stop DIR" ;;
esac
