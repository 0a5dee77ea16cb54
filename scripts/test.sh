#!/usr/bin/env bash
# Runs every billpay test: formatting, lints, unit and property tests, and the HTTP, CLI,
# concurrency and crash tests on SQLite and on PostgreSQL, and the portal's browser tests in
# headless Chromium.
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

# The browser tests drive Debian's Chromium with playwright-core and run axe-core (npm). They
# fail, never skip, without them, so install what is missing (as root, with apt) first.
echo "== browser test dependencies"
chromium="${BILLPAY_CHROMIUM:-/usr/bin/chromium}"
missing=()
[ -x "$chromium" ] || missing+=(chromium)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "the browser tests need ${missing[*]}: apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
# Exactly the locked versions; never `playwright install` (it downloads a browser of its own).
(cd browser-tests && npm ci --no-audit --no-fund --loglevel=error)

echo "== format"
cargo fmt --all -- --check

echo "== lints"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== tests (SQLite and PostgreSQL)"
cargo test --workspace --locked -- --test-threads "${BILLPAY_TEST_THREADS:-4}"

echo "== doc tests"
cargo test --workspace --doc --locked
