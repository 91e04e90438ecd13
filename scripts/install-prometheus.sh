#!/usr/bin/env bash
# Builds Prometheus's promtool and server from their Go module, pinned and cached under
# ~/.cache/panthera/promtool/<version>/bin (about 6 minutes cold on 2 cores, the server a minute
# of it). The tests check every rendered rule file with `promtool check rules`, fire every alert
# with `promtool test rules`, and have the server scrape the real binaries and answer the
# dashboards' queries. Prints the directory holding both.
set -euo pipefail

PROMETHEUS_VERSION="${PANTHERA_PROMETHEUS_VERSION:-v0.316.0}"
CACHE="${PANTHERA_CACHE:-$HOME/.cache/panthera}"
BIN="$CACHE/promtool/$PROMETHEUS_VERSION/bin"
# shellcheck source=scripts/go-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/go-env.sh"

if [ -x "$BIN/promtool" ] && [ -x "$BIN/prometheus" ]; then
  echo "$BIN"
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "install-prometheus: Go is missing (the machine image provides it)" >&2
  exit 1
fi
mkdir -p "$BIN"
LOG="$CACHE/promtool/$PROMETHEUS_VERSION/build.log"
start=$(date +%s)
echo "install-prometheus: go install promtool and prometheus $PROMETHEUS_VERSION (cached afterwards)" >&2
tmp="$BIN/.tmp"
rm -rf "$tmp"
mkdir -p "$tmp"
# Without the builtinassets tag: the web UI's files would need an npm build; the HTTP API the
# tests use does not.
if ! GOBIN="$tmp" go install -trimpath -ldflags "-s -w" \
  "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_VERSION" \
  "github.com/prometheus/prometheus/cmd/prometheus@$PROMETHEUS_VERSION" >"$LOG" 2>&1; then
  tail -40 "$LOG" >&2
  echo "install-prometheus: go install failed (log: $LOG)" >&2
  exit 1
fi
mv "$tmp/promtool" "$tmp/prometheus" "$BIN/"
rm -rf "$tmp"
echo "install-prometheus: built in $(($(date +%s) - start)) s" >&2
echo "$BIN"
