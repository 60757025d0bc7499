#!/usr/bin/env bash
# The runs behind docs/QUALITY.md: for one data set in the LightGCN split format, train the dense
# model and densities 0.2, 0.1, 0.05 at d = 64, write each as f32, f16 and int8, and evaluate every
# file through the runtime. Prints a Markdown table.
#
#   bash bench/quality.sh [DATA_DIR] [OUT_DIR]     # DATA_DIR defaults to ../shared/data/gowalla
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/gowalla}
OUT=${2:-$(mktemp -d)}
mkdir -p "$OUT"
CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1} cargo build --release --quiet
BIN=target/release/pocketrec
echo "commit $(git rev-parse --short HEAD)$(git diff --quiet || echo '+dirty'), data $DATA, output $OUT" >&2
for d in 1.0 0.2 0.1 0.05; do
    "$BIN" train --train "$DATA/train.txt" --test "$DATA/test.txt" -o "$OUT/d$d.prec" --density "$d" \
        --values f32,f16,i8 --seed 42 --threads 2 --eval-every 0 --json > "$OUT/d$d.json" 2> "$OUT/d$d.log"
done
python3 bench/quality_table.py "$OUT"/d1.0.json "$OUT"/d0.2.json "$OUT"/d0.1.json "$OUT"/d0.05.json
