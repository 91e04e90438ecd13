#!/bin/sh
# KRaft storage: kafka-storage.sh format|info|random-uuid|... (kafka.tools.StorageTool).
exec "$(dirname -- "$0")/kafka-run-class.sh" kafka.tools.StorageTool "$@"
