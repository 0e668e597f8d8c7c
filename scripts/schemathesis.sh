#!/usr/bin/env bash
# Fuzzes the whole API with schemathesis, driven by its own OpenAPI document: every
# operation, positive and negative examples, every check. Fails on any server error, any
# answer that the document does not describe, any request the document calls valid that
# is refused, and any it calls invalid that is accepted.
#
#   export DATABASE_URL=postgres://…            # a database of your own
#   POINTSMALL_BIN=target/debug/pointsmall scripts/schemathesis.sh
#
# Installs schemathesis with pip if missing, migrates and seeds (`pointsmall demo`, then
# a fresh mall per run through the API with an owner, a member and a partner API key),
# starts the server on a free port, runs `schemathesis run` with the credentials, the
# per-operation expected statuses and the hooks (scripts/schemathesis_hooks.py) of
# scripts/schemathesis.toml, and always stops the server.
#
# `scripts/schemathesis.sh --install-only` only installs schemathesis where it is missing.
#
# Optional: ST_PORT (first port to try, default 18180), ST_MAX_EXAMPLES (per operation,
# default 25), ST_WORKERS (default 1). Server log and reports: target/schemathesis/.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/target/schemathesis"
log() { echo "[schemathesis] $*" >&2; }

install_only=
[ "${1:-}" = "--install-only" ] && install_only=1
if [ -z "$install_only" ]; then
  : "${DATABASE_URL:?set DATABASE_URL to a PostgreSQL database of your own}"
  : "${POINTSMALL_BIN:?set POINTSMALL_BIN to the built server binary, e.g. target/debug/pointsmall}"
  bin=$(realpath -e -- "$POINTSMALL_BIN" 2>/dev/null) || { log "POINTSMALL_BIN=$POINTSMALL_BIN does not exist"; exit 2; }
  command -v curl >/dev/null || { log "curl is not installed"; exit 2; }
fi
command -v python3 >/dev/null || { log "python3 is not installed"; exit 2; }

version="4.32.5"
if ! command -v schemathesis >/dev/null || ! schemathesis --version 2>/dev/null | grep -q "$version"; then
  log "installing schemathesis $version with pip"
  python3 -m pip install --quiet "schemathesis==$version" >&2
fi
[ -n "$install_only" ] && exit 0

mkdir -p "$out"
server_log="$out/server.log"
"$bin" migrate >/dev/null
"$bin" demo >/dev/null

# shellcheck source=lib/server.sh
. "$root/scripts/lib/server.sh"
port=$(free_port "${ST_PORT:-18180}")
base="http://127.0.0.1:$port"

secret=$(head -c 48 /dev/urandom | od -An -tx1 | tr -d ' \n')

log "starting the server on $base (log: $server_log)"
POINTSMALL_JWT_SECRET="$secret" POINTSMALL_JOBS_INTERVAL_SECS=0 POINTSMALL_FILES_DIR="$out/files" \
  "$bin" serve --listen "127.0.0.1:$port" >"$server_log" 2>&1 &
server_pid=$!
unset secret
deadline=$((SECONDS + 30))
until curl -fsS --max-time 2 "$base/healthz" 2>/dev/null | grep -q '"ok"'; do
  kill -0 "$server_pid" 2>/dev/null || { log "the server exited; its log:"; tail -n 40 "$server_log" >&2; exit 1; }
  [ "$SECONDS" -lt "$deadline" ] || { log "the server was not healthy within 30 s"; exit 1; }
  sleep 0.2
done

# --- a fresh mall with one credential of each audience --------------------------------
# post PATH JSON [AUTH-HEADER] FIELD...: POSTs and prints each FIELD (a.b.c) of the JSON
# answer on a line of its own.
post() {
  local path=$1 body=$2 auth=$3 answer
  shift 3
  answer=$(curl -sS --max-time 10 -X POST "$base$path" -H 'content-type: application/json' \
    ${auth:+-H "$auth"} -d "$body")
  python3 -c 'import json,sys
for field in sys.argv[2:]:
    v = json.loads(sys.argv[1])
    for k in field.split("."):
        v = v[k]
    print(v)' "$answer" "$@" || { log "POST $path answered: $answer"; exit 1; }
}
tenant="fuzz-$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
owner="owner@$tenant.test"
password="fuzz-password-1"
platform_token=$(post /v1/platform/auth/login '{"email":"admin@pointsmall.demo","password":"demo-admin-pass"}' "" access_token)
post /v1/platform/tenants "{\"slug\":\"$tenant\",\"name\":\"Schemathesis mall\"}" \
  "authorization: Bearer $platform_token" slug >/dev/null
post "/v1/platform/tenants/$tenant/staff" "{\"email\":\"$owner\",\"password\":\"$password\",\"role\":\"owner\"}" \
  "authorization: Bearer $platform_token" id >/dev/null
ST_STAFF_TOKEN=$(post "/v1/tenants/$tenant/staff/auth/login" "{\"email\":\"$owner\",\"password\":\"$password\"}" "" access_token)
scopes='["members:read","members:write","points:read","points:write","events:write","orders:read","orders:write"]'
ST_API_KEY=$(post "/v1/tenants/$tenant/staff/api-keys" "{\"name\":\"schemathesis\",\"scopes\":$scopes}" \
  "authorization: Bearer $ST_STAFF_TOKEN" secret)
member=$(post "/v1/tenants/$tenant/auth/register" \
  "{\"identifier\":\"13900000001\",\"password\":\"$password\",\"nickname\":\"fuzz\"}" "" \
  tokens.access_token member.invite_code)
ST_MEMBER_TOKEN=$(sed -n 1p <<<"$member")
ST_INVITE_CODE=$(sed -n 2p <<<"$member")
ST_TENANT=$tenant
export ST_TENANT ST_STAFF_TOKEN ST_API_KEY ST_MEMBER_TOKEN ST_INVITE_CODE
log "seeded mall $tenant with an owner, a member (phone, invitation code $ST_INVITE_CODE) and a partner key"

# --- the run --------------------------------------------------------------------------
# Every check, positive_data_acceptance among them: the document carries the bounds the
# server checks, so a request it calls valid must not be refused (400, 422). The few
# rules JSON Schema cannot state are allowed 422 per operation in schemathesis.toml;
# scripts/schemathesis_hooks.py puts data the mall has into the requests meant as valid.
# The mall's settings change last and alone (they bound transfers and adjustments), then
# API keys are revoked, last and alone: that may revoke the key the partner routes use.
export ST_HOOKS="$root/scripts/schemathesis_hooks.py"
status=0
pass_once() {
  local name=$1
  shift
  schemathesis --config-file "$root/scripts/schemathesis.toml" run "$base/openapi.json" \
    --checks all \
    --max-examples "${ST_MAX_EXAMPLES:-25}" \
    --workers "${ST_WORKERS:-1}" \
    --phases examples,coverage,fuzzing \
    --generation-deterministic \
    --request-timeout 10 \
    --no-color \
    --report junit --report-junit-path "$out/junit-$name.xml" \
    "$@" 2>&1 | tee "$out/output-$name.txt"
  return "${PIPESTATUS[0]}"
}
# A pass that failed only because schemathesis itself crashed (a "Runtime Error" such
# as CPython's "AST constructor recursion depth mismatch", with no failure found in
# our API) runs once more; a real failure never does. That crash is CPython's AST
# recursion counter racing between threads (python/cpython#106905), so the passes run
# with one worker by default: it crashed twice in a row with two.
run() {
  local name=$1 rc=0
  pass_once "$@" || rc=$?
  if [ "$rc" -ne 0 ] && grep -q "Runtime Error" "$out/output-$name.txt" \
     && ! grep -q "^Failures:" "$out/output-$name.txt"; then
    log "schemathesis crashed in pass $name without finding a failure; running it again"
    rc=0
    pass_once "$@" || rc=$?
  fi
  [ "$rc" -eq 0 ] || status=$rc
}
keys='/v1/tenants/{tenant}/staff/api-keys/{id}'
settings='/v1/tenants/{tenant}/staff/settings'
run main --exclude-path "$keys" --exclude-path "$settings"
run settings --include-path "$settings"
run revoke --include-path "$keys"
if [ "$status" -ne 0 ]; then
  log "schemathesis found problems; errors in the server log:"
  grep -E '"level":"ERROR"' "$server_log" | tail -n 20 >&2 || true
fi
exit "$status"
