#!/usr/bin/env bash
# Load benchmark of the exchange hot path, reported against this machine's raw RSA sign
# rate measured in the same run (absolute numbers drift ±25 % on shared machines).
#
#   benches/load.sh [seconds=20] [connections=16]
#
# Runs a release build on the demo configuration with a throwaway keystore on a free
# loopback port, twice: with the in-memory denylist, then with the Redis denylist
# ($TESSERA_BENCH_REDIS_URL, default redis://127.0.0.1:6379, under a throwaway prefix).
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

# run LABEL [VAR=value ...]: start a server with these settings, load /exchange, stop it.
run() {
  local label=$1; shift
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  env TESSERA__SERVER__LISTEN="127.0.0.1:$port" TESSERA__KEYS__DIR="$tmp/keys" TESSERA__LOG__LEVEL=warn "$@" \
    ./target/release/tessera --config config/demo.toml serve 2>>"$tmp/server.log" &
  server=$!
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
  curl -fs "http://127.0.0.1:$port/readyz" >/dev/null || { echo "load.sh: the $label server is not ready:" >&2; curl -s "http://127.0.0.1:$port/readyz" >&2; exit 1; }
  echo "== exchange, $label denylist: ${secs}s, $conns connections (wrk, 1 thread) against 2 server workers"
  wrk -t1 -c"$conns" -d"${secs}s" --latency -s benches/exchange.lua "http://127.0.0.1:$port/exchange" > "$tmp/$label.txt"
  grep -E "RESULT|Socket errors" "$tmp/$label.txt"
  if [ "$label" = memory ]; then
    echo "== jwks: 5s"
    wrk -t1 -c"$conns" -d5s "http://127.0.0.1:$port/.well-known/jwks.json" | grep -E "Requests/sec"
    echo "server RSS after the runs: $(( $(awk '/VmRSS/ {print $2}' "/proc/$server/status") / 1024 )) MiB"
  fi
  kill "$server"; wait "$server" 2>/dev/null || true; server=""
}

rps() { sed -n 's/.*rps=\([0-9.]*\).*/\1/p' "$tmp/$1.txt"; }

run memory
run redis TESSERA__DENYLIST__BACKEND=redis TESSERA__REDIS__URL="$redis_url" \
  TESSERA__REDIS__KEY_PREFIX="tessera-bench-$$:"

echo "== raw RS256-2048 sign rate, both cores (openssl speed)"
raw=$(openssl speed -seconds 10 -multi 2 rsa2048 2>/dev/null | awk '/^rsa 2048|^rsa2048/ {print $(NF-1)}' | tail -1)
mem=$(rps memory); red=$(rps redis)
python3 - "$raw" "$mem" "$red" <<'PY'
import sys
raw, mem, red = map(float, sys.argv[1:])
print(f"raw sign/s (2 cores):            {raw:8.0f}")
print(f"exchange req/s, memory denylist: {mem:8.0f}  ({mem / raw:.2f} of raw sign)")
print(f"exchange req/s, redis denylist:  {red:8.0f}  ({red / raw:.2f} of raw sign, {red / mem:.2f} of memory)")
PY
