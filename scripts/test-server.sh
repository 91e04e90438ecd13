# shellcheck shell=bash
# Sourced by the scripts that run one test server in the background (opensearch.sh,
# versitygw.sh): the checks before its start, the wait for it, and its stop by its pid file.

# refuse_taken_ports NAME PIDFILE PORT...: fails, saying so, when a port is in use. A server
# started on a taken port fails to bind, while its readiness check would be answered by whatever
# holds the port.
refuse_taken_ports() {
  local name=$1 pidfile=$2 port
  shift 2
  for port in "$@"; do
    case "$port" in
      '' | *[!0-9]*) echo "$name: PORT must be a number, got '$port'" >&2; return 2 ;;
    esac
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$name: 127.0.0.1:$port is already in use (a server of an earlier run? pid file: $pidfile)" >&2
      return 1
    fi
  done
}

# wait_until_ready NAME PIDFILE LOG SECONDS CHECK...: waits until the command CHECK succeeds
# while the process of PIDFILE stays alive; a dead one is reported at once, with the log's last
# lines, and a silent one after SECONDS is stopped.
wait_until_ready() {
  local name=$1 pidfile=$2 log=$3 seconds=$4 pid
  shift 4
  pid="$(cat "$pidfile")"
  local deadline=$((SECONDS + seconds))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$name: the server exited; last lines of $log:" >&2
      tail -30 "$log" >&2
      rm -f "$pidfile"
      return 1
    fi
    if "$@" 2>/dev/null; then
      echo "$name: up (pid $pid, log $log)" >&2
      return 0
    fi
    sleep 0.2
  done
  echo "$name: not ready after $seconds s; last lines of $log:" >&2
  tail -30 "$log" >&2
  stop_by_pidfile "$pidfile" "" "$name" 10
  return 1
}

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
