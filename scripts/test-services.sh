#!/usr/bin/env bash
# Starts (or stops) the real services the tests use, on loopback with private ports and data dirs:
# PostgreSQL, Redis, Apache Kafka, moto (AWS), a Kubernetes control plane (control-plane.sh) and
# a real node beside it (node.sh: kubelet, containerd, CNI bridge, kube-proxy, DNS, volumes;
# PANTHERA_TEST_NODE=0 leaves it out).
# For the encryption-in-transit tests Kafka also has a SASL_SSL listener (SCRAM-SHA-512), and a
# second PostgreSQL accepts only TLS and password logins; both serve a certificate of a CA made
# for the run.
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
PG_TLS_PORT="${PANTHERA_PG_TLS_PORT:-25433}"
# Apache Kafka: KAFKA_PORT is plaintext (the tests, and the broker to itself), KAFKA_TLS_PORT the
# SASL_SSL listener, KAFKA_CONTROLLER_PORT the KRaft controller's.
KAFKA_TLS_PORT="${PANTHERA_KAFKA_TLS_PORT:-29093}"
KAFKA_CONTROLLER_PORT="${PANTHERA_KAFKA_CONTROLLER_PORT:-29095}"
# Jaeger: OTLP over HTTP in, the query API (HTTP and gRPC) out; loopback only (scripts/jaeger.yaml).
JAEGER_OTLP_PORT="${PANTHERA_JAEGER_OTLP_PORT:-24318}"
JAEGER_OTLP_GRPC_PORT="${PANTHERA_JAEGER_OTLP_GRPC_PORT:-24317}"
JAEGER_QUERY_PORT="${PANTHERA_JAEGER_QUERY_PORT:-26686}"
JAEGER_QUERY_GRPC_PORT="${PANTHERA_JAEGER_QUERY_GRPC_PORT:-26685}"
# OpenSearch: HTTP here, its transport on the port 100 above (scripts/opensearch.sh); loopback only.
OPENSEARCH_PORT="${PANTHERA_OPENSEARCH_PORT:-29200}"
# versitygw (S3): loopback only, data kept in $DIR/s3-data (scripts/versitygw.sh).
S3_PORT="${PANTHERA_S3_PORT:-29900}"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$(dirname "$0")/kafka/pom.xml")"
KAFKA_LIBS="$CACHE/kafka-$KAFKA_VERSION/libs"
# Test-only credentials; the servers listen on loopback and live as long as the run.
PG_TLS_PASSWORD="panthera-tls-test"
KAFKA_SASL_USERNAME="panthera-svc"
KAFKA_SASL_PASSWORD="panthera-scram-test"
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

# A CA for the run, a server certificate it signs for 127.0.0.1 and localhost (PostgreSQL and
# Kafka both serve it), and a second CA that signs nothing: the tests' "wrong CA".
tls_certs() {
  local tls="$DIR/tls"
  [ -f "$tls/server.crt" ] && return 0
  mkdir -p "$tls"
  local name
  for name in ca other-ca; do
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
      -subj "/CN=panthera-test-$name" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -keyout "$tls/$name.key" -out "$tls/$name.pem" 2>/dev/null
  done
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=localhost" \
    -keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null
  printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=serverAuth" "subjectAltName=DNS:localhost,IP:127.0.0.1" >"$tls/server.ext"
  openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial \
    -days 30 -extfile "$tls/server.ext" -out "$tls/server.crt" 2>/dev/null
  # Kafka's PEM keystore: the PKCS#8 key and the certificate chain in one file.
  cat "$tls/server.key" "$tls/server.crt" >"$tls/kafka-keystore.pem"
  chmod 600 "$tls"/*.key "$tls/kafka-keystore.pem"
}

# PostgreSQL that, like RDS with rds.force_ssl, refuses plaintext: only hostssl lines, SCRAM
# passwords. A cluster of its own, so the plaintext server above stays exactly as before.
start_pg_tls() {
  local data="$DIR/pg-tls"
  if [ ! -f "$data/PG_VERSION" ]; then
    mkdir -p "$data"
    printf '%s\n' "$PG_TLS_PASSWORD" >"$DIR/pg-tls.pw"
    if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$data" "$DIR/pg-tls.pw"; fi
    as_pg "$PG_BIN/initdb" -D "$data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
      --pwfile="$DIR/pg-tls.pw" -E UTF8 >"$DIR/pg-tls-initdb.log"
    rm -f "$DIR/pg-tls.pw"
    printf '%s\n' "local all all trust" "hostssl all all 127.0.0.1/32 scram-sha-256" \
      "hostssl all all ::1/128 scram-sha-256" >"$data/pg_hba.conf"
    # PostgreSQL refuses a key file others can read, and reads both as its own user.
    install -m 600 "$DIR/tls/server.key" "$data/server.key"
    install -m 644 "$DIR/tls/server.crt" "$data/server.crt"
    if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$data"/server.* "$data/pg_hba.conf"; fi
  fi
  if ! as_pg "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    as_pg "$PG_BIN/pg_ctl" -D "$data" -l "$data/server.log" -w start \
      -o "-c listen_addresses=127.0.0.1 -p $PG_TLS_PORT -k /tmp -c ssl=on -c fsync=off -c synchronous_commit=off -c full_page_writes=off" >/dev/null
  fi
}

# Apache Kafka in KRaft mode (one node, broker and controller), installed from Maven Central by
# install-test-deps.sh; it replaced tansu, which cannot do TLS or SASL. The SCRAM user is written
# into the metadata log at format time, so no admin call is needed once the broker runs. Runs in
# the background: two JVM starts take seconds.
start_kafka() {
  local data="$DIR/kafka"
  if [ ! -x "$(command -v java)" ] || [ ! -f "$CACHE/kafka-$KAFKA_VERSION/.complete" ]; then
    echo "test-services: Apache Kafka $KAFKA_VERSION is not installed ($KAFKA_LIBS); run scripts/install-test-deps.sh" >&2
    return 1
  fi
  mkdir -p "$data"
  cat >"$data/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,SASL_SSL://127.0.0.1:$KAFKA_TLS_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,SASL_SSL://127.0.0.1:$KAFKA_TLS_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PEM
ssl.keystore.location=$DIR/tls/kafka-keystore.pem
log.dirs=$data/log
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
PROPS
  # A small heap, the serial collector and the client compiler: a test broker starts faster and
  # takes less of the machine that way than with the server defaults.
  local jvm=(java -Xms64m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1
    -Dorg.slf4j.simpleLogger.defaultLogLevel=warn
    -Dorg.slf4j.simpleLogger.log.kafka.server.KafkaRaftServer=info
    -cp "$KAFKA_LIBS/*")
  (
    set -e
    if [ ! -f "$data/log/meta.properties" ]; then
      # A cluster id is 16 random bytes in URL-safe base64 without padding (what
      # `kafka-storage.sh random-uuid` prints), made here to save a JVM start; like Kafka's own,
      # never one starting with "-", which the tool would read as an option.
      local id="-"
      while [ "${id#-}" != "$id" ]; do
        id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
      done
      "${jvm[@]}" kafka.tools.StorageTool format -t "$id" -c "$data/server.properties" \
        --add-scram "SCRAM-SHA-512=[name=$KAFKA_SASL_USERNAME,password=$KAFKA_SASL_PASSWORD]" \
        >"$DIR/kafka-format.log" 2>&1
    fi
    exec "${jvm[@]}" kafka.Kafka "$data/server.properties"
  ) >"$DIR/kafka.log" 2>&1 &
  echo $! >"$DIR/kafka.pid"
}

wait_kafka() {
  # Up to two minutes: two JVM starts take 10-25 s on two busy cores.
  for _ in $(seq 1 1200); do
    if grep -q "Kafka Server started" "$DIR/kafka.log" 2>/dev/null; then return 0; fi
    if ! kill -0 "$(cat "$DIR/kafka.pid")" 2>/dev/null; then break; fi
    sleep 0.1
  done
  echo "test-services: Apache Kafka did not start; last lines of $DIR/kafka.log:" >&2
  tail -20 "$DIR/kafka.log" "$DIR/kafka-format.log" >&2 2>/dev/null || true
  return 1
}

start() {
  mkdir -p "$DIR"
  chmod 755 "$DIR"
  tls_certs
  local started_kafka=false
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$KAFKA_TLS_PORT") 2>/dev/null; then
    start_kafka
    started_kafka=true
  fi
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
  start_pg_tls
  # Redis 7
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT") 2>/dev/null; then
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
      --daemonize yes --pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log" --dir "$DIR"
  fi
  # moto (AWS APIs)
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$MOTO_PORT") 2>/dev/null; then
    nohup "$CACHE/venv/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"$DIR/moto.log" 2>&1 &
    echo $! >"$DIR/moto.pid"
  fi
  # Jaeger (the trace end-to-end test); without its binary the test says so (and fails in CI).
  local jaeger
  jaeger="$(PANTHERA_CACHE="$CACHE" bash "$(dirname "$0")/install-jaeger.sh" || true)"
  if [ -n "$jaeger" ] && ! (exec 3<>"/dev/tcp/127.0.0.1/$JAEGER_QUERY_PORT") 2>/dev/null; then
    PANTHERA_JAEGER_OTLP_PORT="$JAEGER_OTLP_PORT" PANTHERA_JAEGER_QUERY_PORT="$JAEGER_QUERY_PORT" \
      PANTHERA_JAEGER_OTLP_GRPC_PORT="$JAEGER_OTLP_GRPC_PORT" PANTHERA_JAEGER_QUERY_GRPC_PORT="$JAEGER_QUERY_GRPC_PORT" \
      nohup "$jaeger" --config "$(readlink -f "$(dirname "$0")")/jaeger.yaml" \
      >"$DIR/jaeger.log" 2>&1 &
    echo $! >"$DIR/jaeger.pid"
  fi
  # OpenSearch (the search tests): one node from Maven Central's jars, data kept in
  # $DIR/opensearch-data. Its script returns once the node is healthy (5-15 s): in the
  # background, so the control plane starts meanwhile.
  local opensearch opensearch_start=""
  opensearch="$(PANTHERA_CACHE="$CACHE" bash "$(dirname "$0")/install-opensearch.sh" || true)"
  if [ -n "$opensearch" ] && ! (exec 3<>"/dev/tcp/127.0.0.1/$OPENSEARCH_PORT") 2>/dev/null; then
    PANTHERA_CACHE="$CACHE" bash "$(dirname "$0")/opensearch.sh" start "$DIR" "$OPENSEARCH_PORT" &
    opensearch_start=$!
  fi
  # versitygw, a real S3 server (the object storage tests); answers in about a second.
  local versitygw
  versitygw="$(PANTHERA_CACHE="$CACHE" bash "$(dirname "$0")/install-versitygw.sh" || true)"
  if [ -n "$versitygw" ] && ! (exec 3<>"/dev/tcp/127.0.0.1/$S3_PORT") 2>/dev/null; then
    PANTHERA_CACHE="$CACHE" bash "$(dirname "$0")/versitygw.sh" start "$DIR" "$S3_PORT"
  fi
  # A real Kubernetes control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok).
  bash "$(dirname "$0")/control-plane.sh" start "$DIR/k8s"
  if [ "${PANTHERA_TEST_NODE:-1}" != 0 ]; then
    bash "$(dirname "$0")/node.sh" start "$DIR/k8s"
  fi
  wait_port "$PG_PORT" postgres
  wait_port "$REDIS_PORT" redis
  wait_port "$MOTO_PORT" moto
  wait_port "$PG_TLS_PORT" "postgres (TLS)"
  if [ "$started_kafka" = true ]; then wait_kafka; fi
  wait_port "$KAFKA_PORT" "Apache Kafka"
  wait_port "$KAFKA_TLS_PORT" "Apache Kafka (SASL_SSL)"
  PROMETHEUS_BIN="$(PANTHERA_CACHE="$CACHE" bash "$(dirname "$0")/install-prometheus.sh" || true)"
  local opensearch_env=""
  if [ -n "$opensearch" ]; then
    if [ -n "$opensearch_start" ] && ! wait "$opensearch_start"; then
      echo "test-services: OpenSearch did not start (log: $DIR/opensearch.log)" >&2
      exit 1
    fi
    opensearch_env="export PANTHERA_TEST_OPENSEARCH_URL=\"http://127.0.0.1:$OPENSEARCH_PORT\""
  fi
  local s3_env=""
  if [ -n "$versitygw" ]; then
    # versitygw.env: one line, export PANTHERA_TEST_S3_ACCESS_KEY=... PANTHERA_TEST_S3_SECRET_KEY=...
    s3_env="export PANTHERA_TEST_S3_ENDPOINT=\"http://127.0.0.1:$S3_PORT\"
$(cat "$DIR/versitygw.env")"
  fi
  local jaeger_env=""
  if [ -n "$jaeger" ]; then
    wait_port "$JAEGER_OTLP_PORT" "Jaeger (OTLP)"
    wait_port "$JAEGER_OTLP_GRPC_PORT" "Jaeger (OTLP gRPC)"
    wait_port "$JAEGER_QUERY_PORT" "Jaeger (query)"
    jaeger_env="export PANTHERA_TEST_JAEGER_OTLP=\"http://127.0.0.1:$JAEGER_OTLP_PORT\"
export PANTHERA_TEST_JAEGER_OTLP_GRPC=\"http://127.0.0.1:$JAEGER_OTLP_GRPC_PORT\"
export PANTHERA_TEST_JAEGER_QUERY=\"http://127.0.0.1:$JAEGER_QUERY_PORT\""
  fi
  cat >"$DIR/env.sh" <<ENV
export PANTHERA_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
export PANTHERA_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
export PANTHERA_TEST_KAFKA_BROKERS="127.0.0.1:$KAFKA_PORT"
export PANTHERA_TEST_AWS_ENDPOINT="http://127.0.0.1:$MOTO_PORT"
export PANTHERA_TEST_TLS_CA_FILE="$DIR/tls/ca.pem"
export PANTHERA_TEST_TLS_OTHER_CA_FILE="$DIR/tls/other-ca.pem"
export PANTHERA_TEST_TLS_DATABASE_URL="postgres://postgres:$PG_TLS_PASSWORD@127.0.0.1:$PG_TLS_PORT/postgres?sslmode=verify-full&sslrootcert=$DIR/tls/ca.pem"
export PANTHERA_TEST_KAFKA_TLS_BROKERS="127.0.0.1:$KAFKA_TLS_PORT"
export PANTHERA_TEST_KAFKA_SASL_MECHANISM="SCRAM-SHA-512"
export PANTHERA_TEST_KAFKA_SASL_USERNAME="$KAFKA_SASL_USERNAME"
export PANTHERA_TEST_KAFKA_SASL_PASSWORD="$KAFKA_SASL_PASSWORD"
export PANTHERA_KUBERNETES_VALIDATE="$CACHE/venv/bin/kubernetes-validate"
export PANTHERA_LUA="$(command -v lua5.4 || true)"
export PANTHERA_PROMTOOL="$PROMETHEUS_BIN/promtool"
export PANTHERA_PROMETHEUS="$PROMETHEUS_BIN/prometheus"
$opensearch_env
$s3_env
$jaeger_env
ENV
  cat "$DIR/k8s/env.sh" >>"$DIR/env.sh"
  if [ "${PANTHERA_TEST_NODE:-1}" != 0 ]; then cat "$DIR/k8s/node/env.sh" >>"$DIR/env.sh"; fi
  echo "test-services: up (source $DIR/env.sh)"
}

stop() {
  # The node first, while the API server is there to take its Node object away.
  bash "$(dirname "$0")/node.sh" stop "$DIR/k8s"
  bash "$(dirname "$0")/control-plane.sh" stop "$DIR/k8s"
  bash "$(dirname "$0")/opensearch.sh" stop "$DIR"
  bash "$(dirname "$0")/versitygw.sh" stop "$DIR"
  as_pg "$PG_BIN/pg_ctl" -D "$DIR/pg" -m fast stop >/dev/null 2>&1 || true
  as_pg "$PG_BIN/pg_ctl" -D "$DIR/pg-tls" -m fast stop >/dev/null 2>&1 || true
  for p in redis moto kafka jaeger; do
    if [ -f "$DIR/$p.pid" ]; then kill "$(cat "$DIR/$p.pid")" 2>/dev/null || true; fi
  done
  # Kafka takes a few seconds to shut down; a next start on the same ports must not find it.
  if [ -f "$DIR/kafka.pid" ]; then
    local pid
    pid="$(cat "$DIR/kafka.pid")"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$DIR"/{redis,moto,kafka,jaeger}.pid
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
