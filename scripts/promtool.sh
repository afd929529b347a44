#!/usr/bin/env bash
# Run promtool from Debian's `promtool` package (split from `prometheus` since 2.45), installing it first into a cache directory
# (no root, no service started): the newest version apt can see is downloaded and unpacked.
# Usage: scripts/promtool.sh ARGS...      run promtool ARGS
#        scripts/promtool.sh --path       print the promtool path (installing if needed)
#        scripts/promtool.sh check-config FILE
#            `promtool check config` of FILE with each `credentials_file:` pointed at a stand-in
#            (those files exist only inside the Prometheus container, written at run time);
#            the rest, rule files included, is checked where FILE is.
# PROMTOOL=/path/to/promtool uses that binary instead; HPCSTACK_CACHE moves the cache.
set -euo pipefail
die() { printf 'promtool.sh: error: %s\n' "$*" >&2; exit 1; }

find_promtool() {
  if [ -n "${PROMTOOL:-}" ]; then printf '%s' "$PROMTOOL"; return; fi
  local cache=${HPCSTACK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hpcstack}/promtool
  command -v apt-cache >/dev/null 2>&1 || die "needs apt (Debian/Ubuntu); or set PROMTOOL=/path/to/promtool"
  local version
  version=$(apt-cache madison promtool 2>/dev/null | awk '{print $3}' | sort -V | tail -n 1)
  if [ -z "$version" ]; then
    # Package lists may not have been fetched yet on a fresh machine.
    # shellcheck disable=SC2086 # APT_OPTIONS holds several words
    if [ "$(id -u)" -eq 0 ]; then apt-get ${APT_OPTIONS:-} update >/dev/null 2>&1 || true; fi
    version=$(apt-cache madison promtool 2>/dev/null | awk '{print $3}' | sort -V | tail -n 1)
  fi
  [ -n "$version" ] || die "apt knows no 'promtool' package: run 'apt-get update' (as root)"
  local dir="$cache/${version//[:+~]/_}"
  if [ ! -x "$dir/usr/bin/promtool" ]; then
    local tmp
    tmp=$(mktemp -d)
    # shellcheck disable=SC2064
    trap "rm -rf '$tmp'" RETURN
    printf 'promtool.sh: fetching promtool %s with apt-get download\n' "$version" >&2
    # shellcheck disable=SC2086 # APT_OPTIONS holds several words
    (cd "$tmp" && apt-get ${APT_OPTIONS:-} download "promtool=$version" >/dev/null) \
      || die "apt-get download promtool=$version failed"
    mkdir -p "$dir"
    dpkg-deb -x "$tmp"/promtool_*.deb "$dir"
  fi
  printf '%s' "$dir/usr/bin/promtool"
}

bin=$(find_promtool)
[ -x "$bin" ] || die "promtool not found at $bin"
if [ "${1:-}" = "--path" ]; then printf '%s\n' "$bin"; exit 0; fi
if [ "${1:-}" = "check-config" ]; then
  config=${2:?usage: promtool.sh check-config FILE}
  [ -r "$config" ] || die "cannot read $config"
  tmp=$(mktemp "$(dirname "$config")/.promtool-check.XXXXXX.yml")
  stand_in=$(mktemp)
  trap 'rm -f "$tmp" "$stand_in"' EXIT
  printf 'stand-in\n' >"$stand_in"
  sed -E "s#^([[:space:]]*credentials_file:[[:space:]]*).*#\1$stand_in#" "$config" >"$tmp"
  "$bin" check config "$tmp"
  exit
fi
exec "$bin" "$@"
