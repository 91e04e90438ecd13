#!/bin/sh
# Runs a main class of Apache Kafka on the jars in /opt/kafka/libs, with the JVM options the
# distribution's bin/kafka-run-class.sh gives (scripts/images.sh builds this image from Maven
# Central's jars, which come without the distribution's scripts). Honoured, as there:
#   KAFKA_HEAP_OPTS             default -Xmx256M (kafka-server-start.sh: -Xmx1G -Xms1G)
#   KAFKA_JVM_PERFORMANCE_OPTS  default G1 with the distribution's settings
#   KAFKA_LOG4J_OPTS            default: config/tools-log4j2.yaml (the server: config/log4j2.yaml)
#   KAFKA_OPTS, KAFKA_JMX_OPTS  passed as they are (JMX only when asked for)
#   JAVA_HOME, CLASSPATH, LOG_DIR
# The jars log through SLF4J's simple binding (to stderr), so the default logging options also
# set its level; the log4j2 files serve what logs through Log4j's API directly.
set -eu
if [ $# -lt 1 ]; then
  echo "USAGE: $0 classname [opts]" >&2
  exit 1
fi
base_dir=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)

: "${KAFKA_HEAP_OPTS:=-Xmx256M}"
: "${KAFKA_JVM_PERFORMANCE_OPTS:=-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -Djava.awt.headless=true}"
: "${KAFKA_LOG4J_OPTS:=-Dlog4j2.configurationFile=file:$base_dir/config/tools-log4j2.yaml -Dorg.slf4j.simpleLogger.defaultLogLevel=warn}"
: "${LOG_DIR:=$base_dir/logs}"
classpath="$base_dir/libs/*"
if [ -n "${CLASSPATH:-}" ]; then
  classpath="$CLASSPATH:$classpath"
fi
if [ -n "${JAVA_HOME:-}" ]; then
  java="$JAVA_HOME/bin/java"
else
  java=java
fi

# The *_OPTS are lists of options: split on spaces as the distribution does, but never globbed.
set -f
# shellcheck disable=SC2086
exec "$java" $KAFKA_HEAP_OPTS $KAFKA_JVM_PERFORMANCE_OPTS ${KAFKA_JMX_OPTS:-} \
  -Dkafka.logs.dir="$LOG_DIR" $KAFKA_LOG4J_OPTS ${KAFKA_OPTS:-} -cp "$classpath" "$@"
