#!/usr/bin/env bash
# Builds Jaeger's all-in-one (the v2 collector-based `jaeger` binary: an OTLP receiver, memory
# storage and the query API) from its Go module, pinned and cached under
# ~/.cache/panthera/jaeger/<version>/bin (about 6 minutes cold on 2 cores). The end-to-end trace
# test reads one order's trace back from it. Prints the binary's path.
#
# Built from a small tools module (`go get -tool`, then `go build`): `go install module@version`
# refuses modules whose go.mod has replace directives, as Jaeger's has.
set -euo pipefail

JAEGER_VERSION="${PANTHERA_JAEGER_VERSION:-v1.75.0}"
CACHE="${PANTHERA_CACHE:-$HOME/.cache/panthera}"
DIR="$CACHE/jaeger/$JAEGER_VERSION"
BIN="$DIR/bin"
# shellcheck source=scripts/go-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/go-env.sh"

if [ -x "$BIN/jaeger" ]; then
  echo "$BIN/jaeger"
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "install-jaeger: Go is missing (the machine image provides it)" >&2
  exit 1
fi
mkdir -p "$BIN"
LOG="$DIR/build.log"
start=$(date +%s)
echo "install-jaeger: building jaeger $JAEGER_VERSION (cached afterwards)" >&2
# Into a temporary directory first: an interrupted build leaves no binary that looks finished.
tmp="$DIR/.tmp"
rm -rf "$tmp"
mkdir -p "$tmp/tools"
if ! (
  cd "$tmp/tools" &&
    go mod init panthera.local/jaeger-tools &&
    go get -tool "github.com/jaegertracing/jaeger/cmd/jaeger@$JAEGER_VERSION" &&
    go build -trimpath -ldflags "-s -w" -o "$tmp/jaeger" github.com/jaegertracing/jaeger/cmd/jaeger
) >"$LOG" 2>&1; then
  tail -40 "$LOG" >&2
  echo "install-jaeger: build failed (log: $LOG)" >&2
  exit 1
fi
mv "$tmp/jaeger" "$BIN/jaeger"
rm -rf "$tmp"
echo "install-jaeger: built in $(($(date +%s) - start)) s" >&2
echo "$BIN/jaeger"
