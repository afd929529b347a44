#!/usr/bin/env bash
# Install and start what hpc-stack needs from the host: a Docker engine, compose v2, buildx and
# debootstrap. Idempotent. Installs only on Debian/Ubuntu as root; elsewhere it stops with the
# exact instruction. Used by `make up`, `make test` and .ci/run alike.
set -euo pipefail

log() { printf 'install-docker: %s\n' "$*" >&2; }
die() { printf 'install-docker: error: %s\n' "$*" >&2; exit 1; }

have_engine() { docker info >/dev/null 2>&1; }
have_compose() { docker compose version >/dev/null 2>&1; }
have_buildx() { docker buildx version >/dev/null 2>&1; }

if have_engine && have_compose && have_buildx && command -v debootstrap >/dev/null 2>&1; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ] || [ ! -f /etc/debian_version ]; then
  have_engine || die "no running Docker engine. Install Docker Engine with compose v2 and buildx (https://docs.docker.com/engine/install/) and start it, then run this again."
  have_compose || die "docker compose v2 is missing: install the docker-compose-plugin package."
  have_buildx || die "docker buildx is missing: install the docker-buildx-plugin package."
  # debootstrap is only needed for the air-gapped base image; make base-image reports it.
  exit 0
fi

# The mirror apt already uses on this machine (never hard-coded).
mirror() {
  local m=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    m=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
    m=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list)
  fi
  [ -n "$m" ] || die "cannot find the Debian mirror in /etc/apt: set MIRROR=http://your.mirror/debian"
  printf '%s' "$m"
}
MIRROR=${MIRROR:-$(mirror)}
export DEBIAN_FRONTEND=noninteractive
APT_UPDATED=0
apt_update() {
  if [ "$APT_UPDATED" = 0 ]; then
    apt-get -o Acquire::Check-Valid-Until=false update -qq
    APT_UPDATED=1
  fi
}

# Newer suites as a package source only, pinned low, for compose v2 and buildx (bookworm has none).
if [ ! -f /etc/apt/sources.list.d/hpcstack-newer.sources ]; then
  printf 'Types: deb\nURIs: %s\nSuites: trixie forky\nComponents: main contrib non-free\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$MIRROR" \
    > /etc/apt/sources.list.d/hpcstack-newer.sources
  printf 'Package: *\nPin: release n=trixie\nPin-Priority: 100\n\nPackage: *\nPin: release n=forky\nPin-Priority: 50\n' \
    > /etc/apt/preferences.d/hpcstack-newer
fi

if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
  log "installing docker.io and debootstrap"
  apt_update
  apt-get install -y -qq docker.io debootstrap >/dev/null
fi

if ! have_compose || ! have_buildx; then
  log "installing compose v2 and buildx"
  apt_update
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -t forky docker-compose docker-buildx >/dev/null)
  dpkg -i "$tmp"/*.deb >/dev/null
  rm -rf "$tmp"
fi

if ! have_engine; then
  log "starting dockerd"
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl start docker
  else
    nohup dockerd >/var/log/dockerd.log 2>&1 &
  fi
  for _ in $(seq 1 60); do
    have_engine && break
    sleep 1
  done
  have_engine || die "dockerd did not start: see /var/log/dockerd.log"
fi
log "docker $(docker version --format '{{.Server.Version}}'), $(docker compose version --short) compose, buildx ready"
