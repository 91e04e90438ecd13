#!/usr/bin/env bash
# Starts (or stops) a real Kubernetes control plane on loopback for the cluster tests:
# etcd, kube-apiserver (RBAC, ServiceAccount tokens, static tokens, audit log),
# kube-controller-manager (with the hostPath provisioner behind a default StorageClass),
# kube-scheduler, and kwok, which plays the kubelet of one node: pods go Running/Ready, Job pods
# Succeeded, and a pod annotated `panthera.dev/test-fail: image-pull` waits in ImagePullBackOff.
# kwok manages only its node (annotation kwok.x-k8s.io/node=fake, label panthera.dev/node=kwok), so
# a real node can join (scripts/node.sh, same DIR): for it the API server also serves on this
# machine's own address (DIR/node-address), which it advertises to pods through the `kubernetes`
# Service, and runs the Node authorizer and the PodNodeSelector, PodTolerationRestriction and
# MutatingAdmissionPolicy admission plugins that node.sh's contract uses.
#
#   scripts/control-plane.sh start DIR   -> DIR/admin.kubeconfig, DIR/audit.log, DIR/env.sh
#   scripts/control-plane.sh stop DIR
#
# Binaries come from scripts/install-control-plane.sh (built once, cached). Users (static tokens):
#   admin (system:masters)                  -> the tests and the panthera CLI
#   system:kube-controller-manager, system:kube-scheduler, kwok
# The audit log records every request of every other user (the tests count writes with it); the
# control plane's own controllers (ServiceAccounts of kube-system) and a real node's components
# (groups system:nodes and panthera:node) are left out.
set -euo pipefail

cmd="${1:?usage: control-plane.sh start|stop DIR}"
DIR="${2:?usage: control-plane.sh start|stop DIR}"
HERE="$(cd "$(dirname "$0")" && pwd)"
# Ports below the kernel's ephemeral range, so an outgoing connection never holds one.
ETCD_PORT="${PANTHERA_ETCD_PORT:-22379}"
ETCD_PEER_PORT="${PANTHERA_ETCD_PEER_PORT:-22380}"
API_PORT="${PANTHERA_APISERVER_PORT:-26443}"
KCM_PORT="${PANTHERA_KCM_PORT:-20257}"
SCHED_PORT="${PANTHERA_SCHEDULER_PORT:-20259}"
KWOK_PORT="${PANTHERA_KWOK_PORT:-20247}"

log() { echo "control-plane: $*" >&2; }

# This machine's own address (the source of its default route, else its first global IPv4
# address): a real node's address, where pods reach the API server. Loopback if there is none.
node_address() {
  if [ -n "${PANTHERA_NODE_IP:-}" ]; then
    echo "$PANTHERA_NODE_IP"
    return
  fi
  local dev addr=""
  if command -v ip >/dev/null 2>&1; then
    dev="$(ip -4 -o route show default 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "dev") {print $(i + 1); exit}}')"
    if [ -n "$dev" ]; then
      addr="$(ip -4 -o addr show dev "$dev" scope global 2>/dev/null | awk '{split($4, a, "/"); print a[1]; exit}')"
    fi
    if [ -z "$addr" ]; then
      addr="$(ip -4 -o addr show scope global 2>/dev/null | awk '$2 != "panthera0" {split($4, a, "/"); print a[1]; exit}')"
    fi
  fi
  echo "${addr:-127.0.0.1}"
}

wait_for() {
  local what=$1 tries=$2
  shift 2
  for _ in $(seq 1 "$tries"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  log "$what did not come up; last lines of its log:"
  return 1
}

stop() {
  for p in kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
    if [ -f "$DIR/$p.pid" ]; then
      kill "$(cat "$DIR/$p.pid")" 2>/dev/null || true
    fi
  done
  for p in kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
    if [ -f "$DIR/$p.pid" ]; then
      local pid
      pid="$(cat "$DIR/$p.pid")"
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$DIR/$p.pid"
    fi
  done
}

certs() {
  local pki="$DIR/pki" ip=$1
  mkdir -p "$pki"
  # The serving certificate names the node address too; made again if that address changed.
  local ext
  ext="$(printf 'subjectAltName=IP:127.0.0.1,IP:10.96.0.1,IP:%s,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\nextendedKeyUsage=serverAuth' "$ip")"
  if [ -f "$pki/serving.crt" ] && [ -f "$pki/kubelet-client.crt" ] && [ "$(cat "$pki/serving.ext")" = "$ext" ]; then
    return 0
  fi
  if [ ! -f "$pki/ca.key" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=panthera-test-ca" \
      -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
  fi
  openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
    -keyout "$pki/serving.key" -out "$pki/serving.csr" 2>/dev/null
  echo "$ext" >"$pki/serving.ext"
  openssl x509 -req -in "$pki/serving.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
    -CAcreateserial -days 30 -extfile "$pki/serving.ext" -out "$pki/serving.crt" 2>/dev/null
  # The API server's client certificate towards kubelets (logs, exec, port-forward).
  openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=kube-apiserver-kubelet-client" \
    -keyout "$pki/kubelet-client.key" -out "$pki/kubelet-client.csr" 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\n' >"$pki/kubelet-client.ext"
  openssl x509 -req -in "$pki/kubelet-client.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
    -CAcreateserial -days 30 -extfile "$pki/kubelet-client.ext" -out "$pki/kubelet-client.crt" 2>/dev/null
  # ServiceAccount tokens are signed with this key and verified with its public half.
  if [ ! -f "$pki/sa.key" ]; then
    openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
    openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
  fi
}

kubeconfig() {
  local file=$1 user=$2 token=$3
  cat >"$file" <<KC
apiVersion: v1
kind: Config
clusters:
- name: panthera-test
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority: $DIR/pki/ca.crt
users:
- name: $user
  user:
    token: $token
contexts:
- name: panthera-test
  context:
    cluster: panthera-test
    user: $user
current-context: panthera-test
KC
}

start() {
  local bin
  bin="$(bash "$HERE/install-control-plane.sh")"
  mkdir -p "$DIR"
  stop
  local node_ip bind_address reconciler
  node_ip="$(node_address)"
  echo "$node_ip" >"$DIR/node-address"
  certs "$node_ip"
  # kube-apiserver takes one bind address: on all of this machine's addresses when it has one
  # besides loopback (the kubeconfigs use 127.0.0.1, pods the node address), and then it keeps
  # the `kubernetes` Service's endpoint (that address) itself. A loopback endpoint is invalid.
  if [ "${node_ip#127.}" = "$node_ip" ]; then
    bind_address=0.0.0.0
    reconciler=lease
  else
    bind_address=127.0.0.1
    reconciler=none
  fi
  # One fresh token per run and user: nothing from an earlier run authenticates.
  local admin_token kcm_token sched_token kwok_token
  admin_token="$(openssl rand -hex 24)"
  kcm_token="$(openssl rand -hex 24)"
  sched_token="$(openssl rand -hex 24)"
  kwok_token="$(openssl rand -hex 24)"
  cat >"$DIR/tokens.csv" <<TOK
$admin_token,admin,admin,"system:masters"
$kcm_token,system:kube-controller-manager,kcm,
$sched_token,system:kube-scheduler,scheduler,
$kwok_token,kwok,kwok,"system:masters"
TOK
  chmod 600 "$DIR/tokens.csv"
  kubeconfig "$DIR/admin.kubeconfig" admin "$admin_token"
  kubeconfig "$DIR/kcm.kubeconfig" system:kube-controller-manager "$kcm_token"
  kubeconfig "$DIR/scheduler.kubeconfig" system:kube-scheduler "$sched_token"
  kubeconfig "$DIR/kwok.kubeconfig" kwok "$kwok_token"
  cat >"$DIR/audit-policy.yaml" <<'POL'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: None
  users: ["system:kube-controller-manager", "system:kube-scheduler", "kwok", "system:apiserver"]
- level: None
  userGroups: ["system:nodes", "system:serviceaccounts:kube-system", "panthera:node"]
- level: Metadata
POL

  rm -rf "$DIR/etcd-data"
  nohup "$bin/etcd" --name panthera-test --data-dir "$DIR/etcd-data" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "panthera-test=http://127.0.0.1:$ETCD_PEER_PORT" \
    --unsafe-no-fsync --quota-backend-bytes=4294967296 \
    --log-level warn >"$DIR/etcd.log" 2>&1 &
  echo $! >"$DIR/etcd.pid"
  wait_for etcd 150 curl -sf "http://127.0.0.1:$ETCD_PORT/health" || { tail -20 "$DIR/etcd.log" >&2; exit 1; }

  : >"$DIR/audit.log"
  nohup "$bin/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address "$bind_address" --advertise-address "$node_ip" --secure-port "$API_PORT" \
    --tls-cert-file "$DIR/pki/serving.crt" --tls-private-key-file "$DIR/pki/serving.key" \
    --client-ca-file "$DIR/pki/ca.crt" \
    --token-auth-file "$DIR/tokens.csv" \
    --authorization-mode Node,RBAC \
    --enable-admission-plugins NodeRestriction,PodNodeSelector,PodTolerationRestriction \
    --feature-gates MutatingAdmissionPolicy=true \
    --runtime-config admissionregistration.k8s.io/v1beta1=true \
    --kubelet-preferred-address-types InternalIP,Hostname \
    --kubelet-client-certificate "$DIR/pki/kubelet-client.crt" \
    --kubelet-client-key "$DIR/pki/kubelet-client.key" \
    --service-account-issuer https://kubernetes.default.svc \
    --service-account-key-file "$DIR/pki/sa.pub" \
    --service-account-signing-key-file "$DIR/pki/sa.key" \
    --api-audiences https://kubernetes.default.svc \
    --service-cluster-ip-range 10.96.0.0/16 \
    --allow-privileged=true \
    --audit-log-path "$DIR/audit.log" --audit-policy-file "$DIR/audit-policy.yaml" \
    --audit-log-format json --audit-log-mode blocking \
    --endpoint-reconciler-type "$reconciler" \
    --max-requests-inflight 1600 --max-mutating-requests-inflight 800 \
    --v 0 >"$DIR/kube-apiserver.log" 2>&1 &
  echo $! >"$DIR/kube-apiserver.pid"
  wait_for kube-apiserver 600 curl -sf --cacert "$DIR/pki/ca.crt" \
    -H "Authorization: Bearer $admin_token" "https://127.0.0.1:$API_PORT/readyz" \
    || { tail -30 "$DIR/kube-apiserver.log" >&2; exit 1; }

  nohup "$bin/kube-controller-manager" \
    --kubeconfig "$DIR/kcm.kubeconfig" \
    --authentication-kubeconfig "$DIR/kcm.kubeconfig" --authorization-kubeconfig "$DIR/kcm.kubeconfig" \
    --leader-elect=false --bind-address 127.0.0.1 --secure-port "$KCM_PORT" \
    --use-service-account-credentials=true \
    --service-account-private-key-file "$DIR/pki/sa.key" --root-ca-file "$DIR/pki/ca.crt" \
    --enable-hostpath-provisioner=true --flex-volume-plugin-dir "$DIR/flex-volume" \
    --controllers '*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller' \
    --concurrent-deployment-syncs 10 --concurrent-statefulset-syncs 10 \
    --kube-api-qps 400 --kube-api-burst 800 \
    --v 0 >"$DIR/kube-controller-manager.log" 2>&1 &
  echo $! >"$DIR/kube-controller-manager.pid"

  nohup "$bin/kube-scheduler" \
    --kubeconfig "$DIR/scheduler.kubeconfig" \
    --authentication-kubeconfig "$DIR/scheduler.kubeconfig" --authorization-kubeconfig "$DIR/scheduler.kubeconfig" \
    --leader-elect=false --bind-address 127.0.0.1 --secure-port "$SCHED_PORT" \
    --v 0 >"$DIR/kube-scheduler.log" 2>&1 &
  echo $! >"$DIR/kube-scheduler.pid"

  cp "$HERE/kwok-stages.yaml" "$DIR/kwok-stages.yaml"
  nohup "$bin/kwok" \
    --kubeconfig "$DIR/kwok.kubeconfig" \
    --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
    --server-address "127.0.0.1:$KWOK_PORT" \
    --cidr 10.244.0.1/17 --node-ip 10.240.0.1 \
    -c "$DIR/kwok-stages.yaml" >"$DIR/kwok.log" 2>&1 &
  echo $! >"$DIR/kwok.pid"

  local kc=(kubectl --kubeconfig "$DIR/admin.kubeconfig")
  # A default StorageClass served by the controller-manager's hostPath provisioner, so that
  # StatefulSet claims bind and their pods schedule.
  "${kc[@]}" apply --server-side -f - >/dev/null <<'OBJ'
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: kubernetes.io/host-path
reclaimPolicy: Delete
volumeBindingMode: Immediate
---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-0
  annotations:
    kwok.x-k8s.io/node: fake
  labels:
    kubernetes.io/hostname: kwok-node-0
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
    panthera.dev/node: kwok
OBJ
  wait_for "the kwok node" 300 bash -c \
    "${kc[*]} get node kwok-node-0 -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -qx True" \
    || { tail -30 "$DIR/kwok.log" >&2; exit 1; }
  # The default ServiceAccount exists once the controller-manager runs; pods need it.
  wait_for "the controller-manager" 300 "${kc[@]}" get serviceaccount default -n default \
    || { tail -30 "$DIR/kube-controller-manager.log" >&2; exit 1; }

  cat >"$DIR/env.sh" <<ENV
export PANTHERA_TEST_KUBECONFIG="$DIR/admin.kubeconfig"
export PANTHERA_TEST_AUDIT_LOG="$DIR/audit.log"
export PANTHERA_TEST_CONTROL_PLANE="$bin"
ENV
  log "up: Kubernetes $("$bin/kube-apiserver" --version | awk '{print $2}') on https://127.0.0.1:$API_PORT (kubeconfig $DIR/admin.kubeconfig)"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: control-plane.sh start|stop DIR" >&2; exit 2 ;;
esac
