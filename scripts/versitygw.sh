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
# shellcheck source=scripts/test-server.sh
source "$(dirname "${BASH_SOURCE[0]}")/test-server.sh"

HERE="$(dirname "${BASH_SOURCE[0]}")"

start() {
  local dir=$1 port=$2
  refuse_taken_ports versitygw "$dir/versitygw.pid" "$port" || return
  local bin
  bin="$(bash "$HERE/install-versitygw.sh")"
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
  echo $! >"$dir/versitygw.pid"
  # It answers in well under a second; up to 30 s on busy cores. Any HTTP response will do (an
  # unsigned request gets 403 AccessDenied).
  wait_until_ready versitygw "$dir/versitygw.pid" "$dir/versitygw.log" 30 \
    curl -sS -m 2 -o /dev/null "http://127.0.0.1:$port/"
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
