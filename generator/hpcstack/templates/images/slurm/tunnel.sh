#!/bin/bash
# hpcstack-tunnel: bring up this container's WireGuard interface from the generated config.
#   up   configure the interface and return (compute nodes: slurmd then runs in the foreground)
#   run  configure it and stay in the foreground reporting peers (the cloud-side hub)
# The generated config ($HPCSTACK_WG_CONF_DIR/$HPCSTACK_WG_PEER.conf) is what `wg setconf` reads,
# with peers named '@name': their public keys come from $HPCSTACK_WG_PUB_DIR/<name>.pub and this
# peer's private key from a compose secret. The interface's address, MTU and routes come from
# the .env file beside it. Kernel WireGuard is used when the host has it, wireguard-go otherwise.
set -euo pipefail
# shellcheck source=/dev/null
. /usr/local/lib/hpcstack/contract.sh
# shellcheck source-path=SCRIPTDIR source=keyrefs.sh
. "$HPCSTACK_LIB_DIR/keyrefs.sh"

PEER=${HPCSTACK_WG_PEER:?HPCSTACK_WG_PEER names this peer}
CONF=$HPCSTACK_WG_CONF_DIR/$PEER.conf
SETTINGS=$HPCSTACK_WG_CONF_DIR/$PEER.env
PUB=$HPCSTACK_WG_PUB_DIR
KEY=$HPCSTACK_WG_KEY_SECRET
IFACE=$HPCSTACK_WG_IFACE
log() { printf 'hpcstack-tunnel: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

render() {
  fill_key_refs "$CONF" "$1" "$PUB"
}

up() {
  [ -r "$CONF" ] || die "no tunnel config at $CONF"
  [ -r "$SETTINGS" ] || die "no interface settings at $SETTINGS"
  # shellcheck source=/dev/null
  . "$SETTINGS"
  [ -s "$KEY" ] || die "no private key at $KEY"
  [ -c /dev/net/tun ] || [ -d /sys/module/wireguard ] || die "/dev/net/tun missing (compose: devices: [/dev/net/tun])"
  if ip link show "$IFACE" >/dev/null 2>&1; then ip link del "$IFACE"; fi
  if ip link add "$IFACE" type wireguard 2>/dev/null; then
    log "kernel WireGuard"
  else
    log "no kernel WireGuard module: using wireguard-go (userspace)"
    WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 wireguard-go "$IFACE" >/dev/null 2>&1 \
      || die "wireguard-go failed (needs cap_add NET_ADMIN and /dev/net/tun)"
  fi
  local tmp
  tmp=$(mktemp)
  render "$tmp"
  wg setconf "$IFACE" "$tmp"
  rm -f "$tmp"
  wg set "$IFACE" private-key "$KEY"
  ip address add "$HPCSTACK_WG_ADDRESS" dev "$IFACE"
  ip link set "$IFACE" mtu "$HPCSTACK_WG_MTU" up
  local net
  for net in $HPCSTACK_WG_ROUTES; do ip route replace "$net" dev "$IFACE"; done
  log "$IFACE up: $HPCSTACK_WG_ADDRESS, peers: $(wg show "$IFACE" peers | wc -l)"
}

run() {
  up
  trap 'ip link del "$IFACE" 2>/dev/null; exit 0' TERM INT
  # Stay in the foreground; exit (and let the restart policy act) if the interface goes away.
  while ip link show "$IFACE" >/dev/null 2>&1; do
    sleep 30 &
    wait $!
  done
  die "$IFACE disappeared"
}

reload() {
  # New peers (a site added): apply without dropping the interface or existing sessions.
  # syncconf would clear a private key the file lacks, so the staged copy carries it.
  local tmp
  tmp=$(mktemp)
  chmod 600 "$tmp"
  render "$tmp.peers"
  awk -v keyfile="$KEY" 'BEGIN { getline key <keyfile } { print } /^\[Interface\]$/ { print "PrivateKey = " key }' "$tmp.peers" >"$tmp"
  wg syncconf "$IFACE" "$tmp"
  rm -f "$tmp" "$tmp.peers"
  log "$IFACE reloaded: peers: $(wg show "$IFACE" peers | wc -l)"
}

case "${1:-}" in
  up) up ;;
  run) run ;;
  reload) reload ;;
  *) die "usage: hpcstack-tunnel up|run|reload" ;;
esac
