#!/usr/bin/env bash
# The recall-for-bytes frontier of docs/QUALITY.md: for each loss (bsl, the default, and bpr),
# train the dense model, then densities 0.4, 0.2, 0.1 and 0.05 distilled from it (`--teacher`:
# the dense file is the teacher, not trained again), every model written as f32, f16, i8 and i4
# and every file evaluated through the runtime; then `pocketrec frontier` prints the table and
# draws the plot.
#
#   bash bench/frontier.sh [DATA_DIR] [OUT_DIR] [SVG]
#
# Environment: LOSSES (default "bsl bpr"), DENSITIES (default "0.4 0.2 0.1 0.05"), SPARSIFY
# (default "dst"; "dst lottery" also trains lottery tickets at each density, `--sparsify
# lottery`, whose own dense round 0 is their teacher, so they get no --teacher), PLOT_VALUES
# (the encodings in the table and the plot, default all), ITEMS_ONLY (1: also write every dense
# and dst model without user rows, `train --items-only`, as `LOSS-dD-items`: the same tables,
# every user folded in from their training items when evaluated). The lottery comparison of
# docs/QUALITY.md:
#
#   LOSSES=bsl DENSITIES="0.2 0.1 0.05" SPARSIFY="dst lottery" PLOT_VALUES=f32,i8 \
#       bash bench/frontier.sh ../shared/data/gowalla /tmp/fr docs/images/lottery.svg
#
# DATA_DIR defaults to ../shared/data/gowalla (train.txt, test.txt), SVG to
# docs/images/frontier.svg. Hyperparameters are the defaults (chosen on a validation split carved
# from the training set, docs/TRAINING.md); the test split is used once, here, to report.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/gowalla}
OUT=${2:-$(mktemp -d)}
SVG=${3:-docs/images/frontier.svg}
LOSSES=${LOSSES:-bsl bpr}
DENSITIES=${DENSITIES:-0.4 0.2 0.1 0.05}
SPARSIFY=${SPARSIFY:-dst}
PLOT_VALUES=${PLOT_VALUES:-}
ITEMS_ONLY=${ITEMS_ONLY:-0}
mkdir -p "$OUT"
CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1} cargo build --release --quiet
BIN=target/release/pocketrec
echo "commit $(git rev-parse --short HEAD)$(git diff --quiet || echo '+dirty'), data $DATA, output $OUT" >&2
train() { # name, flags... (a run whose summary is already in OUT is kept)
    local name=$1
    shift
    if [[ -s "$OUT/$name.json" ]]; then
        echo "$name: kept from an earlier run" >&2
        return
    fi
    "$BIN" train --train "$DATA/train.txt" --test "$DATA/test.txt" -o "$OUT/$name.prec" \
        --values f32,f16,i8,i4 --seed 42 --threads 2 --eval-every 0 --json "$@" \
        > "$OUT/$name.json" 2> "$OUT/$name.log"
    echo "$name: $(grep -m1 'trained in' "$OUT/$name.log")" >&2
}
summaries=()
for loss in $LOSSES; do
    train "$loss-d1.0" --loss "$loss" --density 1.0
    summaries+=("$OUT/$loss-d1.0.json")
    if [[ $ITEMS_ONLY == 1 ]]; then
        train "$loss-d1.0-items" --loss "$loss" --density 1.0 --items-only
        summaries+=("$OUT/$loss-d1.0-items.json")
    fi
    for d in $DENSITIES; do
        for method in $SPARSIFY; do
            if [[ $method == dst ]]; then
                train "$loss-d$d" --loss "$loss" --density "$d" --teacher "$OUT/$loss-d1.0.prec"
                summaries+=("$OUT/$loss-d$d.json")
                if [[ $ITEMS_ONLY == 1 ]]; then
                    train "$loss-d$d-items" --loss "$loss" --density "$d" \
                        --teacher "$OUT/$loss-d1.0.prec" --items-only
                    summaries+=("$OUT/$loss-d$d-items.json")
                fi
            else
                train "$loss-$method-d$d" --loss "$loss" --density "$d" --sparsify "$method"
                summaries+=("$OUT/$loss-$method-d$d.json")
            fi
        done
    done
done
"$BIN" frontier "${summaries[@]}" --plot "$SVG" ${PLOT_VALUES:+--values "$PLOT_VALUES"}
