#!/usr/bin/env bash
# Cookie sessions vs server-store sessions over real HTTP on 127.0.0.1: the
# counter app with no session (the ceiling), in cookie mode, in server mode
# on MemoryStore and on Redis, and with a ~3.8 KB cookie; medians of RUNS
# runs (default 3) of SECONDS each (default 5).
# Needs only Rust; redis-server (apt-get install redis-server) for the
# Redis rows; taskset (util-linux) and two cores to pin the server (core 0)
# and the load generator (core 1) apart.
# Usage: scripts/compare.sh [SECONDS] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --release --example compare --features axum,redis
run=(target/release/examples/compare run "${1:-5}" "${2:-3}")
if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then
  COMPARE_PIN=1 exec taskset -c 1 "${run[@]}"
fi
exec "${run[@]}"
