#!/usr/bin/env bash
# Runs the platform with a seeded demo, from a fresh machine: installs PostgreSQL if it
# is missing, starts a private cluster (unless DATABASE_URL is given), builds the
# server, migrates, seeds the demo alliance of two merchants, prints where to open the
# portal and the demo logins, and serves until Ctrl-C.
#   POINTSMALL_PORT=8080   port to serve on (127.0.0.1)
set -euo pipefail
cd "$(dirname "$0")/.."
port=${POINTSMALL_PORT:-8080}

command -v cargo >/dev/null || { echo "cargo is missing: install Rust 1.95 (rustup) first" >&2; exit 1; }
mkdir -p .data
export DATABASE_URL="${DATABASE_URL:-$(scripts/pg.sh demo 55432)}"

# A signing secret kept across restarts, so sessions survive a restart of the demo.
if [ -z "${POINTSMALL_JWT_SECRET:-}" ]; then
  [ -s .data/jwt-secret ] || head -c 48 /dev/urandom | base64 | tr -d '\n' > .data/jwt-secret
  export POINTSMALL_JWT_SECRET=$(cat .data/jwt-secret)
fi

echo "[run] building the server (the first build takes a few minutes)"
cargo build --quiet -p tenant-api --bin pointsmall
bin=target/debug/pointsmall

"$bin" migrate
"$bin" demo --base-url "http://127.0.0.1:$port"
echo
echo "[run] serving on http://127.0.0.1:$port — open http://127.0.0.1:$port/portal/ (Ctrl-C stops)"
POINTSMALL_LOG_FORMAT=${POINTSMALL_LOG_FORMAT:-pretty} exec "$bin" serve --listen "127.0.0.1:$port"
