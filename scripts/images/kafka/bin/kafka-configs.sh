#!/bin/sh
# Configs: kafka-configs.sh --bootstrap-server HOST:PORT --alter --entity-type topics ...
# (kafka.admin.ConfigCommand, in the broker's jar).
exec "$(dirname -- "$0")/kafka-run-class.sh" kafka.admin.ConfigCommand "$@"
