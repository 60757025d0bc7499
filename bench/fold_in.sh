#!/usr/bin/env bash
# The runs behind docs/QUALITY.md's fold-in section: on a data set in the LightGCN split format,
# for the dense model and density 0.1 at d = 64,
#   1. train on everything, evaluate the trained user rows, then every test user folded in from
#      their training items (`eval --fold-in`);
#   2. train with 10 % of the users held out entirely (`--holdout-users 0.1`), and evaluate them
#      as new users folded in from half of their interactions, beside a popularity ranking.
# Prints one JSON line per evaluation, with the file's fold-in section as `inspect --json` reports
# it (the softmax objective for `train`'s default BSL models, the item Gramian's settings for BPR).
#
#   bash bench/fold_in.sh [DATA_DIR] [OUT_DIR]     # DATA_DIR defaults to ../shared/data/gowalla
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/gowalla}
OUT=${2:-$(mktemp -d)}
mkdir -p "$OUT"
[ -f "$DATA/train.txt" ] || { echo "fold_in.sh: no $DATA/train.txt" >&2; exit 1; }
CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1} cargo build --release --quiet -p pocketrec-cli
BIN=target/release/pocketrec
echo "commit $(git rev-parse --short HEAD)$(git diff --quiet || echo '+dirty'), data $DATA, output $OUT" >&2
for d in 1.0 0.1; do
  for holdout in 0 0.1; do
    m="$OUT/d$d-h$holdout.prec"
    "$BIN" train --train "$DATA/train.txt" -o "$m" --density "$d" --holdout-users "$holdout" \
      --seed 42 --threads 2 --eval-every 0 --json --quiet >"$OUT/d$d-h$holdout.train.json"
    for fold in "" "--fold-in"; do
      [ "$holdout" = 0 ] || [ -n "$fold" ] || continue
      printf '{"density":%s,"holdout_users":%s,"fold_in":%s,"eval":' "$d" "$holdout" "$([ -n "$fold" ] && echo true || echo false)"
      "$BIN" eval "$m" --train "$DATA/train.txt" --test "$DATA/test.txt" --threads 2 --json --quiet $fold | tr -d '\n'
      printf ',"fold_in_section":%s}\n' "$("$BIN" inspect "$m" --json | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["fold_in"]))')"
    done
  done
done
