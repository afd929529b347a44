#!/bin/bash
# hpcstack-metrics-token: runs beside slurmctld in the controller container and keeps a JWT for
# the metrics identity (MetricsAuthUsers) in the volume Prometheus reads it from
# (`authorization: credentials_file:`). Every HPCSTACK_METRICS_TOKEN_CHECK_S it mints a new one
# (lifespan HPCSTACK_METRICS_TOKEN_LIFESPAN_S) when the file is missing or unreadable, when the
# token ends within HPCSTACK_METRICS_TOKEN_RENEW_BEFORE_S, or when slurmctld refuses it (401: the
# cluster's key changed). Prometheus's container restarts Prometheus when the file changes.
# The token is written to the file only: never printed, never logged, never on a command line.
#   hpcstack-metrics-token           loop forever
#   hpcstack-metrics-token --once    one check (renewing if due)
#   hpcstack-metrics-token --renew   mint a new one now (tests, a person)
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

due() {
  # Exit 0 (renew) or 1 (keep), and why on stdout. A slurmctld that does not answer is not the
  # token's fault: keep it then.
  python3 - "$HPCSTACK_METRICS_TOKEN_PATH" "$HPCSTACK_METRICS_TOKEN_RENEW_BEFORE_S" \
    "http://127.0.0.1:$HPCSTACK_SLURMCTLD_PORT/metrics" <<'PY'
import base64, json, sys, time, urllib.error, urllib.request
path, before, url = sys.argv[1], int(sys.argv[2]), sys.argv[3]
try:
    token = open(path).read().strip()
    payload = token.split(".")[1]
    exp = int(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["exp"])
except (OSError, ValueError, IndexError, KeyError, TypeError):
    print("no readable token")
    sys.exit(0)
if exp - time.time() < before:
    print("the token ends " + time.strftime("%Y-%m-%d", time.gmtime(exp)))
    sys.exit(0)
request = urllib.request.Request(url, headers={"Authorization": "Bearer " + token})
try:
    urllib.request.urlopen(request, timeout=30)
except urllib.error.HTTPError as exc:
    if exc.code == 401:
        print("slurmctld refuses the token")
        sys.exit(0)
except OSError:
    pass
sys.exit(1)
PY
}

check() {
  local why
  why=$(due) || return 0
  if renew; then log "new token for $HPCSTACK_METRICS_USER ($why)"; else return 1; fi
}

case "${1:-}" in
  --once) check; exit ;;
  --renew) renew; exit ;;
esac
failures=0
while true; do
  if check; then
    failures=0
    sleep "$HPCSTACK_METRICS_TOKEN_CHECK_S"
  else
    # slurmctld not answering yet (its first seconds) or restarting: soon again; said once a
    # minute at most, so a lasting refusal shows in the log.
    failures=$((failures + 1))
    if [ $((failures % 12)) -eq 0 ]; then log "scontrol token failed $failures times in a row"; fi
    sleep 5
  fi
done
