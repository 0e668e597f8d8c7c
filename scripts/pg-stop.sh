#!/usr/bin/env bash
# Stops a cluster started by scripts/pg.sh:   scripts/pg-stop.sh NAME
set -euo pipefail
name=${1:?usage: scripts/pg-stop.sh NAME}
root=$(cd "$(dirname "$0")/.." && pwd)
for d in /usr/lib/postgresql/*/bin; do bin=$d; done
if [ "$(id -u)" = 0 ]; then
  runuser -u postgres -- "$bin/pg_ctl" -D "$root/.data/$name" -m fast stop
else
  "$bin/pg_ctl" -D "$root/.data/$name" -m fast stop
fi
