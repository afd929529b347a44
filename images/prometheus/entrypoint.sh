#!/bin/bash
# Prometheus on the cloud site: route the tunnel overlay through the hub (exporters on local
# sites answer only there), then drop to the prometheus user and run in the foreground.
set -euo pipefail
if [ -n "${HPCSTACK_OVERLAY_VIA:-}" ] && [ "$(id -u)" -eq 0 ]; then
  for net in ${HPCSTACK_OVERLAY_NETS:-}; do
    ip route replace "$net" via "$HPCSTACK_OVERLAY_VIA" \
      || echo "hpcstack-prometheus: cannot add route $net (needs cap_add NET_ADMIN)" >&2
  done
fi
if [ "$(id -u)" -eq 0 ]; then
  chown -R prometheus:prometheus /prometheus
  exec setpriv --reuid prometheus --regid prometheus --init-groups --inh-caps=-all \
    /usr/bin/prometheus "$@"
fi
exec /usr/bin/prometheus "$@"
