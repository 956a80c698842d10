#!/usr/bin/env bash
# The whole test suite: formatting, lints, then every unit, integration and end-to-end test.
# End-to-end suites run the real binaries, so they are built first.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== build binaries for the end-to-end suites"
cargo build --workspace --bins
echo "== PostgreSQL for the relay's second backend"
VITALTRENDS_TEST_POSTGRES_URL="$(scripts/postgres.sh | tail -n 1)"
export VITALTRENDS_TEST_POSTGRES_URL
echo "== tests"
cargo test --workspace
