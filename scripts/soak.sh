#!/usr/bin/env bash
# The long soak (not in the default suite, which runs a simulated week): a simulated month of the
# real binaries with faults switched on at random, ending with the store equal to WHOOP's and the
# grant alive. Prints its figures as a table. VITALTRENDS_SOAK_DAYS and VITALTRENDS_SOAK_SEED
# change its length and its dice.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --bins -p whoop-sim -p relay -p cli
cargo test -p e2e --test soak -- --ignored --nocapture soak_a_simulated_month
