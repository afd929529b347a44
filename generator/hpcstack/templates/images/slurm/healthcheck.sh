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
  fs)
    # shellcheck source-path=SCRIPTDIR source=sharedfs.sh
    . "$HPCSTACK_LIB_DIR/sharedfs.sh"
    fs_volume_ready
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
  slurmrestd)
    # Ready = both daemons serve. Every path needs a token, which a healthcheck must not hold:
    # the refusal (HTTP 401) is the sign of life, the gateway's own on the published port (a
    # request without a token never passes it), then slurmrestd's on its socket behind it.
    exec 3<>"/dev/tcp/127.0.0.1/$HPCSTACK_SLURMRESTD_PORT" || exit 1
    printf 'GET /openapi/v3 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3
    IFS= read -r -t 5 status <&3 || exit 1
    [[ $status =~ ^HTTP/1\.[01]\ 401\  ]] || exit 1
    python3 - "$HPCSTACK_REST_SOCKET" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
s.sendall(b"GET /openapi/v3 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
status = s.makefile("rb").readline().split()[1:2]
sys.exit(0 if status in ([b"200"], [b"401"]) else 1)
PY
    ;;
  *)
    echo "usage: hpcstack-healthcheck slurmctld|slurmdbd|slurmd [NODE]|tunnel|fs|sshd|ssh-tunnel|slurmrestd|login" >&2
    exit 2
    ;;
esac
