#!/bin/bash
# hpcstack-node-exporter: node_exporter as the prometheus user; with HPCSTACK_WG_PEER set (a
# tunneled site), first this container's own WireGuard interface, which is how Prometheus
# reaches it (decision faults-0016). The interface gone (wireguard-go ended), the container ends too
# and its restart policy starts it again, tunnel and all.
set -euo pipefail
# shellcheck source=/dev/null
. /usr/local/lib/hpcstack/contract.sh

exporter=(setpriv --reuid prometheus --regid prometheus --init-groups
  /usr/bin/prometheus-node-exporter "$@")
if [ -z "${HPCSTACK_WG_PEER:-}" ]; then
  exec "${exporter[@]}"
fi
hpcstack-tunnel up
"${exporter[@]}" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null; wait "$pid"; exit 0' TERM INT
while kill -0 "$pid" 2>/dev/null && ip link show "$HPCSTACK_WG_IFACE" >/dev/null 2>&1; do
  sleep 15 &
  wait $! || true
done
printf 'hpcstack-node-exporter: %s\n' "the exporter or $HPCSTACK_WG_IFACE ended: exiting" >&2
exit 1
