#!/usr/bin/env bash
# Puts together a single OpenSearch node from Maven Central (no distribution tarball, no Docker):
# the server's jars, the netty4 transport and the modules the search tests use
# (scripts/opensearch/pom.xml), and a small launcher compiled against them
# (scripts/opensearch/Launcher.java). Pinned and cached under
# ~/.cache/panthera/opensearch/<version> (lib/ the jars, classes/ the launcher; about a minute
# cold, most of it the download). Prints that directory; scripts/opensearch.sh runs the node.
#
# 2.19.x because the 3.x line needs Java 21 and the machines have Debian's Java 17.
set -euo pipefail

OPENSEARCH_VERSION="${PANTHERA_OPENSEARCH_VERSION:-2.19.6}"
CACHE="${PANTHERA_CACHE:-$HOME/.cache/panthera}"
ROOT="$CACHE/opensearch"
DIR="$ROOT/$OPENSEARCH_VERSION"
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/opensearch"
# The marker holds a hash of what the directory was built from: an edited pom, launcher or this
# script builds again; an unchanged one costs three small file reads.
STAMP="$( (echo "$OPENSEARCH_VERSION"; cat "$SRC/pom.xml" "$SRC/Launcher.java" "${BASH_SOURCE[0]}") |
  sha256sum | cut -d' ' -f1)"

if [ "$(cat "$DIR/.complete" 2>/dev/null)" = "$STAMP" ]; then
  echo "$DIR"
  exit 0
fi
for tool in java javac mvn; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "install-opensearch: $tool is missing (Debian: openjdk-17-jdk-headless and maven; scripts/install-test-deps.sh)" >&2
    exit 1
  fi
done
mkdir -p "$ROOT"
LOG="$ROOT/build-$OPENSEARCH_VERSION.log"
start=$(date +%s)
echo "install-opensearch: OpenSearch $OPENSEARCH_VERSION from Maven Central (cached afterwards)" >&2
# Into a temporary directory first, moved into place when complete: an interrupted build leaves
# nothing that looks finished. One per process, so two installs at once do not mix their files.
tmp="$ROOT/.tmp-$OPENSEARCH_VERSION-$$"
trap 'rm -rf "$tmp"' EXIT
rm -rf "$tmp"
mkdir -p "$tmp/lib" "$tmp/classes"
# Maven's local repository lives in the cache too (not ~/.m2): the cache is all a warm machine
# needs, and deleting it starts clean. The plugin is named with its version, so Maven need not
# look up which one is newest.
if ! mvn -B -q -f "$SRC/pom.xml" -Dmaven.repo.local="$ROOT/maven" \
  -Dopensearch.version="$OPENSEARCH_VERSION" \
  org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
  -DincludeScope=runtime -DoutputDirectory="$tmp/lib" >"$LOG" 2>&1; then
  tail -40 "$LOG" >&2
  echo "install-opensearch: mvn dependency:copy-dependencies failed (log: $LOG)" >&2
  exit 1
fi
if ! javac -nowarn -d "$tmp/classes" -cp "$tmp/lib/*" "$SRC/Launcher.java" >>"$LOG" 2>&1; then
  tail -40 "$LOG" >&2
  echo "install-opensearch: compiling the launcher failed (log: $LOG)" >&2
  exit 1
fi
# Console only: scripts/opensearch.sh sends it to a file. No %marker or %node_name in the
# pattern: OpenSearch's converters for those throw when its own bootstrap has not set them up.
cat >"$tmp/classes/log4j2.properties" <<'PROPS'
status = error
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d{ISO8601}][%-5p][%c{1.}] %m%n
rootLogger.level = info
rootLogger.appenderRef.console.ref = console
PROPS
echo "$STAMP" >"$tmp/.complete"
rm -rf "$DIR"
# -T: never move the directory into an existing one. Another install may have just won the race.
if ! mv -T "$tmp" "$DIR" 2>/dev/null && [ "$(cat "$DIR/.complete" 2>/dev/null)" != "$STAMP" ]; then
  echo "install-opensearch: could not move $tmp to $DIR" >&2
  exit 1
fi
echo "install-opensearch: built in $(($(date +%s) - start)) s ($(find "$DIR/lib" -name '*.jar' | wc -l) jars)" >&2
echo "$DIR"
