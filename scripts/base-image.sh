#!/usr/bin/env bash
# Make the Debian base image locally when no registry answers: debootstrap a minbase root file
# system and import it under the name the Dockerfiles use (default debian:forky-slim).
# Usage: scripts/base-image.sh [IMAGE] ; MIRROR=... to override the mirror read from apt.
set -euo pipefail
IMAGE=${1:-debian:forky-slim}
SUITE=${IMAGE#*:}; SUITE=${SUITE%-slim}
die() { printf 'base-image: error: %s\n' "$*" >&2; exit 1; }

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  printf 'base-image: %s already present\n' "$IMAGE" >&2
  exit 0
fi
if [ "${HPCSTACK_PULL:-1}" = 1 ] && timeout 60 docker pull -q "$IMAGE" >/dev/null 2>&1; then
  printf 'base-image: pulled %s\n' "$IMAGE" >&2
  exit 0
fi
command -v debootstrap >/dev/null 2>&1 || die "no registry answered and debootstrap is missing: apt-get install debootstrap"
[ "$(id -u)" -eq 0 ] || die "debootstrap needs root: run 'sudo make base-image'"

if [ -z "${MIRROR:-}" ]; then
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    MIRROR=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  elif [ -f /etc/apt/sources.list ]; then
    MIRROR=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list)
  fi
fi
[ -n "${MIRROR:-}" ] || die "cannot find a Debian mirror: set MIRROR=http://your.mirror/debian"

script=""
# Older debootstrap releases have no script for the newest suites: sid's works for them.
if [ ! -e "/usr/share/debootstrap/scripts/$SUITE" ]; then script=/usr/share/debootstrap/scripts/sid; fi
root=$(mktemp -d /tmp/hpcstack-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
printf 'base-image: debootstrap %s from %s\n' "$SUITE" "$MIRROR" >&2
debootstrap --variant=minbase "$SUITE" "$root" "$MIRROR" $script >"$root.log" 2>&1 \
  || { tail -n 20 "$root.log" >&2; die "debootstrap failed (log: $root.log)"; }
rm -f "$root.log"
# Keep the image small and free of host state.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/tmp/*
tar -C "$root" --numeric-owner -c . | docker import -c 'CMD ["bash"]' - "$IMAGE" >/dev/null
printf 'base-image: imported %s\n' "$IMAGE" >&2
