#!/usr/bin/env bash
# How many slow-body connections Tessera survives while still answering a normal client,
# on loopback (see benches/slow_bodies.py for what each side does).
#
#   benches/slow-bodies.sh [seconds=30] [counts="100 500 1000 2000 4000"]
#
# Runs the debug build (connection handling, not signing speed, is measured) on the demo
# configuration with a throwaway keystore, 2 workers, the default server.body_timeout_ms
# and server.max_connections unless TESSERA__SERVER__… variables say otherwise, once per
# count. Needs python3 and curl; raises the open-file limit to 20000 for the client.
# TESSERA_BIN=path/to/tessera skips the build.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
counts=${2:-"100 500 1000 2000 4000"}
ulimit -n 20000 2>/dev/null || true
# TESSERA_BIN=path/to/tessera skips the build.
bin=${TESSERA_BIN:-}
if [ -z "$bin" ]; then
  cargo build --quiet --workspace --features tessera-verify/tower --bin tessera
  bin=./target/debug/tessera
fi
tmp=$(mktemp -d)
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
for n in $counts; do
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  env TESSERA__SERVER__LISTEN="127.0.0.1:$port" TESSERA__SERVER__WORKERS=2 TESSERA__KEYS__DIR="$tmp/keys" \
    TESSERA__LOG__LEVEL=error "$bin" --config config/demo.toml serve 2>>"$tmp/server.log" &
  server=$!
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
  python3 benches/slow_bodies.py "127.0.0.1:$port" "$n" "$secs"
  fds=$(ls /proc/$server/fd | wc -l)
  echo "   server open files at the end: $fds; alive: $(kill -0 $server 2>/dev/null && echo yes || echo no)"
  kill "$server"; wait "$server" 2>/dev/null || true; server=""
done
