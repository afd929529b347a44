#!/bin/bash
# hpcstack-users [--keys]: make this container's lab users and groups match users.tsv
# (generated from stack.yaml's users:/groups:). Run by the entrypoint at start and by
# `hpcstack up` in running containers: no daemon restarts, running jobs keep running.
#   - groups and users are added or changed to the listed name/uid/gid (useradd/usermod);
#   - users and groups this script made before and no longer listed are removed (userdel,
#     groupdel), never a home directory or its contents; the image's own users are left alone;
#   - a missing home /home/NAME is made, owned by the user; an existing one is not touched;
#   - with --keys (the login service): each user's authorized_keys from keys/NAME, generated
#     keys (`@name`) filled in from the users' public keys.
set -euo pipefail
# shellcheck source=/dev/null
. /usr/local/lib/hpcstack/contract.sh
# shellcheck source-path=SCRIPTDIR source=keyrefs.sh
. "$HPCSTACK_LIB_DIR/keyrefs.sh"

TSV=$HPCSTACK_USERS_DIR/users.tsv
MANAGED=$HPCSTACK_USERS_MANAGED
log() { printf 'hpcstack-users: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ -r "$TSV" ] || die "no $TSV (mount the generated users/ directory; run 'hpcstack generate')"

declare -A want_users=() want_groups=()
group_lines=()
user_lines=()
while IFS=$'\t' read -r kind a b c d; do
  case "$kind" in
    group) group_lines+=("$a $b"); want_groups[$a]=1 ;;
    user) user_lines+=("$a $b $c $d"); want_users[$a]=1; want_groups[$a]=1 ;;
    '' | '#'*) ;;
    *) die "unexpected line in $TSV: $kind" ;;
  esac
done <"$TSV"

install -d -m 0755 "$(dirname "$MANAGED")"
touch "$MANAGED"

ensure_group() {  # NAME GID
  local name=$1 gid=$2 have
  have=$(getent group "$name" | cut -d: -f3 || true)
  if [ -z "$have" ]; then
    groupadd -g "$gid" "$name" || die "cannot add group $name ($gid)"
    echo "group $name" >>"$MANAGED"
  elif [ "$have" != "$gid" ]; then
    groupmod -g "$gid" "$name" || die "cannot give group $name gid $gid"
  fi
}

ensure_user() {  # NAME UID GID GROUPS
  local name=$1 uid=$2 gid=$3 groups=$4 home=$HPCSTACK_HOME_DIR/$1 line
  [ "$groups" = - ] && groups=
  line=$(getent passwd "$name" || true)
  if [ -n "$line" ] && [ "$(cut -d: -f3 <<<"$line")" != "$uid" ]; then
    # usermod -u would chown the whole home: remove and add again (files keep their owner).
    log "uid of $name changes to $uid: re-creating the account (home left as it is)"
    userdel "$name" && line=
  fi
  if [ -z "$line" ]; then
    # '*': no password can ever match, but the account is not locked (key logins work).
    useradd --no-create-home --no-user-group -u "$uid" -g "$gid" ${groups:+-G "$groups"} \
      -d "$home" -s /bin/bash -p '*' "$name" || die "cannot add user $name ($uid)"
    [ "$name" = "$HPCSTACK_JOB_USER" ] || echo "user $name" >>"$MANAGED"
  else
    usermod -g "$gid" -G "$groups" -d "$home" "$name" || die "cannot update user $name"
  fi
  if [ ! -e "$home" ]; then
    install -d -o "$uid" -g "$gid" -m 0750 "$home" || log "warning: cannot make $home"
  fi
}

remove_stale() {
  # Users first (a user's primary group cannot go while the user exists), then groups; what
  # cannot go yet (a removed user's job still running) stays listed and is tried next time.
  local kind name keep=()
  while read -r kind name; do
    [ "$kind" = user ] || continue
    if [ -n "${want_users[$name]:-}" ]; then keep+=("user $name"); continue; fi
    getent passwd "$name" >/dev/null || continue
    if userdel "$name"; then
      log "removed user $name (home kept)"
    else
      log "warning: cannot remove user $name yet"
      keep+=("user $name")
    fi
  done <"$MANAGED"
  while read -r kind name; do
    [ "$kind" = group ] || continue
    if [ -n "${want_groups[$name]:-}" ]; then keep+=("group $name"); continue; fi
    getent group "$name" >/dev/null || continue
    groupdel "$name" 2>/dev/null || keep+=("group $name")
  done <"$MANAGED"
  printf '%s\n' "${keep[@]}" | sort -u | grep . >"$MANAGED.new" || true
  mv "$MANAGED.new" "$MANAGED"
}

install_keys() {
  local dir=$HPCSTACK_SSHD_AUTHORIZED_KEYS_DIR name f
  install -d -m 0755 "$dir"
  for name in "${!want_users[@]}"; do
    f=$dir/$name.new
    # A generated key (` @name`) comes from the users' public keys (secrets/users/pub).
    (umask 022 && fill_key_refs "$HPCSTACK_USERS_DIR/keys/$name" "$f" "$HPCSTACK_USERS_PUB_DIR")
    chmod 0644 "$f"
    mv "$f" "$dir/$name"
  done
  # A removed user's keys go with them (the ssh-mode tunnel user never has a file here).
  for f in "$dir"/*; do
    [ -e "$f" ] || continue
    name=$(basename "$f")
    [ -n "${want_users[$name]:-}" ] || rm -f "$f"
  done
}

for entry in "${group_lines[@]}"; do
  read -r name gid <<<"$entry"
  ensure_group "$name" "$gid"
done
for entry in "${user_lines[@]}"; do
  read -r name uid gid groups <<<"$entry"
  # The user's primary group carries the user's name (several users may share a gid).
  if ! getent group "$gid" >/dev/null; then ensure_group "$name" "$gid"; fi
  ensure_user "$name" "$uid" "$gid" "$groups"
done
remove_stale
if [ "${1:-}" = --keys ]; then install_keys; fi
log "${#user_lines[@]} users, ${#group_lines[@]} groups in place"
