#!/bin/bash
# hpcstack entrypoint: one image, the role chosen by the first argument.
#   slurmctld | slurmdbd | slurmd [slurmd args...] | tunnel | sshd | sshd-keys | ssh-tunnel
#   | fs | slurmrestd (behind its gateway) | slurm-exporter [args] | login | users [--keys]
#   | <any command>
# Runs under tini (PID 1, forwards signals); the daemon runs in the foreground and logs to stdout.
# Secrets are read from compose secrets (HPCSTACK_SECRETS_DIR), never from the environment.
# The names, ports and paths shared with the generator come from contract.sh.
set -euo pipefail
# shellcheck source=/dev/null
. /usr/local/lib/hpcstack/contract.sh
# shellcheck source-path=SCRIPTDIR source=keyrefs.sh
. "$HPCSTACK_LIB_DIR/keyrefs.sh"
# shellcheck source-path=SCRIPTDIR source=sharedfs.sh
. "$HPCSTACK_LIB_DIR/sharedfs.sh"

CONF_SRC=$HPCSTACK_SLURM_CONF_DIR  # generated config, mounted read-only as a directory
log() { printf 'hpcstack-entrypoint: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

start_munge() {
  local key=$HPCSTACK_MUNGE_KEY_SECRET
  [ -s "$key" ] || die "munge key missing at $key (run 'hpcstack generate' to create secrets/munge.key)"
  install -o munge -g munge -m 0400 "$key" /etc/munge/munge.key
  install -d -o munge -g munge -m 0755 /run/munge
  setpriv --reuid munge --regid munge --init-groups munged --force
}

install_jwt_key() {
  # slurmctld and slurmdbd check REST tokens (AuthAltTypes=auth/jwt) with this key; Slurm wants
  # it owned by SlurmUser and unreadable by others.
  local key=$HPCSTACK_JWT_KEY_SECRET
  [ -s "$key" ] || die "JWT key missing at $key (run 'hpcstack generate' to create secrets/jwt_hs256.key)"
  install -d -o slurm -g slurm -m 0700 "$(dirname "$HPCSTACK_JWT_KEY_PATH")"
  install -o slurm -g slurm -m 0400 "$key" "$HPCSTACK_JWT_KEY_PATH"
}

install_gateway_key() {
  # The REST gateway checks tokens with the cluster's JWT key, the very bytes Slurm reads from
  # its key file. The nginx module takes an HS256 key only inline and only as hex
  # (`auth_jwt_key`), so it is written at each start as an include only root reads; nginx's
  # master reads it as root, slurmrestd's user cannot.
  local key=$HPCSTACK_JWT_KEY_SECRET conf=$HPCSTACK_REST_GATEWAY_KEY_CONF hex
  [ -s "$key" ] || die "JWT key missing at $key (run 'hpcstack generate' to create secrets/jwt_hs256.key)"
  hex=$(od -An -v -tx1 "$key" | tr -d ' \n')
  [[ $hex =~ ^([0-9a-f]{2})+$ ]] || die "cannot read the JWT key at $key"
  install -d -m 0700 "$(dirname "$conf")"
  ( umask 077 && printf 'auth_jwt_key "%s";\n' "$hex" >"$conf.new" ) && mv -f "$conf.new" "$conf"
}

run_rest_gateway() {
  # slurmrestd on a unix socket behind nginx (the gateway), both supervised here under tini:
  # either one ending stops the other and the container (restart: unless-stopped).
  local rest gateway rc=0
  link_config
  install_gateway_key
  nginx -q -t -e stderr -c "$HPCSTACK_REST_GATEWAY_CONF" || die "REST gateway configuration rejected"
  # Every request carries a JWT; slurmrestd forwards it (SLURM_JWT=daemon), so it needs no
  # munge key and no JWT key. It refuses to run as root or SlurmUser.
  export SLURM_JWT=daemon
  # slurmrestd unshares its own System V IPC and file namespaces; an unprivileged user may not
  # here ("Unable to unshare System V namespace: Operation not permitted"). The container
  # already has private IPC and mount namespaces (docs/decisions/rest-0014-...).
  export SLURMRESTD_SECURITY=disable_unshare_sysv,disable_unshare_files
  # The socket's directory: owned by slurmrestd's user, entered only by nginx's group (setgid:
  # the socket made there belongs to that group). slurmrestd makes the socket itself 0777
  # (measured), so this directory is what keeps every other user of the container out.
  install -d -o "$HPCSTACK_REST_USER" -g "$HPCSTACK_REST_GATEWAY_USER" -m 2750 "$HPCSTACK_REST_SOCKET_DIR"
  setpriv --reuid "$HPCSTACK_REST_USER" --regid "$HPCSTACK_REST_USER" --init-groups \
    slurmrestd -a rest_auth/jwt "$@" "unix:$HPCSTACK_REST_SOCKET" &
  rest=$!
  nginx -e stderr -c "$HPCSTACK_REST_GATEWAY_CONF" &
  gateway=$!
  # tini -g hands a stop signal to the whole group (both daemons too): then wait for both.
  trap 'stopping=1; kill -TERM "$rest" "$gateway" 2>/dev/null' TERM INT
  wait -n "$rest" "$gateway" || rc=$?
  if [ -z "${stopping:-}" ]; then
    if kill -0 "$rest" 2>/dev/null; then
      log "the REST gateway (nginx) exited ($rc); stopping slurmrestd"
    else
      log "slurmrestd exited ($rc); stopping the REST gateway"
    fi
    kill -TERM "$rest" "$gateway" 2>/dev/null || true
  fi
  wait "$rest" "$gateway" 2>/dev/null || true
  [ -n "${stopping:-}" ] || exit $((rc == 0 ? 1 : rc))
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

state_recovery_flags() {
  # A controller killed before its first full state save (minutes after a fresh start) leaves
  # job_state and clustername but no assoc_usage, and slurmctld then refuses every start
  # ("fatal: No Assoc usage file ... to recover"). The missing files hold only usage counters,
  # which are zero on such a young cluster: start with -i (ignore state-file errors) in exactly
  # that case, and say so. Any other state is recovered as always (no flag).
  local dir=$1
  if [ -e "$dir/clustername" ] && [ ! -e "$dir/assoc_usage" ]; then
    log "state in $dir has no assoc_usage yet (controller stopped before its first full save): starting slurmctld with -i; jobs, nodes and queue are recovered from job_state/node_state"
    printf -- '-i'
  fi
}

overlay_routes() {
  # Cloud-side services reach the overlay through the tunnel container.
  local net
  [ -n "${HPCSTACK_OVERLAY_VIA:-}" ] || return 0
  for net in ${HPCSTACK_OVERLAY_NETS:-}; do
    ip route replace "$net" via "$HPCSTACK_OVERLAY_VIA" || die "cannot add route $net via $HPCSTACK_OVERLAY_VIA (needs cap_add NET_ADMIN)"
  done
}

dnat_rules() {
  # ssh mode: HPCSTACK_DNAT="ADDR:PORT=TO_ADDR:PORT ..." rewrites this container's own outgoing
  # connections (slurmctld -> the site's ssh-tunnel; site mates' sshd-side ports -> the mates).
  local pair dst to
  [ -n "${HPCSTACK_DNAT:-}" ] || return 0
  iptables -t nat -F OUTPUT 2>/dev/null || die "iptables failed (needs cap_add NET_ADMIN)"
  for pair in $HPCSTACK_DNAT; do
    dst=${pair%%=*}
    to=${pair#*=}
    iptables -t nat -A OUTPUT -p tcp -d "${dst%:*}" --dport "${dst##*:}" -j DNAT --to-destination "$to" \
      || die "cannot add DNAT $dst -> $to"
  done
}

sshd_keys() {
  # authorized_keys from the generated, restricted lines: `@site` becomes the site's public key.
  # sshd reads the file at each login, so rerunning this (a site added) needs no restart.
  local keys=$HPCSTACK_SSHD_AUTHORIZED_KEYS_DIR/$HPCSTACK_SSH_USER
  install -d -m 0755 "$HPCSTACK_SSHD_AUTHORIZED_KEYS_DIR"
  umask 022
  fill_key_refs "$HPCSTACK_SSH_CONF_DIR/authorized_keys" "$keys.new" "$HPCSTACK_SSH_PUB_DIR"
  mv "$keys.new" "$keys"
}

run_sshd() {
  # The cloud side of ssh mode: key-only logins of the tunnel user, forwarding only.
  local conf=$HPCSTACK_SSH_CONF_DIR
  [ -s "$HPCSTACK_SSH_HOST_KEY_SECRET" ] || die "sshd host key missing (run 'hpcstack generate')"
  install -m 0600 "$HPCSTACK_SSH_HOST_KEY_SECRET" "$HPCSTACK_SSHD_HOST_KEY_PATH"
  install -d -m 0755 /run/sshd
  sshd_keys
  /usr/sbin/sshd -t -f "$conf/sshd_config" || die "sshd_config rejected"
  exec /usr/sbin/sshd -D -e -f "$conf/sshd_config"
}

run_ssh_tunnel() {
  # A local site's one ssh connection; reconnects by itself with a capped backoff.
  local cfg=$HPCSTACK_SSH_CONF_DIR/${HPCSTACK_SSH_SITE:?HPCSTACK_SSH_SITE names the site}.conf
  local delay=1 started rc child=
  [ -r "$cfg" ] || die "no ssh client config at $cfg"
  [ -s "$HPCSTACK_SSH_KEY_SECRET" ] || die "ssh key missing (run 'hpcstack generate')"
  install -d -m 0700 "$(dirname "$HPCSTACK_SSH_KEY_PATH")"
  install -m 0600 "$HPCSTACK_SSH_KEY_SECRET" "$HPCSTACK_SSH_KEY_PATH"
  trap '[ -n "$child" ] && kill "$child" 2>/dev/null; exit 0' TERM INT
  while true; do
    started=$SECONDS
    log "connecting to the cloud site's sshd"
    ssh -F "$cfg" -N "$HPCSTACK_SSH_HOST_ALIAS" &
    child=$!
    rc=0
    wait "$child" || rc=$?
    child=
    # A connection that held for a minute was healthy: start the backoff over.
    if [ $((SECONDS - started)) -ge 60 ]; then delay=1; fi
    log "ssh exited ($rc); reconnecting in ${delay}s"
    sleep "$delay" &
    wait $!
    delay=$((delay * 2 > 15 ? 15 : delay * 2))
  done
}

without_sys_admin() {
  # SYS_ADMIN is there for the FUSE mount only: the daemon and every job it starts run without it.
  exec setpriv --inh-caps=-sys_admin --bounding-set=-sys_admin "$@"
}

sync_users() {
  # The lab's users (users/users.tsv) on this container; none when users/ is not mounted.
  if [ -r "$HPCSTACK_USERS_DIR/users.tsv" ]; then hpcstack-users "$@"; fi
}

run_login() {
  # The lab's login service: key-only sshd, the Slurm client (munge, configless config).
  [ -s "$HPCSTACK_LOGIN_HOST_KEY_SECRET" ] || die "login host key missing (run 'hpcstack generate')"
  install -m 0400 "$HPCSTACK_LOGIN_HOST_KEY_SECRET" "$HPCSTACK_LOGIN_HOST_KEY_PATH"
  install -d -m 0755 /run/sshd
  start_munge
  link_config
  overlay_routes
  mount_shared_fs
  sync_users --keys
  /usr/sbin/sshd -t -f "$HPCSTACK_USERS_DIR/sshd_config" || die "login sshd_config rejected"
  without_sys_admin /usr/sbin/sshd -D -e -f "$HPCSTACK_USERS_DIR/sshd_config"
}

role=${1:-slurmctld}
case "$role" in
  slurmctld)
    shift
    start_munge
    install_jwt_key
    link_config
    overlay_routes
    mount_shared_fs
    install -d -o slurm -g slurm -m 0750 /var/spool/slurmctld
    sync_users
    # Supervised beside the controller (tini reaps it): resumes crash-made drains, releases
    # Slurm's own launch-failure holds (see hpcstack-healer).
    ( while true; do hpcstack-healer || log "healer exited ($?); restarting it"; sleep 5; done ) &
    # Prometheus's token for /metrics, where compose mounts the volume it travels in.
    if [ -d "$HPCSTACK_METRICS_TOKEN_DIR" ]; then hpcstack-metrics-token & fi
    # shellcheck disable=SC2046  # zero or one flag
    without_sys_admin slurmctld -D $(state_recovery_flags /var/spool/slurmctld) "$@"
    ;;
  slurmdbd)
    shift
    start_munge
    install_jwt_key
    link_config
    pw=$HPCSTACK_DB_PASSWORD_SECRET
    [ -s "$pw" ] || die "database password missing at $pw"
    umask 077
    { cat "$CONF_SRC/slurmdbd.conf"; printf 'StoragePass=%s\n' "$(cat "$pw")"; } >/etc/slurm/slurmdbd.conf
    chown slurm:slurm /etc/slurm/slurmdbd.conf
    install -d -o slurm -g slurm /run/slurmdbd
    sync_users
    exec slurmdbd -D "$@"
    ;;
  slurmd)
    shift
    start_munge
    overlay_routes
    dnat_rules
    if [ -n "${HPCSTACK_WG_PEER:-}" ]; then hpcstack-tunnel up; fi
    mount_shared_fs
    # GPU device nodes for scheduling tests on hosts without a GPU (gpu_runtime: mknod).
    for i in ${HPCSTACK_MKNOD_GPUS:-}; do
      [ -e "/dev/nvidia$i" ] || mknod -m 0666 "/dev/nvidia$i" c 195 "$i"
    done
    install -d -m 0755 /var/spool/slurmd
    sync_users
    hpcstack-rejoin "$@" &
    # -b: this container starting IS the node booting. Without it slurmctld sees the host's
    # unchanged boot time, never learns that the jobs it placed here died with the container,
    # and shows them RUNNING for minutes; with it the node is "unexpectedly rebooted": its jobs
    # are requeued (JobRequeue) and the controller's healer returns the node to service.
    without_sys_admin slurmd -D -b "$@"
    ;;
  tunnel)
    shift
    exec hpcstack-tunnel run
    ;;
  fs)
    overlay_routes
    run_fs_server
    ;;
  sshd)
    run_sshd
    ;;
  sshd-keys)
    sshd_keys
    ;;
  ssh-tunnel)
    run_ssh_tunnel
    ;;
  slurmrestd)
    shift
    run_rest_gateway "$@"
    ;;
  login)
    run_login
    ;;
  users)
    shift
    sync_users "$@"
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
