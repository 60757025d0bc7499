#!/usr/bin/env bash
# Instructions per `recommend` query, a CPU-independent figure: `bench/instructions.sh
# MODEL.prec [QUERIES]` runs the runtime's `queries` example under valgrind's callgrind (x86)
# with QUERIES queries (default 50) and with none, and prints (difference) / QUERIES: the
# instructions of one query, opening and reading the file excluded. Installs valgrind from
# Debian if missing (needs root). With POCKETREC_AARCH64_QUERIES=path to an aarch64 build of
# the example, also counts under qemu-aarch64 with QEMU's `libinsn.so` plugin, when Debian's
# QEMU ships it.
set -euo pipefail
cd "$(dirname "$0")/.."
model=$1
queries=${2:-50}
if ! command -v valgrind >/dev/null; then
  apt-get install -y -qq valgrind >/dev/null
fi
cargo build --release --quiet -p pocketrec --example queries
bin=target/release/examples/queries
count() { # count N: instructions of the whole run
  local out
  out=$(mktemp)
  valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" "$model" "$1" >/dev/null 2>&1
  awk '/^summary:/ {print $2}' "$out"
  rm -f "$out"
}
base=$(count 0)
with=$(count "$queries")
echo "x86_64 (callgrind): $(( (with - base) / queries )) instructions per query ($queries queries, $model)"
plugin=$(find / -name 'libinsn.so' -path '*qemu*' 2>/dev/null | head -n 1 || true)
if [ -n "${POCKETREC_AARCH64_QUERIES:-}" ] && [ -n "$plugin" ]; then
  a64() {
    qemu-aarch64 -L /usr/aarch64-linux-gnu -plugin "$plugin" -d plugin \
      "$POCKETREC_AARCH64_QUERIES" "$model" "$1" 2>&1 >/dev/null | awk '/insns:/ {print $2}' | tail -n 1
  }
  abase=$(a64 0)
  awith=$(a64 "$queries")
  echo "aarch64 (qemu libinsn): $(( (awith - abase) / queries )) instructions per query"
elif [ -n "${POCKETREC_AARCH64_QUERIES:-}" ]; then
  echo "aarch64: Debian's QEMU has no libinsn.so plugin here; no instruction count"
fi
