#!/usr/bin/env bash
# Builds and checks the back office (admin-portal/web), as the test command does:
#
#   scripts/portal.sh           npm ci, type check (vue-tsc), i18n check, build into a
#                               scratch directory, and fail unless the committed bundle
#                               (admin-portal/dist) is byte for byte what was built
#   scripts/portal.sh --write   the same, but build into admin-portal/dist (after
#                               changing the portal; commit the result)
#
# The bundle is committed so `cargo build` needs no Node; building it needs Node ≥ 18.18
# (Debian 12's 18.20 builds the same bytes as Node 20). Installs Debian's nodejs and npm
# with apt-get where node is missing. The generated API types (src/api/schema.d.ts)
# are checked against a running server by scripts/e2e.sh.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
web="$root/admin-portal/web"
dist="$root/admin-portal/dist"
log() { echo "[portal] $*" >&2; }
write=
[ "${1:-}" = "--write" ] && write=1

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  log "installing nodejs and npm with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -o DPkg::Lock::Timeout=600 -y -qq --no-install-recommends nodejs npm >&2
fi
node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 18 || (a === 18 && b >= 18) ? 0 : 1)' \
  || { log "Node $(node --version) is too old: the portal builds with Node 18.18 or newer"; exit 2; }

cd "$web"
t0=$SECONDS
log "npm ci (Node $(node --version))"
npm ci --no-audit --no-fund --prefer-offline --loglevel=error >&2
log "i18n check"
npm run --silent check:i18n
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
out="$scratch/dist" where="a scratch directory"
[ -n "$write" ] && out="$dist" where="admin-portal/dist"
# The type check (one thread) and the build run side by side.
log "type check (vue-tsc) and build into $where"
npm run --silent typecheck >"$scratch/typecheck.log" 2>&1 &
typecheck=$!
npx vite build --logLevel warn --outDir "$out" --emptyOutDir
if ! wait "$typecheck"; then
  cat "$scratch/typecheck.log" >&2
  log "the type check failed"
  exit 1
fi
if [ -n "$write" ]; then
  npm run --silent size
  log "done in $((SECONDS - t0)) s; commit admin-portal/dist and admin-portal/web"
  exit 0
fi
if ! diff -r "$scratch/dist" "$dist" >"$scratch/diff" 2>&1; then
  log "the committed bundle (admin-portal/dist) is not what admin-portal/web builds:"
  head -n 20 "$scratch/diff" >&2
  log "run scripts/portal.sh --write (or npm run build in admin-portal/web) and commit admin-portal/dist"
  exit 1
fi
# The build also writes the auto-imported components' types; they must be committed too.
if git -C "$root" rev-parse --git-dir >/dev/null 2>&1 && ! git -C "$root" diff --quiet -- admin-portal/web/src/components.d.ts; then
  log "admin-portal/web/src/components.d.ts changed in the build: commit it"
  git -C "$root" diff --stat -- admin-portal/web/src/components.d.ts >&2
  exit 1
fi
npm run --silent size
log "the committed bundle is current ($((SECONDS - t0)) s)"
