#!/bin/bash
# hpcstack-healer: runs beside slurmctld in the controller container and undoes the states
# Slurm leaves for a person after a crash, where that is safe (docs/decisions/faults-0001):
#   - a node DRAINED (not draining: no job on it) or DOWN while responding, for a reason on
#     the SAFE_REASONS list (each one a controller or node crash makes by itself), is resumed;
#   - a job held by Slurm's own launch-failure requeue ("launch failed requeued held") that
#     allows requeueing (Requeue=1: the user accepted that it may run again) is released.
# A drain with any other reason (one a person typed, a real hardware fault) is left alone and
# shown by `hpcstack status` and the SlurmNodeDrained alert. Every action is logged.
#   hpcstack-healer          loop forever (HPCSTACK_HEAL_INTERVAL seconds, default 5)
#   hpcstack-healer --once   one pass (tests, a person)
set -uo pipefail
# shellcheck source=/dev/null
. /usr/local/lib/hpcstack/contract.sh

SAFE_REASONS='^(Duplicate jobid|Node unexpectedly rebooted|batch job complete failure)'
HELD_REASON='launch failed requeued held'
log() { printf 'hpcstack-healer: %s\n' "$*" >&2; }

jobs_on() {
  squeue --noheader --nodelist="$1" --states=RUNNING,COMPLETING,CONFIGURING --format=%i 2>/dev/null
}

heal_nodes() {
  local name state reason
  # %N name, %T state (drained = DRAIN with nothing left on it; a trailing * = not
  # responding, left to ReturnToService), %E reason
  sinfo --noheader --Node --states=drained,down --format='%N|%T|%E' 2>/dev/null | sort -u |
    while IFS='|' read -r name state reason; do
      [ -n "$name" ] || continue
      [[ $state == *'*' ]] && continue
      [[ $reason =~ $SAFE_REASONS ]] || continue
      [ -z "$(jobs_on "$name")" ] || continue
      if scontrol update NodeName="$name" State=RESUME 2>/dev/null; then
        log "resumed $name (was $state: '$reason'; no job on it)"
      fi
    done
}

heal_jobs() {
  local id reason
  squeue --noheader --states=PENDING --format='%i|%r' 2>/dev/null |
    while IFS='|' read -r id reason; do
      [ "$reason" = "$HELD_REASON" ] || continue
      scontrol show job "$id" 2>/dev/null | grep -q ' Requeue=1 ' || continue
      if scontrol release "$id" 2>/dev/null; then
        log "released job $id (held by Slurm after a failed launch; it allows requeueing)"
      fi
    done
}

once() {
  scontrol ping 2>/dev/null | grep -q 'is UP' || return 0
  heal_nodes
  heal_jobs
}

if [ "${1:-}" = "--once" ]; then
  once
  exit 0
fi
log "watching for crash-made drains and held requeues every ${HPCSTACK_HEAL_INTERVAL:-5}s"
while true; do
  once
  sleep "${HPCSTACK_HEAL_INTERVAL:-5}"
done
