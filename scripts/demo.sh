#!/usr/bin/env bash
# Sets up what a fresh Debian 12 machine lacks, builds the desktop app and opens it straight in
# demo mode (VITALTRENDS_MODE=demo): a WHOOP simulator runs in-process, so Connect WHOOP works
# without an account (authorize on the simulator's page in your browser). The demo's records live
# apart from a real account's; "Leave demo data" on the WHOOP card goes back to choosing how to
# connect. Without a display it runs the headless CLI demo instead.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  echo "demo: no display here; running the headless CLI demo (scripts/cli-demo.sh) instead"
  exec scripts/cli-demo.sh
fi
cargo build --release -p vitaltrends-desktop
exec env -u VITALTRENDS_WHOOP_CLIENT_ID VITALTRENDS_MODE=demo target/release/vitaltrends-desktop
