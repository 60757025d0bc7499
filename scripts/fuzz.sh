#!/usr/bin/env bash
# Fuzzes the runtime with its three cargo-fuzz targets, `scripts/fuzz.sh [SECONDS]` (default
# 600) in all, split in thirds (the remainder to the first): open_and_query (Model::from_bytes,
# row access, recommend), fold_in (Model::fold_in with each solver, then recommend_vector) and
# apply_patch (Patch::parse, patch::apply into a buffer, signature trailers).
# Installs cargo-fuzz if needed; uses the nightly toolchain (rustup) that libFuzzer needs.
set -euo pipefail
secs=${1:-600}
third=$((secs / 3))
open_secs=$((secs - 2 * third))
cd "$(dirname "$0")/../fuzz"
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
run() { # run TARGET SECONDS CORPUS
  cargo +nightly fuzz run "$1" "$3" -- \
    -max_total_time="$2" -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1
}
cargo +nightly run --quiet --release --bin make_seeds -- corpus/open_and_query
run open_and_query "$open_secs" corpus/open_and_query
cargo +nightly run --quiet --release --bin make_seeds -- corpus/fold_in fold_in
run fold_in "$third" corpus/fold_in
cargo +nightly run --quiet --release --bin make_seeds -- corpus/apply_patch apply_patch
run apply_patch "$third" corpus/apply_patch
