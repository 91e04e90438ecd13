#!/bin/sh
# Starts a Kafka node in the foreground: kafka-server-start.sh server.properties [--override k=v]...
# As the distribution's script: a 1 GiB heap and config/log4j2.yaml unless KAFKA_HEAP_OPTS and
# KAFKA_LOG4J_OPTS say otherwise. A container has no use for -daemon, so it is refused.
set -eu
if [ $# -lt 1 ]; then
  echo "USAGE: $0 server.properties [--override property=value]*" >&2
  exit 1
fi
if [ "$1" = "-daemon" ]; then
  echo "$0: -daemon is not supported in this image; run the server in the foreground" >&2
  exit 1
fi
base_dir=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
: "${KAFKA_LOG4J_OPTS:=-Dlog4j2.configurationFile=file:$base_dir/../config/log4j2.yaml}"
: "${KAFKA_HEAP_OPTS:=-Xmx1G -Xms1G}"
export KAFKA_LOG4J_OPTS KAFKA_HEAP_OPTS
exec "$base_dir/kafka-run-class.sh" kafka.Kafka "$@"
