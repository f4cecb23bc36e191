#!/usr/bin/env bash
# Installs the machine packages auditops' build and tests need, only when
# missing: make and git for the build, PostgreSQL's server binaries for the
# store tests. Go tools and the control plane are built into bin/ by the Makefile.
set -euo pipefail

missing=()
command -v make >/dev/null || missing+=(make)
command -v git >/dev/null || missing+=(git)
command -v curl >/dev/null || missing+=(curl)
# make run and the end-to-end test make their certificates with openssl.
command -v openssl >/dev/null || missing+=(openssl)
# make image copies the CA bundle and zoneinfo into the image's base layer.
[ -f /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
[ -f /usr/share/zoneinfo/Europe/Berlin ] || missing+=(tzdata)
if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  missing+=(postgresql)
fi
if ! id postgres >/dev/null 2>&1; then
  missing+=(postgresql)
fi
# The azblob:// sink tests run Azurite, an npm package (hack/storage-emulator.sh).
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "[deps] installing: ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v go >/dev/null || { echo "[deps] Go 1.26 is required: https://go.dev/dl/" >&2; exit 1; }
