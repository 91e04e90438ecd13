#!/usr/bin/env bash
# Builds a real Kubernetes control plane from Go modules, pinned and cached under
# ~/.cache/panthera/control-plane/<versions>/bin: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler and kwok (nodes and the pod lifecycle without a kubelet).
#
# k8s.io/kubernetes requires each of its staging modules at v0.0.0 and Go ignores a dependency's
# own replace lines, so `go install k8s.io/kubernetes/cmd/...@v1.35.4` cannot work: the binaries
# are built from a small tools module of ours that requires k8s.io/kubernetes and replaces every
# k8s.io/<staging> module by its matching v0.<minor>.<patch> release (as envtest-style suites do).
# etcd gets a tools module of its own for the same reason. A cold build takes about 20 CPU-minutes.
#
# scripts/install-node.sh sources this file for the version, the Go settings and
# build_kubernetes, so that kubelet and kube-proxy come from the very same module.
set -euo pipefail

K8S_VERSION="${PANTHERA_K8S_VERSION:-v1.35.4}"
ETCD_VERSION="${PANTHERA_ETCD_VERSION:-v3.6.16}"
KWOK_VERSION="${PANTHERA_KWOK_VERSION:-v0.8.0}"

CACHE="${PANTHERA_CACHE:-$HOME/.cache/panthera}"
ROOT="$CACHE/control-plane/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION"
BIN="$ROOT/bin"
# shellcheck source=scripts/go-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/go-env.sh"
export GOFLAGS=-mod=mod

minor_patch="${K8S_VERSION#v1.}" # 35.4
staging_version="v0.$minor_patch"

require_go() {
  if ! command -v go >/dev/null 2>&1; then
    echo "$1: Go is missing (the machine image provides it; Debian's golang-go is too old for Kubernetes $K8S_VERSION)" >&2
    exit 1
  fi
}

# build_kubernetes OUT CMD...: builds k8s.io/kubernetes/cmd/CMD into OUT/CMD for each CMD not
# there yet, from the one tools module (one lock: two builds never rewrite it at once).
build_kubernetes() {
  local out=$1
  shift
  local dir="$ROOT/src/kubernetes"
  mkdir -p "$dir" "$out"
  exec 9>"$dir.lock"
  flock 9
  # The staging modules are the k8s.io/* lines that k8s.io/kubernetes requires at v0.0.0.
  local modfile="$GOMODCACHE/cache/download/k8s.io/kubernetes/@v/$K8S_VERSION.mod"
  if [ ! -f "$modfile" ]; then
    (cd "$dir" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" >/dev/null)
  fi
  {
    echo "module panthera.dev/control-plane-tools"
    echo
    echo "go 1.25.0"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    echo "replace ("
    grep -E '^\s+k8s\.io/[a-z0-9-]+ v0\.0\.0$' "$modfile" | awk '{print $1}' | sort -u |
      while read -r m; do echo "	$m => $m $staging_version"; done
    echo ")"
  } >"$dir/go.mod"
  local c
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for c in "$@"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$c"; done
    printf ')\n'
  } >"$dir/tools.go"
  local build_date ldflags
  build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  local major="1" minor="${minor_patch%%.*}"
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
  done
  (
    cd "$dir"
    go mod tidy -e >/dev/null 2>&1 || true
    for b in "$@"; do
      [ -x "$out/$b" ] && continue
      echo "${LOG_NAME:-install-control-plane}: go build $b" >&2
      go build -trimpath -ldflags "$ldflags" -o "$out/$b.tmp" "k8s.io/kubernetes/cmd/$b"
      mv "$out/$b.tmp" "$out/$b"
    done
  )
}

build_control_plane() {
  build_kubernetes "$BIN" kube-apiserver kube-controller-manager kube-scheduler
}

build_etcd() {
  [ -x "$BIN/etcd" ] && return 0
  local dir="$ROOT/src/etcd"
  mkdir -p "$dir"
  cat >"$dir/go.mod" <<MOD
module panthera.dev/etcd-tools

go 1.25.0

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
MOD
  cat >"$dir/tools.go" <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
  (
    cd "$dir"
    go mod tidy -e >/dev/null 2>&1 || true
    echo "install-control-plane: go build etcd" >&2
    go build -trimpath -ldflags "-s -w" -o "$BIN/etcd.tmp" go.etcd.io/etcd/server/v3
    mv "$BIN/etcd.tmp" "$BIN/etcd"
  )
}

build_kwok() {
  [ -x "$BIN/kwok" ] && return 0
  echo "install-control-plane: go install kwok" >&2
  GOBIN="$BIN" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
}

# run_steps NAME LOG STEP...: each step in a shell of its own with errexit (a `||` on a block
# would switch errexit off inside it, and a failed build would go unnoticed).
run_steps() {
  local name=$1 log=$2 step
  shift 2
  for step in "$@"; do
    if ! (set -e; "$step") >>"$log" 2>&1; then
      tail -40 "$log" >&2
      echo "$name: $step failed (log: $log)" >&2
      exit 1
    fi
  done
}

main() {
  require_go install-control-plane
  local want=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok) missing=() b
  for b in "${want[@]}"; do [ -x "$BIN/$b" ] || missing+=("$b"); done
  if [ "${#missing[@]}" -eq 0 ]; then
    echo "$BIN"
    return 0
  fi
  mkdir -p "$BIN" "$ROOT/src"
  local start
  start=$(date +%s)
  echo "install-control-plane: building ${missing[*]} (Kubernetes $K8S_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION; cached afterwards)" >&2
  run_steps install-control-plane "$ROOT/build.log" build_etcd build_kwok build_control_plane
  echo "install-control-plane: built in $(($(date +%s) - start)) s" >&2
  echo "$BIN"
}

# Sourced (by install-node.sh): definitions only.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main
fi
