#!/usr/bin/env bash
# Instructions per request of one server of benches/peers, under
# callgrind, as scripts/peers.sh counts them (the server serves 2,000 and
# then 12,000 requests on one keep-alive connection; the difference of the
# two totals / 10,000, so start-up and shutdown cancel), without the
# throughput rounds: a quick check of one change.
#
# Usage: scripts/peers-instructions.sh SERVER MODE
#   SERVER: a name benches/peers/src/bin/server.rs knows (sealed-session,
#   sealed-session-read, axum-none, hyper-privatejar, ...); MODE: the load
#   generator's mode for it (counter, read, none).
#   Example: scripts/peers-instructions.sh sealed-session counter, and
#   scripts/peers-instructions.sh axum-none none for its framework alone.
# Needs: cargo, valgrind (apt-get install valgrind). Builds into
# CARGO_TARGET_DIR, default target/peers.
set -euo pipefail
cd "$(dirname "$0")/.."

[ $# -eq 2 ] || { echo "usage: $0 SERVER MODE" >&2; exit 2; }
name=$1
mode=$2
command -v valgrind >/dev/null || { echo "valgrind is missing (apt-get install -y valgrind)" >&2; exit 1; }
manifest=benches/peers/Cargo.toml
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target/peers}
cargo build --quiet --release --manifest-path "$manifest"
bin=$CARGO_TARGET_DIR/release
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
total() {
  local n=$1 port vpid
  port=$("$bin/load" free-ports 1)
  timeout 600 valgrind --tool=callgrind --callgrind-out-file="$work/out.$n" \
    "$bin/server" "$name" --port "$port" --requests "$n" 2>"$work/log.$n" &
  vpid=$!
  "$bin/load" run --port "$port" --mode "$mode" --requests "$n" --connections 1 --wait 120 >/dev/null
  wait "$vpid"
  awk '/^(summary|totals):/ { print $2; exit }' "$work/out.$n"
}
small=$(total 2000)
large=$(total 12000)
echo "$name $(((large - small) / 10000)) instructions/request"
