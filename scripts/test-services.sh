#!/usr/bin/env bash
# Starts (or stops) the real services the tests use, on loopback with private ports and data dirs:
# PostgreSQL, Redis, tansu (Kafka), moto (AWS) and a Kubernetes control plane (control-plane.sh).
#   scripts/test-services.sh start   -> writes $PANTHERA_TEST_DIR/env.sh to source
#   scripts/test-services.sh stop
set -euo pipefail

CACHE="${PANTHERA_CACHE:-$HOME/.cache/panthera}"
DIR="${PANTHERA_TEST_DIR:-/tmp/panthera-test}"
# Below the kernel's ephemeral range (32768-60999 by default): there an outgoing connection of
# an earlier test can hold the port for a moment, and a server then fails to bind it.
PG_PORT="${PANTHERA_PG_PORT:-25432}"
REDIS_PORT="${PANTHERA_REDIS_PORT:-26379}"
KAFKA_PORT="${PANTHERA_KAFKA_PORT:-29092}"
MOTO_PORT="${PANTHERA_MOTO_PORT:-25000}"
PG_BIN="$(dirname "$(readlink -f "$(command -v pg_ctl || echo /usr/lib/postgresql/15/bin/pg_ctl)")")"

as_pg() {
  # PostgreSQL refuses to run as root.
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

wait_port() {
  local port=$1 name=$2
  for _ in $(seq 1 150); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  echo "test-services: $name did not listen on 127.0.0.1:$port" >&2
  return 1
}

start() {
  mkdir -p "$DIR"
  chmod 755 "$DIR"
  # PostgreSQL 15
  if [ ! -f "$DIR/pg/PG_VERSION" ]; then
    mkdir -p "$DIR/pg"
    if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$DIR/pg"; fi
    as_pg "$PG_BIN/initdb" -D "$DIR/pg" -U postgres --auth=trust -E UTF8 >"$DIR/pg-initdb.log"
  fi
  if ! as_pg "$PG_BIN/pg_ctl" -D "$DIR/pg" status >/dev/null 2>&1; then
    as_pg "$PG_BIN/pg_ctl" -D "$DIR/pg" -l "$DIR/pg/server.log" -w start \
      -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k /tmp -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" >/dev/null
  fi
  # Redis 7
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT") 2>/dev/null; then
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
      --daemonize yes --pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log" --dir "$DIR"
  fi
  # tansu (Kafka protocol), in-memory storage
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$KAFKA_PORT") 2>/dev/null; then
    nohup "$CACHE/tansu/bin/tansu" broker \
      --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
      --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
      --storage-engine "memory://tansu/" >"$DIR/tansu.log" 2>&1 &
    echo $! >"$DIR/tansu.pid"
  fi
  # moto (AWS APIs)
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$MOTO_PORT") 2>/dev/null; then
    nohup "$CACHE/venv/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"$DIR/moto.log" 2>&1 &
    echo $! >"$DIR/moto.pid"
  fi
  # A real Kubernetes control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok).
  bash "$(dirname "$0")/control-plane.sh" start "$DIR/k8s"
  wait_port "$PG_PORT" postgres
  wait_port "$REDIS_PORT" redis
  wait_port "$KAFKA_PORT" tansu
  wait_port "$MOTO_PORT" moto
  cat >"$DIR/env.sh" <<ENV
export PANTHERA_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
export PANTHERA_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
export PANTHERA_TEST_KAFKA_BROKERS="127.0.0.1:$KAFKA_PORT"
export PANTHERA_TEST_AWS_ENDPOINT="http://127.0.0.1:$MOTO_PORT"
export PANTHERA_KUBERNETES_VALIDATE="$CACHE/venv/bin/kubernetes-validate"
export PANTHERA_LUA="$(command -v lua5.4 || true)"
ENV
  cat "$DIR/k8s/env.sh" >>"$DIR/env.sh"
  echo "test-services: up (source $DIR/env.sh)"
}

stop() {
  bash "$(dirname "$0")/control-plane.sh" stop "$DIR/k8s"
  as_pg "$PG_BIN/pg_ctl" -D "$DIR/pg" -m fast stop >/dev/null 2>&1 || true
  for p in redis tansu moto; do
    if [ -f "$DIR/$p.pid" ]; then kill "$(cat "$DIR/$p.pid")" 2>/dev/null || true; rm -f "$DIR/$p.pid"; fi
  done
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
