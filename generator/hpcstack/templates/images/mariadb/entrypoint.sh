#!/bin/bash
# MariaDB for slurmdbd: initialise once (database + user from the db_password secret), then run
# mariadbd in the foreground with the buffer pool sized for this container's memory.
set -euo pipefail
DATA=/var/lib/mariadb
PW_FILE=/run/secrets/db_password
DB_NAME=${HPCSTACK_DB_NAME:-slurm_acct_db}
DB_USER=${HPCSTACK_DB_USER:-slurm}
log() { printf 'hpcstack-db: %s\n' "$*" >&2; }

memory_bytes() {
  local limit=""
  if [ -r /sys/fs/cgroup/memory.max ]; then limit=$(cat /sys/fs/cgroup/memory.max); fi
  if [ -z "$limit" ] || [ "$limit" = max ]; then
    [ -r /sys/fs/cgroup/memory/memory.limit_in_bytes ] && limit=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)
  fi
  local host=$(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) * 1024 ))
  if [ -z "$limit" ] || [ "$limit" = max ] || [ "$limit" -gt "$host" ]; then limit=$host; fi
  echo "$limit"
}

# Slurm advises a large buffer pool; give it an eighth of this container's memory (the host's
# when unlimited), 256 MiB..8 GiB, and a redo log a quarter of that.
mem=$(memory_bytes)
pool=$(( mem / 8 ))
min=$((256 * 1024 * 1024)); max=$((8 * 1024 * 1024 * 1024))
[ "$pool" -lt "$min" ] && pool=$min
[ "$pool" -gt "$max" ] && pool=$max
pool=$(( pool / 1048576 ))M
logsize=$(( ${pool%M} / 4 ))M
SIZING=(--innodb-buffer-pool-size="$pool" --innodb-log-file-size="$logsize")

install -d -o mysql -g mysql /run/mysqld
chown mysql:mysql "$DATA"
rm -f /run/mysqld/hpcstack-ready

# Initialise in two idempotent steps; the marker is written only when both succeeded, so an
# interrupted first start is finished by the next one instead of leaving a database without
# the slurm user.
if [ ! -e "$DATA/.hpcstack-initialised" ]; then
  [ -s "$PW_FILE" ] || { log "error: database password missing at $PW_FILE"; exit 1; }
  if [ ! -d "$DATA/mysql" ]; then
    log "initialising a new database in $DATA"
    mariadb-install-db --user=mysql --datadir="$DATA" --auth-root-authentication-method=socket \
      --skip-test-db >/dev/null
  fi
  mariadbd --user=mysql --datadir="$DATA" --skip-networking "${SIZING[@]}" &
  pid=$!
  ready=0
  for _ in $(seq 240); do
    if mariadb-admin --protocol=socket ping >/dev/null 2>&1; then ready=1; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  [ "$ready" = 1 ] || { log "error: the database server did not start for initialisation"; exit 1; }
  # The password goes through stdin, never the command line or the log.
  pw=$(cat "$PW_FILE")
  pw=${pw//\'/\'\'}
  mariadb --protocol=socket <<SQL
CREATE DATABASE IF NOT EXISTS \`$DB_NAME\`;
CREATE USER IF NOT EXISTS '$DB_USER'@'%' IDENTIFIED BY '$pw';
ALTER USER '$DB_USER'@'%' IDENTIFIED BY '$pw';
GRANT ALL ON \`$DB_NAME\`.* TO '$DB_USER'@'%';
FLUSH PRIVILEGES;
SQL
  unset pw
  mariadb-admin --protocol=socket shutdown
  wait "$pid" || true
  touch "$DATA/.hpcstack-initialised"
  log "database $DB_NAME and user $DB_USER ready"
fi

# Can the slurm user log in with the mounted password? Not when this volume was initialised
# by an earlier clone of the cluster (same name, so the same volume) with other secrets: then
# slurmdbd would retry forever and `up` would end minutes later in "unhealthy". Say so, once,
# and stop; the data is left as it is.
credentials_ok() {
  local opts out pw
  opts=$(mktemp /run/mysqld/client.XXXXXX)
  chmod 600 "$opts"
  pw=$(cat "$PW_FILE")
  pw=${pw//\\/\\\\}
  pw=${pw//\"/\\\"}
  printf '[client]\nuser=%s\npassword="%s"\n' "$DB_USER" "$pw" >"$opts"
  unset pw
  out=$(mariadb --defaults-extra-file="$opts" --protocol=tcp --host=127.0.0.1 \
    --connect-timeout=10 -e 'SELECT 1' "$DB_NAME" 2>&1) && { rm -f "$opts"; return 0; }
  rm -f "$opts"
  case "$out" in
    *"ERROR 1045"* | *"ERROR 1044"* | *"ERROR 1698"*) return 1 ;;
  esac
  log "warning: could not check the database credentials: ${out##*: }"
  return 0
}

log "starting mariadbd (buffer pool $pool)"
mariadbd --user=mysql --datadir="$DATA" "${SIZING[@]}" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null; wait "$pid"; exit $?' TERM INT
for _ in $(seq 240); do
  mariadb-admin --protocol=socket ping >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { wait "$pid"; exit $?; }
  sleep 0.5
done
if ! credentials_ok; then
  log "error: the database volume was initialised with another password: user $DB_USER" \
    "cannot log in with secrets/db_password (an earlier clone of this cluster, same name?)." \
    "To keep its accounting history, restore that clone's secrets/db_password and run" \
    "\`hpcstack up\` again; to start over, deleting the accounting history:" \
    "\`hpcstack down --volumes\`, then \`hpcstack up\`."
  kill -TERM "$pid" 2>/dev/null
  wait "$pid" || true
  exit 3
fi
touch /run/mysqld/hpcstack-ready
wait "$pid"
