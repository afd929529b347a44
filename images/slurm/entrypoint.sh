#!/bin/bash
# hpcstack entrypoint: one image, the role chosen by the first argument.
#   slurmctld | slurmdbd | slurmd [slurmd args...] | tunnel | slurm-exporter [args] | <any command>
# Runs under tini (PID 1, forwards signals); the daemon runs in the foreground and logs to stdout.
# Secrets are read from /run/secrets (compose secrets), never from the environment.
set -euo pipefail

CONF_SRC=/etc/hpcstack/slurm       # generated config, mounted read-only as a directory
log() { printf 'hpcstack-entrypoint: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

start_munge() {
  local key=/run/secrets/munge_key
  [ -s "$key" ] || die "munge key missing at $key (run 'hpcstack generate' to create secrets/munge.key)"
  install -o munge -g munge -m 0400 "$key" /etc/munge/munge.key
  install -d -o munge -g munge -m 0755 /run/munge
  setpriv --reuid munge --regid munge --init-groups munged --force
}

link_config() {
  # Symlinks, not copies: a regenerated file (atomic rename in the mounted directory) is seen
  # by `scontrol reconfigure` without restarting the container.
  local f
  mkdir -p /etc/slurm
  for f in "$CONF_SRC"/*.conf; do
    [ -e "$f" ] || continue
    case "$(basename "$f")" in slurmdbd.conf) continue ;; esac
    ln -sfn "$f" "/etc/slurm/$(basename "$f")"
  done
}

overlay_routes() {
  # Cloud-side services reach the overlay through the tunnel container.
  local net
  [ -n "${HPCSTACK_OVERLAY_VIA:-}" ] || return 0
  for net in ${HPCSTACK_OVERLAY_NETS:-}; do
    ip route replace "$net" via "$HPCSTACK_OVERLAY_VIA" || die "cannot add route $net via $HPCSTACK_OVERLAY_VIA (needs cap_add NET_ADMIN)"
  done
}

role=${1:-slurmctld}
case "$role" in
  slurmctld)
    shift
    start_munge
    link_config
    overlay_routes
    install -d -o slurm -g slurm -m 0750 /var/spool/slurmctld
    exec slurmctld -D "$@"
    ;;
  slurmdbd)
    shift
    start_munge
    link_config
    pw=/run/secrets/db_password
    [ -s "$pw" ] || die "database password missing at $pw"
    umask 077
    { cat "$CONF_SRC/slurmdbd.conf"; printf 'StoragePass=%s\n' "$(cat "$pw")"; } >/etc/slurm/slurmdbd.conf
    chown slurm:slurm /etc/slurm/slurmdbd.conf
    install -d -o slurm -g slurm /run/slurmdbd
    exec slurmdbd -D "$@"
    ;;
  slurmd)
    shift
    start_munge
    overlay_routes
    if [ -n "${HPCSTACK_WG_PEER:-}" ]; then hpcstack-tunnel up; fi
    # GPU device nodes for scheduling tests on hosts without a GPU (gpu_runtime: mknod).
    for i in ${HPCSTACK_MKNOD_GPUS:-}; do
      [ -e "/dev/nvidia$i" ] || mknod -m 0666 "/dev/nvidia$i" c 195 "$i"
    done
    install -d -m 0755 /var/spool/slurmd
    exec slurmd -D "$@"
    ;;
  tunnel)
    shift
    exec hpcstack-tunnel run
    ;;
  slurm-exporter)
    shift
    start_munge
    link_config
    export PYTHONPATH=/opt/hpcstack/python
    exec setpriv --reuid slurm --regid slurm --init-groups python3 -m hpcstack.exporter "$@"
    ;;
  *)
    exec "$@"
    ;;
esac
