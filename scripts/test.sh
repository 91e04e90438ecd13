#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine: installs what the tests need (cached under
# ~/.cache/panthera), starts PostgreSQL, Redis, Apache Kafka, moto, the control plane and the
# TLS servers (scripts/test-services.sh) on loopback, then checks formatting and lints and runs
# every test. Exit code 0 means all green.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/panthera/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

bash scripts/install-test-deps.sh

# A fresh data dir per run, so nothing from an earlier run (or a killed server) leaks in.
export PANTHERA_TEST_DIR="${PANTHERA_TEST_DIR:-$(mktemp -d /tmp/panthera-test.XXXXXX)}"
bash scripts/test-services.sh start
trap 'bash scripts/test-services.sh stop' EXIT
# shellcheck disable=SC1091
source "$PANTHERA_TEST_DIR/env.sh"

echo "== rustfmt"
cargo fmt --all -- --check
echo "== clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== images"
# The real node runs what the workspace builds: the service binaries (the same debug build the
# tests use) packed as images by scripts/images.sh, next to the data stores' images, and
# imported into the node's containerd.
cargo build --workspace --bins --locked
bash scripts/images.sh build --bin-dir "$CARGO_TARGET_DIR/debug"
bash scripts/images.sh check
bash scripts/images.sh import
echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
  # Doc tests first, so the run closes on nextest's summary of the whole suite.
  cargo test --workspace --locked --doc
  cargo nextest run --workspace --locked --no-fail-fast
else
  # cargo test prints one summary per test binary and closes on the last crate's doc tests;
  # the line after it counts the whole suite. The real-node tier (tests/real_pods.rs) runs as
  # any test binary does, alone: the one run that put it beside the KWOK-tier tests failed (a
  # 404 from the gateway's ClusterIP), and the cause is not established yet.
  set +e
  cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$PANTHERA_TEST_DIR/cargo-test.log"
  status=${PIPESTATUS[0]}
  set -e
  awk '/^test result:/ { passed += $4; failed += $6 } END { printf "%d passed, %d failed\n", passed, failed }' \
    "$PANTHERA_TEST_DIR/cargo-test.log"
  exit "$status"
fi
