#!/usr/bin/env bash
# Cookie sessions vs server-store sessions over real HTTP on 127.0.0.1: the
# counter app with no session (the ceiling), with cookie mode's header bytes
# but no session, in cookie mode, in server mode on MemoryStore, on Redis,
# on PostgreSQL, on SQLite and on a local Redis Cluster (3 masters + 3
# replicas; also with WAIT for the replica), with a ~3.8 KB cookie, and in
# cookie mode
# with a session just over the cookie limit (so in the store) on each
# store; medians of RUNS runs (default 3) of SECONDS each (default 5), the
# rows taking turns.
#
# With --against REV: cookie mode (or the modes listed in
# COMPARE_AGAINST_MODES, e.g. server_postgres,fallback_postgres; a mode
# ending in :this runs on this checkout only) of the
# commit REV (built from `git archive` into target/against) beside this
# checkout's, in the same run; medians of RUNS (default 5). For
# before/after figures.
#
# Needs only Rust; redis-server and redis-cli (apt-get install
# redis-server brings both) for the Redis and Redis Cluster rows; PostgreSQL (apt-get install postgresql: a throw-away cluster
# is made with initdb in a temporary directory, fsync on, as the postgres
# user when run as root) for the PostgreSQL rows; SQLite is compiled in; taskset (util-linux) and two cores to pin the server (core 0)
# and the load generator (core 1) apart.
# Usage: scripts/compare.sh [--against REV] [SECONDS] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --release --example compare --features axum,redis-cluster,postgres,sqlite
run=(target/release/examples/compare run)
if [ "${1:-}" = "--against" ]; then
  rev=${2:?--against needs a git revision}
  shift 2
  source=$(mktemp -d)
  trap 'rm -rf "$source"' EXIT
  git archive "$rev" | tar -x -C "$source"
  # Every store of REV (older commits have only Redis).
  features=axum,redis
  grep -q '^postgres *=' "$source/Cargo.toml" && features=axum,redis-cluster,postgres,sqlite
  CARGO_TARGET_DIR="$PWD/target/against" cargo build --quiet --release \
    --manifest-path "$source/Cargo.toml" --example compare --features "$features"
  other="target/against-$(git rev-parse --short "$rev")"
  cp target/against/release/examples/compare "$other"
  run=(target/release/examples/compare against "$other")
fi
run+=("${1:-5}")
[ $# -ge 2 ] && run+=("$2")
if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then
  COMPARE_PIN=1 exec taskset -c 1 "${run[@]}"
fi
exec "${run[@]}"
