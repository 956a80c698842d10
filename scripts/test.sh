#!/usr/bin/env bash
# The whole test suite: formatting and lints (Rust and the UI), then every unit, integration and
# end-to-end test. End-to-end suites run the real binaries, so they are built first.
set -euo pipefail
cd "$(dirname "$0")/.."

# Set-up and the tests must leave tracked files as they found them (a rewritten lock file means
# every install may resolve differently). Compare against the state before the run, so a
# developer's own uncommitted edits are not counted.
tracked_state() { git diff HEAD --no-ext-diff 2>/dev/null | sha256sum; }
tracked_before="$(tracked_state)"

# What a fresh machine lacks (only what is missing; quick when all is there).
scripts/setup.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== UI: type check, lint (setup.sh built it)"
npm --prefix ui run check
npm --prefix ui run lint
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
# A release may leave demo data out (the `demo` feature); that build must keep compiling.
cargo clippy -p vitaltrends-desktop --no-default-features --features custom-protocol -- -D warnings
echo "== build binaries for the end-to-end suites"
cargo build --workspace --bins
echo "== the Linux bundle (.deb) of that desktop binary, for the packaging test"
# `tauri bundle` is the packaging half of `tauri build`: same config, same .desktop template,
# over the binary just built, so nothing compiles twice.
ui/node_modules/.bin/tauri bundle --debug --bundles deb
echo "== PostgreSQL for the relay's second backend"
VITALTRENDS_TEST_POSTGRES_URL="$(scripts/postgres.sh | tail -n 1)"
export VITALTRENDS_TEST_POSTGRES_URL
echo "== UI tests (mocked IPC)"
npm --prefix ui test
echo "== Rust tests"
mkdir -p target
cargo test --workspace --no-fail-fast 2>&1 | tee target/rust-tests.log
echo "== IPC bindings are up to date"
if ! git diff --quiet -- ui/src/bindings || [ -n "$(git ls-files --others --exclude-standard ui/src/bindings)" ]; then
  echo "ui/src/bindings changed when the tests regenerated them from Rust: commit the new files" >&2
  git status --short ui/src/bindings >&2
  exit 1
fi

if [ "$(tracked_state)" != "$tracked_before" ]; then
  echo "set-up or the tests changed tracked files; commit them as written or fix what rewrote them:" >&2
  git status --short --untracked-files=no >&2
  exit 1
fi

passed=$(awk '/^test result:/ {s += $4} END {print s + 0}' target/rust-tests.log)
failed=$(awk '/^test result:/ {s += $6} END {print s + 0}' target/rust-tests.log)
echo "rust: ${passed} passed, ${failed} failed"
