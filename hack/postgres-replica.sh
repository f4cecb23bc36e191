#!/usr/bin/env bash
# A throwaway PostgreSQL primary with a streaming hot standby, for the tests
# of --store-read-url.
#
#   hack/postgres-replica.sh start DIR   start a primary in DIR/primary and a
#                                        standby cloned from it by pg_basebackup
#                                        in DIR/standby, both on loopback; print
#                                        the primary's URL, then the standby's,
#                                        one a line
#   hack/postgres-replica.sh stop DIR    stop both (DIR is left for the caller)
#
# Each server is one of hack/postgres.sh (same binaries, user, options; PG_DURABLE
# is passed on). PostgreSQL 15's defaults already stream (wal_level=replica,
# max_wal_senders=10, hot_standby=on) and initdb's pg_hba trusts replication
# connections from 127.0.0.1, so the standby needs only its clone:
# pg_basebackup -R writes standby.signal and primary_conninfo, and the standby
# then starts like any cluster of hack/postgres.sh. The standby replays the
# primary's WAL; the tests pause and resume that with pg_wal_replay_pause()
# and pg_wal_replay_resume() to show a lagging replica.
set -euo pipefail

die() { echo "postgres-replica.sh: $*" >&2; exit 1; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# pg_bin finds pg_basebackup where hack/postgres.sh found pg_ctl.
pg_bin() {
	local d
	if command -v pg_basebackup >/dev/null 2>&1; then
		command -v pg_basebackup
		return
	fi
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
		if [[ -x "$d/pg_basebackup" ]]; then
			echo "$d/pg_basebackup"
			return
		fi
	done
	die "pg_basebackup not found (Debian: apt-get install postgresql)"
}

as_pg() {
	if [[ $(id -u) -eq 0 ]]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

start() {
	local dir=$1 primary port standby
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd -P)
	# Both servers pick their own free port: PG_PORT is one server's.
	primary=$(env -u PG_PORT "$here/postgres.sh" start "$dir/primary")
	port=$(sed -E 's#^postgres://[^@]*@127\.0\.0\.1:([0-9]+)/.*#\1#' <<<"$primary")
	# hack/postgres.sh commits asynchronously (unless PG_DURABLE=1): the WAL
	# writer then flushes, and so streams, every wal_writer_delay (200 ms),
	# which a test that waits for the standby would wait out on each write.
	as_pg "$(dirname "$(pg_bin)")/psql" -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres \
		-c "ALTER SYSTEM SET wal_writer_delay = '10ms'" -c "SELECT pg_reload_conf()" >/dev/null
	if [[ ! -s "$dir/standby/data/PG_VERSION" ]]; then
		mkdir -p "$dir/standby"
		[[ $(id -u) -ne 0 ]] || chown postgres: "$dir/standby"
		# -c fast: checkpoint at once instead of spreading it; -X stream:
		# the WAL written meanwhile comes along; -R: configure as a standby.
		as_pg "$(pg_bin)" -h 127.0.0.1 -p "$port" -U postgres -D "$dir/standby/data" \
			-R -X stream -c fast --no-sync >"$dir/standby/basebackup.log" 2>&1 ||
			{ cat "$dir/standby/basebackup.log" >&2; die "pg_basebackup failed"; }
		# The clone carries the primary's pid file name only while it runs;
		# its port and socket come from hack/postgres.sh's command line.
		rm -f "$dir/standby/data/postmaster.pid"
	fi
	standby=$(env -u PG_PORT "$here/postgres.sh" start "$dir/standby")
	echo "$primary"
	echo "$standby"
}

stop() {
	local dir=$1
	"$here/postgres.sh" stop "$dir/standby" || true
	"$here/postgres.sh" stop "$dir/primary"
}

case "${1:-}" in
start) [[ $# -eq 2 ]] || die "usage: $0 start DIR"; start "$2" ;;
stop) [[ $# -eq 2 ]] || die "usage: $0 stop DIR"; stop "$2" ;;
*) die "usage: $0 start DIR | stop DIR" ;;
esac
