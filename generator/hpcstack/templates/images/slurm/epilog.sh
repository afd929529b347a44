#!/bin/bash
# Slurm Epilog: forget this job's GPU mapping (see prolog.sh). Never fails.
# shellcheck source=/dev/null
. /usr/local/lib/hpcstack/contract.sh || exit 0
dir=$HPCSTACK_GPU_JOB_DIR
[ -n "${SLURM_JOB_ID:-}" ] && [ -d "$dir" ] || exit 0
for f in "$dir"/*; do
  [ -f "$f" ] && [ "$(cat "$f" 2>/dev/null)" = "$SLURM_JOB_ID" ] && rm -f "$f"
done
exit 0
