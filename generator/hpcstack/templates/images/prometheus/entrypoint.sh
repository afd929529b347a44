#!/bin/bash
# Prometheus on the cloud site: route the tunnel overlay through the hub (exporters on local
# sites answer only there), then drop to the prometheus user and run in the foreground.
# With HPCSTACK_METRICS_TOKEN set (the token file Slurm's /metrics is scraped with), it also
# watches that file and stops Prometheus when it changes, so the container restarts and reads the
# new one: Debian's Prometheus 3.5 sends the first token it read for as long as it runs
# (prometheus/common#981, cloneRequest shares the request's headers; docs/decisions/rest-0014).
set -euo pipefail
log() { printf 'hpcstack-prometheus: %s\n' "$*" >&2; }

if [ -n "${HPCSTACK_OVERLAY_VIA:-}" ] && [ "$(id -u)" -eq 0 ]; then
  for net in ${HPCSTACK_OVERLAY_NETS:-}; do
    ip route replace "$net" via "$HPCSTACK_OVERLAY_VIA" \
      || log "cannot add route $net (needs cap_add NET_ADMIN)"
  done
fi

run() {
  if [ "$(id -u)" -eq 0 ]; then
    chown -R prometheus:prometheus /prometheus
    exec setpriv --reuid prometheus --regid prometheus --init-groups --inh-caps=-all \
      /usr/bin/prometheus "$@"
  fi
  exec /usr/bin/prometheus "$@"
}

watch_token() {
  # The token Prometheus holds is the first one it found: the file as it is now, or (absent now)
  # as it is first seen.
  local file=$1 pid=$2 seen now
  trap ':' HUP  # `hpcstack up` reloads Prometheus with SIGHUP, which tini hands to us all
  seen=$(cksum "$file" 2>/dev/null) || seen=
  while true; do
    sleep "${HPCSTACK_METRICS_TOKEN_WATCH_S:-60}" || true
    now=$(cksum "$file" 2>/dev/null) || continue
    if [ -z "$seen" ]; then seen=$now; continue; fi
    if [ "$now" != "$seen" ]; then
      log "a new token in $file: stopping Prometheus, so that the container restarts with it"
      kill -TERM "$pid"
      return
    fi
  done
}

if [ -z "${HPCSTACK_METRICS_TOKEN:-}" ]; then run "$@"; fi
run "$@" &
pid=$!
watch_token "$HPCSTACK_METRICS_TOKEN" "$pid" &
# tini -g hands every signal to the whole group: on a stop, wait for Prometheus to finish its
# shutdown; a SIGHUP (reload) is Prometheus's alone, this shell stays.
trap 'kill -TERM "$pid" 2>/dev/null' TERM INT
trap ':' HUP
rc=0
while true; do
  if wait "$pid"; then rc=0; else rc=$?; fi
  kill -0 "$pid" 2>/dev/null || break
done
exit "$rc"
