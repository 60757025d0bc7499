#!/usr/bin/env bash
# Instructions per `recommend` query, a CPU-independent figure: `bench/instructions.sh
# MODEL.prec [QUERIES]` runs the runtime's `queries` example under valgrind's callgrind (x86)
# with QUERIES queries (default 50) and with none, and prints (difference) / QUERIES: the
# instructions of one query, opening and reading the file excluded. Installs valgrind from
# Debian if missing (needs root). Callgrind emulates no AVX-512: the AVX2 kernels run.
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
# aarch64: Debian's qemu-user is a static build without TCG plugins (no `-plugin`, no
# libinsn.so), so no per-query count there; the NEON kernels' instruction counts against their
# scalar twins were taken with qemu's per-instruction trace (`-one-insn-per-tb -d
# exec,nochain`) on small inputs instead (docs/BENCHMARKS.md).
