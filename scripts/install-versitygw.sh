#!/usr/bin/env bash
# Builds versitygw (an S3-compatible gateway over a POSIX directory, Apache-2.0) from its Go
# module, pinned and cached under ~/.cache/panthera/versitygw/<version>/bin. The tests run it as
# a real S3 server (scripts/versitygw.sh): buckets, objects, presigned URLs and presigned POST
# policies the server enforces. Prints the binary's path.
#
# Its go.mod has no replace directives, so a plain `go install module@version` builds it (unlike
# Jaeger, which needs a tools module).
set -euo pipefail

VERSITYGW_VERSION="${PANTHERA_VERSITYGW_VERSION:-v1.8.0}"
CACHE="${PANTHERA_CACHE:-$HOME/.cache/panthera}"
DIR="$CACHE/versitygw/$VERSITYGW_VERSION"
BIN="$DIR/bin"
# shellcheck source=scripts/go-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/go-env.sh"

if [ -x "$BIN/versitygw" ]; then
  echo "$BIN/versitygw"
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "install-versitygw: Go is missing (the machine image provides it)" >&2
  exit 1
fi
mkdir -p "$BIN"
LOG="$DIR/build.log"
start=$(date +%s)
echo "install-versitygw: go install versitygw $VERSITYGW_VERSION (cached afterwards)" >&2
# Into a temporary directory first: an interrupted build leaves no binary that looks finished.
tmp="$DIR/.tmp"
rm -rf "$tmp"
mkdir -p "$tmp"
if ! GOBIN="$tmp" go install -trimpath -ldflags "-s -w -X main.Version=$VERSITYGW_VERSION" \
  "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION" >"$LOG" 2>&1; then
  tail -40 "$LOG" >&2
  echo "install-versitygw: go install failed (log: $LOG)" >&2
  exit 1
fi
mv "$tmp/versitygw" "$BIN/versitygw"
rm -rf "$tmp"
echo "install-versitygw: built in $(($(date +%s) - start)) s" >&2
echo "$BIN/versitygw"
