#!/usr/bin/env bash
# Starts (or stops) one OpenSearch node for the tests (install-opensearch.sh builds it from Maven
# Central): HTTP on 127.0.0.1:PORT, the transport on PORT+100, loopback only, no security plugin.
# The data stays in DIR/opensearch-data across stop and start, so a restart keeps the indices.
#   scripts/opensearch.sh start DIR PORT  -> returns once the cluster is yellow or green
#   scripts/opensearch.sh stop DIR
set -euo pipefail
# shellcheck source=scripts/test-server.sh
source "$(dirname "${BASH_SOURCE[0]}")/test-server.sh"

HERE="$(dirname "${BASH_SOURCE[0]}")"

start() {
  local dir=$1 port=$2
  refuse_taken_ports opensearch "$dir/opensearch.pid" "$port" || return
  local transport_port=$((port + 100))
  refuse_taken_ports opensearch "$dir/opensearch.pid" "$transport_port" || return
  local install
  install="$(bash "$HERE/install-opensearch.sh")"
  mkdir -p "$dir/opensearch/config" "$dir/opensearch-data"
  # -Xms256m -Xmx512m: plenty for test indices. G1 with the distribution's jvm.options tuning: the
  # parent circuit breaker counts real heap use, garbage included, and only G1 gets the young
  # collection OpenSearch forces near the limit (the serial collector would save about 100 MB
  # resident but can trip "Data too large" on a small heap). The -D flags are those the
  # distribution's launcher always adds (SystemJvmOptions at 2.19): COMPAT locale data keeps date
  # parsing as OpenSearch expects it on Java 9+, Netty neither uses Unsafe nor pools per thread.
  # Java 17 needs no --add-opens: without the distribution's bootstrap there is no security
  # manager, and its jvm.options add module flags only for Java 18 and later.
  nohup java -Xms256m -Xmx512m -Xss1m -XX:+UseG1GC -XX:G1ReservePercent=25 \
    -XX:InitiatingHeapOccupancyPercent=30 -XX:-OmitStackTraceInFastThrow \
    -XX:ErrorFile="$dir/opensearch/hs_err_pid%p.log" \
    -Djava.awt.headless=true -Dfile.encoding=UTF-8 -Djna.nosys=true \
    -Djava.locale.providers=SPI,COMPAT \
    -Dio.netty.noUnsafe=true -Dio.netty.noKeySetOptimization=true \
    -Dio.netty.recycler.maxCapacityPerThread=0 -Dio.netty.allocator.numDirectArenas=0 \
    -Dlog4j.shutdownHookEnabled=false -Dlog4j2.disable.jmx=true \
    -cp "$install/classes:$install/lib/*" dev.panthera.testing.Launcher \
    "path.home=$dir/opensearch" "path.data=$dir/opensearch-data" \
    "http.port=$port" "transport.port=$transport_port" \
    >"$dir/opensearch.log" 2>&1 &
  echo $! >"$dir/opensearch.pid"
  # Up to two minutes: a JVM start with the index recovery takes 5-10 s on two idle cores, much
  # more on busy ones. Yellow: the primaries are assigned (an index created with replicas stays
  # yellow on one node; the tests create theirs with number_of_replicas 0, green).
  wait_until_ready opensearch "$dir/opensearch.pid" "$dir/opensearch.log" 120 \
    curl -fsS -m 5 -o /dev/null "http://127.0.0.1:$port/_cluster/health?wait_for_status=yellow&timeout=2s"
}

stop() {
  # SIGTERM runs the launcher's shutdown hook, which closes the node (flushes the indices) in a
  # few seconds.
  stop_by_pidfile "$1/opensearch.pid" dev.panthera.testing.Launcher opensearch 15
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
