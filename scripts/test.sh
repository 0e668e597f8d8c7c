#!/usr/bin/env bash
# Runs every test, from a fresh machine: installs what is missing, starts a private
# PostgreSQL cluster (unless DATABASE_URL is given), then format and lint checks, unit
# and integration tests against that PostgreSQL, the API fuzzed by schemathesis, and the
# portal in headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
step() { echo; echo "==> $* ($(( $(date +%s) - started ))s)"; }

command -v cargo >/dev/null || { echo "cargo is missing: install Rust 1.95 (rustup) first" >&2; exit 1; }

if [ -z "${DATABASE_URL:-}" ]; then
  step "starting the test PostgreSQL cluster"
  admin_url=$(scripts/pg.sh test 55433)
  # A fresh database per run: nothing from an earlier run can influence this one.
  psql_bin=$(ls -d /usr/lib/postgresql/*/bin | tail -n 1)/psql
  "$psql_bin" "$admin_url" -qc "DROP DATABASE IF EXISTS pointsmall_test WITH (FORCE)" >/dev/null
  "$psql_bin" "$admin_url" -qc "CREATE DATABASE pointsmall_test" >/dev/null
  export DATABASE_URL="${admin_url%/*}/pointsmall_test"
fi
echo "DATABASE_URL=$DATABASE_URL"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "building the server"
cargo build --quiet -p tenant-api --bin pointsmall

step "rule library test files (examples/rules)"
target/debug/pointsmall rules test examples/rules

step "unit and integration tests (real PostgreSQL)"
cargo test --workspace

step "the API fuzzed by schemathesis from its OpenAPI document"
POINTSMALL_BIN=target/debug/pointsmall scripts/schemathesis.sh

if [ -x scripts/e2e.sh ]; then
  step "merchant portal in headless Chromium"
  POINTSMALL_BIN=target/debug/pointsmall scripts/e2e.sh
fi

step "all tests passed"
