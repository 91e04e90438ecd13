#!/usr/bin/env bash
# Starts (or stops) a real Kubernetes node beside the test control plane, where pods really run:
# containerd + runc, a CNI bridge, kubelet, kube-proxy (iptables), CoreDNS for cluster.local and
# rancher's local-path provisioner, all processes of this script on this machine.
#
#   scripts/node.sh start DIR   (DIR of scripts/control-plane.sh start) -> DIR/node/env.sh
#   scripts/node.sh stop DIR
#
# DIR/node/env.sh exports PANTHERA_TEST_REAL_NODE (the node's name), CONTAINERD_ADDRESS (and
# PANTHERA_TEST_CONTAINERD_ADDRESS: its containerd's socket), PANTHERA_TEST_NODE_IP and
# PANTHERA_TEST_BUSYBOX_IMAGE (an imported busybox image, for test pods).
#
# Binaries and images come from scripts/install-node.sh (built once, cached).
#
# The contract for the tests (the "real tier"):
# - The node is panthera-node-0 (PANTHERA_TEST_REAL_NODE), labelled panthera.dev/node=real and
#   tainted panthera.dev/real-node=true:NoSchedule: no pod of the KWOK tier lands on it. The kwok
#   node is labelled panthera.dev/node=kwok.
# - A namespace sends all its pods to the real node, with the rendered manifests unchanged, by
#   two annotations that the API server's PodNodeSelector and PodTolerationRestriction admission
#   plugins read (the node selector also keeps them off the kwok node):
#     scheduler.alpha.kubernetes.io/node-selector: panthera.dev/node=real
#     scheduler.alpha.kubernetes.io/defaultTolerations: '[{"key":"panthera.dev/real-node","operator":"Exists","effect":"NoSchedule"}]'
#   plus the label pod-security.kubernetes.io/enforce=restricted, as a platform runs.
# - Storage: in such a namespace a claim of the default StorageClass (`standard`, the
#   controller-manager's hostPath provisioner, which makes root-owned 0750 directories that a
#   non-root pod cannot write) is switched to StorageClass `local-path` by a
#   MutatingAdmissionPolicy; the local-path provisioner makes a 0777 directory under
#   DIR/node/volumes once the pod is scheduled (WaitForFirstConsumer).
# - Images are never pulled: containerd's only proxy refuses every connection. Import them with
#     ctr --address "$CONTAINERD_ADDRESS" -n k8s.io images import FILE.tar
#   and tag them other than `latest` (or set imagePullPolicy IfNotPresent). containerd keeps its
#   images under ~/.cache/panthera/node/containerd, so they survive a stop.
# - DNS: CoreDNS behind Service kube-system/kube-dns (10.96.0.10) answers cluster.local (and
#   reverse lookups of cluster addresses) only; every other name is NXDOMAIN. Pods reach the API
#   server at https://kubernetes.default.svc (the control plane advertises this machine's address).
# - Nothing leaves this machine: the bridge does not masquerade, a FORWARD guard drops whatever a
#   pod sends off the bridge, and a POSTROUTING guard drops cluster addresses routed off the
#   machine.
#
# `stop` undoes everything `start` did: processes (by PID), containers and their mounts, the
# bridge and its veths, the iptables chains (KUBE-*, CNI-*, PANTHERA-NODE-*), the cgroups, the
# sysctls (restored to what they were), the Node object.
set -Eeuo pipefail

cmd="${1:?usage: node.sh start|stop DIR}"
DIR="${2:?usage: node.sh start|stop DIR}"
HERE="$(cd "$(dirname "$0")" && pwd)"
CACHE="${PANTHERA_CACHE:-$HOME/.cache/panthera}"
N="$DIR/node"
NODE_NAME="${PANTHERA_NODE_NAME:-panthera-node-0}"
# kwok hands out 10.244.0.0/17 to the pods of its fake node; this node's pods get a /24 above it.
# The cluster CIDR (kube-proxy) and the service range are the control plane's.
POD_CIDR="${PANTHERA_NODE_POD_CIDR:-10.244.128.0/24}"
POD_GATEWAY="${POD_CIDR%.0/24}.1"
CLUSTER_CIDR="10.244.0.0/16"
SERVICE_CIDR="10.96.0.0/16"
DNS_SERVICE_IP="10.96.0.10"
BRIDGE="panthera0"
API_PORT="${PANTHERA_APISERVER_PORT:-26443}"
# Ports below the kernel's ephemeral range, like the control plane's.
KUBELET_PORT="${PANTHERA_KUBELET_PORT:-20250}"
KUBELET_HEALTHZ_PORT="${PANTHERA_KUBELET_HEALTHZ_PORT:-20248}"
PROXY_HEALTHZ_PORT="${PANTHERA_KUBE_PROXY_HEALTHZ_PORT:-20256}"
PROXY_METRICS_PORT="${PANTHERA_KUBE_PROXY_METRICS_PORT:-20249}"
DNS_PORT="${PANTHERA_DNS_PORT:-20053}"
DNS_READY_PORT="${PANTHERA_DNS_READY_PORT:-20181}"
PAUSE_IMAGE="registry.k8s.io/pause:3.10.1"
# containerd's root (content store, snapshots) outlives a run, so that imported images do; its
# state (tasks, sockets, network namespaces) lives under DIR.
CONTAINERD_ROOT="${PANTHERA_NODE_CONTAINERD_ROOT:-$CACHE/node/containerd}"
SOCK="$N/containerd/containerd.sock"
# Kernel settings that the bridge plugin, kubelet or kube-proxy change; stop restores them.
SYSCTLS=(net.ipv4.ip_forward net.ipv6.conf.all.forwarding net.ipv4.conf.all.route_localnet
  net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables
  vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes)
# Standard paths that containerd, its shims, the CNI library or kubelet may create despite
# their configured dirs; stop removes those that did not exist before start, once empty.
SYSTEM_PATHS=(/run/containerd /var/log/containers /var/log/pods /etc/cni /opt/cni
  /opt/containerd /var/lib/containerd /var/lib/kubelet /var/lib/cni /run/netns
  /etc/kubernetes /usr/libexec/kubernetes)

log() { echo "node: $*" >&2; }
trap 'log "failed at line $LINENO: $BASH_COMMAND"' ERR

fail() {
  local what=$1
  log "$what failed; last lines of $N/$what.log:"
  tail -30 "$N/$what.log" >&2 2>/dev/null || true
  exit 1
}

wait_for() {
  local tries=$1
  shift
  for _ in $(seq 1 "$tries"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  return 1
}

ctr_() { ctr --address "$SOCK" -n k8s.io "$@"; }
kc() { kubectl --kubeconfig "$DIR/admin.kubeconfig" --request-timeout 10s "$@"; }

# ---------------------------------------------------------------------------------------- stop

kill_pids() {
  local p pid
  for p in "$@"; do
    if [ -f "$N/$p.pid" ]; then kill "$(cat "$N/$p.pid")" 2>/dev/null || :; fi
  done
  for p in "$@"; do
    [ -f "$N/$p.pid" ] || continue
    pid="$(cat "$N/$p.pid")"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$N/$p.pid"
  done
}

# Every process in the cgroups kubelet made for pods: the containers, and the pause processes.
kill_pod_processes() {
  local procs d
  procs="$(for d in /sys/fs/cgroup/*/kubepods; do
    if [ -d "$d" ]; then find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null || :; fi
  done | sort -u)"
  if [ -n "$procs" ]; then
    # shellcheck disable=SC2086
    kill -9 $procs 2>/dev/null || true
  fi
}

# containerd keeps container records in its (persistent) root: remove every task and container
# of the CRI namespace, so that no pod of this run outlives it.
remove_containers() {
  local ids id
  ids="$(ctr_ tasks ls -q 2>/dev/null)" || return 0
  for id in $ids; do ctr_ tasks kill -a -s SIGKILL "$id" >/dev/null 2>&1 || true; done
  for id in $ids; do ctr_ tasks delete -f "$id" >/dev/null 2>&1 || true; done
  for id in $(ctr_ containers ls -q 2>/dev/null); do
    ctr_ containers delete "$id" >/dev/null 2>&1 || true
  done
}

# The shims of our containerd, found by the socket they were given.
kill_shims() {
  local pid
  for pid in $(pgrep -f containerd-shim-runc-v2 || :); do
    if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "-address $SOCK "; then
      kill -9 "$pid" 2>/dev/null || true
    fi
  done
}

unmount_under() {
  local prefix=$1 m
  # Deepest first; a busy mount is detached lazily.
  awk -v p="$prefix/" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo | sort -r |
    while read -r m; do
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || :
    done
}

remove_network() {
  local port
  if [ -d "/sys/class/net/$BRIDGE" ]; then
    for port in "/sys/class/net/$BRIDGE/brif"/*; do
      if [ -e "$port" ]; then ip link del "${port##*/}" 2>/dev/null || :; fi
    done
    ip link del "$BRIDGE" 2>/dev/null || true
  fi
  if command -v conntrack >/dev/null 2>&1; then
    conntrack -D -s "$CLUSTER_CIDR" >/dev/null 2>&1 || true
    conntrack -D -d "$CLUSTER_CIDR" >/dev/null 2>&1 || true
    conntrack -D -d "$SERVICE_CIDR" >/dev/null 2>&1 || true
  fi
}

# kube-proxy's and kubelet's chains (KUBE-*), the portmap plugin's (CNI-*) and our guard
# (PANTHERA-NODE-*), in every table, for IPv4 and IPv6: first the jumps to them from other
# chains, then the chains.
remove_iptables() {
  local ipt table rule chains c ours='(KUBE-|CNI-|PANTHERA-NODE-)'
  for ipt in iptables ip6tables; do
    command -v "$ipt" >/dev/null 2>&1 || continue
    for table in filter nat mangle raw; do
      "$ipt-save" -t "$table" >/dev/null 2>&1 || continue
      "$ipt-save" -t "$table" 2>/dev/null |
        awk -v j="-j $ours" -v a="^-A $ours" '$0 ~ j && $0 !~ a' | while read -r rule; do
        eval "$ipt -w -t $table -D ${rule#-A }" 2>/dev/null || true
      done
      chains="$("$ipt-save" -t "$table" 2>/dev/null | awk -v n="^:$ours" '$0 ~ n {print substr($1, 2)}')"
      for c in $chains; do "$ipt" -w -t "$table" -F "$c" 2>/dev/null || true; done
      for c in $chains; do "$ipt" -w -t "$table" -X "$c" 2>/dev/null || true; done
    done
  done
}

remove_cgroups() {
  local d
  for d in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [ -d "$d" ] || continue
    find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}

restore_sysctls() {
  [ -f "$N/sysctl.saved" ] || return 0
  local key value
  while read -r key value; do
    [ "$(sysctl -n "$key" 2>/dev/null)" = "$value" ] || sysctl -qw "$key=$value" >/dev/null 2>&1 || true
  done <"$N/sysctl.saved"
  rm -f "$N/sysctl.saved"
}

# What kubelet and the CNI library keep at fixed paths: kubelet's device-plugin socket and
# checkpoint, and the cached CNI results of this node's pod sandboxes (network "panthera", and
# the loopback results of the same sandboxes). Normally a sandbox's teardown removes its results;
# killed sandboxes leave them.
remove_fixed_path_files() {
  local f id
  if ! pgrep -x kubelet >/dev/null 2>&1; then
    rm -f /var/lib/kubelet/device-plugins/kubelet.sock /var/lib/kubelet/device-plugins/kubelet_internal_checkpoint
  fi
  for f in /var/lib/cni/results/panthera-*-eth0; do
    [ -e "$f" ] || continue
    id="${f#/var/lib/cni/results/panthera-}"
    id="${id%-eth0}"
    rm -f "$f" "/var/lib/cni/results/cni-loopback-$id-lo"
  done
  # kubelet's symlinks to the logs of this run's containers.
  find /var/log/containers -maxdepth 1 -type l -lname "$N/*" -delete 2>/dev/null || :
}

# Only empty directories go: another containerd on this machine may share /run/containerd.
remove_system_paths() {
  [ -f "$N/absent-paths" ] || return 0
  local p
  while read -r p; do
    [ -d "$p" ] || continue
    find "$p" -depth -type d -empty -delete 2>/dev/null || :
    if [ -e "$p" ]; then log "left in place (not empty, maybe not ours): $p"; fi
  done <"$N/absent-paths"
  rm -f "$N/absent-paths"
}

stop() {
  [ -d "$N" ] || return 0
  kill_pids local-path-provisioner coredns kube-proxy kubelet
  kill_pod_processes
  if [ -S "$SOCK" ] && [ -f "$N/containerd.pid" ]; then remove_containers; fi
  kill_pids containerd
  kill_shims
  kill_pod_processes
  unmount_under "$N"
  unmount_under "$CONTAINERD_ROOT"
  remove_network
  remove_iptables
  remove_cgroups
  restore_sysctls
  remove_fixed_path_files
  remove_system_paths
  rm -rf "$N/kubelet" "$N/containerd" "$N/runc" "$N/cni" "$N/cni-ipam" "$N/pod-logs" "$N/volumes"
  # A Node object without its kubelet would hold real-tier pods Pending forever.
  if [ -f "$DIR/admin.kubeconfig" ]; then
    kc delete node "$NODE_NAME" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  fi
}

# --------------------------------------------------------------------------------------- start

save_state() {
  local key p
  : >"$N/sysctl.saved"
  for key in "${SYSCTLS[@]}"; do
    if sysctl -n "$key" >/dev/null 2>&1; then echo "$key $(sysctl -n "$key")" >>"$N/sysctl.saved"; fi
  done
  : >"$N/absent-paths"
  for p in "${SYSTEM_PATHS[@]}"; do [ -e "$p" ] || echo "$p" >>"$N/absent-paths"; done
}

# Client certificates signed by the control plane's CA (its API server trusts that CA): the
# kubelet as system:node:<name> in system:nodes (the Node authorizer), the other components in
# group panthera:node, which the audit policy leaves out.
client_cert() {
  local name=$1 subject=$2
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "$subject" \
    -keyout "$N/pki/$name.key" -out "$N/pki/$name.csr" 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\n' >"$N/pki/$name.ext"
  openssl x509 -req -in "$N/pki/$name.csr" -CA "$DIR/pki/ca.crt" -CAkey "$DIR/pki/ca.key" \
    -CAcreateserial -days 30 -extfile "$N/pki/$name.ext" -out "$N/pki/$name.crt" 2>/dev/null
  cat >"$N/$name.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: panthera-test
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority: $DIR/pki/ca.crt
users:
- name: $name
  user:
    client-certificate: $N/pki/$name.crt
    client-key: $N/pki/$name.key
contexts:
- name: panthera-test
  context:
    cluster: panthera-test
    user: $name
current-context: panthera-test
KC
}

certs() {
  mkdir -p "$N/pki"
  client_cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME"
  client_cert kube-proxy "/O=panthera:node/CN=system:kube-proxy"
  client_cert coredns "/O=panthera:node/CN=panthera:coredns"
  client_cert local-path-provisioner "/O=panthera:node/CN=panthera:local-path-provisioner"
  # kubelet's serving certificate; the API server reaches it at the node address.
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$NODE_NAME" \
    -keyout "$N/pki/kubelet-serving.key" -out "$N/pki/kubelet-serving.csr" 2>/dev/null
  printf 'extendedKeyUsage=serverAuth\nsubjectAltName=IP:%s,DNS:%s\n' "$NODE_IP" "$NODE_NAME" \
    >"$N/pki/kubelet-serving.ext"
  openssl x509 -req -in "$N/pki/kubelet-serving.csr" -CA "$DIR/pki/ca.crt" -CAkey "$DIR/pki/ca.key" \
    -CAcreateserial -days 30 -extfile "$N/pki/kubelet-serving.ext" \
    -out "$N/pki/kubelet-serving.crt" 2>/dev/null
  chmod 600 "$N"/pki/*.key
}

start_containerd() {
  mkdir -p "$N/containerd" "$CONTAINERD_ROOT"
  cat >"$N/containerd.toml" <<TOML
version = 2
root = "$CONTAINERD_ROOT"
state = "$N/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]

[grpc]
  address = "$SOCK"

# Collect a deleted container's snapshot at once, not at the next start.
[plugins."io.containerd.gc.v1.scheduler"]
  deletion_threshold = 1

[plugins."io.containerd.internal.v1.opt"]
  path = "$N/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  # Our own pause image, imported below: nothing is pulled.
  sandbox_image = "$PAUSE_IMAGE"
  # runc cannot lower oom_score_adj here (root lacks CAP_SYS_RESOURCE).
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$N/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$N/cni"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$N/containerd/registry"
TOML
  mkdir -p "$N/containerd/registry"
  # Pulls go through a proxy on the discard port, where nothing listens: an image that was not
  # imported fails at once, and no request leaves this machine.
  HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 NO_PROXY='' \
    http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 no_proxy='' \
    nohup containerd --config "$N/containerd.toml" >"$N/containerd.log" 2>&1 &
  echo $! >"$N/containerd.pid"
  wait_for 150 ctr --address "$SOCK" version || fail containerd
  # Left by a run that did not stop (its state dir is gone, its records are not).
  remove_containers
  local image
  for image in "$IMAGES"/*.tar; do
    ctr_ images import "$image" >>"$N/images.log" 2>&1 \
      || { tail -5 "$N/images.log" >&2; fail containerd; }
  done
}

network() {
  mkdir -p "$N/cni" "$N/cni-ipam"
  # No ipMasq: a pod's packets keep their address and never leave the machine (the guard below
  # drops whatever would). containerd sets up the pod's loopback with the loopback plugin itself.
  cat >"$N/cni/10-panthera.conflist" <<JSON
{
  "cniVersion": "0.4.0",
  "name": "panthera",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$POD_GATEWAY"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$N/cni-ipam"
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
  # The guard goes in before forwarding is switched on. FORWARD: pod to pod on the bridge only.
  # POSTROUTING (mangle: the only table there that sees every packet with its final route, after
  # kube-proxy's DNAT; OUTPUT still sees the route from before it): cluster addresses leave by
  # the bridge or loopback only, never by the default route (a ClusterIP not yet programmed, a
  # kwok pod's or the kwok node's address).
  iptables -w -N PANTHERA-NODE-FORWARD
  iptables -w -A PANTHERA-NODE-FORWARD -i "$BRIDGE" ! -o "$BRIDGE" -j DROP
  iptables -w -A PANTHERA-NODE-FORWARD ! -i "$BRIDGE" -o "$BRIDGE" -j DROP
  iptables -w -I FORWARD 1 -j PANTHERA-NODE-FORWARD
  iptables -w -t mangle -N PANTHERA-NODE-POSTROUTING
  iptables -w -t mangle -A PANTHERA-NODE-POSTROUTING -o "$BRIDGE" -j RETURN
  iptables -w -t mangle -A PANTHERA-NODE-POSTROUTING -o lo -j RETURN
  local range
  for range in "$CLUSTER_CIDR" "$SERVICE_CIDR" 10.240.0.0/16; do
    iptables -w -t mangle -A PANTHERA-NODE-POSTROUTING -d "$range" -j DROP
  done
  iptables -w -t mangle -I POSTROUTING 1 -j PANTHERA-NODE-POSTROUTING
  # Services between pods on one bridge need bridged packets to pass iptables (kube-proxy's DNAT).
  sysctl -qw net.bridge.bridge-nf-call-iptables=1 net.ipv4.ip_forward=1 >/dev/null
}

api_objects() {
  kc apply --server-side --force-conflicts -f - >/dev/null <<YAML
# CoreDNS runs on this machine, not in a pod: its Service points at the node address.
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns, kubernetes.io/name: CoreDNS}
spec:
  clusterIP: $DNS_SERVICE_IP
  ports:
  - {name: dns, port: 53, protocol: UDP, targetPort: $DNS_PORT}
  - {name: dns-tcp, port: 53, protocol: TCP, targetPort: $DNS_PORT}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kube-dns-node
  namespace: kube-system
  labels:
    kubernetes.io/service-name: kube-dns
    endpointslice.kubernetes.io/managed-by: node.panthera.dev
addressType: IPv4
endpoints:
- addresses: ["$NODE_IP"]
  conditions: {ready: true}
  nodeName: $NODE_NAME
ports:
- {name: dns, port: $DNS_PORT, protocol: UDP}
- {name: dns-tcp, port: $DNS_PORT, protocol: TCP}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "panthera:coredns"}
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "panthera:coredns"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "panthera:coredns"}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: "panthera:coredns"}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "panthera:local-path-provisioner"}
rules:
- apiGroups: [""]
  resources: [nodes, configmaps, pods/log]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [persistentvolumeclaims]
  verbs: [get, list, watch, update, patch]
- apiGroups: [""]
  resources: [persistentvolumes]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch, update]
- apiGroups: [storage.k8s.io]
  resources: [storageclasses]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "panthera:local-path-provisioner"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "panthera:local-path-provisioner"}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: "panthera:local-path-provisioner"}
---
# The provisioner's helper pods (mkdir / rm -rf of a volume) run here, on the real node.
apiVersion: v1
kind: Namespace
metadata:
  name: local-path-storage
  annotations:
    scheduler.alpha.kubernetes.io/node-selector: panthera.dev/node=real
    scheduler.alpha.kubernetes.io/defaultTolerations: '[{"key":"panthera.dev/real-node","operator":"Exists","effect":"NoSchedule"}]'
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: local-path-provisioner, namespace: local-path-storage}
automountServiceAccountToken: false
---
apiVersion: v1
kind: ConfigMap
metadata: {name: local-path-config, namespace: local-path-storage}
data:
  setup: |-
    #!/bin/sh
    set -eu
    mkdir -m 0777 -p "\$VOL_DIR"
  teardown: |-
    #!/bin/sh
    set -eu
    rm -rf "\$VOL_DIR"
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: local-path}
provisioner: rancher.io/local-path
reclaimPolicy: Delete
volumeBindingMode: WaitForFirstConsumer
---
# Claims of the default class in a real-tier namespace go to local-path (see the header).
apiVersion: admissionregistration.k8s.io/v1beta1
kind: MutatingAdmissionPolicy
metadata: {name: panthera-real-node-storage}
spec:
  failurePolicy: Fail
  reinvocationPolicy: Never
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: [v1]
      operations: [CREATE]
      resources: [persistentvolumeclaims]
  matchConditions:
  - name: default-class
    expression: "!has(object.spec.storageClassName) || object.spec.storageClassName == 'standard'"
  # The namespace is known to the mutation only (matchConditions do not see namespaceObject).
  mutations:
  - patchType: JSONPatch
    jsonPatch:
      expression: >-
        has(namespaceObject.metadata.annotations) &&
        namespaceObject.metadata.annotations[?'scheduler.alpha.kubernetes.io/node-selector'].orValue('') == 'panthera.dev/node=real'
        ? [JSONPatch{op: "add", path: "/spec/storageClassName", value: "local-path"}]
        : []
---
apiVersion: admissionregistration.k8s.io/v1beta1
kind: MutatingAdmissionPolicyBinding
metadata: {name: panthera-real-node-storage}
spec:
  policyName: panthera-real-node-storage
YAML
}

start_kubelet() {
  mkdir -p "$N/kubelet" "$N/pod-logs" "$N/kubelet-plugins"
  cat >"$N/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# The node address (a node IP may not be loopback); the API server reaches logs and exec here.
address: $NODE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
tlsCertFile: $N/pki/kubelet-serving.crt
tlsPrivateKeyFile: $N/pki/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $DIR/pki/ca.crt}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://$SOCK
# This machine: cgroup v1 (hybrid) without systemd, and swap is not ours to forbid.
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
clusterDNS: [$DNS_SERVICE_IP]
clusterDomain: cluster.local
# Pods get only the cluster DNS: no name server of the host, nothing resolved outside.
resolvConf: ""
# No image may ever be collected: nothing can be pulled back.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
# A shared test machine: evict only when it is truly out of room.
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, nodefs.inodesFree: 1%, imagefs.available: 1%}
registerWithTaints:
- {key: panthera.dev/real-node, value: "true", effect: NoSchedule}
podLogsDir: $N/pod-logs
volumePluginDir: $N/kubelet-plugins
serializeImagePulls: false
rotateCertificates: false
serverTLSBootstrap: false
YAML
  nohup "$BIN/kubelet" --config "$N/kubelet.yaml" --kubeconfig "$N/kubelet.kubeconfig" \
    --root-dir "$N/kubelet" --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" \
    --node-labels panthera.dev/node=real --v 0 >"$N/kubelet.log" 2>&1 &
  echo $! >"$N/kubelet.pid"
}

start_kube_proxy() {
  cat >"$N/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $N/kube-proxy.kubeconfig}
hostnameOverride: $NODE_NAME
bindAddress: $NODE_IP
healthzBindAddress: 127.0.0.1:$PROXY_HEALTHZ_PORT
metricsBindAddress: 127.0.0.1:$PROXY_METRICS_PORT
mode: iptables
clusterCIDR: $CLUSTER_CIDR
nodePortAddresses: [primary]
iptables:
  # Else kube-proxy sets route_localnet to serve node ports on 127.0.0.1.
  localhostNodePorts: false
  # A Service answers from this machine within a moment of its pod turning Ready.
  minSyncPeriod: 200ms
# Zero leaves the kernel's conntrack settings as they are.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
YAML
  nohup "$BIN/kube-proxy" --config "$N/kube-proxy.yaml" --v 0 >"$N/kube-proxy.log" 2>&1 &
  echo $! >"$N/kube-proxy.pid"
}

start_coredns() {
  # cluster.local and reverse lookups of cluster addresses; everything else NXDOMAIN (no forward).
  cat >"$N/Corefile" <<COREFILE
cluster.local:$DNS_PORT in-addr.arpa:$DNS_PORT ip6.arpa:$DNS_PORT {
    bind $NODE_IP
    errors
    ready 127.0.0.1:$DNS_READY_PORT
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $N/coredns.kubeconfig panthera-test
        pods insecure
        ttl 5
    }
    cache 5
    loadbalance
}
.:$DNS_PORT {
    bind $NODE_IP
    template ANY ANY {
        rcode NXDOMAIN
    }
}
COREFILE
  nohup "$BIN/coredns" -conf "$N/Corefile" >"$N/coredns.log" 2>&1 &
  echo $! >"$N/coredns.pid"
}

start_local_path() {
  mkdir -p "$N/volumes"
  printf '{"nodePathMap":[{"node":"DEFAULT_PATH_FOR_NON_LISTED_NODES","paths":["%s"]}]}\n' \
    "$N/volumes" >"$N/local-path.json"
  cat >"$N/local-path-helper.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: helper-pod
spec:
  containers:
  - name: helper-pod
    image: $BUSYBOX_IMAGE
    imagePullPolicy: IfNotPresent
YAML
  nohup "$BIN/local-path-provisioner" start --kubeconfig "$N/local-path-provisioner.kubeconfig" \
    --namespace local-path-storage --configmap-name local-path-config \
    --config "$N/local-path.json" --helper-pod-file "$N/local-path-helper.yaml" \
    --helper-image "$BUSYBOX_IMAGE" --service-account-name local-path-provisioner \
    --provisioner-name rancher.io/local-path >"$N/local-path-provisioner.log" 2>&1 &
  echo $! >"$N/local-path-provisioner.pid"
}

node_ready() {
  kc get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' | grep -qx True
}

# The policy is compiled asynchronously: a dry-run claim shows when it applies.
storage_policy_active() {
  kc create --dry-run=server -o jsonpath='{.spec.storageClassName}' -f - <<'YAML' | grep -qx local-path
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: policy-probe, namespace: local-path-storage}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Mi}}
YAML
}

# Seconds since a `date +%s%N`, to a tenth.
elapsed() {
  local ds=$((($(date +%s%N) - $1) / 100000000))
  echo "$((ds / 10)).$((ds % 10))"
}

alive() {
  local p
  for p in "$@"; do
    kill -0 "$(cat "$N/$p.pid")" 2>/dev/null || fail "$p"
  done
}

start() {
  local started
  started=$(date +%s%N)
  [ "$(id -u)" = 0 ] || { log "needs root (containerd, runc, iptables, mounts)"; exit 1; }
  if [ ! -f "$DIR/admin.kubeconfig" ] || [ ! -f "$DIR/node-address" ]; then
    log "no control plane in $DIR: run scripts/control-plane.sh start $DIR first"
    exit 1
  fi
  NODE_IP="$(cat "$DIR/node-address")"
  case "$NODE_IP" in
    127.* | "") log "the control plane found no address of this machine but loopback; a node needs one"; exit 1 ;;
  esac
  BIN="$(bash "$HERE/install-node.sh")"
  IMAGES="$(dirname "$BIN")/images"
  BUSYBOX_IMAGE="$(cat "$IMAGES/busybox.ref")"
  stop
  # A start that fails leaves nothing running (the logs stay in DIR/node).
  # shellcheck disable=SC2154 # rc is assigned inside the trap
  trap 'rc=$?; if [ "$rc" != 0 ]; then log "start failed: cleaning up"; stop; fi' EXIT
  mkdir -p "$N"
  save_state
  certs
  network
  start_containerd
  api_objects
  start_kubelet
  start_kube_proxy
  start_coredns
  start_local_path
  wait_for 300 node_ready || { alive kubelet; fail kubelet; }
  wait_for 150 curl -sf "http://127.0.0.1:$PROXY_HEALTHZ_PORT/healthz" || fail kube-proxy
  wait_for 150 curl -sf "http://127.0.0.1:$DNS_READY_PORT/ready" || fail coredns
  wait_for 150 storage_policy_active || { log "the MutatingAdmissionPolicy did not apply (is the API server's MutatingAdmissionPolicy feature on?)"; exit 1; }
  # kube-proxy put its jumps first: the guard goes back in front of them.
  iptables -w -D FORWARD -j PANTHERA-NODE-FORWARD
  iptables -w -I FORWARD 1 -j PANTHERA-NODE-FORWARD
  alive containerd kubelet kube-proxy coredns local-path-provisioner
  cat >"$N/env.sh" <<ENV
export PANTHERA_TEST_REAL_NODE="$NODE_NAME"
export PANTHERA_TEST_CONTAINERD_ADDRESS="$SOCK"
# ctr (and scripts/images.sh import) talk to this containerd.
export CONTAINERD_ADDRESS="$SOCK"
export PANTHERA_TEST_NODE_IP="$NODE_IP"
export PANTHERA_TEST_BUSYBOX_IMAGE="$BUSYBOX_IMAGE"
ENV
  trap - EXIT
  log "up: $NODE_NAME Ready at $NODE_IP (pods $POD_CIDR, DNS $DNS_SERVICE_IP) in $(elapsed "$started") s"
}

case "$cmd" in
  start) start ;;
  stop)
    if [ -d "$N" ]; then
      [ "$(id -u)" = 0 ] || { log "needs root"; exit 1; }
      stop
      log "stopped"
    fi
    ;;
  *) echo "usage: node.sh start|stop DIR" >&2; exit 2 ;;
esac
