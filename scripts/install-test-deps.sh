#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine (idempotent, cached).
#   - Debian: PostgreSQL 15, Redis 7, nginx, wrk, Lua 5.4, hyperfine, openssl, curl
#   - PyPI (venv under the cache): kubernetes-validate, moto[server]
#   - Maven Central: Apache Kafka (scripts/kafka/pom.xml; jars cached), run on Debian's Java 17
#   - Go modules: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok (cached)
#   - Go module: Prometheus's promtool and server (install-prometheus.sh; cached)
#   - Go module: Jaeger's all-in-one (install-jaeger.sh; cached)
#   - Go module: versitygw, an S3 server over a directory (install-versitygw.sh; cached)
#   - Maven Central: OpenSearch 2.19.6 and a small launcher (install-opensearch.sh; cached)
#   - a real node (install-node.sh): containerd, runc, CNI plugins from Debian; kubelet,
#     kube-proxy, CoreDNS, local-path-provisioner from Go modules; pause and busybox images
set -euo pipefail

CACHE="${PANTHERA_CACHE:-$HOME/.cache/panthera}"
mkdir -p "$CACHE"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

need_apt=()
command -v pg_ctl >/dev/null 2>&1 || [ -x /usr/lib/postgresql/15/bin/pg_ctl ] || need_apt+=(postgresql-15)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_apt+=(nginx-light)
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
command -v lua5.4 >/dev/null 2>&1 || need_apt+=(lua5.4)
command -v hyperfine >/dev/null 2>&1 || need_apt+=(hyperfine)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3 python3-venv)
# The control plane's certificates and readiness probes.
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
# Apache Kafka: Java 17 runs it, Maven fetches it.
command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "install-test-deps: apt-get install ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# Debian starts the packaged servers; the tests run their own on private ports.
for svc in redis-server nginx postgresql; do
  $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || true
done

VENV="$CACHE/venv"
if [ ! -x "$VENV/bin/kubernetes-validate" ] || [ ! -x "$VENV/bin/moto_server" ]; then
  echo "install-test-deps: python venv at $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q kubernetes-validate 'moto[server]'
fi

# Apache Kafka's jars from Maven Central, once per version (the version is in the pom). Maven's
# own cache (~/.m2) makes a second copy cheap, but a finished libs dir skips Maven altogether.
KAFKA_POM="$(dirname "$0")/kafka/pom.xml"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$KAFKA_POM")"
KAFKA_HOME="$CACHE/kafka-$KAFKA_VERSION"
# The marker holds the pom's hash: a dependency added to the pom fetches the jars again.
KAFKA_POM_HASH="$(sha256sum "$KAFKA_POM" | cut -d' ' -f1)"
if [ "$(cat "$KAFKA_HOME/.complete" 2>/dev/null)" != "$KAFKA_POM_HASH" ]; then
  echo "install-test-deps: Apache Kafka $KAFKA_VERSION from Maven Central"
  rm -rf "$KAFKA_HOME"
  mkdir -p "$KAFKA_HOME"
  mvn -B -q -f "$KAFKA_POM" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$KAFKA_HOME/libs" >"$CACHE/kafka-install.log" 2>&1 \
    || { tail -40 "$CACHE/kafka-install.log"; exit 1; }
  # Written last: an interrupted copy leaves no marker and is done again next time.
  echo "$KAFKA_POM_HASH" >"$KAFKA_HOME/.complete"
fi
# A real Kubernetes control plane, built from Go modules (about 20 CPU-minutes once, cached).
bash "$(dirname "$0")/install-control-plane.sh" >/dev/null
# A real node beside it (about 5 CPU-minutes once with the control plane's Go cache, cached).
bash "$(dirname "$0")/install-node.sh" >/dev/null
# promtool checks and unit-tests the rendered alerts, the server scrapes the real binaries
# (about 6 minutes once, cached).
bash "$(dirname "$0")/install-prometheus.sh" >/dev/null
# Jaeger's all-in-one receives the end-to-end test's traces (about 6 minutes once, cached).
bash "$(dirname "$0")/install-jaeger.sh" >/dev/null
# versitygw is the tests' real S3 server (about 3-4 minutes once, cached).
bash "$(dirname "$0")/install-versitygw.sh" >/dev/null
# One OpenSearch node for the search tests (about 20 s once, cached).
bash "$(dirname "$0")/install-opensearch.sh" >/dev/null
# kubectl comes with the machine image (no Debian/PyPI/npm/crates.io package provides it); the
# kube-sim kubectl test and the render benchmark need it.
if ! command -v kubectl >/dev/null 2>&1; then
  echo "install-test-deps: kubectl is missing; it is expected on the machine image (/usr/bin/kubectl)" >&2
  exit 1
fi
echo "install-test-deps: ok"
