#!/usr/bin/env bash
# Writes a single-layer OCI image archive from a root filesystem directory, for
# `ctr -n k8s.io images import`: the test node pulls nothing, every image it runs is imported.
#
#   scripts/node/oci-image.sh NAME ROOTFS OUT.tar [CONFIG_JSON]
#
# NAME is the full reference the pods ask for (e.g. registry.k8s.io/pause:3.10.1); CONFIG_JSON is
# the image config's "config" object (Entrypoint, Cmd, User, Env, WorkingDir), default {}.
# The layer is an uncompressed tar with sorted names, fixed times and numeric root ownership, so
# the same ROOTFS gives the same digests and a second import is a no-op.
set -euo pipefail

name="${1:?usage: oci-image.sh NAME ROOTFS OUT.tar [CONFIG_JSON]}"
rootfs="${2:?usage: oci-image.sh NAME ROOTFS OUT.tar [CONFIG_JSON]}"
out="${3:?usage: oci-image.sh NAME ROOTFS OUT.tar [CONFIG_JSON]}"
config="${4:-{\}}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
blobs="$work/blobs/sha256"
mkdir -p "$blobs"

# Stores stdin as a blob; prints "DIGEST SIZE".
blob() {
  local tmp="$work/blob.tmp" digest
  cat >"$tmp"
  digest="$(sha256sum "$tmp" | cut -d' ' -f1)"
  mv "$tmp" "$blobs/$digest"
  echo "$digest $(stat -c %s "$blobs/$digest")"
}

read -r layer layer_size < <(tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
  --format=posix --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
  -C "$rootfs" -cf - . | blob)
read -r cfg cfg_size < <(printf '{"architecture":"amd64","os":"linux","config":%s,"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created_by":"panthera scripts/node/oci-image.sh"}]}' \
  "$config" "$layer" | blob)
read -r manifest manifest_size < <(printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
  "$cfg" "$cfg_size" "$layer" "$layer_size" | blob)
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
  "$manifest" "$manifest_size" "$name" "${name##*:}" >"$work/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' >"$work/oci-layout"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$work" \
  -cf "$out.tmp" oci-layout index.json blobs
mv "$out.tmp" "$out"
