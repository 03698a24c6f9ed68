#!/usr/bin/env bash
# Load benchmark of the exchange hot path, reported against this machine's raw RSA sign
# rate measured in the same run (absolute numbers drift ±25 % on shared machines).
#
#   benches/load.sh [seconds=20] [connections=16]
#
# Runs a release build on the demo configuration with a throwaway keystore on a free
# loopback port, in four modes: a repeat exchange of one session with the in-memory
# denylist (token reuse answers it), the same with the Redis denylist
# ($TESSERA_BENCH_REDIS_URL, default redis://127.0.0.1:6379, under a throwaway prefix),
# a repeat anonymous exchange, and reuse off (token.reuse_fraction = 0: one signature
# per exchange, the RSA-bound path).
# Needs wrk, openssl, curl and python3 (apt-get install wrk openssl curl).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
conns=${2:-16}
redis_url=${TESSERA_BENCH_REDIS_URL:-redis://127.0.0.1:6379}
for tool in wrk openssl curl python3; do
  command -v "$tool" >/dev/null || { echo "load.sh: $tool is missing; install it (apt-get install $tool)" >&2; exit 1; }
done

cargo build --release --quiet
tmp=$(mktemp -d)
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

# run LABEL WHAT [VAR=value ...]: start a server with these settings, load /exchange with
# the WHAT request of benches/exchange.lua (session or anonymous), stop it.
run() {
  local label=$1 what=$2; shift 2
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  env TESSERA__SERVER__LISTEN="127.0.0.1:$port" TESSERA__KEYS__DIR="$tmp/keys" TESSERA__LOG__LEVEL=warn "$@" \
    ./target/release/tessera --config config/demo.toml serve 2>>"$tmp/server.log" &
  server=$!
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
  curl -fs "http://127.0.0.1:$port/readyz" >/dev/null || { echo "load.sh: the $label server is not ready:" >&2; curl -s "http://127.0.0.1:$port/readyz" >&2; exit 1; }
  echo "== exchange, $label: ${secs}s, $conns connections (wrk, 1 thread) against 2 server workers"
  wrk -t1 -c"$conns" -d"${secs}s" --latency -s benches/exchange.lua "http://127.0.0.1:$port/exchange" -- "$what" > "$tmp/$label.txt"
  grep -E "RESULT|Socket errors" "$tmp/$label.txt"
  curl -fs "http://127.0.0.1:$port/metrics" | grep '^tessera_token_reuse_total' || true
  if [ "$label" = repeat ]; then
    echo "== jwks: 5s"
    wrk -t1 -c"$conns" -d5s "http://127.0.0.1:$port/.well-known/jwks.json" | grep -E "Requests/sec"
    echo "server RSS after the runs: $(( $(awk '/VmRSS/ {print $2}' "/proc/$server/status") / 1024 )) MiB"
  fi
  kill "$server"; wait "$server" 2>/dev/null || true; server=""
}

field() { sed -n "s/.* $2=\([0-9.]*\).*/\1/p" "$tmp/$1.txt"; }

run repeat session
run repeat-redis session TESSERA__DENYLIST__BACKEND=redis TESSERA__REDIS__URL="$redis_url" \
  TESSERA__REDIS__KEY_PREFIX="tessera-bench-$$:"
run anonymous anonymous
run reuse-off session TESSERA__TOKEN__REUSE_FRACTION=0

echo "== raw RS256-2048 sign rate, both cores (openssl speed)"
raw=$(openssl speed -seconds 10 -multi 2 rsa2048 2>/dev/null | awk '/^rsa 2048|^rsa2048/ {print $(NF-1)}' | tail -1)
python3 - "$raw" "$conns" \
  "$(field repeat rps) $(field repeat p50_ms) $(field repeat p99_ms)" \
  "$(field repeat-redis rps) $(field repeat-redis p50_ms) $(field repeat-redis p99_ms)" \
  "$(field anonymous rps) $(field anonymous p50_ms) $(field anonymous p99_ms)" \
  "$(field reuse-off rps) $(field reuse-off p50_ms) $(field reuse-off p99_ms)" <<'PY'
import sys
raw, conns = float(sys.argv[1]), sys.argv[2]
modes = [m.split() for m in sys.argv[3:]]
(rep, rep_redis, anon, off) = [(float(r), p50, p99) for r, p50, p99 in modes]
print(f"raw sign/s (2 cores, openssl speed -multi 2 rsa2048): {raw:8.0f}")
def line(name, m, extra=""):
    print(f"{name:34s} {m[0]:8.0f} req/s  {m[0] / raw:5.2f}x raw sign  p50 {m[1]} ms  p99 {m[2]} ms{extra}")
line("repeat exchange, memory denylist:", rep, "  (target >= 10x)")
line("repeat exchange, redis denylist:", rep_redis, f"  = {rep_redis[0] / rep[0]:.2f}x memory (target >= 0.7)")
line("anonymous exchange (reuse):", anon)
line(f"reuse off, {conns} connections:", off, "  (target >= 0.75x)")
PY
