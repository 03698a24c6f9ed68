#!/usr/bin/env bash
# Revocation feed: revocation on replica A → refusal at a tessera-verify verifier that
# follows replica B's feed (p50 / p99 / max, missed), steady and with replica B restarted
# in the middle; then the RSS of 1,000 subscribers on one replica.
#
#   benches/feed.sh [revocations=200]
#
# Needs Redis ($TESSERA_BENCH_REDIS_URL, default redis://127.0.0.1:6379; a throwaway key
# prefix). Debug build (dependencies at opt-level 2), as the tests use.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200}
export CARGO_INCREMENTAL=0
cargo build --quiet --workspace --features tessera-verify/tower --bin tessera --example feed_bench
TESSERA_BIN=${CARGO_TARGET_DIR:-target}/debug/tessera \
  "${CARGO_TARGET_DIR:-target}/debug/examples/feed_bench" "$n"
