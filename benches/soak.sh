#!/usr/bin/env bash
# Soak: mixed load (exchange, JWKS, introspect, revoke) against a release server with the
# Redis denylist, for SECONDS (default 600). A throwaway redis-server is restarted once in
# the middle and the signing key is rotated once. Reports total requests, answers by
# status (503s are expected only during the Redis outage), p50/p99, and RSS at start and
# end (growth must stay under 10 %).
#   benches/soak.sh [seconds=600] [connections=16]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
conns=${2:-16}
for tool in wrk redis-server redis-cli curl python3; do
  command -v "$tool" >/dev/null || { echo "soak.sh: $tool is missing (apt-get install $tool)" >&2; exit 1; }
done
cargo build --release --quiet --bin tessera
tmp=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port); redis_port=$(free_port)
start_redis() { redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
  --dir "$tmp" --pidfile "$tmp/redis.pid" --logfile "$tmp/redis.log"; }
start_redis
TESSERA__SERVER__LISTEN=127.0.0.1:$port TESSERA__KEYS__DIR=$tmp/keys TESSERA__LOG__LEVEL=warn \
TESSERA__DENYLIST__BACKEND=redis TESSERA__REDIS__URL=redis://127.0.0.1:$redis_port \
TESSERA__JWKS__MAX_AGE_SECONDS=30 TESSERA__KEYS__PUBLISH_LEAD_SECONDS=60 \
  ./target/release/tessera --config config/demo.toml serve 2>"$tmp/server.log" &
server=$!
trap 'kill $server 2>/dev/null; redis-cli -p $redis_port shutdown nosave >/dev/null 2>&1; wait 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
token() { curl -s -u demo-gateway:demo-gateway-secret "http://127.0.0.1:$port/exchange" \
  -H 'content-type: application/json' -d '{"subject_token":"demo-user-session"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'; }
export SOAK_TOKEN=$(token) SOAK_REVOKE_TOKEN=$(token)
rss() { awk '/VmRSS/ {print $2}' "/proc/$server/status"; }

# Warm up, then measure the starting RSS.
wrk -t1 -c"$conns" -d15s -s benches/soak.lua "http://127.0.0.1:$port" >/dev/null
rss_start=$(rss)
echo "== soak: ${secs}s, $conns connections; RSS after warm-up: $((rss_start / 1024)) MiB"
wrk -t1 -c"$conns" -d"${secs}s" --timeout 5s -s benches/soak.lua "http://127.0.0.1:$port" > "$tmp/wrk.txt" &
load=$!
sleep $((secs / 4))
curl -fs -X POST -H 'authorization: Bearer demo-admin-token' -H 'content-type: application/json' -d '{}' \
  "http://127.0.0.1:$port/admin/keys/rotate" | sed 's/^/rotation: /'; echo
sleep $((secs / 4))
echo "redis: stopping at $(date +%T)"
redis-cli -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true
sleep 3
start_redis
echo "redis: back at $(date +%T)"
wait "$load"
rss_end=$(rss)
grep SOAK "$tmp/wrk.txt"
python3 - "$rss_start" "$rss_end" <<'PY'
import sys
start, end = map(int, sys.argv[1:])
growth = (end - start) / start * 100
print(f"RSS start {start/1024:.1f} MiB, end {end/1024:.1f} MiB, growth {growth:+.1f} %")
sys.exit(0 if growth < 10 else 1)
PY
curl -s "http://127.0.0.1:$port/admin/keys" -H 'authorization: Bearer demo-admin-token' | python3 -c 'import json,sys; print("keys:", [k["state"] for k in json.load(sys.stdin)])'
