#!/usr/bin/env bash
# Print the extra apt options image builds need on this machine, or nothing.
# A frozen Debian mirror serves Release files whose Valid-Until date has passed; apt then refuses
# them unless told `-o Acquire::Check-Valid-Until=false`. Only then is the option printed: a
# normal machine with a live mirror builds with apt's default checks.
# Usage: scripts/apt-options.sh [SUITE]   (default: forky)
set -euo pipefail
suite=${1:-forky}
lists=/var/lib/apt/lists
now=$(date -u +%s)
for f in "$lists"/*_dists_"${suite}"_InRelease "$lists"/*_dists_"${suite}"_Release; do
  [ -f "$f" ] || continue
  until=$(sed -n 's/^Valid-Until: //p' "$f" | head -n 1)
  [ -n "$until" ] || continue
  if [ "$(date -u -d "$until" +%s 2>/dev/null || echo "$now")" -lt "$now" ]; then
    printf '%s\n' "-o Acquire::Check-Valid-Until=false"
  fi
  exit 0
done
