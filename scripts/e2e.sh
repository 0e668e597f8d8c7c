#!/usr/bin/env bash
# End-to-end test of the back office in headless Chromium (Playwright), after checking
# that the portal's generated API types (admin-portal/web/src/api/schema.d.ts) are those
# of the server's /openapi.json.
#
#   export DATABASE_URL=$(scripts/pg.sh test 55433)
#   POINTSMALL_BIN=target/debug/pointsmall scripts/e2e.sh
#
# Installs what is missing (Debian's chromium via apt-get, the test's npm packages via
# `npm ci`; the tests need Node 20 or newer, as playwright-core does), seeds the demo
# data set (idempotent), starts the server on a free port with a random JWT secret,
# runs `node --test admin-portal/e2e/` against it and always stops the server. Exits
# with the tests' status.
#
# `scripts/e2e.sh --install-only` installs the browser, a CJK font and the test's npm
# packages where they are missing, and stops there.
#
# Optional: E2E_PORT (first port to try, default 18080), CHROMIUM_PATH
# (default /usr/bin/chromium). Server log and screenshots: target/portal-e2e/.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
e2e="$root/admin-portal/e2e"
out="$root/target/portal-e2e"

log() { echo "[e2e] $*" >&2; }

install_only=
[ "${1:-}" = "--install-only" ] && install_only=1
if [ -z "$install_only" ]; then
  : "${DATABASE_URL:?set DATABASE_URL, e.g. export DATABASE_URL=\$(scripts/pg.sh test 55433)}"
  : "${POINTSMALL_BIN:?set POINTSMALL_BIN to the built server binary, e.g. target/debug/pointsmall}"
  bin=$(realpath -e -- "$POINTSMALL_BIN" 2>/dev/null) || { log "POINTSMALL_BIN=$POINTSMALL_BIN does not exist"; exit 2; }
  [ -x "$bin" ] || { log "$bin is not executable"; exit 2; }
  command -v curl >/dev/null || { log "curl is not installed"; exit 2; }
fi
command -v node >/dev/null || { log "node is not installed"; exit 2; }

# --- what the browser needs ---------------------------------------------------------
export CHROMIUM_PATH=${CHROMIUM_PATH:-/usr/bin/chromium}
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -o DPkg::Lock::Timeout=600 -y -qq --no-install-recommends "$@" >&2
}
if [ ! -x "$CHROMIUM_PATH" ]; then
  log "installing chromium with apt-get"
  apt_install chromium
  [ -x "$CHROMIUM_PATH" ] || { log "chromium install failed"; exit 2; }
fi
# The portal is in Chinese: without a CJK font the screenshots show empty boxes. The
# assertions do not depend on it, so failing to install one is not fatal.
if command -v fc-list >/dev/null && [ -z "$(fc-list :lang=zh 2>/dev/null)" ]; then
  log "installing a CJK font for readable screenshots"
  apt_install fonts-wqy-zenhei || log "could not install fonts-wqy-zenhei; screenshots will lack CJK glyphs"
fi
if [ ! -d "$e2e/node_modules/playwright-core" ] || [ ! -d "$e2e/node_modules/axe-core" ]; then
  log "installing test dependencies (npm ci)"
  (cd "$e2e" && npm ci --no-audit --no-fund >&2)
fi
[ -n "$install_only" ] && exit 0
web="$root/admin-portal/web"
if [ ! -d "$web/node_modules/openapi-typescript" ]; then
  log "installing the portal's build dependencies (npm ci) for the API types check"
  (cd "$web" && npm ci --no-audit --no-fund --prefer-offline >&2)
fi

# --- the server ---------------------------------------------------------------------
mkdir -p "$out"
server_log="$out/server.log"

log "seeding the demo data set"
"$bin" demo >/dev/null

# shellcheck source=lib/server.sh
. "$root/scripts/lib/server.sh"
port=$(free_port "${E2E_PORT:-18080}")
base="http://127.0.0.1:$port"

secret=$(head -c 48 /dev/urandom | od -An -tx1 | tr -d ' \n')

log "starting the server on $base (log: $server_log)"
# The webhook test delivers to a receiver the test runs on 127.0.0.1.
POINTSMALL_JWT_SECRET="$secret" POINTSMALL_WEBHOOKS_ALLOW_PRIVATE=true POINTSMALL_WEBHOOKS_INTERVAL_MS=200 \
  "$bin" serve --listen "127.0.0.1:$port" >"$server_log" 2>&1 &
server_pid=$!
unset secret

deadline=$((SECONDS + 30))
until curl -fsS --max-time 2 "$base/healthz" 2>/dev/null | grep -q '"ok"'; do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    log "the server exited before it was healthy; its log:"; tail -n 40 "$server_log" >&2; exit 1
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    log "the server was not healthy within 30 s; its log:"; tail -n 40 "$server_log" >&2; exit 1
  fi
  sleep 0.2
done
log "server is up"

# --- the portal's API types are those of this server ----------------------------------
log "checking admin-portal/web/src/api/schema.d.ts against $base/openapi.json"
node "$web/scripts/gen-api.mjs" "$base/openapi.json" --check >&2

# --- the tests ----------------------------------------------------------------------
log "running the tests; screenshots go to $out"
status=0
PORTAL_BASE_URL="$base" PORTAL_SCREENSHOT_DIR="$out" node --test "$e2e/" || status=$?
if [ "$status" -ne 0 ]; then
  log "tests failed (status $status); last lines of the server log:"
  tail -n 20 "$server_log" >&2
fi
exit "$status"
