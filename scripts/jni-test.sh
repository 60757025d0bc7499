#!/usr/bin/env bash
# Builds libpocketrec.so with the JNI glue (feature "jni"), compiles the Java class
# org.pocketrec.PocketRec and its test with the host JDK 17, and runs the test under
# -Xcheck:jni against a demo model and `pocketrec recommend --json` answers (by user, and for
# users folded in from items; batches against per-user answers; the original strings of a
# model exported with string item ids, and the same without them). JNI is the same on
# Android, so this checks the glue an Android app uses. Installs openjdk-17-jdk-headless with
# apt when javac is missing (as root). Work files go to target/jni-test.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
W=$root/target/jni-test
rm -rf "$W"
mkdir -p "$W/classes"
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1}

if ! command -v javac >/dev/null; then
  [ "$(id -u)" = 0 ] || { echo "jni-test: javac missing (apt-get install openjdk-17-jdk-headless)" >&2; exit 1; }
  apt-get -o DPkg::Lock::Timeout=600 update -qq || true
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends openjdk-17-jdk-headless
fi
javac -version

cargo build --quiet --release -p pocketrec-ffi --features jni
cargo build --quiet -p pocketrec-cli
lib=$root/target/release
cli=$root/target/debug/pocketrec
bash "$(dirname "$0")/test-models.sh" "$cli" "$W/models"
model=$W/models/demo-f16.prec
# The model inside a larger file at an unaligned offset, like an uncompressed APK asset.
offset=12345
head -c "$offset" /dev/urandom >"$W/app.apk"
cat "$model" >>"$W/app.apk"
head -c 999 /dev/urandom >>"$W/app.apk"
for u in 0 3 99 150 199; do
  "$cli" recommend "$model" --user "$u" -k 20 --exclude 5,17 --json
done >"$W/expected.jsonl"
# New users folded in from items (some not in the model), and the model without the fold-in
# section, which foldIn must refuse with UNSUPPORTED.
for items in 3,8,12 42 0,1,2,3,4,5,6,7,8,9,10,11,12 100,2999,99999,1500; do
  "$cli" recommend "$model" --items "$items" -k 20 --exclude 5,17 --json
done >"$W/expected-fold-in.jsonl"
no_fold_in=$W/models/demo-f16-no-fold-in.prec
"$cli" export --users "$W/models/users.npy" --items "$W/models/items.npy" \
  --item-bias "$W/models/item_bias.txt" --values f16 --no-fold-in -o "$no_fold_in" --quiet 2>/dev/null

# A model with string item ids, and the strings the CLI gives back for user 3.
awk 'BEGIN { for (i = 0; i < 3000; i++) printf "sku-%05d\n", i * 7 }' >"$W/item_ids.txt"
strings_model=$W/models/demo-f16-strings.prec
"$cli" export --users "$W/models/users.npy" --items "$W/models/items.npy" \
  --item-ids "$W/item_ids.txt" --values f16 -o "$strings_model" --quiet 2>/dev/null
no_strings_model=$W/models/demo-f16-no-strings.prec
"$cli" export --users "$W/models/users.npy" --items "$W/models/items.npy" \
  --item-ids "$W/item_ids.txt" --no-id-strings --values f16 -o "$no_strings_model" --quiet 2>/dev/null
"$cli" recommend "$strings_model" --user 3 -k 5 --json |
  python3 -c 'import json, sys; print("\n".join(i["item"] for i in json.load(sys.stdin)["items"]))' \
  >"$W/expected-strings.txt"

# Signed models and patches (PocketRec.openSigned, applyPatch).
bash "$(dirname "$0")/update-fixtures.sh" "$cli" "$W/updates"

javac -Xlint:all -Werror -d "$W/classes" \
  ffi/java/src/main/java/org/pocketrec/*.java ffi/java/src/test/java/org/pocketrec/*.java
# -Xcheck:jni makes the JVM validate every JNI call of the glue; any warning is a failure.
java -Xcheck:jni -Djava.library.path="$lib" -cp "$W/classes" org.pocketrec.PocketRecTest \
  "$model" "$W/app.apk" "$offset" "$W/expected.jsonl" "$W/expected-fold-in.jsonl" "$no_fold_in" \
  "$strings_model" "$W/expected-strings.txt" "$no_strings_model" "$W/updates" \
  2>&1 | tee "$W/out.txt"
status=${PIPESTATUS[0]}
if grep -qi "warning" "$W/out.txt"; then
  echo "jni-test: -Xcheck:jni reported warnings" >&2
  exit 1
fi
exit "$status"
