#!/bin/bash
# Slurm Prolog (runs as root on the node before a job): record which job holds which GPU, for
# dcgm-exporter's --hpc-job-mapping-dir (one file per GPU index, holding the job id).
# Never fails the job: a mapping is monitoring, not scheduling.
# shellcheck source=/dev/null
. /usr/local/lib/hpcstack/contract.sh || exit 0
dir=$HPCSTACK_GPU_JOB_DIR
[ -n "${SLURM_JOB_GPUS:-}" ] || exit 0
mkdir -p "$dir" 2>/dev/null || exit 0
for i in ${SLURM_JOB_GPUS//,/ }; do
  printf '%s\n' "$SLURM_JOB_ID" >"$dir/$i" 2>/dev/null || true
done
exit 0
