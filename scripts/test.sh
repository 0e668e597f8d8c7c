#!/usr/bin/env bash
# Runs every test, from a fresh machine: installs what is missing, starts a private
# PostgreSQL cluster (unless DATABASE_URL is given), then format and lint checks, the
# back office's type, i18n and bundle checks, unit and integration tests against that
# PostgreSQL, the API fuzzed by schemathesis, and the back office in headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
  -h|--help)
    cat <<'USAGE'
usage: scripts/test.sh                 run every test (what .ci/run calls)
       scripts/test.sh --fresh-db NAME ADMIN_URL
                                       drop and create database NAME on that cluster,
                                       print its URL
With DATABASE_URL set, the tests use that database instead of starting a private
PostgreSQL cluster under .data/test (port 55433).
USAGE
    exit 0 ;;
  ""|--fresh-db) ;;
  *) echo "scripts/test.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
esac

# scripts/test.sh --fresh-db NAME ADMIN_URL: drops and creates database NAME on the
# cluster of ADMIN_URL and prints its URL (nothing from an earlier run can influence
# this one).
if [ "${1:-}" = "--fresh-db" ]; then
  psql_bin=$(ls -d /usr/lib/postgresql/*/bin | tail -n 1)/psql
  "$psql_bin" "$3" -qc "DROP DATABASE IF EXISTS $2 WITH (FORCE)" >/dev/null
  "$psql_bin" "$3" -qc "CREATE DATABASE $2" >/dev/null
  echo "${3%/*}/$2"
  exit 0
fi
started=$(date +%s)
step() { echo; echo "==> $* ($(( $(date +%s) - started ))s)"; }

command -v cargo >/dev/null || { echo "cargo is missing: install Rust 1.95 (rustup) first" >&2; exit 1; }

# No incremental compilation cache: a run from a clean clone gains nothing from it, and it
# doubles what the workspace's crates leave on disk (a CI run once stopped on a full disk).
# Set CARGO_INCREMENTAL=1 to keep it while iterating.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}

# What is missing is installed in the background while Rust compiles (downloads and
# unpacking against two busy cores): PostgreSQL, then Chromium, a CJK font and the
# browser test's npm packages (one apt-get at a time), and schemathesis with pip beside
# them. Each later step waits for what it needs; the scripts it calls still install on
# their own when run alone.
installs=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$installs"' EXIT
(scripts/pg.sh --install-only && scripts/e2e.sh --install-only) >"$installs/system.log" 2>&1 &
system_pid=$!
scripts/schemathesis.sh --install-only >"$installs/pip.log" 2>&1 &
pip_pid=$!
declare -A waited
installed() { # PID LOG WHAT
  [ -n "${waited[$1]:-}" ] && return 0
  wait "$1" && { waited[$1]=1; return 0; }
  cat "$2" >&2
  echo "installing $3 failed (above)" >&2
  exit 1
}

# A fresh database for each server-level step (the fuzzer's failed logins and the
# portal's sign-ins must not meet in the shared login counters): on our own cluster a
# new database each, otherwise DATABASE_URL with its throttle counters cleared.
step_db() {
  if [ -n "$own_cluster" ]; then
    "$0" --fresh-db "$1" "$admin_url"
  else
    psql "$DATABASE_URL" -qc "DELETE FROM control.throttles" >/dev/null 2>&1 || true
    echo "$DATABASE_URL"
  fi
}

step "cargo fmt --check"
cargo fmt --all -- --check

step "back office: npm ci, type check, i18n check, build; the committed bundle is current"
scripts/portal.sh

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings

# One build of every test and the server (the integration tests need the binary, so it
# is built with the same features as they are: nothing is compiled twice).
step "building the server and the tests"
cargo test --workspace --no-run --quiet

own_cluster=
if [ -z "${DATABASE_URL:-}" ]; then
  step "starting the test PostgreSQL cluster"
  installed $system_pid "$installs/system.log" "PostgreSQL, Chromium and the browser test's packages"
  admin_url=$(POINTSMALL_PG_FRESH=1 scripts/pg.sh test 55433)
  own_cluster=1
  export DATABASE_URL=$("$0" --fresh-db pointsmall_test "$admin_url")
fi
echo "DATABASE_URL=$DATABASE_URL"

step "rule library test files (examples/rules)"
target/debug/pointsmall rules test examples/rules

step "every SQL statement prepared against the migrated schemas"
# (--workspace: the features of the build above; `-p platform` compiled platform and
# its dependencies again, with other features.)
cargo test -q --workspace --test sql_checked

step "unit and integration tests (real PostgreSQL)"
cargo test --workspace

# Timing: alone on the machine, so its figures are the server's and not other tests'.
# A burst of load from outside (another process on the machine) lands in one window
# kind at random; a real loss of fairness fails every attempt. So: up to three
# attempts, each with every figure printed, and the step fails when all three do.
step "tenant fairness under a flood, alone (prints its figures)"
for attempt in 1 2 3; do
  if cargo test -q -p tenant-api --test it -- --ignored --exact --nocapture \
    fairness::a_flooding_tenant_is_told_to_wait_and_the_others_keep_their_latency; then
    break
  fi
  [ "$attempt" = 3 ] && { echo "fairness: the bound failed in 3 of 3 attempts" >&2; exit 1; }
  echo "fairness: attempt $attempt missed the bound; measuring again" >&2
done

step "the API fuzzed by schemathesis from its OpenAPI document"
installed $pip_pid "$installs/pip.log" schemathesis
DATABASE_URL=$(step_db pointsmall_test_fuzz) POINTSMALL_BIN=target/debug/pointsmall scripts/schemathesis.sh

if [ -x scripts/e2e.sh ]; then
  step "back office: API types current, then headless Chromium"
  installed $system_pid "$installs/system.log" "PostgreSQL, Chromium and the browser test's packages"
  DATABASE_URL=$(step_db pointsmall_test_portal) POINTSMALL_BIN=target/debug/pointsmall scripts/e2e.sh
fi

step "all tests passed"
