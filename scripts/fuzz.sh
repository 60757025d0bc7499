#!/usr/bin/env bash
# Fuzzes Model::from_bytes and row access: `scripts/fuzz.sh [SECONDS]` (default 600).
# Installs cargo-fuzz if needed; uses the nightly toolchain (rustup) that libFuzzer needs.
set -euo pipefail
secs=${1:-600}
cd "$(dirname "$0")/../fuzz"
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
corpus=corpus/open_and_query
cargo +nightly run --quiet --release --bin make_seeds -- "$corpus"
cargo +nightly fuzz run open_and_query "$corpus" -- \
  -max_total_time="$secs" -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1
