#!/usr/bin/env bash
# Training throughput of `pocketrec train` beside a PyTorch CPU implementation of the same
# MF-BPR step (bench/torch_mf_bpr.py), measured back to back in one run, one thread each
# (interactions per second per core), then two threads; then the same for the cosine loss with
# 512 negatives shared per batch (`--loss bsl`, bench/torch_mf_softmax.py).
#
#   bash bench/throughput.sh --install      # first time: venv in bench/.venv with torch + numpy from PyPI
#   bash bench/throughput.sh [TRAIN_FILE] [EPOCHS]
#   PARTS=cosine THREADS=1 bash bench/throughput.sh ""   # only the cosine loss, one thread
#
# TRAIN_FILE defaults to ../shared/data/gowalla/train.txt when present, else to the demo's
# generated log. Prints one line per measurement and the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=bench/.venv
if [[ "${1:-}" == "--install" ]]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet torch numpy
    "$VENV/bin/python" -c "import torch, numpy; print('torch', torch.__version__, 'numpy', numpy.__version__)"
    exit 0
fi
if [[ ! -x "$VENV/bin/python" ]]; then
    echo "no PyTorch venv: run 'bash bench/throughput.sh --install' first" >&2
    exit 2
fi
CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1} cargo build --release --quiet
BIN=target/release/pocketrec
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
TRAIN=${1:-}
if [[ -z "$TRAIN" ]]; then
    if [[ -f ../shared/data/gowalla/train.txt ]]; then
        TRAIN=../shared/data/gowalla/train.txt
    else
        "$BIN" demo --dir "$WORK/demo" --epochs 1 > /dev/null
        TRAIN=$WORK/demo/train.txt
    fi
fi
EPOCHS=${2:-3}
echo "data: $TRAIN, d = 64, batch 2048, $EPOCHS epochs, dense model (same step as the sparse one, without the mask)"
echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet || echo '+dirty')   cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
rust_rate() { # threads
    "$BIN" train --train "$TRAIN" -o "$WORK/m.prec" --density 1.0 --epochs "$EPOCHS" --threads "$1" \
        --lr 0.005 --l2 0.01 --eval-every 0 --quiet --json | "$VENV/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["samples_per_second"])'
}
torch_rate() { # threads optimizer
    "$VENV/bin/python" bench/torch_mf_bpr.py --train "$TRAIN" --epochs "$EPOCHS" --threads "$1" --optimizer "$2" \
        | "$VENV/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["interactions_per_second"])'
}
PARTS=${PARTS:-bpr cosine}
THREADS=${THREADS:-1 2}
for threads in $THREADS; do
    [[ " $PARTS " == *" bpr "* ]] || break
    r=$(rust_rate "$threads")
    ts=$(torch_rate "$threads" sparse)
    td=$(torch_rate "$threads" dense)
    "$VENV/bin/python" - "$threads" "$r" "$ts" "$td" <<'PY'
import sys
t, r, ts, td = int(sys.argv[1]), *map(float, sys.argv[2:])
print(f"threads {t}: pocketrec {r:,.0f}/s   pytorch SparseAdam {ts:,.0f}/s   pytorch Adam {td:,.0f}/s   "
      f"ratio {r / ts:.1f}x vs SparseAdam, {r / td:.1f}x vs Adam   (per core: pocketrec {r / t:,.0f}/s)")
PY
done
cosine_rust_rate() { # threads
    "$BIN" train --train "$TRAIN" -o "$WORK/m.prec" --density 1.0 --epochs "$EPOCHS" --threads "$1" \
        --loss bsl --negatives 512 --eval-every 0 --quiet --json | "$VENV/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["samples_per_second"])'
}
cosine_torch_rate() { # threads
    "$VENV/bin/python" bench/torch_mf_softmax.py --train "$TRAIN" --epochs "$EPOCHS" --threads "$1" --loss bsl --negatives 512 \
        | "$VENV/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["interactions_per_second"])'
}
[[ " $PARTS " == *" cosine "* ]] || exit 0
echo "cosine loss (bsl, 512 negatives shared by each batch of 2048, lazy Adam both sides)"
for threads in $THREADS; do
    r=$(cosine_rust_rate "$threads")
    t=$(cosine_torch_rate "$threads")
    "$VENV/bin/python" - "$threads" "$r" "$t" <<'PY'
import sys
t, r, p = int(sys.argv[1]), *map(float, sys.argv[2:])
print(f"threads {t}: pocketrec {r:,.0f}/s   pytorch {p:,.0f}/s   ratio {r / p:.2f}x")
PY
done
