#!/usr/bin/env bash
# The headless demo: runs the `vitaltrends` CLI end to end against the WHOOP simulator (no WHOOP
# account needed): start whoop-sim with a year of data, connect through the OAuth loopback flow,
# import everything, and show the status. scripts/demo.sh runs it where there is no display.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cargo build --release -p whoop-sim -p cli

demo_dir="${VITALTRENDS_DEMO_DIR:-$PWD/target/demo}"
rm -rf "$demo_dir" && mkdir -p "$demo_dir"
bin="$PWD/target/release"

"$bin/whoop-sim" --port 0 --days 365 --seed 42 --auto-approve >"$demo_dir/sim.out" 2>"$demo_dir/sim.log" &
sim_pid=$!
trap 'kill $sim_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$demo_dir/sim.out" ] && break; sleep 0.1; done
base_url=$(sed -n 's/.*"base_url":"\([^"]*\)".*/\1/p' "$demo_dir/sim.out" | head -1)
[ -n "$base_url" ] || { echo "the simulator did not start; see $demo_dir/sim.log" >&2; exit 1; }
echo "WHOOP simulator with a year of data at $base_url"

export VITALTRENDS_DATA_DIR="$demo_dir/data"
export VITALTRENDS_WHOOP_BASE_URL="$base_url"
export VITALTRENDS_WHOOP_CLIENT_ID=vitaltrends-demo
export VITALTRENDS_WHOOP_CLIENT_SECRET=demo-secret
# The demo keeps its throwaway tokens in a file so it runs on machines without a keychain.
export VITALTRENDS_SECRET_STORE=insecure-file

# Connect: the CLI prints the consent URL; following it (as a browser would) reaches the
# simulator's auto-approving consent page, which redirects to the CLI's loopback listener.
"$bin/vitaltrends" connect --no-browser >"$demo_dir/connect.out" 2>"$demo_dir/connect.log" &
connect_pid=$!
for _ in $(seq 100); do grep -q '^http' "$demo_dir/connect.out" 2>/dev/null && break; sleep 0.1; done
curl -fsSL "$(grep -m1 '^http' "$demo_dir/connect.out")" >/dev/null
wait $connect_pid
tail -n 1 "$demo_dir/connect.out"

"$bin/vitaltrends" sync
"$bin/vitaltrends" status
echo
echo "Your data: $VITALTRENDS_DATA_DIR/vitaltrends.db"
echo "Try: VITALTRENDS_DATA_DIR=$VITALTRENDS_DATA_DIR $bin/vitaltrends export --format json | head"
