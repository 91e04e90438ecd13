#!/usr/bin/env bash
# dpkg-query's ${...} formats are dpkg's, not the shell's:
# shellcheck disable=SC2016
#
# mmdebstrap hooks of scripts/images.sh, run on this machine with the rootfs being built as ROOT:
#
#   rootfs.sh essential IMAGE ROOT             after Debian's Essential packages, before the rest
#   rootfs.sh customize IMAGE ROOT VERSIONS    after every package; VERSIONS gets "package version"
#                                              lines of what the image really contains
#
# IMAGE is postgres, redis or kafka.
set -euo pipefail

stage="$1" image="$2" root="$3"

log() { echo "images: rootfs ($image): $*" >&2; }
die() { log "$*"; exit 1; }

in_root() { chroot "$root" "$@"; }

# A system user with a fixed UID, made before the packages' maintainer scripts would make one
# with whatever UID is free (Debian's adduser --system keeps an existing user): the pods run as
# that UID, the same as the official images'.
add_user() {
  local name="$1" uid="$2" home="$3" shell="$4" gecos="$5"
  if grep -q "^$name:" "$root/etc/passwd" || cut -d: -f3 "$root/etc/passwd" | grep -qx "$uid"; then
    die "user $name or UID $uid already exists"
  fi
  if cut -d: -f3 "$root/etc/group" | grep -qx "$uid"; then
    die "GID $uid already exists"
  fi
  echo "$name:x:$uid:" >>"$root/etc/group"
  echo "$name:x:$uid:$uid:$gecos:$home:$shell" >>"$root/etc/passwd"
  if [ -f "$root/etc/gshadow" ]; then echo "$name:!::" >>"$root/etc/gshadow"; fi
  if [ -f "$root/etc/shadow" ]; then echo "$name:!:19000:0:99999:7:::" >>"$root/etc/shadow"; fi
}

# The installed version of a package, recorded for images.sh to compare with the tag.
record_version() {
  local version
  version="$(in_root dpkg-query -W -f='${Version}' "$1")" || die "package $1 is not installed"
  echo "$1 $version" >>"$versions"
}

# Removes the installed packages matching the patterns, leaving the dependencies of others on
# them unmet on purpose (--force-depends). The image has no apt,
# and nothing in it runs what they would have provided.
purge() {
  local installed
  mapfile -t installed < <(in_root dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' "$@" 2>/dev/null \
    | awk '$1 == "ii" { print $2 }')
  if [ "${#installed[@]}" -gt 0 ]; then
    in_root dpkg --purge --force-depends "${installed[@]}" >/dev/null
  fi
}

essential() {
  # openjdk's and postgresql's maintainer scripts register man pages with update-alternatives,
  # which fails when the directories the dpkg path-excludes leave out do not exist.
  mkdir -p "$root"/usr/share/man/man{1,2,3,4,5,6,7,8}
  case "$image" in
    postgres)
      add_user postgres 999 /var/lib/postgresql /bin/bash "PostgreSQL administrator"
      # The entrypoint makes the cluster in PGDATA; Debian would otherwise make a "main" one.
      mkdir -p "$root/etc/postgresql-common/createcluster.d"
      echo 'create_main_cluster = false' >"$root/etc/postgresql-common/createcluster.d/image.conf"
      ;;
    redis) add_user redis 999 /var/lib/redis /usr/sbin/nologin "Redis" ;;
    kafka) add_user appuser 1000 /home/appuser /bin/bash "" ;;
    *) die "unknown image" ;;
  esac
}

customize() {
  : >"$versions"
  case "$image" in
    postgres)
      local major
      major="$(in_root dpkg-query -W -f='${Package}\n' 'postgresql-[0-9]*' | sed -n 's/^postgresql-\([0-9][0-9]*\)$/\1/p')"
      [ -n "$major" ] || die "no postgresql-N package is installed"
      record_version "postgresql-$major"
      # As the official image: the configuration initdb writes listens on every address.
      sed -ri "s!^#?(listen_addresses)\s*=\s*\S+.*!\1 = '*'!" \
        "$root/usr/share/postgresql/$major/postgresql.conf.sample"
      grep -q "^listen_addresses = '\*'" "$root/usr/share/postgresql/$major/postgresql.conf.sample" \
        || die "listen_addresses not set in postgresql.conf.sample"
      # Debian's /usr/bin/psql, pg_isready, ... are links to a Perl wrapper that picks a cluster
      # from /etc/postgresql; the image has one version and no such cluster: link the binaries.
      local link name
      for link in "$root"/usr/bin/*; do
        if [ "$(readlink "$link" || true)" = "../share/postgresql-common/pg_wrapper" ]; then
          name="$(basename "$link")"
          rm -f "$link"
          if [ -x "$root/usr/lib/postgresql/$major/bin/$name" ]; then
            ln -s "../lib/postgresql/$major/bin/$name" "$link"
          fi
        fi
      done
      # JIT compilation needs LLVM (about 150 MB); without llvmjit.so PostgreSQL simply does not
      # JIT, which costs the short queries of Panthera's services nothing.
      purge "libllvm[0-9]*" libz3-4
      rm -rf "$root/usr/lib/postgresql/$major/lib/llvmjit"* "$root/usr/lib/postgresql/$major/lib/bitcode"
      # initdb's locale, as in the official image (LANG=en_US.utf8); the locale sources are only
      # needed for this.
      in_root localedef -i en_US -c -f UTF-8 en_US.UTF-8
      rm -rf "$root/usr/share/i18n"
      # ssl-cert made a private key while building; the image does not configure TLS, and a key
      # shared by every copy of an image would be no secret anyway.
      rm -f "$root/etc/ssl/private/ssl-cert-snakeoil.key" "$root/etc/ssl/certs/ssl-cert-snakeoil.pem"
      ;;
    redis)
      record_version redis-server
      record_version redis-tools
      ;;
    kafka)
      record_version openjdk-17-jre-headless
      ;;
  esac
  # Perl is only there for Debian's maintainer and wrapper scripts (perl-base, which dpkg needs,
  # stays): about 50 MB that nothing in the images runs.
  local perl
  mapfile -t perl < <(in_root dpkg-query -W -f='${Package}\n' | grep -E '^(perl|perl-modules-[0-9.]+|libperl[0-9.]+|lib.*-perl)$' || true)
  if [ "${#perl[@]}" -gt 0 ]; then purge "${perl[@]}"; fi
  # mmdebstrap copies this machine's resolv.conf and hostname; the container runtime provides
  # both. The man directories were only there for update-alternatives.
  rm -f "$root/etc/resolv.conf" "$root/etc/hostname"
  rm -rf "$root"/usr/share/man/* "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old
  rm -rf "$root"/var/log/apt "$root"/var/log/dpkg.log "$root"/var/log/alternatives.log
}

case "$stage" in
  essential) essential ;;
  customize)
    versions="$4"
    customize
    ;;
  *) die "unknown stage $stage" ;;
esac
