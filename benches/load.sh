#!/usr/bin/env bash
# Load benchmark of the exchange hot path, reported against this machine's raw RSA
# sign rate measured in the same run (absolute numbers drift ±25 % on shared machines).
#
#   benches/load.sh [seconds=20] [connections=16]
#
# Needs wrk and openssl (apt-get install wrk openssl). Starts a release build on the demo
# configuration with a throwaway keystore on a free loopback port; stops it at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
conns=${2:-16}
for tool in wrk openssl curl; do
  command -v "$tool" >/dev/null || { echo "load.sh: $tool is missing; install it (apt-get install $tool)" >&2; exit 1; }
done

cargo build --release --quiet
tmp=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
TESSERA__SERVER__LISTEN=127.0.0.1:$port TESSERA__KEYS__DIR=$tmp/keys TESSERA__LOG__LEVEL=warn \
  ./target/release/tessera --config config/demo.toml serve 2>"$tmp/server.log" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done

echo "== exchange: ${secs}s, $conns connections (wrk, 1 thread) against 2 server workers"
wrk -t1 -c"$conns" -d"${secs}s" --latency -s benches/exchange.lua "http://127.0.0.1:$port/exchange" | tee "$tmp/exchange.txt" | grep -E "RESULT|Latency|Socket errors" || true
echo "== jwks: 5s"
wrk -t1 -c"$conns" -d5s "http://127.0.0.1:$port/.well-known/jwks.json" | grep -E "Requests/sec"
rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$server/status")
kill $server; wait $server 2>/dev/null || true

echo "== raw RS256-2048 sign rate, both cores (openssl speed)"
raw=$(openssl speed -seconds 10 -multi 2 rsa2048 2>/dev/null | awk '/^rsa 2048|^rsa2048/ {print $(NF-1)}' | tail -1)
rps=$(sed -n 's/.*rps=\([0-9.]*\).*/\1/p' "$tmp/exchange.txt")
echo "raw sign/s (2 cores): $raw"
echo "exchange req/s:       $rps"
echo "server RSS after run: $((rss_kb / 1024)) MiB"
python3 -c "print(f'ratio exchange/raw sign: {float($rps)/float($raw):.2f}')"
