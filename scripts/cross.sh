#!/usr/bin/env bash
# Cross-compiled ARM builds, run under QEMU and checked against the host's answers:
#   aarch64-unknown-linux-gnu      the runtime's and the FFI crate's tests under qemu-aarch64;
#                                  libpocketrec.{a,so} and the C example + C ABI test, static
#                                  and shared, under qemu-aarch64 (prebuilt Debian std)
#   armv7-unknown-linux-gnueabihf  the same under qemu-arm (std built with -Zbuild-std)
#   thumbv7em-none-eabihf          firmware/ (Cortex-M4F, no_std, no alloc) with a model in
#                                  flash, run on qemu-system-arm (mps2-an386) with semihosting;
#                                  its exit status says whether its top-k equals the host's,
#                                  and those of users it folds in from a few items (fold_in on
#                                  the Gramian, and on a second model by softmax ascent),
#                                  and it applies a signed patch from flash into a second
#                                  flash slot and recommends from the result (signatures checked)
# Phones are stood in for by aarch64/armv7 Linux: there is no Android NDK here.
#
# Installs its toolchain first (scripts/cross-setup.sh: Debian rustc-web 1.96, cross gcc, qemu;
# needs root). Build output goes to $POCKETREC_CROSS_DIR (default target/cross; about 2 GB).
# Prints PASS/FAIL per step with its time, the sizes, and "cross: N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
T=${POCKETREC_CROSS_DIR:-$root/target/cross}
LOG=$T/logs
mkdir -p "$LOG" "$T/bin"
started=$SECONDS

if [ "$(id -u)" = 0 ]; then
  bash scripts/cross-setup.sh || { echo "cross: toolchain setup failed" >&2; exit 1; }
fi

# ---- toolchain environment (Debian's rustc 1.96, never mixed with rustup's) ----------------
XCARGO=/usr/bin/cargo
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc # both, or doctests fail with E0514
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1}
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_LINKER=arm-linux-gnueabihf-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
export CC_armv7_unknown_linux_gnueabihf=arm-linux-gnueabihf-gcc AR_armv7_unknown_linux_gnueabihf=arm-linux-gnueabihf-ar
# Debian's arm64 std pulls in libc6:arm64, whose loader must not be mixed with the cross libc
# of -L /usr/aarch64-linux-gnu (every program hangs at its first thread): no -L when the
# multiarch loader exists.
if [ -e /lib/ld-linux-aarch64.so.1 ]; then A64_RUN=(qemu-aarch64); else A64_RUN=(qemu-aarch64 -L /usr/aarch64-linux-gnu); fi
if [ -e /lib/ld-linux-armhf.so.3 ]; then V7_RUN=(qemu-arm); else V7_RUN=(qemu-arm -L /usr/arm-linux-gnueabihf); fi
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="${A64_RUN[*]}"
export CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_RUNNER="${V7_RUN[*]}"
# armv7: Debian's prebuilt armhf std only if installed, else build std from rust-web-src.
# RUSTC_BOOTSTRAP=1 (needed by -Z) is set per command, never exported, and the -Z builds use
# their own target dirs: proc-macro2 tracks it and would rebuild everything on each switch.
if [ -d /usr/lib/rustlib/armv7-unknown-linux-gnueabihf/lib ]; then V7_STD=(); else V7_STD=(-Zbuild-std); fi
NATIVE_LIBS=(-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc) # rustc --print native-static-libs
CFLAGS=(-std=c11 -O2 -Wall -Wextra -Werror -D_POSIX_C_SOURCE=200809L -I "$root/ffi/include")

pass=0
fail=0
step() { # step NAME FUNCTION: runs it with its output in $LOG/NAME.log
  local name=$1 s=$SECONDS
  shift
  # CROSS_ONLY="host-reference thumbv7em-firmware" runs only the steps it names (for a quick
  # check while developing; CI runs them all).
  if [ -n "${CROSS_ONLY:-}" ] && [[ " $CROSS_ONLY " != *" $name "* ]]; then
    return 0
  fi
  if "$@" >"$LOG/$name.log" 2>&1; then
    echo "PASS $name ($((SECONDS - s)) s)"
    pass=$((pass + 1))
  else
    echo "FAIL $name ($((SECONDS - s)) s); the end of $LOG/$name.log:"
    tail -n 25 "$LOG/$name.log" | sed 's/^/    /'
    fail=$((fail + 1))
  fi
}

# ---- the host's answers -------------------------------------------------------------------
USERS="0 42 123 199"
FOLD_ITEMS=7,42,314,1234,2718 # the firmware folds a user in from these items of the f16 model
host_reference() {
  # The host's own toolchain (rustup's cargo and rustc), not Debian's: RUSTC must not leak into
  # target/debug, or the two compilers would rebuild each other's artifacts.
  env -u RUSTC -u RUSTDOC cargo build -p pocketrec-cli &&
    bash "$root/scripts/test-models.sh" "$root/target/debug/pocketrec" "$T/models" &&
    for u in $USERS; do
      "$root/target/debug/pocketrec" recommend "$T/models/demo-f16.prec" --user "$u" -k 20 --exclude 5,17 --json || return 1
    done >"$T/host.jsonl" &&
    # The firmware's expectation: user 42, k = 10, items 5 and 17 excluded, exact score bits.
    "$root/target/debug/pocketrec" recommend "$T/models/demo-f16.prec" --user 42 -k 10 --exclude 5,17 --json |
    python3 -c '
import json, struct, sys
r = json.load(sys.stdin)
print("user", r["user"]); print("k 10"); print("exclude 5 17")
for i in r["items"]:
    print("item", i["item"], hex(struct.unpack("<I", struct.pack("<f", i["score"]))[0]))
' >"$T/fw-expect.txt" &&
    # ... and for a user folded in on the device from $FOLD_ITEMS, k = 10 (the CLI excludes
    # those items; the firmware does the same).
    "$root/target/debug/pocketrec" recommend "$T/models/demo-f16.prec" --items "$FOLD_ITEMS" -k 10 --json |
    python3 -c '
import json, struct, sys
r = json.load(sys.stdin)
assert r["unknown"] == 0 and len(r["items"]) == 10, r
print("fold", *r["folded_from"])
for i in r["items"]:
    print("folded", i["item"], hex(struct.unpack("<I", struct.pack("<f", i["score"]))[0]))
' >>"$T/fw-expect.txt" &&
    # The softmax fold-in model: the same tables with the softmax fold-in section (loss
    # temperature 0.1, power 1; a catalogue summary of 16 clusters: the firmware's stack does not
    # depend on the count, and 16 keeps both models within its flash), and the host's answer for
    # the same items.
    "$root/target/debug/pocketrec" export --users "$T/models/users.npy" --items "$T/models/items.npy" \
      --item-bias "$T/models/item_bias.txt" --values f16 --fold-in-softmax 0.1,1 --fold-in-clusters 16 \
      -o "$T/models/demo-f16-softmax.prec" --quiet &&
    "$root/target/debug/pocketrec" recommend "$T/models/demo-f16-softmax.prec" --items "$FOLD_ITEMS" -k 10 --json |
    python3 -c '
import json, struct, sys
r = json.load(sys.stdin)
assert r["unknown"] == 0 and len(r["items"]) == 10, r
for i in r["items"]:
    print("softmax", i["item"], hex(struct.unpack("<I", struct.pack("<f", i["score"]))[0]))
' >>"$T/fw-expect.txt" && cat "$T/host.jsonl" "$T/fw-expect.txt" &&
    update_reference
}

# The firmware's update: the f16 model's tables with 2 % of their rows changed, exported alike
# and signed; the signed patch from the (unsigned) model in flash to it; the two public keys as
# raw bytes; and the host's answer on the updated model (user 42, k = 10, items 5 and 17
# excluded).
update_reference() {
  local cli=$root/target/debug/pocketrec U=$T/fw-update
  rm -rf "$U" && mkdir -p "$U" &&
    "$cli" generate -o "$U/tables" --users 200 --items 3000 --dim 64 --density 0.1 --seed 7 \
      --change-rows 0.02 2>/dev/null &&
    "$cli" export --users "$U/tables/users.npy" --items "$U/tables/items.npy" \
      --item-bias "$T/models/item_bias.txt" --values f16 -o "$U/updated-unsigned.prec" --quiet &&
    "$cli" keygen -o "$U/app" >/dev/null && "$cli" keygen -o "$U/other" >/dev/null &&
    "$cli" sign "$U/updated-unsigned.prec" --key "$U/app.key" -o "$U/updated.prec" &&
    "$cli" diff "$T/models/demo-f16.prec" "$U/updated.prec" -o "$U/update.precpatch" &&
    "$cli" sign "$U/update.precpatch" --key "$U/app.key" &&
    for k in app:key other:other; do
      python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(open(sys.argv[1]).read().splitlines()[1]))' \
        "$U/${k%%:*}.pub" >"$U/${k##*:}.bin" || return 1
    done &&
    "$cli" recommend "$U/updated.prec" --user 42 -k 10 --exclude 5,17 --json |
    python3 -c '
import json, struct, sys
for i in json.load(sys.stdin)["items"]:
    print("item", i["item"], hex(struct.unpack("<I", struct.pack("<f", i["score"]))[0]))
' >"$U/expect.txt" && cat "$U/expect.txt"
}

# ---- Linux on ARM: tests, then the C programs against libpocketrec.{a,so} ------------------
# linux_tests TRIPLE DIR [-Z...]: the runtime's and the FFI crate's tests (unit, integration,
# doctests) under QEMU. Release builds: the code that ships, and the exhaustive corruption tests
# take minutes when unoptimised code is emulated.
linux_tests() {
  local triple=$1 dir=$2
  shift 2
  if [ $# -gt 0 ]; then
    RUSTC_BOOTSTRAP=1 $XCARGO test --release "$@" -p pocketrec -p pocketrec-ffi --target "$triple" --target-dir "$T/$dir"
  else
    $XCARGO test --release -p pocketrec -p pocketrec-ffi --target "$triple" --target-dir "$T/$dir"
  fi
}

# linux_c TRIPLE DIR GCC RUNNER... -- [-Z...]: libpocketrec for TRIPLE, the C example and the
# ABI test linked statically and dynamically, run under QEMU, compared with the host.
linux_c() {
  local triple=$1 dir=$2 gcc=$3
  shift 3
  local run=()
  while [ "$1" != "--" ]; do run+=("$1"); shift; done
  shift
  if [ $# -gt 0 ]; then
    RUSTC_BOOTSTRAP=1 $XCARGO build --release "$@" -p pocketrec-ffi --target "$triple" --target-dir "$T/$dir" || return 1
  else
    $XCARGO build --release -p pocketrec-ffi --target "$triple" --target-dir "$T/$dir" || return 1
  fi
  local R=$T/$dir/$triple/release B=$T/bin/$dir
  mkdir -p "$B"
  for prog in examples/recommend tests/abi_test; do
    local name
    name=$(basename "$prog")
    # The .a by path: -lpocketrec would pick the .so.
    $gcc "${CFLAGS[@]}" "$root/ffi/$prog.c" "$R/libpocketrec.a" "${NATIVE_LIBS[@]}" -Wl,--gc-sections -o "$B/$name-static" || return 1
    $gcc "${CFLAGS[@]}" "$root/ffi/$prog.c" -L "$R" -lpocketrec -lpthread -o "$B/$name-shared" || return 1
  done
  if command -v file >/dev/null; then file "$B/recommend-static" "$B/recommend-shared"; fi
  for kind in static shared; do
    for u in $USERS; do
      QEMU_SET_ENV=LD_LIBRARY_PATH=$R "${run[@]}" "$B/recommend-$kind" "$T/models/demo-f16.prec" "$u" 20 5 17 || return 1
    done >"$B/topk-$kind.jsonl"
    python3 "$root/scripts/topk_equal.py" "$T/host.jsonl" "$B/topk-$kind.jsonl" || return 1
    QEMU_SET_ENV=LD_LIBRARY_PATH=$R "${run[@]}" "$B/abi_test-$kind" "$T/models/demo-f16.prec" 42 >"$B/abi-$kind.txt" 2>&1
    local status=$?
    tail -n 1 "$B/abi-$kind.txt"
    [ $status -eq 0 ] || { cat "$B/abi-$kind.txt"; return 1; }
  done
  cp "$B/recommend-static" "$B/recommend-static.stripped"
  "${gcc%gcc}strip" "$B/recommend-static.stripped"
  ls -l "$R/libpocketrec.a" "$R/libpocketrec.so" "$B/recommend-static.stripped"
}

# ---- Cortex-M4F firmware ------------------------------------------------------------------
FW_ELF=$T/fw/thumbv7em-none-eabihf/release/pocketrec-firmware
fw() { # fw [cargo args...]: builds and runs the firmware under qemu-system-arm
  (cd "$root/firmware" && POCKETREC_FW_MODEL=$T/models/demo-f16.prec POCKETREC_FW_EXPECT=$T/fw-expect.txt \
    POCKETREC_FW_UPDATE=$T/fw-update POCKETREC_FW_SOFTMAX_MODEL=$T/models/demo-f16-softmax.prec \
    RUSTC_BOOTSTRAP=1 $XCARGO run --release -Zbuild-std=core --target-dir "$T/fw" "$@")
}
fw_failpath() { # a wrong answer must give a non-zero exit status
  POCKETREC_FW_FORCE_FAIL=1 fw
  local status=$?
  [ $status -ne 0 ] && grep -q -- '-> FAIL' "$LOG/thumbv7em-firmware-failpath.log"
}
fw_baseline() {
  fw --features baseline && cp "$FW_ELF" "$T/bin/firmware-baseline.elf" && arm-none-eabi-size -A "$T/bin/firmware-baseline.elf"
}
fw_run() {
  fw || return 1
  grep -q -- '-> PASS' "$LOG/thumbv7em-firmware.log" || return 1
  # 10 lines for the query, 10 for the user folded in on the Gramian, 10 for the softmax one.
  [ "$(grep -c '= host' "$LOG/thumbv7em-firmware.log")" -eq 30 ] || return 1
  grep -q '^fold-in stack: ' "$LOG/thumbv7em-firmware.log" || return 1
  grep -q '^softmax fold-in stack: ' "$LOG/thumbv7em-firmware.log" || return 1
  # The update: applied, its fold-in Gramian recomputed, opened signed, equal to the host, and
  # the five refusals.
  [ "$(grep -c '^ok  ' "$LOG/thumbv7em-firmware.log")" -eq 8 ] || return 1
  grep -q '^update stack: ' "$LOG/thumbv7em-firmware.log" || return 1
  cp "$FW_ELF" "$T/bin/firmware.elf" && arm-none-eabi-size -A "$T/bin/firmware.elf"
}

step host-reference host_reference
step aarch64-tests linux_tests aarch64-unknown-linux-gnu a64
step aarch64-c linux_c aarch64-unknown-linux-gnu a64 aarch64-linux-gnu-gcc "${A64_RUN[@]}" --
step armv7-tests linux_tests armv7-unknown-linux-gnueabihf armv7 "${V7_STD[@]}"
step armv7-c linux_c armv7-unknown-linux-gnueabihf armv7 arm-linux-gnueabihf-gcc "${V7_RUN[@]}" -- "${V7_STD[@]}"
step thumbv7em-firmware-baseline fw_baseline
step thumbv7em-firmware-failpath fw_failpath
step thumbv7em-firmware fw_run

# ---- figures --------------------------------------------------------------------------------
echo
echo "== test counts under QEMU"
for t in aarch64-tests armv7-tests; do
  [ -f "$LOG/$t.log" ] && echo "  $t: $(grep -E '^test result:' "$LOG/$t.log" | awk '{p += $4; f += $6} END {print p " passed, " f " failed"}')"
done
echo "== libraries (release) and the statically linked, stripped C example"
for d in a64:aarch64-unknown-linux-gnu:aarch64-linux-gnu armv7:armv7-unknown-linux-gnueabihf:arm-linux-gnueabihf; do
  IFS=: read -r dir triple prefix <<<"$d"
  R=$T/$dir/$triple/release
  [ -f "$R/libpocketrec.so" ] || continue
  "$prefix-strip" -o "$T/bin/$dir/libpocketrec.stripped.so" "$R/libpocketrec.so"
  printf '  %-30s libpocketrec.a %9d B, libpocketrec.so %8d B (stripped %7d B), recommend static+stripped %7d B\n' \
    "$triple" "$(stat -c %s "$R/libpocketrec.a")" "$(stat -c %s "$R/libpocketrec.so")" \
    "$(stat -c %s "$T/bin/$dir/libpocketrec.stripped.so")" "$(stat -c %s "$T/bin/$dir/recommend-static.stripped")"
done
if [ -f "$T/bin/firmware.elf" ] && [ -f "$T/bin/firmware-baseline.elf" ]; then
  section() { arm-none-eabi-size -A "$1" | awk -v s="$2" '$1 == s {print $2}'; }
  sum() { local f=$1 t=0 v; shift; for s in "$@"; do v=$(section "$f" "$s"); t=$((t + ${v:-0})); done; echo $t; }
  model=$(stat -c %s "$T/models/demo-f16.prec")
  stack=$(sed -n 's/^stack: \([0-9]*\) bytes used.*/\1/p' "$LOG/thumbv7em-firmware.log")
  base_stack=$(sed -n 's/^stack: \([0-9]*\) bytes used.*/\1/p' "$LOG/thumbv7em-firmware-baseline.log")
  fold_stack=$(sed -n 's/^fold-in stack: \([0-9]*\) bytes used.*/\1/p' "$LOG/thumbv7em-firmware.log")
  softmax_stack=$(sed -n 's/^softmax fold-in stack: \([0-9]*\) bytes used.*/\1/p' "$LOG/thumbv7em-firmware.log")
  softmax_model=$(stat -c %s "$T/models/demo-f16-softmax.prec")
  for f in firmware firmware-baseline; do
    e=$T/bin/$f.elf
    eval "${f//-/_}_text=$(sum "$e" .vector_table .text)"
    eval "${f//-/_}_rodata=$(sum "$e" .rodata)"
    eval "${f//-/_}_ram=$(sum "$e" .data .bss .uninit)"
  done
  echo "== Cortex-M4F firmware (thumbv7em-none-eabihf, opt-level s, LTO; arm-none-eabi-size -A)"
  echo "  flash: .vector_table+.text $firmware_text B + .rodata $firmware_rodata B (of which the model $model B and the softmax fold-in model $softmax_model B)"
  echo "  RAM:   .data+.bss+.uninit $firmware_ram B + stack $stack B (painted, measured)"
  echo "  stack of the fold-in path (open, fold_in at d = 64, recommend_vector, print; painted afresh): $fold_stack B, $((fold_stack - stack)) B beyond the query's $stack B (target: at most 12,288 B beyond)"
  echo "  stack of the softmax fold-in path (open, the ascent on a 16-cluster catalogue summary, recommend_vector, print; painted afresh): $softmax_stack B, $((softmax_stack - stack)) B beyond the query's"
  echo "  baseline without model and runtime: .text $firmware_baseline_text B, .rodata $firmware_baseline_rodata B, RAM $firmware_baseline_ram B + stack $base_stack B"
  echo "  runtime's share: .text $((firmware_text - firmware_baseline_text)) B, .rodata $((firmware_rodata - firmware_baseline_rodata - model - softmax_model)) B (besides the two models), RAM $((firmware_ram - firmware_baseline_ram)) B + stack $((stack - base_stack)) B"
fi
echo "cross: $pass passed, $fail failed (total $((SECONDS - started)) s)"
[ "$fail" -eq 0 ]
