#!/bin/bash
# Slurm Prolog (runs as root on the node before a job): record which job holds which GPU, for
# dcgm-exporter's --hpc-job-mapping-dir (one file per GPU index, holding the job id).
# Never fails the job: a mapping is monitoring, not scheduling.
# shellcheck source=/dev/null
. /usr/local/lib/hpcstack/contract.sh || exit 0
# Jobs in containers (oci.conf, rest-0016): crun's state directory, the user's alone, where
# systemd-logind would make it on a host. Kept after the job (other jobs of the user may run).
if command -v crun >/dev/null 2>&1 && [ -n "${SLURM_JOB_UID:-}" ]; then
  install -d -m 0755 "$HPCSTACK_OCI_STATE_DIR" 2>/dev/null || true
  install -d -m 0700 -o "$SLURM_JOB_UID" -g "${SLURM_JOB_GID:-$SLURM_JOB_UID}" \
    "$HPCSTACK_OCI_STATE_DIR/$SLURM_JOB_UID" 2>/dev/null || true
fi
dir=$HPCSTACK_GPU_JOB_DIR
[ -n "${SLURM_JOB_GPUS:-}" ] || exit 0
mkdir -p "$dir" 2>/dev/null || exit 0
for i in ${SLURM_JOB_GPUS//,/ }; do
  # shellcheck disable=SC2153  # slurmd sets SLURM_JOB_ID for the prolog
  printf '%s\n' "$SLURM_JOB_ID" >"$dir/$i" 2>/dev/null || true
done
exit 0
