#!/usr/bin/env bash
# Patch sizes: `pocketrec diff` against bsdiff, `zstd --patch-from` and xdelta3 on the same pairs
# of files, in one run (docs/UPDATES.md).
#
#   bash bench/patches.sh [OUT]            (default OUT: /tmp/pocketrec-patches)
#
# Pairs:
#  - structured tables (USERS x ITEMS, d = 64, density 0.1) and the same tables with 1 % of each
#    table's rows changed (`generate --change-rows 0.01`: values scaled by 1 + 0.1 z, every other
#    changed row with a non-zero moved), exported with every layout (LAYOUTS) and value encoding
#    (VALUES): row records, columns, both, bitmap posting lists, sliced rows, and columns with
#    block bounds (rows clustered; the new file written with --update-of the old one);
#  - with INCREMENTAL=1 (the default), the incremental-training update of docs/INCREMENTAL.md:
#    a model trained on period 1 of a drifting log and its `train --resume` update on period 2.
# For every pair: `pocketrec patch` must give the new file byte for byte (cmp), and the table
# gives the new file's bytes, the changed rows' bytes (`pocketrec diff`'s yardstick), the
# pocketrec patch, its ratio to the changed rows, whether it meets 1.2 x changed + 1 KiB, and
# the three generic tools' patches. Installs bsdiff, xdelta3 and zstd from Debian if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-/tmp/pocketrec-patches}
users=${USERS:-20000}
items=${ITEMS:-50000}
values=${VALUES:-"f32 f16 bf16 i8 i4"}
layouts=${LAYOUTS:-"rows columns both bitmap sliced bounds"}
incremental=${INCREMENTAL:-1}

need_apt() { # need_apt COMMAND PACKAGE
  command -v "$1" >/dev/null && return 0
  if [ "$(id -u)" = 0 ]; then
    apt-get -o DPkg::Lock::Timeout=600 update -qq || true
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "$2"
  elif command -v sudo >/dev/null; then
    sudo apt-get -o DPkg::Lock::Timeout=600 update -qq || true
    sudo DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "$2"
  fi
  command -v "$1" >/dev/null || { echo "patches.sh: $1 is missing (apt-get install $2)" >&2; exit 1; }
}
need_apt bsdiff bsdiff
need_apt xdelta3 xdelta3
need_apt zstd zstd
need_apt python3 python3

cargo build --release -q
bin=$PWD/target/release/pocketrec
mkdir -p "$out"
cd "$out"

if [ ! -f a/items.npy ] || [ ! -f b/items.npy ]; then
  "$bin" generate -o a --users "$users" --items "$items" --structure structured --seed 3
  "$bin" generate -o b --users "$users" --items "$items" --structure structured --seed 3 \
    --change-rows 0.01 --change-seed 1
fi

rows_md=()
# measure NAME OLD NEW: one table row.
measure() {
  local name=$1 old=$2 new=$3
  "$bin" diff "$old" "$new" -o "$name.precpatch" --json >"$name.diff.json"
  "$bin" patch "$old" "$name.precpatch" -o "$name.patched" >/dev/null
  cmp "$new" "$name.patched"
  rm -f "$name.patched"
  bsdiff "$old" "$new" "$name.bsdiff"
  zstd -q -f -19 --patch-from="$old" "$new" -o "$name.zst"
  xdelta3 -e -9 -f -s "$old" "$new" "$name.xdelta"
  rows_md+=("$(python3 - "$name" <<'EOF'
import json, os, sys
name = sys.argv[1]
d = json.load(open(name + ".diff.json"))
size = lambda suffix: os.path.getsize(name + suffix)
p, c = d["patch_bytes"], d["changed_row_bytes"]
bound = 1.2 * c + 1024
others = [size(".bsdiff"), size(".zst"), size(".xdelta")]
print(f"| {name} | {d['new_bytes']:,} | {c:,} | {p:,} | {p / max(c, 1):.2f} | "
      f"{'yes' if p <= bound else 'no'} | {others[0]:,} | {others[1]:,} | {others[2]:,} | "
      f"{'yes' if p < min(others) else 'no'} |")
EOF
)")
  echo "${rows_md[-1]}" >&2
}

for layout in $layouts; do
  case $layout in
    rows) flags=(--layout rows) ;;
    columns) flags=(--layout columns) ;;
    both) flags=(--layout both) ;;
    bitmap) flags=(--layout columns --list-rows bitmap) ;;
    sliced) flags=(--sliced-rows) ;;
    bounds) flags=(--layout columns --block-bounds 64) ;;
    *) echo "patches.sh: unknown layout $layout" >&2; exit 2 ;;
  esac
  for v in $values; do
    if [ "$layout" = sliced ] && [ "$v" = i4 ]; then
      continue # sliced rows refuse int4 (docs/FORMAT.md)
    fi
    name="$layout-$v"
    "$bin" export --users a/users.npy --items a/items.npy --values "$v" "${flags[@]}" -o "old-$name.prec" -q
    # --update-of: clustered rows (block bounds) keep the old file's order.
    "$bin" export --users b/users.npy --items b/items.npy --values "$v" "${flags[@]}" \
      --update-of "old-$name.prec" -o "new-$name.prec" -q
    measure "$name" "old-$name.prec" "new-$name.prec"
  done
done

if [ "$incremental" = 1 ]; then
  if [ ! -f inc/update.prec ]; then
    mkdir -p inc
    "$bin" generate-log -o inc/log.tsv --seed 42
    "$bin" split inc/log.tsv -o inc/periods --periods 8 --by time >/dev/null
    "$bin" train --train inc/periods/period-01.tsv -o inc/first.prec --checkpoint inc/first.ckpt \
      --density 0.2 --threads 2 -q
    "$bin" train --resume inc/first.ckpt --train inc/periods/period-02.tsv -o inc/update.prec \
      --threads 2 -q
  fi
  measure "incremental-update" inc/first.prec inc/update.prec
fi

{
  echo "| pair | new file | changed rows | pocketrec | ratio | ≤ 1.2 × + 1 KiB | bsdiff | zstd --patch-from | xdelta3 | smallest |"
  echo "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- |"
  printf '%s\n' "${rows_md[@]}"
} | tee patches.md
