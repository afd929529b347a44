#!/bin/bash
# Sourced by hpcstack-entrypoint: the shared filesystem (GlusterFS, served by the cloud site's
# fs service over the overlay). Two pieces:
#   run_fs_server    the fs role: glusterd and one brick; the volume is made on the first start
#   mount_shared_fs  any role of this image that is a client (slurmctld, slurmd, a login
#                    service): mount the volume and bind its home/ and shared/ onto the homes and
#                    the shared data area. Compose turns a service into a client by setting
#                    HPCSTACK_FS_SERVER with SYS_ADMIN and /dev/fuse (render/compose_fs.py).
# Callers define log() and die().
# shellcheck source=/dev/null
. /usr/local/lib/hpcstack/contract.sh

FS_LOG_DIR=/var/log/glusterfs

fs_volume_ready() {
  # The brick process is online and listening on its fixed port.
  gluster --mode=script volume status "$HPCSTACK_FS_VOLUME" 2>/dev/null \
    | awk '/^Brick / { print $(NF-1) }' | grep -qx Y \
    && ss -Htln "sport = :$HPCSTACK_FS_BRICK_PORT" | grep -q .
}

run_fs_server() {
  local addr=${HPCSTACK_FS_SERVER:?HPCSTACK_FS_SERVER is the address to serve on}
  local vol=$HPCSTACK_FS_VOLUME brick=$HPCSTACK_FS_BRICK_DIR gd i
  # One brick port (not glusterd's range), so the overlay carries two known ports only.
  sed -i -e "s/^#* *option base-port .*/    option base-port $HPCSTACK_FS_BRICK_PORT/" \
    -e "s/^#* *option max-port .*/    option max-port $HPCSTACK_FS_BRICK_PORT/" \
    /etc/glusterfs/glusterd.vol
  install -d -m 0755 "$brick" "$FS_LOG_DIR/bricks"
  glusterd -N -l /dev/stderr --log-level WARNING &
  gd=$!
  trap 'kill "$gd" 2>/dev/null; pkill -TERM -x glusterfsd; wait "$gd"; exit 0' TERM INT
  for i in $(seq 1 60); do
    gluster --mode=script pool list >/dev/null 2>&1 && break
    kill -0 "$gd" 2>/dev/null || die "glusterd exited at start"
    [ "$i" -lt 60 ] || die "glusterd did not answer in 60s"
    sleep 1
  done
  if ! gluster --mode=script volume info "$vol" >/dev/null 2>&1; then
    log "creating the shared volume $vol on $addr:$brick"
    # force: the brick is a directory on a Docker volume, not a dedicated disk.
    gluster --mode=script volume create "$vol" "$addr:$brick" force >/dev/null \
      || die "cannot create volume $vol"
  fi
  # A cut overlay shows as an error after seconds, not after GlusterFS's default 42 s.
  gluster --mode=script volume set "$vol" network.ping-timeout "$HPCSTACK_FS_PING_TIMEOUT_S" >/dev/null
  gluster --mode=script volume set "$vol" auth.allow "${HPCSTACK_FS_ALLOW:-*}" >/dev/null \
    || die "auth.allow ${HPCSTACK_FS_ALLOW:-} refused"
  gluster --mode=script volume set "$vol" diagnostics.brick-log-level WARNING >/dev/null
  if ! gluster --mode=script volume info "$vol" | grep -q '^Status: Started'; then
    gluster --mode=script volume start "$vol" >/dev/null || die "cannot start volume $vol"
  fi
  # The brick logs to a file: follow it onto stdout with glusterd's own log.
  tail -F -n0 "$FS_LOG_DIR/bricks/$(echo "${brick#/}" | tr / -).log" 2>/dev/null &
  log "shared volume $vol served on $addr (clients from ${HPCSTACK_FS_ALLOW:-anywhere})"
  wait "$gd"
  die "glusterd exited"
}

fs_make_homes() {
  # Every account of this container with a home under the shared homes gets its directory,
  # owned by it (the first node to start makes it; the rest find it there).
  local name uid gid home
  while IFS=: read -r name _ uid gid _ home _; do
    [ "$uid" -ge 1000 ] && [ "$uid" -lt 60000 ] || continue
    case "$home" in "$HPCSTACK_HOME_DIR"/*) ;; *) continue ;; esac
    [ -d "$home" ] || install -d -o "$uid" -g "$gid" -m 0700 "$home" \
      || log "warning: cannot make $name's home $home"
  done </etc/passwd
}

fs_mount_once() {
  local mnt=$HPCSTACK_FS_MOUNT_DIR err
  mountpoint -q "$mnt" && return 0
  install -d "$mnt"
  err=$(timeout 30 mount -t glusterfs -o log-level=WARNING \
    "$HPCSTACK_FS_SERVER:/$HPCSTACK_FS_VOLUME" "$mnt" 2>&1) && mountpoint -q "$mnt" && return 0
  umount -l "$mnt" 2>/dev/null
  FS_MOUNT_ERROR=${err:-mount timed out}
  return 1
}

fs_bind() {
  local mnt=$HPCSTACK_FS_MOUNT_DIR
  install -d -m 0755 "$mnt/home"
  install -d -m 1777 "$mnt/shared"
  mount --bind "$mnt/home" "$HPCSTACK_HOME_DIR"
  mount --bind "$mnt/shared" "$HPCSTACK_SHARED_DIR"
  fs_make_homes
  log "shared filesystem $HPCSTACK_FS_SERVER:/$HPCSTACK_FS_VOLUME on $HPCSTACK_HOME_DIR and $HPCSTACK_SHARED_DIR"
}

mount_shared_fs() {
  # Never blocks past HPCSTACK_FS_WAIT: a node whose server is unreachable says so and starts
  # (jobs that need /home or /shared fail there) while a background loop keeps trying.
  [ -n "${HPCSTACK_FS_SERVER:-}" ] || return 0
  local wait=${HPCSTACK_FS_WAIT:-60} deadline
  [ -c /dev/fuse ] || die "shared filesystem: /dev/fuse missing (compose: devices: [/dev/fuse], cap_add: [SYS_ADMIN])"
  mountpoint -q "$HPCSTACK_SHARED_DIR" && return 0
  deadline=$((SECONDS + wait))
  FS_MOUNT_ERROR=
  until fs_mount_once; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "error: shared filesystem $HPCSTACK_FS_SERVER:/$HPCSTACK_FS_VOLUME not mounted after ${wait}s: ${FS_MOUNT_ERROR}"
      log "error: $HPCSTACK_HOME_DIR and $HPCSTACK_SHARED_DIR are NOT shared on this host until it mounts (retrying every ${HPCSTACK_FS_RETRY_S}s)"
      ( until fs_mount_once; do sleep "$HPCSTACK_FS_RETRY_S"; done; fs_bind ) &
      return 0
    fi
    sleep 2
  done
  fs_bind
}
