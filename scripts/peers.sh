#!/usr/bin/env bash
# sealed-session beside its peers over real HTTP on 127.0.0.1: the same
# counter app (GET / reads a counter from the session, adds one, writes it
# back) on hyper + the cookie crate's PrivateJar, actix-web + actix-session
# (CookieSessionStore), axum + tower-sessions (MemoryStore) and axum +
# sealed-session (and its read-only variant), and each framework without
# sessions. The crate is benches/peers (its own workspace).
#
# Prints one table: for each server, requests/s and the server's CPU time
# (user + sys, /proc/PID/stat) per request, medians of ROUNDS rounds of
# SECONDS each, the servers taking turns in each round; and instructions
# per request under callgrind (each server run twice under valgrind, for
# 2,000 and for 12,000 requests on one keep-alive connection: the
# difference / 10,000, so start-up and shutdown cancel). Then each session
# server's added cost (minus its framework without sessions) and its ratio
# to the cheapest peer's added cost.
#
# All servers run at once, each single-threaded (actix-web: one worker),
# pinned to core 0; the load generator, pinned to core 1, drives one
# server at a time with CONNECTIONS keep-alive connections, each a client
# with its own session, checking every answer.
#
# Usage: scripts/peers.sh [ROUNDS] [SECONDS]
#   ROUNDS (default 3, env PEERS_ROUNDS), SECONDS per run (default 3, env
#   PEERS_SECONDS); env PEERS_CONNECTIONS (default 16); PEERS_CALLGRIND=0
#   skips the callgrind part. Builds into CARGO_TARGET_DIR, default
#   target/peers (ignored by git with the root's target/).
# Needs: cargo, valgrind (apt-get install valgrind), awk, getconf;
# taskset (util-linux) to pin where there are 2+ cores.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${1:-${PEERS_ROUNDS:-3}}
seconds=${2:-${PEERS_SECONDS:-3}}
connections=${PEERS_CONNECTIONS:-16}
callgrind=${PEERS_CALLGRIND:-1}
small=2000
large=12000

die() {
  echo "peers.sh: $*" >&2
  exit 1
}
need() {
  command -v "$1" >/dev/null 2>&1 || die "$1 is missing${2:+ ($2)}"
}
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive whole number, not '$rounds'"
[[ $seconds =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "SECONDS must be a number, not '$seconds'"
need cargo "install Rust"
need awk
need getconf
if [ "$callgrind" != 0 ]; then
  need valgrind "apt-get install -y valgrind, or PEERS_CALLGRIND=0 to skip instructions per request"
fi
cores=$(getconf _NPROCESSORS_ONLN)
if [ "$cores" -ge 2 ]; then
  need taskset "util-linux; pins the servers and the load generator apart"
  pin_server=(taskset -c 0)
  pin_load=(taskset -c 1)
else
  echo "peers.sh: one core: the servers and the load generator share it" >&2
  pin_server=()
  pin_load=()
fi
clk_tck=$(getconf CLK_TCK)

manifest=benches/peers/Cargo.toml
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target/peers}
echo "building $manifest (release)..." >&2
cargo build --quiet --release --manifest-path "$manifest"
target=$(cargo metadata --format-version 1 --no-deps --manifest-path "$manifest" |
  sed 's/.*"target_directory":"\([^"]*\)".*/\1/')
server_bin=$target/release/server
load_bin=$target/release/load
[ -x "$server_bin" ] && [ -x "$load_bin" ] || die "no binaries in $target/release"

# name, load-generator mode, no-session twin (- for the twins themselves).
servers=(
  "hyper-none none -"
  "hyper-privatejar counter hyper-none"
  "actix-none none -"
  "actix-session counter actix-none"
  "axum-none none -"
  "tower-sessions counter axum-none"
  "sealed-session counter axum-none"
  "sealed-session-read read axum-none"
)
peers="hyper-privatejar actix-session tower-sessions"

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# --- throughput and CPU per request: all servers at once -------------------
mapfile -t ports < <("$load_bin" free-ports "${#servers[@]}")
declare -A port pid mode
i=0
for entry in "${servers[@]}"; do
  read -r name m _ <<<"$entry"
  port[$name]=${ports[$i]}
  mode[$name]=$m
  "${pin_server[@]}" "$server_bin" "$name" --port "${ports[$i]}" 2>"$work/$name.log" &
  pid[$name]=$!
  pids+=("$!")
  i=$((i + 1))
done
for entry in "${servers[@]}"; do
  read -r name _ <<<"$entry"
  # One request, which also checks the server answers as it should.
  "${pin_load[@]}" "$load_bin" run --port "${port[$name]}" --mode "${mode[$name]}" \
    --requests 1 --wait 30 >/dev/null || die "$name does not answer (log: $(cat "$work/$name.log"))"
done
echo "measuring: $rounds rounds x ${seconds}s per server, $connections connections..." >&2
for round in $(seq "$rounds"); do
  for entry in "${servers[@]}"; do
    read -r name _ <<<"$entry"
    line=$("${pin_load[@]}" "$load_bin" run --port "${port[$name]}" --mode "${mode[$name]}" \
      --seconds "$seconds" --connections "$connections" \
      --server-pid "${pid[$name]}" --clk-tck "$clk_tck") || die "$name: the load generator failed"
    for field in $line; do
      case $field in
      rps=*) echo "${field#rps=}" >>"$work/$name.rps" ;;
      cpu_us_per_request=*) echo "${field#cpu_us_per_request=}" >>"$work/$name.cpu" ;;
      esac
    done
  done
  echo "  round $round done" >&2
done
for p in "${pids[@]}"; do
  kill "$p" 2>/dev/null || true
done
wait 2>/dev/null || true
pids=()

median() {
  sort -g "$1" | awk '{ v[NR] = $1 } END {
    if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# --- instructions per request under callgrind ------------------------------
# The totals of one callgrind run of NAME serving N requests on one
# connection, into $work/NAME.N.total.
instructions() {
  local name=$1 n=$2 out=$work/callgrind.$1.$2 p vpid
  p=$("$load_bin" free-ports 1)
  timeout 600 valgrind --tool=callgrind --callgrind-out-file="$out" \
    "$server_bin" "$name" --port "$p" --requests "$n" 2>"$out.log" &
  vpid=$!
  pids+=("$vpid")
  "${pin_load[@]}" "$load_bin" run --port "$p" --mode "${mode[$name]}" --requests "$n" \
    --connections 1 --wait 120 >/dev/null || die "$name under callgrind: the load generator failed"
  wait "$vpid" || die "$name under callgrind did not exit cleanly: $(tail -5 "$out.log")"
  awk '/^(summary|totals):/ { print $2; exit }' "$out" >"$work/$name.$n.total"
  [ -s "$work/$name.$n.total" ] || die "$name: no totals in $out"
}
if [ "$callgrind" != 0 ]; then
  echo "callgrind: each server for $small and $large requests..." >&2
  for entry in "${servers[@]}"; do
    read -r name _ <<<"$entry"
    instructions "$name" "$small"
    instructions "$name" "$large"
    awk -v n=$((large - small)) 'NR == 1 { a = $1 } NR == 2 { b = $1 } END { printf "%.0f\n", (b - a) / n }' \
      "$work/$name.$small.total" "$work/$name.$large.total" >"$work/$name.ir"
    echo "  $name: $(cat "$work/$name.ir") instructions/request" >&2
  done
fi

# --- the table ---------------------------------------------------------------
for entry in "${servers[@]}"; do
  read -r name m twin <<<"$entry"
  ir=-
  [ -f "$work/$name.ir" ] && ir=$(cat "$work/$name.ir")
  echo "$name $m $twin $(median "$work/$name.rps") $(median "$work/$name.cpu") $ir"
done >"$work/table"

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
echo
echo "scripts/peers.sh $rounds $seconds: $(date -u +%Y-%m-%d), commit $commit, $cores cores${cpu_model:+ ($cpu_model)}, $connections connections"
echo "medians of $rounds rounds x ${seconds}s; instructions: callgrind, ($large - $small requests) / $((large - small))"
echo
awk -v peers="$peers" '
  function fmt(x, d) { return x == "-" ? "-" : sprintf("%." d "f", x) }
  function ratio(x, best) { return (x == "-" || best == "" || best <= 0) ? "-" : sprintf("%.2f", x / best) }
  {
    name[NR] = $1; twin[NR] = $3; rps[$1] = $4; cpu[$1] = $5; ir[$1] = $6
  }
  END {
    print "| server | requests/s | server CPU per request (us) | instructions per request |"
    print "|---|---|---|---|"
    for (i = 1; i <= NR; i++)
      printf "| %s | %s | %s | %s |\n", name[i], fmt(rps[name[i]], 0), fmt(cpu[name[i]], 2), ir[name[i]]
    n = split(peers, p, " ")
    for (i = 1; i <= NR; i++) {
      t = twin[i]
      if (t == "-") continue
      acpu[name[i]] = (cpu[name[i]] == "-" || cpu[t] == "-") ? "-" : cpu[name[i]] - cpu[t]
      air[name[i]] = (ir[name[i]] == "-" || ir[t] == "-") ? "-" : ir[name[i]] - ir[t]
    }
    for (j = 1; j <= n; j++) {
      if (acpu[p[j]] != "-" && (bestcpu == "" || acpu[p[j]] < bestcpu)) { bestcpu = acpu[p[j]]; bestcpuname = p[j] }
      if (air[p[j]] != "-" && (bestir == "" || air[p[j]] < bestir)) { bestir = air[p[j]]; bestirname = p[j] }
    }
    print ""
    printf "Added by the sessions (minus the same framework without sessions); ratio to the cheapest peer (CPU: %s, instructions: %s):\n\n", bestcpuname, bestirname
    print "| session server | minus | added CPU per request (us) | ratio | added instructions per request | ratio |"
    print "|---|---|---|---|---|---|"
    for (i = 1; i <= NR; i++) {
      if (twin[i] == "-") continue
      s = name[i]
      printf "| %s | %s | %s | %s | %s | %s |\n", s, twin[i], fmt(acpu[s], 2), ratio(acpu[s], bestcpu), air[s], ratio(air[s], bestir)
    }
  }' "$work/table"
