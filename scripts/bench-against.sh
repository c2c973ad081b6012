#!/usr/bin/env bash
# The in-process layer benchmark (`benches/layer.rs`) of the commit REV
# beside this checkout's, side by side: both bench binaries are built, then
# run in turn ROUNDS times (default 5); prints each round's criterion
# estimates and the median per benchmark for both builds.
#
# Usage: scripts/bench-against.sh REV [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rev=${1:?usage: scripts/bench-against.sh REV [ROUNDS]}
rounds=${2:-5}
source=$(mktemp -d)
trap 'rm -rf "$source"' EXIT
git archive "$rev" | tar -x -C "$source"
bench_binary() { # manifest target-dir
  CARGO_TARGET_DIR="$2" cargo bench --quiet --no-run --bench layer --features tower \
    --manifest-path "$1" --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "layer" and m.get("executable"):
        print(m["executable"])' | tail -1
}
before=$(bench_binary "$source/Cargo.toml" "$PWD/target/before")
after=$(bench_binary Cargo.toml "$PWD/target")
results=$(mktemp)
for round in $(seq "$rounds"); do
  for build in before after; do
    binary=$before
    [ "$build" = after ] && binary=$after
    "$binary" --bench --noplot --measurement-time 3 --warm-up-time 1 2>/dev/null |
      awk -v build="$build" -v round="$round" '
        /time:/ { name = $1; value = $5; unit = $6
                  if (unit == "ns") ns = value; else if (unit == "µs") ns = value * 1000; else if (unit == "ms") ns = value * 1e6; else ns = value
                  printf "%s %s %s %.1f\n", round, build, name, ns }' >>"$results"
  done
done
python3 - "$results" "$rev" <<'PY'
import statistics, sys, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    _, build, name, ns = line.split()
    rows[(name, build)].append(float(ns))
names = sorted({name for name, _ in rows})
print(f"{'benchmark':<16} {sys.argv[2]:>12} {'this':>12} {'ratio':>7}   (medians of {len(rows[(names[0], 'before')])} rounds, ns)")
for name in names:
    b, a = statistics.median(rows[(name, 'before')]), statistics.median(rows[(name, 'after')])
    print(f"{name:<16} {b:>12.1f} {a:>12.1f} {a / b:>7.3f}")
PY
