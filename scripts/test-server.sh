# shellcheck shell=bash
# Sourced by the scripts that run one test server in the background (opensearch.sh,
# versitygw.sh): stopping it by its pid file.

# stop_by_pidfile PIDFILE MATCH NAME SECONDS: SIGTERM the process the pid file names, wait up to
# SECONDS for it to exit, then SIGKILL (the next start must find its ports free). The process is
# signalled only if its command line contains MATCH: a pid file left by a machine restart may
# name an unrelated process by now.
stop_by_pidfile() {
  local pidfile=$1 match=$2 name=$3 seconds=$4
  [ -f "$pidfile" ] || return 0
  local pid
  pid="$(cat "$pidfile")"
  if ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$match"; then
    rm -f "$pidfile"
    return 0
  fi
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 $((seconds * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "$name: pid $pid still running after $seconds s; killing it" >&2
      kill -9 "$pid" 2>/dev/null || true
      for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
  fi
  rm -f "$pidfile"
}
