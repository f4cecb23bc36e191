#!/usr/bin/env bash
# hack/with-postgres.sh CMD...: run CMD with a throwaway PostgreSQL server,
# its admin URL in AUDITOPS_TEST_POSTGRES_URL (tests create one database per
# test through it). The server is stopped and its files removed when CMD
# ends, however it ends. When AUDITOPS_TEST_POSTGRES_URL is already set, that
# server is used and none is started.
set -euo pipefail

[[ $# -ge 1 ]] || { echo "usage: $0 CMD [ARG...]" >&2; exit 2; }

if [[ -n "${AUDITOPS_TEST_POSTGRES_URL:-}" ]]; then
	exec "$@"
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dir=$(mktemp -d "${TMPDIR:-/tmp}/auditops-pg.XXXXXX")
cleanup() {
	"$here/postgres.sh" stop "$dir" || true
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

AUDITOPS_TEST_POSTGRES_URL=$("$here/postgres.sh" start "$dir")
export AUDITOPS_TEST_POSTGRES_URL
echo "with-postgres.sh: PostgreSQL at $AUDITOPS_TEST_POSTGRES_URL" >&2

# CMD runs in the background so that a signal to this script is handled at
# once: it is passed on to CMD, and the server is stopped when CMD is gone.
set +e
"$@" <&0 &
child=$!
trap 'kill -INT "$child" 2>/dev/null' INT
trap 'kill -TERM "$child" 2>/dev/null' TERM
wait "$child"
rc=$?
while kill -0 "$child" 2>/dev/null; do
	wait "$child"
	rc=$?
done
set -e
exit "$rc"
