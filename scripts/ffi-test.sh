#!/usr/bin/env bash
# Tests the C API from C and the JNI binding from Java, on the host:
#   1. builds libpocketrec.{a,so} (release) and the pocketrec CLI, and makes demo models;
#   2. compiles ffi/examples/recommend.c against the static and the shared library (the header
#      is also compiled as C++), and checks that every way of opening a model (path, copy,
#      bytes, fd at an unaligned offset inside a larger file) gives the top-k that
#      `pocketrec recommend --json` gives, for every value encoding, and that the example's
#      fold-in (pocketrec_fold_in + pocketrec_recommend_vector) gives what
#      `pocketrec recommend --items ... --json` gives;
#   3. runs ffi/tests/abi_test.c (misuse, fold-in, batches against per-user answers, original
#      string ids against the CLI's, bad files, 8 threads) against both libraries, with models
#      exported with --no-fold-in and --no-id-strings for the UNSUPPORTED cases;
#   4. runs ffi/tests/update_test.c (signed models: unsigned, wrong key, tampered; patches
#      between signed models, atomically and into a buffer) against both libraries;
#   5. runs the example, abi_test and update_test under valgrind: no error, no leak;
#   6. runs the JNI test (java/) on the host JDK (scripts/jni-test.sh).
# Installs what is missing (valgrind, a JDK) with apt when run as root. Work files go to
# target/ffi-test. Prints "ffi-test: N passed, N failed" and exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
W=$root/target/ffi-test
rm -rf "$W"
mkdir -p "$W"
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1}
pass=0
fail=0
ok() { echo "PASS $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }
timed() { # timed LABEL CMD...: runs CMD, prints its duration
  local label=$1 s=$SECONDS
  shift
  "$@"
  echo "  ($label: $((SECONDS - s)) s)"
}

need_apt() { # need_apt COMMAND PACKAGE
  command -v "$1" >/dev/null && return 0
  if [ "$(id -u)" = 0 ]; then
    apt-get -o DPkg::Lock::Timeout=600 update -qq || true
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "$2"
  fi
  command -v "$1" >/dev/null || { echo "ffi-test: $1 is missing (apt-get install $2)" >&2; exit 1; }
}
need_apt valgrind valgrind
need_apt cc gcc
need_apt python3 python3

echo "== build: libpocketrec (release) and the pocketrec CLI"
timed build cargo build --quiet --release -p pocketrec-ffi
timed build cargo build --quiet -p pocketrec-cli
R=$root/target/release
CLI=$root/target/debug/pocketrec
ls -l "$R/libpocketrec.a" "$R/libpocketrec.so"
timed models bash scripts/test-models.sh "$CLI" "$W/models"
# The f16 demo model without a fold-in section: pocketrec_fold_in must refuse it.
NO_FOLD_IN=$W/models/demo-f16-no-fold-in.prec
"$CLI" export --users "$W/models/users.npy" --items "$W/models/items.npy" \
  --item-bias "$W/models/item_bias.txt" --values f16 --no-fold-in -o "$NO_FOLD_IN" --quiet 2>/dev/null

# A model with string item ids, and the strings the CLI gives back for user 3 (abi_test checks
# pocketrec_item_id_str and pocketrec_find_item_str against them); the same model exported
# with --no-id-strings (item_id_str UNSUPPORTED, find_item_str by the hash).
STRINGS=$W/models/demo-f16-strings.prec
NO_STRINGS=$W/models/demo-f16-no-strings.prec
awk 'BEGIN { for (i = 0; i < 3000; i++) printf "sku-%05d\n", i * 7 }' >"$W/item_ids.txt"
"$CLI" export --users "$W/models/users.npy" --items "$W/models/items.npy" \
  --item-ids "$W/item_ids.txt" --values f16 -o "$STRINGS" --quiet
"$CLI" export --users "$W/models/users.npy" --items "$W/models/items.npy" \
  --item-ids "$W/item_ids.txt" --no-id-strings --values f16 -o "$NO_STRINGS" --quiet
"$CLI" recommend "$STRINGS" --user 3 -k 5 --json |
  python3 -c 'import json, sys; print("\n".join(i["item"] for i in json.load(sys.stdin)["items"]))' \
  >"$W/strings-expected.txt"

echo "== compile the C programs"
# The system libraries a Rust staticlib needs on Linux (rustc --print native-static-libs).
NATIVE_LIBS="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"
CFLAGS="-std=c11 -O2 -g -Wall -Wextra -Werror -pedantic -D_POSIX_C_SOURCE=200809L -I ffi/include"
for prog in examples/recommend tests/abi_test tests/update_test; do
  name=$(basename "$prog")
  # shellcheck disable=SC2086
  cc $CFLAGS "ffi/$prog.c" "$R/libpocketrec.a" $NATIVE_LIBS -o "$W/$name-static"
  # shellcheck disable=SC2086
  cc $CFLAGS "ffi/$prog.c" -L "$R" -lpocketrec -lpthread -Wl,-rpath,"$R" -o "$W/$name-shared"
done
# Outputs are captured before grep: under pipefail, `cmd | grep -q` fails at random when grep
# exits on the first match and cmd dies of SIGPIPE.
needed_shared=$(readelf -d "$W/recommend-shared")
needed_static=$(readelf -d "$W/recommend-static")
if grep -q "NEEDED.*\[libpocketrec.so\]" <<<"$needed_shared" && ! grep -q "libpocketrec" <<<"$needed_static"; then
  ok "recommend-static links libpocketrec.a, recommend-shared links libpocketrec.so"
else
  bad "link kinds: recommend-shared NEEDED: $(grep NEEDED <<<"$needed_shared" | tr -s ' ' | tr '\n' ';') recommend-static NEEDED: $(grep NEEDED <<<"$needed_static" | tr -s ' ' | tr '\n' ';')"
fi
printf '#include "pocketrec.h"\nint main() { return pocketrec_abi_version() == POCKETREC_ABI_VERSION ? 0 : 1; }\n' >"$W/cpp.cc"
if c++ -std=c++11 -Wall -Werror -I ffi/include "$W/cpp.cc" -L "$R" -lpocketrec -Wl,-rpath,"$R" -o "$W/cpp" && "$W/cpp"; then
  ok "the header compiles and links as C++"
else
  bad "the header as C++"
fi

echo "== the C example against pocketrec recommend --json"
users="0 1 57 123 199"
# An "APK": the model at an offset that is neither page- nor 4-byte-aligned, junk around it.
head -c 4099 /dev/urandom >"$W/container"
model_len=$(stat -c %s "$W/models/demo-f16.prec")
cat "$W/models/demo-f16.prec" >>"$W/container"
head -c 1000 /dev/urandom >>"$W/container"
for enc in f32 f16 bf16 i8; do
  model=$W/models/demo-$enc.prec
  : >"$W/cli-$enc.jsonl"
  for u in $users; do "$CLI" recommend "$model" --user "$u" -k 20 --exclude 5,17 --json >>"$W/cli-$enc.jsonl"; done
  for lib in static shared; do
    for mode in path copy bytes fd; do
      out=$W/c-$enc-$lib-$mode.jsonl
      : >"$out"
      for u in $users; do "$W/recommend-$lib" --open=$mode "$model" "$u" 20 5 17 >>"$out" 2>"$W/stderr.txt"; done
      if python3 scripts/topk_equal.py "$W/cli-$enc.jsonl" "$out" >"$W/cmp.txt"; then
        ok "$enc $lib --open=$mode: $(cat "$W/cmp.txt")"
      else
        bad "$enc $lib --open=$mode: $(cat "$W/cmp.txt")"
      fi
    done
  done
done
for lib in static shared; do
  out=$W/c-apk-$lib.jsonl
  : >"$out"
  for u in $users; do "$W/recommend-$lib" --open=fd:4099:"$model_len" "$W/container" "$u" 20 5 17 >>"$out" 2>"$W/stderr.txt"; done
  if python3 scripts/topk_equal.py "$W/cli-f16.jsonl" "$out" >"$W/cmp.txt"; then
    ok "$lib --open=fd:4099:$model_len (model inside a larger file): $(cat "$W/cmp.txt")"
  else
    bad "$lib fd at an unaligned offset: $(cat "$W/cmp.txt")"
  fi
done

echo "== the C example's fold-in against pocketrec recommend --items --json"
folded_equal() { # folded_equal EXPECTED ACTUAL: same folded_from, unknown, items, f32 scores
  python3 - "$1" "$2" <<'PY'
import json, struct, sys
f32 = lambda x: struct.unpack("<f", struct.pack("<f", x))[0]
load = lambda p: [json.loads(l) for l in open(p) if l.strip()]
e, a = load(sys.argv[1]), load(sys.argv[2])
ok = len(e) == len(a) > 0 and all(
    x["folded_from"] == y["folded_from"] and x["unknown"] == y["unknown"]
    and [(i["item"], f32(i["score"])) for i in x["items"]]
    == [(i["item"], f32(i["score"])) for i in y["items"]]
    for x, y in zip(e, a))
print(f"{len(e)} folded lists equal" if ok else f"differ: {e} != {a}")
sys.exit(0 if ok else 1)
PY
}
# Lists of items a new user interacted with: a few, one, many, and some not in the model.
fold_lists="3,8,12 42 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20 100,2999,99999,1500,123456789"
for enc in f32 f16 bf16 i8; do
  model=$W/models/demo-$enc.prec
  : >"$W/cli-fold-$enc.jsonl"
  for items in $fold_lists; do
    "$CLI" recommend "$model" --items "$items" -k 20 --exclude 5,17 --json >>"$W/cli-fold-$enc.jsonl"
  done
  for lib in static shared; do
    for mode in path bytes; do
      out=$W/c-fold-$enc-$lib-$mode.jsonl
      : >"$out"
      for items in $fold_lists; do
        "$W/recommend-$lib" --open=$mode --fold-in="$items" "$model" 20 5 17 >>"$out" 2>"$W/stderr.txt"
      done
      if folded_equal "$W/cli-fold-$enc.jsonl" "$out" >"$W/cmp.txt"; then
        ok "fold-in $enc $lib --open=$mode: $(cat "$W/cmp.txt")"
      else
        bad "fold-in $enc $lib --open=$mode: $(cat "$W/cmp.txt")"
      fi
    done
  done
done
if "$W/recommend-static" --fold-in=3,8 "$NO_FOLD_IN" 5 2>"$W/err.txt"; then
  bad "fold-in on a model without the section must fail"
elif grep -q "status 7.*no fold-in section" "$W/err.txt"; then
  ok "fold-in without the section: $(tail -1 "$W/err.txt")"
else
  bad "fold-in without the section, message: $(tail -1 "$W/err.txt")"
fi
cp "$W/c-f16-static-path.jsonl" "$W/host-topk.jsonl" # the reference scripts/cross.sh compares with
if "$W/recommend-static" "$W/models/demo-f16.prec" 999999 5 2>"$W/err.txt"; then
  bad "an unknown user must fail"
elif grep -q "status 4.*no user with id 999999" "$W/err.txt"; then
  ok "unknown user: $(tail -1 "$W/err.txt")"
else
  bad "unknown user message: $(tail -1 "$W/err.txt")"
fi

echo "== abi_test (misuse, fold-in, batches, string ids, bad files, 8 threads)"
for lib in static shared; do
  if "$W/abi_test-$lib" "$W/models/demo-f16.prec" 42 "$NO_FOLD_IN" "$STRINGS" "$W/strings-expected.txt" "$NO_STRINGS" >"$W/abi-$lib.txt" 2>&1; then
    ok "abi_test-$lib: $(tail -1 "$W/abi-$lib.txt")"
  else
    bad "abi_test-$lib:"
    cat "$W/abi-$lib.txt"
  fi
done

echo "== update_test (signed models and patches)"
U=$W/updates
bash scripts/update-fixtures.sh "$CLI" "$U"
UPDATE_ARGS=("$U/old.prec" "$U/new.prec" "$U/signed.precpatch" "$U/unsigned.precpatch" "$U/app.pub.bin" "$U/other.pub.bin" "$U/new-unsigned.prec" "$U")
for lib in static shared; do
  if "$W/update_test-$lib" "${UPDATE_ARGS[@]}" >"$W/update-$lib.txt" 2>&1; then
    ok "update_test-$lib: $(tail -1 "$W/update-$lib.txt")"
  else
    bad "update_test-$lib:"
    cat "$W/update-$lib.txt"
  fi
done

echo "== valgrind (memcheck: errors and leaks are failures)"
# ffi/tests/valgrind.supp: the one "possibly lost" block std keeps per C thread that runs a
# batch (std::thread::scope's handle of the current thread; the file says why), nothing else.
VG=(valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect,possible
  --errors-for-leak-kinds=definite,indirect,possible --suppressions=ffi/tests/valgrind.supp)
vg() { # vg NAME CMD...
  local name=$1 s=$SECONDS
  shift
  if "${VG[@]}" --log-file="$W/vg-$name.txt" "$@" >"$W/vg-$name.out" 2>&1; then
    ok "valgrind $name: no error, no leak ($((SECONDS - s)) s)"
  else
    bad "valgrind $name:"
    cat "$W/vg-$name.txt" "$W/vg-$name.out"
  fi
}
for lib in static shared; do
  for mode in path bytes fd:4099:"$model_len"; do
    m=$W/models/demo-f16.prec
    [ "${mode%%:*}" = fd ] && m=$W/container
    vg "recommend-$lib-${mode%%:*}" "$W/recommend-$lib" --open="$mode" "$m" 42 20 5 17
  done
  vg "recommend-$lib-fold-in" "$W/recommend-$lib" --fold-in=3,8,12,99999 "$W/models/demo-f16.prec" 20 5 17
  vg "abi_test-$lib" "$W/abi_test-$lib" "$W/models/demo-f16.prec" 42 "$NO_FOLD_IN" "$STRINGS" "$W/strings-expected.txt" "$NO_STRINGS"
  vg "update_test-$lib" "$W/update_test-$lib" "${UPDATE_ARGS[@]}"
done
# A full report, for the record: the summary of one run with every leak kind shown.
valgrind --leak-check=full --show-leak-kinds=all --suppressions=ffi/tests/valgrind.supp "$W/abi_test-static" "$W/models/demo-f16.prec" 42 "$NO_FOLD_IN" "$STRINGS" "$W/strings-expected.txt" "$NO_STRINGS" \
  >/dev/null 2>"$W/valgrind-summary.txt" || true
grep -E "ERROR SUMMARY|definitely|indirectly|possibly|still reachable|suppressed:|in use at exit" "$W/valgrind-summary.txt" | sed 's/^/  /'

echo "== JNI"
if bash scripts/jni-test.sh; then ok "JNI test on the host JVM"; else bad "JNI test"; fi

echo "ffi-test: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
