#!/usr/bin/env bash
# Throwaway PostgreSQL cluster for tests, from the machine's PostgreSQL.
#
#   hack/postgres.sh start DIR   create a cluster in DIR/data, start it on a free
#                                loopback port, print its URL on stdout
#   hack/postgres.sh stop DIR    stop it (DIR is left for the caller to remove)
#
# PG_PORT=N starts on port N (a restart after a stop keeps its URL);
# PG_DURABLE=1 keeps fsync and synchronous commits on (test/faults stops the
# server and counts on every acknowledged commit surviving it).
#
# initdb/pg_ctl come from PATH or /usr/lib/postgresql/*/bin; when missing and
# running as root, the Debian package "postgresql" is installed. PostgreSQL
# refuses to run as root, so as root the server runs as user "postgres"
# (runuser), and DIR is made reachable for it. The cluster trusts local
# connections, listens on 127.0.0.1 only, keeps its socket inside the data
# directory and runs with fsync off: for tests, never for data.
set -euo pipefail

die() { echo "postgres.sh: $*" >&2; exit 1; }
log() { echo "postgres.sh: $*" >&2; }

find_bindir() {
	local d
	if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
		dirname "$(readlink -f "$(command -v pg_ctl)")"
		return 0
	fi
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
		if [[ -x "$d/initdb" && -x "$d/pg_ctl" ]]; then
			echo "$d"
			return 0
		fi
	done
	return 1
}

bindir() {
	local d
	if d=$(find_bindir); then
		echo "$d"
		return
	fi
	[[ $(id -u) -eq 0 ]] || die "initdb/pg_ctl not found; install PostgreSQL (Debian: apt-get install postgresql)"
	log "installing PostgreSQL (apt-get install -y postgresql)"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
	find_bindir || die "initdb/pg_ctl still not found after installing postgresql"
}

# as_pg runs a command as the cluster's owner.
as_pg() {
	if [[ $(id -u) -eq 0 ]]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# reachable makes DIR's parents traversable for the postgres user (mktemp
# directories are 0700), touching only those it cannot enter yet.
reachable() {
	local p
	p=$(dirname "$1")
	while [[ "$p" != "/" ]]; do
		if ! runuser -u postgres -- test -x "$p" 2>/dev/null; then
			log "chmod o+x $p (so the postgres user can reach the cluster)"
			chmod o+x "$p"
		fi
		p=$(dirname "$p")
	done
}

free_port() {
	local port
	for _ in $(seq 1 50); do
		port=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return 0
		fi
	done
	die "no free port found"
}

start() {
	local dir=$1 bin data port url
	bin=$(bindir)
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd -P)
	data="$dir/data"
	[[ ! -e "$data/postmaster.pid" ]] || die "a cluster is already running in $data"
	if [[ $(id -u) -eq 0 ]]; then
		id postgres >/dev/null 2>&1 || die "user postgres does not exist (install the postgresql package)"
		chown postgres: "$dir"
		reachable "$dir"
	fi
	if [[ ! -s "$data/PG_VERSION" ]]; then
		as_pg "$bin/initdb" -D "$data" -U postgres -A trust --no-sync -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 ||
			{ cat "$dir/initdb.log" >&2; die "initdb failed"; }
	fi
	local fast="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
	[[ "${PG_DURABLE:-}" != 1 ]] || fast=""
	for _ in 1 2 3 4 5; do
		port=${PG_PORT:-$(free_port)}
		if as_pg "$bin/pg_ctl" -D "$data" -l "$dir/postgres.log" -w -t 60 -s \
			-o "-c listen_addresses=127.0.0.1 -p $port -k $data $fast -c max_connections=300 -c shared_buffers=128MB" \
			start >&2; then
			# No TLS: a throwaway test server on loopback. Deployed URLs use
			# sslmode=verify-full (README, config/postgres).
			url="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
			echo "$url" >"$dir/url"
			echo "$url"
			return 0
		fi
		[[ -z "${PG_PORT:-}" ]] || break
		grep -q "could not bind\|Address already in use" "$dir/postgres.log" 2>/dev/null || break
		log "port $port taken, trying another"
	done
	tail -n 20 "$dir/postgres.log" >&2 || true
	die "PostgreSQL did not start"
}

stop() {
	local dir=$1 bin
	[[ -d "$dir/data" ]] || return 0
	[[ -e "$dir/data/postmaster.pid" ]] || return 0
	bin=$(bindir)
	as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate -w -t 30 -s stop >&2
}

case "${1:-}" in
start) [[ $# -eq 2 ]] || die "usage: $0 start DIR"; start "$2" ;;
stop) [[ $# -eq 2 ]] || die "usage: $0 stop DIR"; stop "$2" ;;
*) die "usage: $0 start DIR | stop DIR" ;;
esac
