#!/usr/bin/env bash
# Signed models and patches for the C and JNI tests: `scripts/update-fixtures.sh CLI DIR` writes
# into DIR: old.prec and new.prec (signed by app.key; new has 2 % of its rows changed),
# new-unsigned.prec, unsigned.precpatch (old -> new) and signed.precpatch (the same, signed),
# and the public keys app.pub.bin and other.pub.bin as 32 raw bytes, as an app embeds them.
set -euo pipefail
cli=$1
U=$2
mkdir -p "$U"
"$cli" generate -o "$U/a" --users 200 --items 3000 --seed 4 2>/dev/null
"$cli" generate -o "$U/b" --users 200 --items 3000 --seed 4 --change-rows 0.02 2>/dev/null
"$cli" export --users "$U/a/users.npy" --items "$U/a/items.npy" -o "$U/old-unsigned.prec" --quiet >/dev/null
"$cli" export --users "$U/b/users.npy" --items "$U/b/items.npy" -o "$U/new-unsigned.prec" --quiet >/dev/null
rm -f "$U/app.key" "$U/other.key"
"$cli" keygen -o "$U/app" >/dev/null
"$cli" keygen -o "$U/other" >/dev/null
"$cli" sign "$U/old-unsigned.prec" --key "$U/app.key" -o "$U/old.prec" >/dev/null
"$cli" sign "$U/new-unsigned.prec" --key "$U/app.key" -o "$U/new.prec" >/dev/null
"$cli" diff "$U/old.prec" "$U/new.prec" -o "$U/unsigned.precpatch" >/dev/null
"$cli" sign "$U/unsigned.precpatch" --key "$U/app.key" -o "$U/signed.precpatch" >/dev/null
for k in app other; do
  # Line 2 of a public key file is the key in hex.
  python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(open(sys.argv[1]).read().splitlines()[1]))' \
    "$U/$k.pub" >"$U/$k.pub.bin"
  [ "$(stat -c %s "$U/$k.pub.bin")" = 32 ] || { echo "update-fixtures: bad key $k" >&2; exit 1; }
done
