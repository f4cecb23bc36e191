#!/usr/bin/env bash
# Sourced by the scripts that run a test server in the background
# (s3-server.sh, storage-emulator.sh): stopping the one recorded in a
# directory's pid file. The sourcing script defines log.

# stop_recorded DIR NAME stops the process whose pid DIR/pid holds: SIGTERM,
# up to 5 s, then SIGKILL; then forgets it.
stop_recorded() {
  local dir="$1" name="$2"
  [ -f "${dir}/pid" ] || { log "no ${name} recorded in ${dir}"; return; }
  local pid
  pid="$(cat "${dir}/pid")"
  if kill "${pid}" 2>/dev/null; then
    local i
    for i in $(seq 1 50); do # up to 5 s, then force
      kill -0 "${pid}" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "${pid}" 2>/dev/null || true
  fi
  rm -f "${dir}/pid"
  log "stopped ${name} (pid ${pid})"
}
