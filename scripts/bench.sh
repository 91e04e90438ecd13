#!/usr/bin/env bash
# The cluster benchmarks against kube-sim and, beside it, a real control plane started here on
# loopback (scripts/control-plane.sh): `cargo bench --bench apply` and `--bench operator`.
#   scripts/bench.sh            both benchmarks
#   scripts/bench.sh operator   one of them
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/panthera/target}"
DIR="$(mktemp -d /tmp/panthera-bench.XXXXXX)"
bash scripts/control-plane.sh start "$DIR" >/dev/null
trap 'bash scripts/control-plane.sh stop "$DIR"' EXIT
# shellcheck disable=SC1091
source "$DIR/env.sh"
export PANTHERA_BENCH_KUBECONFIG="$PANTHERA_TEST_KUBECONFIG" PANTHERA_BENCH_AUDIT_LOG="$PANTHERA_TEST_AUDIT_LOG"
for bench in "${@:-apply operator}"; do
  for b in $bench; do
    echo "== cargo bench --bench $b"
    cargo bench --locked --bench "$b"
  done
done
