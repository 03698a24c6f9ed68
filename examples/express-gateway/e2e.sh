#!/usr/bin/env bash
# End to end: Tessera + the Express gateway + the inventory service, on loopback ports,
# against a real Redis (the gateway's session store). Run from anywhere:
#   examples/express-gateway/e2e.sh          (uses TESSERA_BIN or target/debug/tessera)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
command -v node >/dev/null || { echo "e2e: node is not installed; skipped"; exit 0; }
bin=${TESSERA_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/tessera}
[ -x "$bin" ] || (cd "$root" && cargo build --quiet --bin tessera)
[ -x "$bin" ] || { echo "e2e: no tessera binary at $bin (set TESSERA_BIN)" >&2; exit 1; }
redis_url=${TESSERA_TEST_REDIS_URL:-redis://127.0.0.1:6379}

(cd "$here" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
tessera_port=$(free_port); gateway_port=$(free_port); inventory_port=$(free_port)
tmp=$(mktemp -d)
prefix="tessera-e2e-$$-sess:"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

export TESSERA_URL=http://127.0.0.1:$tessera_port
TESSERA__ISSUER=$TESSERA_URL TESSERA__SERVER__LISTEN=127.0.0.1:$tessera_port TESSERA__KEYS__DIR=$tmp/keys \
TESSERA__SESSIONS__REDIS__URL=$redis_url TESSERA__SESSIONS__REDIS__KEY_PREFIX=$prefix TESSERA__LOG__LEVEL=warn \
  "$bin" --config "$here/tessera.toml" serve 2>"$tmp/tessera.log" &
pids+=($!)
INVENTORY_PORT=$inventory_port node "$here/inventory.js" >"$tmp/inventory.log" 2>&1 &
pids+=($!)
GATEWAY_PORT=$gateway_port INVENTORY_URL=http://127.0.0.1:$inventory_port REDIS_URL=$redis_url SESSION_PREFIX=$prefix \
  node "$here/gateway.js" >"$tmp/gateway.log" 2>&1 &
pids+=($!)

for port in "$tessera_port" "$inventory_port" "$gateway_port"; do
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || {
    echo "e2e: nothing listens on port $port"; tail -n 20 "$tmp"/*.log; exit 1; }
done

gw=http://127.0.0.1:$gateway_port
passes=0
failures=0
pass() { echo "ok   $1"; passes=$((passes + 1)); }
fail() { echo "FAIL $1"; failures=$((failures + 1)); }
expect() { # name expected-status actual-status [body]
  if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: expected $2, got $3 ${4:-}"; fi
}
call() { # cookie-jar method path -> prints "status body"
  curl -s -o "$tmp/body" -w '%{http_code}' -b "$1" -c "$1" -X "$2" "$gw$3"
}

status=$(call "$tmp/anon" GET /branches/1/products); expect "anonymous user is refused by inventory (no admin role)" 403 "$status" "$(cat "$tmp/body")"
call "$tmp/user" POST "/login?user=user" >/dev/null
status=$(call "$tmp/user" GET /branches/1/products); expect "logged-in user without admin gets 403" 403 "$status" "$(cat "$tmp/body")"
call "$tmp/admin" POST "/login?user=admin" >/dev/null
status=$(call "$tmp/admin" GET /branches/1/products); expect "admin gets the products" 200 "$status" "$(cat "$tmp/body")"
grep -q '"user":"user-1"' "$tmp/body" && grep -q '"via":"demo-gateway"' "$tmp/body" && grep -q '"email":"admin@example.com"' "$tmp/body" \
  && pass "the service saw sub, email and the gateway as actor" || fail "claims: $(cat "$tmp/body")"

# The operator revokes the admin's session by its signed cookie value, as the browser holds it.
cookie=$(awk '$6 == "connect.sid" {print $7}' "$tmp/admin")
status=$(curl -s -o "$tmp/body" -w '%{http_code}' -H 'authorization: Bearer demo-admin-token' -H 'content-type: application/json' \
  -d "{\"session\": \"$cookie\", \"reason\": \"e2e\"}" "$TESSERA_URL/admin/revocations")
expect "operator revokes the admin's session" 200 "$status" "$(cat "$tmp/body")"
status=$(call "$tmp/admin" GET /branches/1/products); expect "revoked session: the gateway gets invalid_grant and refuses" 401 "$status" "$(cat "$tmp/body")"

echo "$passes passed, $failures failed"
[ "$failures" = 0 ] || { echo "--- tessera log"; cat "$tmp/tessera.log"; echo "--- gateway log"; cat "$tmp/gateway.log"; exit 1; }
