#!/usr/bin/env bash
# Starts the whole shop locally: Tessera (demo configuration), product-catalog,
# product-inventory and the gateway. Ctrl-C stops everything.
#   examples/shop/run.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
cargo build --release --quiet -p tessera -p tessera-shop --bins
bin=${CARGO_TARGET_DIR:-$root/target}/release
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null' EXIT INT TERM
"$bin/tessera" --config config/demo.toml serve & pids+=($!)
for _ in $(seq 100); do curl -fs http://127.0.0.1:8080/readyz >/dev/null && break; sleep 0.1; done
"$bin/shop-catalog" & pids+=($!)
"$bin/shop-inventory" & pids+=($!)
"$bin/shop-gateway" & pids+=($!)
sleep 1
cat <<'TXT'

The shop runs: gateway http://127.0.0.1:3000, Tessera http://127.0.0.1:8080.
  curl -s http://127.0.0.1:3000/products/1                                             # anonymous → catalog
  curl -s -b session=demo-user-session  http://127.0.0.1:3000/branches/1/products     # 403: not admin
  curl -s -b session=demo-admin-session http://127.0.0.1:3000/branches/1/products     # 200
  curl -s http://127.0.0.1:3002/branches/1/products                                   # 401: bypassing the gateway
Ctrl-C stops everything.
TXT
wait
