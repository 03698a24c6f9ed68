#!/usr/bin/env bash
# Gateway benchmark: wrk through nginx to a small upstream (an nginx `return 200`), three
# ways in one run, with the raw RSA sign ceiling of the same run:
#   1. nginx → upstream, no authentication;
#   2. nginx → Tessera forward auth (logged-in admin, token reuse as the build has it) → upstream;
#   3. the same with token reuse off (token.reuse_fraction = 0), when the build knows that key.
#
#   benches/gateway.sh [seconds=20] [connections=16]
#
# Release build of Tessera on the demo configuration (memory denylist), throwaway keystore,
# free loopback ports; TESSERA_BIN=path uses that binary instead (no build). Needs nginx, wrk, openssl, curl and python3
# (apt-get install nginx-light wrk openssl curl).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
conns=${2:-16}
nginx=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$nginx" ] || { echo "gateway.sh: nginx is missing; install it (apt-get install nginx-light)" >&2; exit 1; }
for tool in wrk openssl curl python3; do
  command -v "$tool" >/dev/null || { echo "gateway.sh: $tool is missing; install it (apt-get install $tool)" >&2; exit 1; }
done

bin=${TESSERA_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --quiet --bin tessera
  bin=${CARGO_TARGET_DIR:-target}/release/tessera
fi
tmp=$(mktemp -d)
server=""
nginx_pid=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null
  [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
gw=$(free_port); up=$(free_port); tessera=$(free_port)

mkdir -p "$tmp/tmp"
cat >"$tmp/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid nginx.pid;
error_log stderr error;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path tmp/body; proxy_temp_path tmp/proxy; fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi; scgi_temp_path tmp/scgi;
    upstream tessera { server 127.0.0.1:$tessera; keepalive 32; }
    upstream app { server 127.0.0.1:$up; keepalive 32; }
    server {
        listen 127.0.0.1:$up;
        location / { return 200 "ok\n"; }
    }
    server {
        listen 127.0.0.1:$gw;
        location /open/ {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
        location /branches/ {
            auth_request /_tessera;
            auth_request_set \$tessera_authorization \$upstream_http_authorization;
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Authorization \$tessera_authorization;
        }
        location = /_tessera {
            internal;
            proxy_pass http://tessera/forward-auth/nginx;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header Tessera-Authorization "Basic ZGVtby1nYXRld2F5OmRlbW8tZ2F0ZXdheS1zZWNyZXQ=";
            proxy_set_header X-Original-Method \$request_method;
            proxy_set_header X-Original-URI \$request_uri;
            proxy_set_header X-Original-Host \$host;
        }
    }
}
EOF
"$nginx" -p "$tmp" -c "$tmp/nginx.conf" 2>"$tmp/nginx.log" &
nginx_pid=$!
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$gw/open/" >/dev/null && break; sleep 0.1; done

# start_tessera [VAR=value ...]: a release server on $tessera; fails (returns 1) when it
# does not become ready (e.g. a key this build does not know).
start_tessera() {
  env TESSERA__SERVER__LISTEN="127.0.0.1:$tessera" TESSERA__KEYS__DIR="$tmp/keys" TESSERA__LOG__LEVEL=warn \
    TESSERA__ISSUER="http://127.0.0.1:$tessera" "$@" \
    "$bin" --config config/demo.toml serve 2>>"$tmp/server.log" &
  server=$!
  for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$tessera/readyz" >/dev/null && return 0
    kill -0 "$server" 2>/dev/null || { server=""; return 1; }
    sleep 0.1
  done
  return 1
}
stop_tessera() { kill "$server"; wait "$server" 2>/dev/null || true; server=""; }

cat >"$tmp/report.lua" <<'EOF'
done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%d non2xx=%d rps=%.1f p50_ms=%.3f p99_ms=%.3f\n",
    summary.requests, summary.errors.status, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
EOF
load() { # label path [header]
  echo "== $1: ${secs}s, $conns connections (wrk, 1 thread)"
  wrk -t1 -c"$conns" -d"${secs}s" --latency -s "$tmp/report.lua" ${3:+-H "$3"} "http://127.0.0.1:$gw$2" >"$tmp/$1.txt"
  grep -E "RESULT|Socket errors" "$tmp/$1.txt"
}

load open /open/
start_tessera || { echo "gateway.sh: tessera did not start (see below)" >&2; cat "$tmp/server.log" >&2; exit 1; }
status=$(curl -s -o /dev/null -w '%{http_code}' -H 'Cookie: session=demo-admin-session' "http://127.0.0.1:$gw/branches/1/products")
[ "$status" = 200 ] || { echo "gateway.sh: forward auth answered $status, not 200" >&2; cat "$tmp/nginx.log" "$tmp/server.log" >&2; exit 1; }
load reuse /branches/1/products 'Cookie: session=demo-admin-session'
echo "tessera RSS: $(( $(awk '/VmRSS/ {print $2}' "/proc/$server/status") / 1024 )) MiB"
stop_tessera
if start_tessera TESSERA__TOKEN__REUSE_FRACTION=0; then
  load noreuse /branches/1/products 'Cookie: session=demo-admin-session'
  stop_tessera
else
  echo "== token.reuse_fraction is unknown to this build: it has no token reuse, so the run above is without reuse too"
  cp "$tmp/reuse.txt" "$tmp/noreuse.txt"
fi

echo "== raw RS256-2048 sign rate, both cores (openssl speed)"
raw=$(openssl speed -seconds 10 -multi 2 rsa2048 2>/dev/null | awk '/^rsa 2048|^rsa2048/ {print $(NF-1)}' | tail -1)
field() { sed -n "s/.*$2=\([0-9.]*\).*/\1/p" "$tmp/$1.txt"; }
python3 - "$raw" "$(field open rps)" "$(field reuse rps)" "$(field noreuse rps)" \
  "$(field open p99_ms)" "$(field reuse p99_ms)" "$(field noreuse p99_ms)" <<'PY'
import sys
raw, o, r, n, po, pr, pn = map(float, sys.argv[1:])
print(f"raw sign/s (2 cores):                  {raw:8.0f}")
print(f"nginx → upstream, no auth:             {o:8.0f} req/s  p99 {po:.2f} ms")
print(f"nginx → Tessera → upstream, reuse:     {r:8.0f} req/s  p99 {pr:.2f} ms  ({r / o:.2f} of no auth, +{pr - po:.2f} ms p99)")
print(f"nginx → Tessera → upstream, no reuse:  {n:8.0f} req/s  p99 {pn:.2f} ms  ({n / o:.2f} of no auth, {n / raw:.2f} of raw sign)")
PY
