#!/usr/bin/env bash
# What authenticating a request costs a service (issue 17): wrk against a small actix
# service (crates/tessera-verify/examples/bench_service.rs, one worker) answering
# GET /branches/1/products, five ways in one run:
#   no auth; a shared API key (constant-time compare); the seeds' HS256 JWT (shared
#   secret); a Tessera RS256 token verified offline by tessera-verify; one POST
#   /introspect to the running Tessera per request (no cache, no local verification).
# Then the cold start: discovery + JWKS fetch + first verification by a fresh verifier.
# Each mode is reported as req/s, p50/p99 and its ratio to "no auth" (absolute numbers
# drift on shared machines; compare ratios).
#
#   benches/service.sh [seconds=10] [connections=16]
#
# Release builds; Tessera on the demo configuration with a throwaway keystore, free
# loopback ports. Needs wrk, curl and python3 (apt-get install wrk curl python3).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${2:-16}
for tool in wrk curl python3; do
  command -v "$tool" >/dev/null || { echo "service.sh: $tool is missing; install it (apt-get install $tool)" >&2; exit 1; }
done

export CARGO_INCREMENTAL=0
cargo build --release --quiet --workspace --features tessera-verify/tower --bin tessera --example bench_service
bin=${CARGO_TARGET_DIR:-target}/release/examples/bench_service
tmp=$(mktemp -d)
tessera="" service=""
cleanup() {
  [ -n "$service" ] && kill "$service" 2>/dev/null
  [ -n "$tessera" ] && kill "$tessera" 2>/dev/null
  wait 2>/dev/null; rm -rf "$tmp"
}
trap cleanup EXIT
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # URL LABEL
  for _ in $(seq 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "service.sh: $2 does not answer at $1" >&2; exit 1
}

tport=$(free_port)
export TESSERA_URL="http://127.0.0.1:$tport"
env TESSERA__ISSUER="$TESSERA_URL" TESSERA__SERVER__LISTEN="127.0.0.1:$tport" \
  TESSERA__KEYS__DIR="$tmp/keys" TESSERA__LOG__LEVEL=warn \
  ./target/release/tessera --config config/demo.toml serve 2>>"$tmp/tessera.log" &
tessera=$!
wait_for "$TESSERA_URL/readyz" tessera
rs256=$(curl -fs -u demo-gateway:demo-gateway-secret -H 'Content-Type: application/json' \
  -d '{"subject_token":"demo-admin-session","audience":"product-inventory","request":{"method":"GET","path":"/branches/1/products"}}' \
  "$TESSERA_URL/exchange" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
hs256=$("$bin" hs256-token)

# run MODE [wrk header]: start the service in MODE, load it, stop it.
run() {
  local mode=$1; shift
  local port; port=$(free_port)
  "$bin" serve "$mode" "$port" 2>>"$tmp/service.log" &
  service=$!
  wait_for "http://127.0.0.1:$port/branches/1/products" "the $mode service"
  local t0; t0=$(cpu_s "$tessera")
  echo "== $mode: ${secs}s, $conns connections (wrk, 1 thread) against 1 service worker"
  wrk -t1 -c"$conns" -d"${secs}s" --latency -s benches/service.lua "$@" \
    "http://127.0.0.1:$port/branches/1/products" > "$tmp/$mode.txt"
  grep -E "RESULT|Socket errors" "$tmp/$mode.txt"
  # CPU of the service (since its start) and of Tessera (during the load), per request.
  echo "CPU service_s=$(cpu_s "$service") tessera_s=$(python3 -c "print($(cpu_s "$tessera") - $t0)")" >> "$tmp/$mode.txt"
  kill "$service"; wait "$service" 2>/dev/null || true; service=""
}

run none
run api-key -H "X-Api-Key: bench-api-key-3a1f0c9e5b7d4e2f8a6c"
run hs256 -H "Authorization: Bearer $hs256"
run rs256 -H "Authorization: Bearer $rs256"
run introspect -H "Authorization: Bearer $rs256"
echo "== cold start: 100 fresh verifiers, one after another"
TOKEN=$rs256 "$bin" cold-start 100 | tee "$tmp/cold.txt"

field() { sed -n "s/.* $2=\([0-9.]*\).*/\1/p" "$tmp/$1.txt"; }
row() { echo "$1 $(field "$1" rps) $(field "$1" p50_ms) $(field "$1" p99_ms) $(field "$1" non2xx) $(field "$1" requests) $(field "$1" service_s) $(field "$1" tessera_s)"; }
python3 - "$(row none)" "$(row api-key)" "$(row hs256)" "$(row rs256)" "$(row introspect)" <<'PY'
import sys
names = {"none": "no auth", "api-key": "API key (constant time)", "hs256": "HS256, shared secret",
         "rs256": "RS256, tessera-verify offline", "introspect": "/introspect per request"}
rows = [a.split() for a in sys.argv[1:]]
base = float(rows[0][1])
print(f"{'mode':32s} {'req/s':>8s} {'ratio':>6s} {'p50 ms':>7s} {'p99 ms':>7s} {'CPU µs/req: service':>20s} {'+ Tessera':>9s} non2xx")
for mode, rps, p50, p99, bad, n, svc, sts in rows:
    n = int(n)
    print(f"{names[mode]:32s} {float(rps):8.0f} {float(rps) / base:6.2f} {p50:>7s} {p99:>7s}"
          f" {float(svc) * 1e6 / n:20.1f} {float(sts) * 1e6 / n:9.1f} {bad}")
PY
