#!/usr/bin/env bash
# Runs every billpay test: formatting, lints, unit and property tests, and the HTTP, CLI,
# concurrency and crash tests on SQLite and on PostgreSQL.
#
# PostgreSQL: BILLPAY_TEST_PG_URL (default postgres://postgres@127.0.0.1:5432/test) must reach a
# server where that user may CREATE DATABASE; each test makes its own database and drops it.
set -euo pipefail
cd "$(dirname "$0")/.."

export BILLPAY_TEST_PG_URL="${BILLPAY_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/test}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

if ! command -v cargo >/dev/null; then
  echo "cargo is not installed: install Rust from https://rustup.rs" >&2
  exit 1
fi

# PostgreSQL must answer before the suite starts: the storage tests run on both engines.
if command -v pg_isready >/dev/null; then
  hostport="${BILLPAY_TEST_PG_URL#*@}"; hostport="${hostport%%/*}"
  host="${hostport%%:*}"; port="${hostport##*:}"; [ "$port" = "$hostport" ] && port=5432
  for _ in $(seq 1 30); do
    pg_isready -q -h "$host" -p "$port" && break
    sleep 1
  done
  pg_isready -q -h "$host" -p "$port" || {
    echo "PostgreSQL is not answering at $host:$port (BILLPAY_TEST_PG_URL=$BILLPAY_TEST_PG_URL)" >&2
    exit 1
  }
fi

echo "== format"
cargo fmt --all -- --check

echo "== lints"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== tests (SQLite and PostgreSQL)"
cargo test --workspace --locked -- --test-threads "${BILLPAY_TEST_THREADS:-4}"

echo "== doc tests"
cargo test --workspace --doc --locked
