#!/bin/bash
# hpcstack-metrics-token: runs beside slurmctld in the controller container and keeps a JWT for
# the metrics identity (MetricsAuthUsers) in the volume Prometheus reads it from
# (`authorization: credentials_file:`, read at every scrape). The token lives
# HPCSTACK_METRICS_TOKEN_LIFESPAN_S and is renewed every HPCSTACK_METRICS_TOKEN_RENEW_S, so a
# missed renewal or two (slurmctld restarting) never leaves Prometheus without a valid one.
# The token is written to the file only: never printed, never logged.
#   hpcstack-metrics-token          loop forever
#   hpcstack-metrics-token --once   one renewal (tests, a person)
set -uo pipefail
# shellcheck source=/dev/null
. /usr/local/lib/hpcstack/contract.sh

log() { printf 'hpcstack-metrics-token: %s\n' "$*" >&2; }

renew() {
  local out token file=$HPCSTACK_METRICS_TOKEN_PATH
  out=$(scontrol token "username=$HPCSTACK_METRICS_USER" \
    "lifespan=$HPCSTACK_METRICS_TOKEN_LIFESPAN_S" 2>/dev/null) || return 1
  token=${out#SLURM_JWT=}
  [[ $out == SLURM_JWT=* && $token =~ ^[A-Za-z0-9._-]+$ ]] || return 1
  # Readable by Prometheus's user (another image, another uid): only slurmctld and Prometheus
  # mount this volume, and the identity may read metrics and nothing it could change.
  (umask 022 && printf '%s' "$token" >"$file.new") && mv -f "$file.new" "$file"
}

if [ "${1:-}" = --once ]; then
  renew
  exit
fi
renewed=''
failures=0
while true; do
  if renew; then
    [ -n "$renewed" ] || log "token for $HPCSTACK_METRICS_USER written to $HPCSTACK_METRICS_TOKEN_PATH (renewed every ${HPCSTACK_METRICS_TOKEN_RENEW_S}s)"
    renewed=1 failures=0
    sleep "$HPCSTACK_METRICS_TOKEN_RENEW_S"
  else
    # slurmctld not answering yet (its first seconds) or restarting: soon again; said once a
    # minute at most, so a lasting refusal shows in the log.
    failures=$((failures + 1))
    if [ $((failures % 12)) -eq 0 ]; then log "scontrol token failed $failures times in a row"; fi
    sleep 5
  fi
done
