#!/usr/bin/env bash
# hack/capacity-sample.sh PID OUT PGDATA URL [STANDBY_PGDATA STANDBY_URL]
#
# Samples, every 0.5 s while process PID runs (the bench), one line of OUT:
#   unix-time  pg-cpu-ticks  pid-cpu-ticks  pg-wal-bytes  load1  [standby-cpu-ticks standby-replayed-wal-bytes]
# CPU ticks (getconf CLK_TCK a second) are user+system of the process, its
# live children and the children it has reaped: for PostgreSQL the cluster
# whose postmaster.pid is in PGDATA (every backend), for PID the bench and its
# report children. WAL bytes are pg_current_wal_lsn() (on the standby
# pg_last_wal_replay_lsn()) as bytes. docs/capacity.md divides the deltas over
# a bench phase by the events the phase stored.
set -euo pipefail
[[ $# -eq 4 || $# -eq 6 ]] || { echo "usage: $0 PID OUT PGDATA URL [STANDBY_PGDATA STANDBY_URL]" >&2; exit 2; }
bpid=$1 out=$2 pgdata=$3 url=$4 sdata=${5:-} surl=${6:-}

cpu_of() { awk '{print $14+$15+$16+$17}' "/proc/$1/stat" 2>/dev/null || echo 0; }
tree_cpu() {
	local p=$1 sum c
	sum=$(cpu_of "$p")
	for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do
		sum=$((sum + $(awk '{print $14+$15}' "/proc/$c/stat" 2>/dev/null || echo 0)))
	done
	echo "$sum"
}
wal() { psql -X "$1" -Atc "SELECT $2 - '0/0'" 2>/dev/null || echo -; }

pm=$(head -1 "$pgdata/postmaster.pid")
spm=""
[[ -z "$sdata" ]] || spm=$(head -1 "$sdata/postmaster.pid")
while kill -0 "$bpid" 2>/dev/null; do
	line="$(date +%s.%N) $(tree_cpu "$pm") $(tree_cpu "$bpid") $(wal "$url" "pg_current_wal_lsn()") $(cut -d' ' -f1 /proc/loadavg)"
	if [[ -n "$spm" ]]; then
		line="$line $(tree_cpu "$spm") $(wal "$surl" "pg_last_wal_replay_lsn()")"
	fi
	echo "$line" >>"$out"
	sleep 0.5
done
