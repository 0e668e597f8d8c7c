#!/usr/bin/env bash
# Starts a private PostgreSQL cluster for this checkout and prints its DATABASE_URL.
#
#   scripts/pg.sh NAME PORT      e.g. scripts/pg.sh demo 55432
#   scripts/pg.sh --install-only only installs PostgreSQL where it is missing
#
# Installs PostgreSQL with apt-get where it is missing. The cluster's data lives under
# .data/NAME (ignored by git), its socket in .data/NAME-sock, and it listens on
# 127.0.0.1:PORT only, trusting local connections: it is a throwaway development and
# test cluster, never a production one. Running it again reuses a running cluster.
set -euo pipefail

install_only=
[ "${1:-}" = "--install-only" ] && install_only=1
if [ -z "$install_only" ]; then
  name=${1:?usage: scripts/pg.sh NAME PORT}
  port=${2:?usage: scripts/pg.sh NAME PORT}
else
  name=install port=
fi
root=$(cd "$(dirname "$0")/.." && pwd)
data="$root/.data/$name"
sock="$root/.data/$name-sock"
log="$root/.data/$name.log"

log() { echo "[pg] $*" >&2; }

find_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && [ -x "$d/postgres" ] && { echo "$d"; return 0; }
  done
  return 1
}

bin=$(find_bin || true)
if [ -z "$bin" ]; then
  log "PostgreSQL is not installed; installing it with apt-get (needs root)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -o DPkg::Lock::Timeout=600 -y -qq postgresql postgresql-contrib >&2
  bin=$(find_bin) || { log "PostgreSQL install failed"; exit 1; }
fi
[ -n "$install_only" ] && exit 0

# initdb and postgres refuse to run as root: run them as the postgres user then.
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

mkdir -p "$root/.data" "$sock"
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
  chown postgres "$root/.data" "$sock"
  # postgres must be able to reach the folder through every parent.
  d="$root"; while [ "$d" != / ]; do chmod o+x "$d" 2>/dev/null || true; d=$(dirname "$d"); done
fi

# POINTSMALL_PG_FRESH=1 (the test command's cluster): a stopped cluster is thrown away
# and made anew, so a test run never waits on an old run's leftovers (a cluster killed
# mid-run recovers by syncing its whole data directory first).
if [ -n "${POINTSMALL_PG_FRESH:-}" ] && [ -s "$data/PG_VERSION" ] \
   && ! as_pg "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
  log "throwing away the stopped cluster in $data (a fresh one for this run)"
  rm -rf "$data"
fi

if [ ! -s "$data/PG_VERSION" ]; then
  log "creating cluster in $data"
  rm -rf "$data"; mkdir -p "$data"
  [ "$(id -u)" = 0 ] && chown postgres "$data"
  as_pg "$bin/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  cat >> "$data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sock'
max_connections = 300
shared_buffers = 256MB
max_locks_per_transaction = 512
fsync = on
synchronous_commit = on
log_min_messages = warning
CONF
fi

if as_pg "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
  log "cluster $name already running on port $port"
else
  touch "$log"; [ "$(id -u)" = 0 ] && chown postgres "$log"
  as_pg "$bin/pg_ctl" -D "$data" -l "$log" -w -t 60 start >/dev/null
  log "cluster $name started on port $port (log: $log)"
fi

db=pointsmall
if ! "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
  "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres "$db"
fi
echo "postgres://postgres@127.0.0.1:$port/$db"
