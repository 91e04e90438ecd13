#!/usr/bin/env bash
# The cluster benchmarks against kube-sim and, beside it, a real control plane started here on
# loopback (scripts/control-plane.sh): `cargo bench --bench apply` and `--bench operator`.
#   scripts/bench.sh            both benchmarks
#   scripts/bench.sh operator   one of them
#   scripts/bench.sh rollout    rollouts under load on the real node (test-services.sh, images)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/panthera/target}"
if [ "${1:-}" = rollout ]; then
  export PANTHERA_TEST_DIR="$(mktemp -d /tmp/panthera-bench.XXXXXX)"
  bash scripts/install-test-deps.sh
  bash scripts/test-services.sh start >/dev/null
  trap 'bash scripts/test-services.sh stop' EXIT
  # shellcheck disable=SC1091
  source "$PANTHERA_TEST_DIR/env.sh"
  cargo build --workspace --bins --locked
  bash scripts/images.sh build --bin-dir "$CARGO_TARGET_DIR/debug"
  bash scripts/images.sh import
  echo "== cargo bench --bench rollout"
  # The figures are the pods', not this binary's: the test build will do, without a release build.
  cargo bench --locked --profile dev --bench rollout
  exit
fi
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
