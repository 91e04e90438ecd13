#!/usr/bin/env bash
# Container images of Panthera and of its data stores, built without Docker or a registry: OCI
# archives (one rootfs layer, a config, an index naming the image) that containerd imports with
# `ctr -n k8s.io images import FILE`. A pod then finds an image by its name, as long as the tag is
# not `latest` (which means "always pull") or the pod says imagePullPolicy IfNotPresent/Never.
#
#   scripts/images.sh build  [--bin-dir DIR] [--out DIR] [--release V] [--registry R] [--force] [IMAGE...]
#   scripts/images.sh import [--out DIR] [IMAGE...]     into containerd's k8s.io namespace
#   scripts/images.sh check  [--out DIR] [--release V] [--registry R] [IMAGE...]
#   scripts/images.sh list   [--release V] [--registry R]
#
# IMAGE is a short name (panthera-users, ..., postgres, redis, kafka) or a full name from `list`;
# none means all. Archives go to --out (default ~/.cache/panthera/images) as NAME.oci.tar, each
# with NAME.oci.tar.key, the hash of its inputs (the binary, services/Dockerfile and the libraries
# for a Panthera image; the packages, the Kafka jars and scripts/images/ for a data store; always
# the part of this script that builds it): an archive is rebuilt only when they change, and is
# written to a temporary directory first, so an interrupted build leaves none half-written.
# --bin-dir defaults to ${CARGO_TARGET_DIR:-target}/release. `import` talks to the containerd at
# $CONTAINERD_ADDRESS when set (the default socket otherwise). `check` exits non-zero when a
# Panthera archive's config (User, Entrypoint, Cmd, Env, WorkingDir, ExposedPorts) or binary
# (path, owner, mode) differs from what services/Dockerfile says.
#
# The image contracts Panthera depends on:
#   Panthera:   {registry}/panthera-{users,catalog,orders,gateway}:{release} and
#               {registry}/panthera:{release}. services/Dockerfile is the source of truth: this
#               script reads each `FROM runtime AS <target>` stage (COPY destination and mode,
#               ENTRYPOINT, CMD, EXPOSE; USER, WORKDIR and ENV of the runtime stage) and refuses a
#               Dockerfile it does not understand. The rootfs gives what distroless
#               cc-debian12:nonroot gives: glibc and libgcc (the libraries ldd names, taken from
#               this Debian bookworm machine), CA certificates, passwd/group with nonroot 65532,
#               /tmp (1777), no shell; the binary in /usr/local/bin, root-owned, 0755.
#   PostgreSQL: docker.io/library/postgres:15 keeps the official image's documented entrypoint
#               contract (scripts/images/postgres/docker-entrypoint.sh): POSTGRES_USER,
#               POSTGRES_PASSWORD, POSTGRES_DB, PGDATA, initdb on an empty PGDATA, listening on all
#               addresses with scram-sha-256 (`host all all all scram-sha-256`); runs as postgres
#               (UID 999) on a read-only root filesystem with only PGDATA's volume,
#               /var/run/postgresql and /tmp writable; pg_isready, psql and sh on PATH.
#   Redis:      docker.io/library/redis:7.0: redis-server, redis-cli and sh, user redis (UID 999);
#               the template gives the command.
#   versitygw:  docker.io/versity/versitygw:<version of scripts/install-versitygw.sh>: the static
#               binary that script builds from its Go module, at /usr/local/bin/versitygw as in
#               the official image, and busybox's sh and sleep (the official image is Alpine:
#               the bucket setup Jobs run `sh -c`); passwd/group with nonroot 65532, /tmp (1777).
#   Kafka:      docker.io/apache/kafka:<kafka.version of scripts/kafka/pom.xml>: sh and the
#               distribution's /opt/kafka/bin/kafka-storage.sh, kafka-server-start.sh,
#               kafka-topics.sh and kafka-configs.sh (ours, on the jars in /opt/kafka/libs, honouring KAFKA_HEAP_OPTS,
#               KAFKA_OPTS and KAFKA_LOG4J_OPTS), user appuser (UID 1000), /opt/kafka/config
#               writable by it; Java is Debian's openjdk-17-jre-headless. kafka-topics.sh needs
#               the kafka-tools jar (org.apache.kafka:kafka-tools in scripts/kafka/pom.xml).
# The data-store images come from Debian bookworm's packages (mmdebstrap, from Debian's mirror),
# so each is tagged with the version it really contains, and the build refuses a tag that the
# installed package does not match. Sizes (rootfs / gzip'd archive): postgres 150 MB / 52 MB (no
# LLVM JIT, no Perl), redis 75 MB / 26 MB, kafka 325 MB / 139 MB (Java is 185 MB of it); a
# Panthera image is its binary plus 3 MB. A cold build takes about a minute per data store
# (mmdebstrap), seconds per Panthera image and for versitygw (15 MB); a warm run of all nine
# takes a few seconds.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
LIB="$HERE/images"
# Debian's python3 when there is one: the helper needs only the standard library, and a version
# manager's shim in front of another python3 costs half a second per call on a busy machine.
PYTHON="$(command -v /usr/bin/python3 || command -v python3 || true)"
OCI=("${PYTHON:-python3}" "$LIB/oci.py")
DOCKERFILE="$ROOT/services/Dockerfile"
CACHE="${PANTHERA_CACHE:-$HOME/.cache/panthera}"
SUITE=bookworm

# The data stores: the tag is what the package gives (checked after each build).
POSTGRES_MAJOR=15
POSTGRES_REF="docker.io/library/postgres:$POSTGRES_MAJOR"
REDIS_SERIES=7.0
REDIS_REF="docker.io/library/redis:$REDIS_SERIES"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$HERE/kafka/pom.xml")"
KAFKA_REF="docker.io/apache/kafka:$KAFKA_VERSION"
KAFKA_HOME="$CACHE/kafka-$KAFKA_VERSION"
VERSITYGW_VERSION="$(sed -n 's/^VERSITYGW_VERSION="\${PANTHERA_VERSITYGW_VERSION:-\(.*\)}"$/\1/p' "$HERE/install-versitygw.sh")"
VERSITYGW_REF="docker.io/versity/versitygw:$VERSITYGW_VERSION"
VERSITYGW_BIN="$CACHE/versitygw/$VERSITYGW_VERSION/bin/versitygw"
STORES=(postgres redis kafka versitygw)
# What Debian's images leave out: documentation, manual pages, translations (each package's
# copyright notice stays).
DPKG_EXCLUDES=(
  --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/man/*'
  --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/locale/*'
  --dpkgopt='path-include=/usr/share/locale/locale.alias'
  --dpkgopt='path-exclude=/usr/share/lintian/*'
)
BASE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log() { echo "images: $*" >&2; }
die() { log "$*"; exit 1; }

usage() {
  sed -n '/^#   scripts\/images.sh build/,/^#   scripts\/images.sh list/s/^#   //p' "$0" >&2
  exit 2
}

# --- options -------------------------------------------------------------------------------------

[ $# -ge 1 ] || usage
COMMAND="$1"
shift
BIN_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/release"
OUT="$CACHE/images"
RELEASE=""
REGISTRY="ghcr.io/panthera-dev"
FORCE=""
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --bin-dir) BIN_DIR="${2:?--bin-dir needs a directory}"; shift 2 ;;
    --out) OUT="${2:?--out needs a directory}"; shift 2 ;;
    --release) RELEASE="${2:?--release needs a version}"; shift 2 ;;
    --registry) REGISTRY="${2:?--registry needs a registry}"; shift 2 ;;
    --force) FORCE=1; shift ;;
    -h | --help) usage ;;
    -*) die "unknown option $1" ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
if [ -z "$RELEASE" ]; then
  # The workspace version ([workspace.package] of Cargo.toml).
  RELEASE="$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' "$ROOT/Cargo.toml")"
  [ -n "$RELEASE" ] || die "no [workspace.package] version in Cargo.toml; pass --release"
fi
REGISTRY="${REGISTRY%/}"

APT_UPDATED=""
apt_install() {
  local sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  log "apt-get install $*"
  if [ -z "$APT_UPDATED" ]; then
    $sudo apt-get update -qq
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

# Every command reads services/Dockerfile through the helper.
if [ -z "$PYTHON" ]; then
  apt_install python3
  PYTHON="$(command -v python3)"
  OCI=("$PYTHON" "$LIB/oci.py")
fi

# --- names ---------------------------------------------------------------------------------------

# The Panthera images, as services/Dockerfile describes them: "image<TAB>target" lines.
WORKSPACE_TARGETS="$("${OCI[@]}" targets --dockerfile "$DOCKERFILE")" || die "cannot read services/Dockerfile"
mapfile -t WORKSPACE < <(cut -f1 <<<"$WORKSPACE_TARGETS")

ref_of() {
  case "$1" in
    postgres) echo "$POSTGRES_REF" ;;
    redis) echo "$REDIS_REF" ;;
    kafka) echo "$KAFKA_REF" ;;
    versitygw) echo "$VERSITYGW_REF" ;;
    *) echo "$REGISTRY/$1:$RELEASE" ;;
  esac
}

is_store() { case "$1" in postgres | redis | kafka | versitygw) return 0 ;; *) return 1 ;; esac; }
# The stores built from Debian's packages (mmdebstrap); versitygw is a static Go binary.
is_debian() { case "$1" in postgres | redis | kafka) return 0 ;; *) return 1 ;; esac; }

# IMAGE arguments (short or full names) as short names; none means all.
select_images() {
  local all=("${WORKSPACE[@]}" "${STORES[@]}") arg name found
  if [ "${#ARGS[@]}" -eq 0 ]; then
    printf '%s\n' "${all[@]}"
    return
  fi
  for arg in "${ARGS[@]}"; do
    found=""
    for name in "${all[@]}"; do
      if [ "$arg" = "$name" ] || [ "$arg" = "$(ref_of "$name")" ]; then
        echo "$name"
        found=1
      fi
    done
    [ -n "$found" ] || die "unknown image '$arg'; \`scripts/images.sh list\` prints the names"
  done
}

# The selected images into the array IMAGES (through a command substitution, not a process
# substitution, so that an unknown name stops the script).
load_images() {
  local out
  out="$(select_images)" || exit 1
  mapfile -t IMAGES <<<"$out"
}

# --- tools ---------------------------------------------------------------------------------------

need_tools() {
  local missing=()
  [ -f /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
  if [ -n "${1:-}" ]; then
    command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)
  fi
  if [ "${#missing[@]}" -gt 0 ]; then apt_install "${missing[@]}"; fi
}

# --- build ---------------------------------------------------------------------------------------

TMP=""
CHILD=""
cleanup() { if [ -n "$TMP" ]; then rm -rf "$TMP"; fi; }
# mmdebstrap runs in the background so that a signal reaches this script at once; it is passed
# on, and mmdebstrap's own cleanup (its mounts and temporary chroot) awaited.
on_signal() {
  if [ -n "$CHILD" ]; then
    kill -TERM "$CHILD" 2>/dev/null || true
    wait "$CHILD" 2>/dev/null || true
  fi
  exit 130
}
trap cleanup EXIT
trap on_signal INT TERM

# The parts of this script that make NAME's archive (so that editing a comment or another image's
# recipe does not rebuild it).
recipe() {
  case "$1" in
    postgres | redis | kafka)
      declare -f debian_rootfs upstream_version "build_$1"
      printf '%s\n' "$SUITE" "$BASE_PATH" "${DPKG_EXCLUDES[@]}"
      ;;
    versitygw) declare -f build_versitygw; echo "$BASE_PATH" ;;
    *) declare -f build_workspace ;;
  esac
}

# The hash of everything an archive is made from.
input_key() {
  local name="$1" ref
  ref="$(ref_of "$name")"
  local common=(--text "$ref" --text "$(uname -m)" --text "$(recipe "$name")" --file "$LIB/oci.py")
  case "$name" in
    postgres) "${OCI[@]}" key "${common[@]}" --text "$SUITE postgresql-$POSTGRES_MAJOR" \
      --file "$LIB/rootfs.sh" --tree "$LIB/postgres" ;;
    redis) "${OCI[@]}" key "${common[@]}" --text "$SUITE redis-server" --file "$LIB/rootfs.sh" ;;
    versitygw)
      [ -x "$VERSITYGW_BIN" ] || die "$VERSITYGW_BIN is missing: run scripts/install-versitygw.sh"
      "${OCI[@]}" key "${common[@]}" --file "$VERSITYGW_BIN" --file "$BUSYBOX" ;;
    kafka) "${OCI[@]}" key "${common[@]}" --text "$SUITE openjdk-17-jre-headless" \
      --file "$LIB/rootfs.sh" --tree "$LIB/kafka" --tree "$KAFKA_HOME/libs" ;;
    *)
      local bin="$BIN_DIR/$name"
      [ -f "$bin" ] || die "$bin is missing: build it first (cargo build --release -p $name), or pass --bin-dir"
      "${OCI[@]}" key "${common[@]}" --file "$DOCKERFILE" --ldd "$bin"
      ;;
  esac
}

# A Debian bookworm rootfs as a tar file, with scripts/images/rootfs.sh's hooks.
debian_rootfs() {
  local name="$1" out="$2" versions="$3"
  shift 3
  local packages
  packages="$(IFS=,; echo "$*")"
  log "$name: mmdebstrap $SUITE with $packages (about a minute)"
  mmdebstrap --variant=essential --include="$packages" "${DPKG_EXCLUDES[@]}" \
    --essential-hook="bash '$LIB/rootfs.sh' essential $name \"\$1\"" \
    --customize-hook="bash '$LIB/rootfs.sh' customize $name \"\$1\" '$versions'" \
    "$SUITE" "$out" >"$TMP/mmdebstrap.log" 2>&1 &
  CHILD=$!
  if ! wait "$CHILD"; then
    CHILD=""
    tail -40 "$TMP/mmdebstrap.log" >&2
    die "$name: mmdebstrap failed (log above)"
  fi
  CHILD=""
}

# "package version" lines of the rootfs: the version of PACKAGE, without epoch and revision.
upstream_version() {
  local v
  v="$(awk -v p="$2" '$1 == p { print $2 }' "$1")"
  [ -n "$v" ] || die "no version recorded for $2"
  v="${v#*:}"
  echo "${v%%-*}"
}

build_postgres() {
  debian_rootfs postgres "$TMP/rootfs.tar" "$TMP/versions" "postgresql-$POSTGRES_MAJOR"
  local version
  version="$(upstream_version "$TMP/versions" "postgresql-$POSTGRES_MAJOR")"
  [ "${version%%.*}" = "$POSTGRES_MAJOR" ] || die "postgres: Debian installed PostgreSQL $version, not $POSTGRES_MAJOR"
  "${OCI[@]}" store --rootfs "$TMP/rootfs.tar" --ref "$POSTGRES_REF" --out "$TMP/image.tar" \
    --history "PostgreSQL $version from Debian $SUITE" \
    --user 999:999 --workdir / --entrypoint '["docker-entrypoint.sh"]' --cmd '["postgres"]' \
    --env "PATH=$BASE_PATH:/usr/lib/postgresql/$POSTGRES_MAJOR/bin" --env "PG_MAJOR=$POSTGRES_MAJOR" \
    --env "PG_VERSION=$version" --env PGDATA=/var/lib/postgresql/data --env LANG=en_US.utf8 \
    --expose 5432/tcp --volume /var/lib/postgresql/data --stop-signal SIGINT \
    --dir /var/lib/postgresql:0755:999:999 --dir /var/lib/postgresql/data:01777:999:999 \
    --dir /run/postgresql:03777:999:999 --dir /docker-entrypoint-initdb.d:0755:0:0 \
    --file "$LIB/postgres/docker-entrypoint.sh:/usr/local/bin/docker-entrypoint.sh:0755:0:0"
}

build_redis() {
  debian_rootfs redis "$TMP/rootfs.tar" "$TMP/versions" redis-server
  local version
  version="$(upstream_version "$TMP/versions" redis-server)"
  case "$version" in
    "$REDIS_SERIES".*) ;;
    *) die "redis: Debian installed Redis $version, not $REDIS_SERIES" ;;
  esac
  "${OCI[@]}" store --rootfs "$TMP/rootfs.tar" --ref "$REDIS_REF" --out "$TMP/image.tar" \
    --history "Redis $version from Debian $SUITE" \
    --user 999:999 --workdir /data --cmd '["redis-server"]' --env "PATH=$BASE_PATH" \
    --expose 6379/tcp --volume /data --dir /data:0755:999:999
}

build_kafka() {
  # The jars scripts/install-test-deps.sh fetches from Maven Central (scripts/kafka/pom.xml).
  if [ ! -f "$KAFKA_HOME/.complete" ] || [ ! -f "$KAFKA_HOME/libs/kafka_2.13-$KAFKA_VERSION.jar" ] \
    || [ ! -f "$KAFKA_HOME/libs/kafka-clients-$KAFKA_VERSION.jar" ]; then
    die "kafka: Apache Kafka $KAFKA_VERSION's jars are not in $KAFKA_HOME/libs; run scripts/install-test-deps.sh"
  fi
  if ! compgen -G "$KAFKA_HOME/libs/kafka-tools-[0-9]*.jar" >/dev/null; then
    log "kafka: WARNING: no kafka-tools jar in $KAFKA_HOME/libs, so the image's kafka-topics.sh" \
      "(org.apache.kafka.tools.TopicCommand) will refuse to run; add org.apache.kafka:kafka-tools to scripts/kafka/pom.xml"
  fi
  debian_rootfs kafka "$TMP/rootfs.tar" "$TMP/versions" openjdk-17-jre-headless
  local java
  java="$(upstream_version "$TMP/versions" openjdk-17-jre-headless)"
  local files=() f
  for f in "$LIB"/kafka/bin/*.sh; do files+=(--file "$f:/opt/kafka/bin/$(basename "$f"):0755:0:0"); done
  for f in "$LIB"/kafka/config/*; do files+=(--file "$f:/opt/kafka/config/$(basename "$f"):0644:1000:1000"); done
  "${OCI[@]}" store --rootfs "$TMP/rootfs.tar" --ref "$KAFKA_REF" --out "$TMP/image.tar" \
    --history "Apache Kafka $KAFKA_VERSION (Maven Central) on Java $java from Debian $SUITE" \
    --user 1000:1000 --workdir / --env "PATH=$BASE_PATH" --expose 9092/tcp --volume /var/lib/kafka/data \
    --dir /opt/kafka:0755:0:0 --dir /opt/kafka/bin:0755:0:0 --dir /opt/kafka/libs:0755:0:0 \
    --dir /opt/kafka/config:0755:1000:1000 --dir /opt/kafka/logs:0755:1000:1000 \
    --dir /var/lib/kafka:0755:1000:1000 --dir /var/lib/kafka/data:0755:1000:1000 \
    --dir /home/appuser:0755:1000:1000 \
    --tree "$KAFKA_HOME/libs:/opt/kafka/libs:0644:0:0" "${files[@]}"
}

# Static, like the versitygw binary: the image needs no library.
BUSYBOX=/bin/busybox

build_versitygw() {
  [ -x "$BUSYBOX" ] || die "versitygw: $BUSYBOX is missing (Debian's busybox-static)"
  local root="$TMP/rootfs"
  mkdir -p "$root/etc" "$root/bin" "$root/usr/local/bin" "$root/tmp"
  chmod 1777 "$root/tmp"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$root/etc/group"
  cp "$VERSITYGW_BIN" "$root/usr/local/bin/versitygw"
  cp "$BUSYBOX" "$root/bin/busybox"
  ln -s busybox "$root/bin/sh"
  ln -s busybox "$root/bin/sleep"
  chmod 0755 "$root/usr/local/bin/versitygw" "$root/bin/busybox"
  tar --numeric-owner --owner=0 --group=0 -C "$root" -cf "$TMP/rootfs.tar" .
  "${OCI[@]}" store --rootfs "$TMP/rootfs.tar" --ref "$VERSITYGW_REF" --out "$TMP/image.tar" \
    --history "versitygw $VERSITYGW_VERSION (Go module github.com/versity/versitygw)" \
    --user 65532:65532 --workdir / --entrypoint '["/usr/local/bin/versitygw"]' \
    --env "PATH=$BASE_PATH" --expose 7070/tcp --volume /data
}

build_workspace() {
  local name="$1"
  "${OCI[@]}" workspace --dockerfile "$DOCKERFILE" --target "$name" --bin-dir "$BIN_DIR" \
    --ref "$(ref_of "$name")" --out "$TMP/image.tar"
}

build_one() {
  local name="$1" archive="$OUT/$1.oci.tar" key started=$SECONDS
  key="$(input_key "$name")"
  if [ -z "$FORCE" ] && [ -f "$archive" ] && [ "$(cat "$archive.key" 2>/dev/null)" = "$key" ]; then
    log "$(ref_of "$name"): up to date ($archive)"
    return
  fi
  # What a killed build (SIGKILL, a lost machine) left; builds of one image do not run in parallel.
  rm -rf "$OUT/.build-$name".*
  TMP="$(mktemp -d "$OUT/.build-$name.XXXXXX")"
  case "$name" in
    postgres) build_postgres ;;
    redis) build_redis ;;
    kafka) build_kafka ;;
    versitygw) build_versitygw ;;
    *) build_workspace "$name" ;;
  esac
  if command -v skopeo >/dev/null 2>&1; then
    skopeo inspect "oci-archive:$TMP/image.tar" >/dev/null || die "$name: skopeo cannot read the archive"
  fi
  # The archive first, its key last: an archive without its key is built again.
  mv -f "$TMP/image.tar" "$archive"
  echo "$key" >"$TMP/key"
  mv -f "$TMP/key" "$archive.key"
  rm -rf "$TMP"
  TMP=""
  log "$(ref_of "$name"): built $archive ($(du -m "$archive" | cut -f1) MB) in $((SECONDS - started)) s"
}

cmd_build() {
  local name stores=""
  load_images
  for name in "${IMAGES[@]}"; do
    if is_debian "$name"; then stores=1; fi
  done
  need_tools "$stores"
  if [ -n "$stores" ] && [ "$(id -u)" != 0 ]; then
    log "not root: mmdebstrap will use its unshare mode (needs unprivileged user namespaces)"
  fi
  mkdir -p "$OUT"
  for name in "${IMAGES[@]}"; do
    build_one "$name"
  done
}

# --- import, check, list -------------------------------------------------------------------------

cmd_import() {
  command -v ctr >/dev/null 2>&1 || die "ctr is not installed: there is no containerd to import into"
  local ctr=(ctr)
  if [ -n "${CONTAINERD_ADDRESS:-}" ]; then ctr+=(--address "$CONTAINERD_ADDRESS"); fi
  ctr+=(-n k8s.io)
  # containerd 2's ctr imports through its transfer service unless told --local; the local
  # import is the one that names images by the index's io.containerd.image.name on every version.
  local local_flag=()
  if ctr images import --help 2>&1 | grep -q -- '--local'; then local_flag=(--local); fi
  local name archive ref digest current
  load_images
  for name in "${IMAGES[@]}"; do
    archive="$OUT/$name.oci.tar"
    [ -f "$archive" ] || die "$archive is missing: run scripts/images.sh build $name first"
    read -r ref digest < <("${OCI[@]}" info --archive "$archive")
    [ -n "${digest:-}" ] || die "$archive: cannot read its name and digest"
    current="$("${ctr[@]}" images ls "name==$ref" 2>/dev/null | awk 'NR > 1 { print $3 }')"
    if [ "$current" = "$digest" ]; then
      log "$ref: already imported"
      continue
    fi
    "${ctr[@]}" images import "${local_flag[@]}" "$archive" >/dev/null \
      || die "$ref: ctr images import $archive failed"
    current="$("${ctr[@]}" images ls "name==$ref" | awk 'NR > 1 { print $3 }')"
    [ "$current" = "$digest" ] || die "$ref: not in containerd after the import (got '${current:-nothing}', expected $digest)"
    log "$ref: imported"
  done
}

cmd_check() {
  local name status=0
  load_images
  for name in "${IMAGES[@]}"; do
    if is_store "$name"; then
      if [ "${#ARGS[@]}" -gt 0 ]; then die "check compares the Panthera images with services/Dockerfile; $name is not one"; fi
      continue
    fi
    [ -f "$OUT/$name.oci.tar" ] || { log "$OUT/$name.oci.tar is missing: run scripts/images.sh build $name"; status=1; continue; }
    "${OCI[@]}" check --dockerfile "$DOCKERFILE" --target "$name" --ref "$(ref_of "$name")" \
      --archive "$OUT/$name.oci.tar" || status=1
  done
  return "$status"
}

cmd_list() {
  local name
  for name in "${WORKSPACE[@]}" "${STORES[@]}"; do ref_of "$name"; done
}

case "$COMMAND" in
  build) cmd_build ;;
  import) cmd_import ;;
  check) cmd_check ;;
  list) cmd_list ;;
  -h | --help | help) usage ;;
  *) die "unknown command '$COMMAND' (build, import, check, list)" ;;
esac
