#!/usr/bin/env bash
# Writes the small models the FFI, JNI and cross tests use: DIR/demo-{f32,f16,bf16,i8}.prec,
# 200 users and 3,000 items, d = 64, density 0.1 (random normal tables, seed 7), with item
# biases. Usage: scripts/test-models.sh POCKETREC_CLI DIR
set -euo pipefail
cli=$1
dir=$2
mkdir -p "$dir"
"$cli" generate -o "$dir" --users 200 --items 3000 --dim 64 --density 0.1 --seed 7 2>/dev/null
awk 'BEGIN { for (i = 0; i < 3000; i++) printf "%.4f\n", (i % 7) * 0.01 - 0.02 }' >"$dir/item_bias.txt"
for enc in f32 f16 bf16 i8; do
  "$cli" export --users "$dir/users.npy" --items "$dir/items.npy" --item-bias "$dir/item_bias.txt" \
    --values "$enc" -o "$dir/demo-$enc.prec" --quiet 2>/dev/null
done
