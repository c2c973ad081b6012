#!/usr/bin/env bash
# The circuit breaker drill (docs/stores.md, "While a store is down,
# requests fail fast"): a server in server mode on a throw-away PostgreSQL
# (initdb in a temporary directory, fsync on, as the postgres user when
# run as root) under CONNECTIONS keep-alive clients (default 64) for
# SECONDS (default 30); PostgreSQL is stopped (`pg_ctl stop -m fast`) at
# STOP_AT s (default 10) and started again OUTAGE s later (default 10).
# ROUNDS (default 2) rounds of (breaker off: `with_circuit_breaker(None)`,
# breaker on: the default) in one run, so that a slow spell of a shared
# machine falls on both. Prints, per run, 200s and 503s per second during
# the outage and overall, p50/p99 latency during the outage, and the time
# from PostgreSQL accepting connections again to the first 200; then the
# answers of every second of every run.
#
# Needs Rust and PostgreSQL (apt-get install postgresql); taskset
# (util-linux) and two cores to pin the server and PostgreSQL (core 0)
# and the load generator (core 1) apart. Takes ROUNDS x 2 x (SECONDS + a
# few) seconds; not part of .ci/run (it wants a quiet machine).
# Usage: scripts/breaker-drill.sh [SECONDS] [STOP_AT] [OUTAGE] [CONNECTIONS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --release --example compare --features axum,redis-cluster,postgres,sqlite
program="${CARGO_TARGET_DIR:-target}/release/examples/compare"
# The PostgreSQL cluster lives under this directory (the program puts it
# in the temporary directory); the postgres user must reach it.
work=$(mktemp -d "${TMPDIR:-/tmp}/breaker-drill.XXXXXX")
chmod 755 "$work"
pid=
cleanup() {
  # The program stops its servers when it ends; after a signal, stop them
  # here: its process group (the servers it started), then PostgreSQL
  # (which pg_ctl puts in a session of its own): SIGQUIT to the
  # postmaster is an immediate shutdown.
  if [ -n "$pid" ]; then
    kill -TERM -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  for postmaster in "$work"/*/data/postmaster.pid; do
    [ -f "$postmaster" ] || continue
    kill -QUIT "$(head -n 1 "$postmaster")" 2>/dev/null || true
  done
  # Bounded: PostgreSQL quits within a second of SIGQUIT.
  for _ in $(seq 50); do
    compgen -G "$work/*/data/postmaster.pid" >/dev/null || break
    sleep 0.1
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
pin=()
if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then
  export COMPARE_PIN=1
  pin=(taskset -c 1)
fi
# A process group of its own (setsid), for the cleanup above.
TMPDIR="$work" setsid "${pin[@]}" "$program" drill "$@" &
pid=$!
status=0
wait "$pid" || status=$?
pid=
exit "$status"
