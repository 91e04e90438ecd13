#!/usr/bin/env bash
# Starts (or stops) versitygw, a real S3-compatible server for the tests (install-versitygw.sh
# builds it): S3 on 127.0.0.1:PORT only, the POSIX backend rooted at DIR/s3-data, object versions
# in DIR/s3-versions (versitygw enables bucket versioning only with such a directory, outside the
# root). Both stay across stop and start, so a restart keeps the buckets and objects.
# Root credentials are made once per DIR, at random, into DIR/versitygw.env (to source):
#   export PANTHERA_TEST_S3_ACCESS_KEY=... PANTHERA_TEST_S3_SECRET_KEY=...
# Random rather than fixed: the env file is where the tests read them from anyway, no
# key-looking string sits in the repository, and a server left from another DIR answers with an
# auth error instead of passing for this one. Region: us-east-1.
#   scripts/versitygw.sh start DIR PORT  -> returns once the server answers HTTP
#   scripts/versitygw.sh stop DIR
set -euo pipefail
# shellcheck source=scripts/pidfile.sh
source "$(dirname "${BASH_SOURCE[0]}")/pidfile.sh"

HERE="$(dirname "${BASH_SOURCE[0]}")"

listening() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

start() {
  local dir=$1 port=$2
  case "$port" in
    '' | *[!0-9]*) echo "versitygw: PORT must be a number, got '$port'" >&2; return 2 ;;
  esac
  local bin
  bin="$(bash "$HERE/install-versitygw.sh")"
  # A server started on a taken port fails to bind, while the readiness check below would be
  # answered by whatever holds the port: refuse up front.
  if listening "$port"; then
    echo "versitygw: 127.0.0.1:$port is already in use (a server of an earlier run? pid file: $dir/versitygw.pid)" >&2
    return 1
  fi
  mkdir -p "$dir/s3-data" "$dir/s3-versions"
  dir="$(cd "$dir" && pwd)"
  if [ ! -s "$dir/versitygw.env" ]; then
    local access secret
    access="PANTHERA$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr a-f A-F)"
    secret="$(head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    (
      umask 077
      echo "export PANTHERA_TEST_S3_ACCESS_KEY=$access PANTHERA_TEST_S3_SECRET_KEY=$secret" \
        >"$dir/versitygw.env.tmp"
    )
    mv "$dir/versitygw.env.tmp" "$dir/versitygw.env"
  fi
  # shellcheck source=/dev/null
  source "$dir/versitygw.env"
  # The keys go in through the environment (versitygw reads ROOT_ACCESS_KEY_ID and
  # ROOT_SECRET_ACCESS_KEY), not the command line, which every user can read in /proc.
  # --quiet: no line per request on stdout (errors are still logged).
  ROOT_ACCESS_KEY_ID="$PANTHERA_TEST_S3_ACCESS_KEY" ROOT_SECRET_ACCESS_KEY="$PANTHERA_TEST_S3_SECRET_KEY" \
    nohup "$bin" --port "127.0.0.1:$port" --region us-east-1 --quiet \
    posix --versioning-dir "$dir/s3-versions" "$dir/s3-data" \
    >"$dir/versitygw.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$dir/versitygw.pid"
  # It answers in well under a second; up to 30 s on busy cores. The server must stay alive
  # meanwhile: a dead one is reported at once.
  local deadline=$((SECONDS + 30))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "versitygw: the server exited; last lines of $dir/versitygw.log:" >&2
      tail -30 "$dir/versitygw.log" >&2
      rm -f "$dir/versitygw.pid"
      return 1
    fi
    # Any HTTP response will do (an unsigned request gets 403 AccessDenied).
    if curl -sS -m 2 -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null; then
      echo "versitygw: up on 127.0.0.1:$port (pid $pid, log $dir/versitygw.log)" >&2
      return 0
    fi
    sleep 0.1
  done
  echo "versitygw: no answer after 30 s; last lines of $dir/versitygw.log:" >&2
  tail -30 "$dir/versitygw.log" >&2
  stop "$dir"
  return 1
}

stop() {
  # SIGTERM shuts the server down at once.
  stop_by_pidfile "$1/versitygw.pid" versitygw versitygw 10
}

case "${1:-}" in
  start)
    [ $# -eq 3 ] || { echo "usage: $0 start DIR PORT" >&2; exit 2; }
    start "$2" "$3"
    ;;
  stop)
    [ $# -eq 2 ] || { echo "usage: $0 stop DIR" >&2; exit 2; }
    stop "$2"
    ;;
  *) echo "usage: $0 start DIR PORT | stop DIR" >&2; exit 2 ;;
esac
