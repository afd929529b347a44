#!/bin/bash
# hpcstack-healthcheck ROLE: exit 0 only when the role is ready for work, not merely running.
set -uo pipefail
# shellcheck source=/dev/null
. /usr/local/lib/hpcstack/contract.sh
case "${1:-}" in
  slurmctld)
    scontrol ping 2>/dev/null | grep -q 'is UP'
    ;;
  slurmdbd)
    # A real round trip: authenticate with munge and read the cluster list from slurmdbd.
    sacctmgr --noheader --parsable2 show cluster format=cluster >/dev/null 2>&1
    ;;
  slurmd)
    # Registered with the controller and usable (not merely a running slurmd process).
    name=${2:-$(hostname)}
    state=$(scontrol show node "$name" 2>/dev/null | sed -n 's/.*State=\([A-Z_+]*\).*/\1/p')
    [ -n "$state" ] && ! [[ $state =~ DOWN|NOT_RESPONDING|INVAL|UNKNOWN ]]
    ;;
  tunnel)
    wg show "$HPCSTACK_WG_IFACE" >/dev/null 2>&1
    ;;
  sshd)
    ss -Htln "sport = :$HPCSTACK_SSHD_PORT" | grep -q .
    ;;
  login)
    # The lab's login service: sshd listening, and the Slurm client reaches slurmctld.
    ss -Htln "sport = :$HPCSTACK_SSHD_PORT" | grep -q . && scontrol ping 2>/dev/null | grep -q 'is UP'
    ;;
  ssh-tunnel)
    # The local forward to slurmctld is bound only once ssh is logged in with every forward.
    ss -Htln "sport = :$HPCSTACK_SLURMCTLD_PORT" | grep -q .
    ;;
  *)
    echo "usage: hpcstack-healthcheck slurmctld|slurmdbd|slurmd [NODE]|tunnel|sshd|ssh-tunnel|login" >&2
    exit 2
    ;;
esac
