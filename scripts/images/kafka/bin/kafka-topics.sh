#!/bin/sh
# Topics: kafka-topics.sh --bootstrap-server HOST:PORT --create|--alter|--list|--describe ...
# (org.apache.kafka.tools.TopicCommand, in the kafka-tools jar).
libs="$(dirname -- "$0")/../libs"
for jar in "$libs"/kafka-tools-[0-9]*.jar; do
  if [ ! -e "$jar" ]; then
    echo "$0: this image has no kafka-tools jar (org.apache.kafka.tools.TopicCommand) in /opt/kafka/libs;" \
      "scripts/kafka/pom.xml must list org.apache.kafka:kafka-tools before scripts/images.sh builds it" >&2
    exit 1
  fi
done
exec "$(dirname -- "$0")/kafka-run-class.sh" org.apache.kafka.tools.TopicCommand "$@"
