#!/usr/bin/env bash
# Sets up what a fresh Debian 12 machine lacks, builds the desktop app and opens it in demo mode:
# with no WHOOP settings it starts a WHOOP simulator in-process, so Connect WHOOP works without an
# account (authorize on the simulator's page in your browser). Without a display it runs the
# headless CLI demo instead.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  echo "demo: no display here; running the headless CLI demo (scripts/cli-demo.sh) instead"
  exec scripts/cli-demo.sh
fi
cargo build --release -p vitaltrends-desktop
# Demo mode is the default: no WHOOP client id configured.
exec env -u VITALTRENDS_WHOOP_CLIENT_ID target/release/vitaltrends-desktop
