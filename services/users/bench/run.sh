#!/usr/bin/env bash
# Benchmark of panthera-users: GET /v1/users/{id} (random ids) and GET /v1/users?limit=20 under wrk,
# with PostgreSQL on the same machine. Prints requests/s and p99 latency for
#   - a saturating run (as many requests as the machine serves), and
#   - a paced run offering about $RATE req/s (wrk has no fixed-rate mode; each connection waits
#     CONNECTIONS*1000/RATE ms between requests), which is what the p99 target refers to.
#
# Needs: wrk, psql, and PostgreSQL at PANTHERA_TEST_DATABASE_URL (scripts/test-services.sh start).
#   services/users/bench/run.sh            # defaults: 10000 users, 15 s per run, 5000 req/s target
#   USERS=100000 DURATION=30s RATE=5000 CONNECTIONS=50 services/users/bench/run.sh
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
[ -f /tmp/panthera-test/env.sh ] && [ -z "${PANTHERA_TEST_DATABASE_URL:-}" ] && . /tmp/panthera-test/env.sh
: "${PANTHERA_TEST_DATABASE_URL:?start the services: scripts/test-services.sh start}"
USERS="${USERS:-10000}"
DURATION="${DURATION:-15s}"
RATE="${RATE:-5000}"
CONNECTIONS="${CONNECTIONS:-50}"
PACED_CONNECTIONS="${PACED_CONNECTIONS:-100}"
THREADS="${THREADS:-2}"
PORT="${PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
WORK="$(mktemp -d)"
DB="bench_users_$(date +%s)_$$"
BASE="${PANTHERA_TEST_DATABASE_URL%/*}"
SERVER_PID=""

cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  psql -q "$PANTHERA_TEST_DATABASE_URL" -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "bench: building panthera-users (release)"
(cd "$ROOT" && cargo build --release -p panthera-users --bin panthera-users >"$WORK/build.log" 2>&1) \
  || { tail -30 "$WORK/build.log"; exit 1; }

psql -q "$PANTHERA_TEST_DATABASE_URL" -c "CREATE DATABASE \"$DB\"" >/dev/null
DATABASE_URL="$BASE/$DB" PORT="$PORT" BIND_ADDRESS=127.0.0.1 LOG_FORMAT=json RUST_LOG=warn \
  DATABASE_MAX_CONNECTIONS="${DATABASE_MAX_CONNECTIONS:-16}" \
  "$TARGET_DIR/release/panthera-users" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; then break; fi
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null || { cat "$WORK/server.log"; exit 1; }

echo "bench: seeding $USERS users"
# Rows go in directly: hashing $USERS passwords through the API would measure Argon2, not reads.
psql -q "$BASE/$DB" >/dev/null <<SQL
INSERT INTO users (id, first_name, last_name, email, status, password_hash, created_at, updated_at)
SELECT gen_random_uuid(), 'First' || n, 'Last' || n, 'user' || n || '@example.com',
       (ARRAY['active', 'inactive', 'pending'])[1 + n % 3], '\$argon2id\$v=19\$m=19456,t=2,p=1\$seed\$seed',
       now() - make_interval(secs => n), now()
FROM generate_series(1, $USERS) AS n;
VACUUM ANALYZE users;
SQL
psql -At "$BASE/$DB" -c "SELECT id FROM users" >"$WORK/ids.txt"

# Each paced connection sends one request per (pace + latency); 1 ms is subtracted for the latency
# so that the offered rate is close to $RATE. The measured req/s is what counts.
PACE_MS=$(( PACED_CONNECTIONS * 1000 / RATE - 1 ))
RESULTS="$WORK/results.txt"
: >"$RESULTS"

run() { # name mode url [script]
  local name=$1 mode=$2 url=$3 script=$4 pace=0 connections=$CONNECTIONS
  if [ "$mode" = paced ]; then pace=$PACE_MS; connections=$PACED_CONNECTIONS; fi
  local out="$WORK/run-$RANDOM.txt"
  IDS_FILE="$WORK/ids.txt" PACE_MS=$pace wrk -t"$THREADS" -c"$connections" -d"$DURATION" --latency \
    -s "$HERE/$script" "$url" >"$out" 2>&1
  local rps p99 p50 errors
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
  p50=$(awk '$1 == "50%" {print $2}' "$out")
  p99=$(awk '$1 == "99%" {print $2}' "$out")
  errors=$(awk '/Non-2xx|Socket errors/ {print}' "$out" | tr '\n' ' ')
  printf '%-28s %-9s %12s %10s %10s  %s\n' "$name" "$mode" "$rps" "$p50" "$p99" "${errors:-}" | tee -a "$RESULTS"
}

# Warm the connection pool and caches.
IDS_FILE="$WORK/ids.txt" wrk -t1 -c8 -d2s -s "$HERE/get_user.lua" "http://127.0.0.1:$PORT" >/dev/null 2>&1

echo
echo "panthera-users on $(nproc) CPUs (load average $(cut -d' ' -f1 /proc/loadavg) before the runs), $USERS users, $DURATION per run"
echo "saturate: $CONNECTIONS connections flat out; paced: $PACED_CONNECTIONS connections, ${PACE_MS} ms between requests (~$RATE req/s offered)"
printf '%-28s %-9s %12s %10s %10s\n' "endpoint" "mode" "req/s" "p50" "p99"
for mode in saturate paced; do
  run "GET /v1/users/{id}" "$mode" "http://127.0.0.1:$PORT" get_user.lua
  run "GET /v1/users?limit=20" "$mode" "http://127.0.0.1:$PORT/v1/users?limit=20" paced.lua
done
echo
echo "target: p99 < 5 ms at 5000 req/s (paced rows)"
