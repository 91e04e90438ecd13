#!/usr/bin/env bash
# Installs what a real test node needs (scripts/node.sh), pinned and cached under
# ~/.cache/panthera/node/<versions>: prints that bin dir on stdout.
#   - Debian: containerd, runc, the CNI plugins (bridge, host-local, portmap, loopback),
#     iptables, conntrack, busybox-static
#   - Go modules: kubelet and kube-proxy from the same k8s.io/kubernetes tools module as the
#     control plane (install-control-plane.sh: one version, one list of staging replaces),
#     CoreDNS and rancher's local-path provisioner
#   - images, as OCI archives for `ctr images import` (nothing is ever pulled): the pause image
#     (a static Go program of ours, scripts/node/pause) and busybox from Debian's busybox-static,
#     for the provisioner's helper pods and for tests
# Cold: about 3 CPU-minutes of Go for kubelet and kube-proxy with the control plane's build cache
# warm, plus CoreDNS and the provisioner; afterwards instant.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
LOG_NAME=install-node
# shellcheck source=install-control-plane.sh
source "$HERE/install-control-plane.sh"

COREDNS_VERSION="${PANTHERA_COREDNS_VERSION:-v1.15.0}"
LOCAL_PATH_VERSION="${PANTHERA_LOCAL_PATH_VERSION:-v0.0.30}"
PAUSE_IMAGE="registry.k8s.io/pause:3.10.1"
NODE_ROOT="$CACHE/node/k8s-$K8S_VERSION-coredns-$COREDNS_VERSION-local-path-$LOCAL_PATH_VERSION"
NODE_BIN="$NODE_ROOT/bin"
IMAGES="$NODE_ROOT/images"

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

debian_packages() {
  local need=() p
  # containerd 1.6, runc, the CNI plugins under /usr/lib/cni; busybox-static for the images.
  for p in containerd runc containernetworking-plugins iptables conntrack busybox-static iproute2; do
    [ "$(dpkg-query -W -f '${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || need+=("$p")
  done
  if [ "${#need[@]}" -gt 0 ]; then
    echo "install-node: apt-get install ${need[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  # Debian starts its containerd where systemd runs; the node runs its own, on its own socket.
  $SUDO systemctl disable --now containerd >/dev/null 2>&1 || true
}

build_node_kubernetes() {
  build_kubernetes "$NODE_BIN" kubelet kube-proxy
}

# CoreDNS's module has replace lines of its own only in some releases; a tools module works
# whether or not `go install` would.
build_coredns() {
  [ -x "$NODE_BIN/coredns" ] && return 0
  local dir="$NODE_ROOT/src/coredns"
  mkdir -p "$dir"
  cat >"$dir/go.mod" <<MOD
module panthera.dev/coredns-tools

go 1.26.0

require github.com/coredns/coredns $COREDNS_VERSION
MOD
  printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/coredns/coredns"\n' >"$dir/tools.go"
  (
    cd "$dir"
    go mod tidy -e >/dev/null 2>&1 || true
    echo "install-node: go build coredns" >&2
    go build -trimpath -ldflags "-s -w" -o "$NODE_BIN/coredns.tmp" github.com/coredns/coredns
    mv "$NODE_BIN/coredns.tmp" "$NODE_BIN/coredns"
  )
}

build_local_path() {
  [ -x "$NODE_BIN/local-path-provisioner" ] && return 0
  echo "install-node: go install local-path-provisioner" >&2
  GOBIN="$NODE_BIN" go install -trimpath -ldflags "-s -w" \
    "github.com/rancher/local-path-provisioner@$LOCAL_PATH_VERSION"
}

build_pause() {
  [ -x "$NODE_BIN/pause" ] && return 0
  echo "install-node: go build pause" >&2
  (cd "$HERE/node/pause" && GOFLAGS='' go build -trimpath -ldflags "-s -w" -o "$NODE_BIN/pause.tmp" .)
  mv "$NODE_BIN/pause.tmp" "$NODE_BIN/pause"
}

# The images' archives; rebuilt when their inputs change (the key is in the file name).
build_images() {
  mkdir -p "$IMAGES"
  local key rootfs
  key="$( (sha256sum "$NODE_BIN/pause" "$HERE/node/oci-image.sh") | sha256sum | cut -c1-12)"
  if [ ! -f "$IMAGES/pause-$key.tar" ]; then
    rm -f "$IMAGES"/pause-*.tar
    rootfs="$(mktemp -d)"
    install -m 755 "$NODE_BIN/pause" "$rootfs/pause"
    bash "$HERE/node/oci-image.sh" "$PAUSE_IMAGE" "$rootfs" "$IMAGES/pause-$key.tar" \
      '{"Entrypoint":["/pause"],"User":"65535:65535"}'
    rm -rf "$rootfs"
  fi
  # busybox, tagged with the version it really is (Debian's busybox-static).
  local version ref
  version="$(/bin/busybox 2>&1 | sed -n '1s/^BusyBox v\([0-9.]*\).*/\1/p')"
  ref="panthera.local/busybox:$version"
  key="$( (sha256sum /bin/busybox "$HERE/node/oci-image.sh") | sha256sum | cut -c1-12)"
  if [ ! -f "$IMAGES/busybox-$key.tar" ]; then
    rm -f "$IMAGES"/busybox-*.tar
    rootfs="$(mktemp -d)"
    mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp"
    chmod 1777 "$rootfs/tmp"
    install -m 755 /bin/busybox "$rootfs/bin/busybox"
    local applet
    for applet in $(/bin/busybox --list); do
      [ "$applet" = busybox ] || ln -s busybox "$rootfs/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$rootfs/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
    bash "$HERE/node/oci-image.sh" "$ref" "$rootfs" "$IMAGES/busybox-$key.tar" \
      '{"Cmd":["/bin/sh"],"Env":["PATH=/bin"]}'
    rm -rf "$rootfs"
  fi
  echo "$ref" >"$IMAGES/busybox.ref"
}

debian_packages
require_go install-node
want=(kubelet kube-proxy coredns local-path-provisioner pause)
missing=()
for b in "${want[@]}"; do [ -x "$NODE_BIN/$b" ] || missing+=("$b"); done
if [ "${#missing[@]}" -gt 0 ]; then
  mkdir -p "$NODE_BIN"
  start=$(date +%s)
  echo "install-node: building ${missing[*]} (Kubernetes $K8S_VERSION, CoreDNS $COREDNS_VERSION, local-path-provisioner $LOCAL_PATH_VERSION; cached afterwards)" >&2
  run_steps install-node "$NODE_ROOT/build.log" build_pause build_node_kubernetes build_coredns build_local_path
  echo "install-node: built in $(($(date +%s) - start)) s" >&2
fi
build_images
echo "$NODE_BIN"
