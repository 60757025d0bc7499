#!/usr/bin/env bash
# Generates ffi/include/pocketrec.h with the pinned cbindgen (installed into target/tools if
# missing). `scripts/ffi-header.sh --check` regenerates into a temporary file and fails on any
# difference with the committed header (CI runs this).
set -euo pipefail
cd "$(dirname "$0")/.."
CBINDGEN_VERSION=0.29.4
tools=$PWD/target/tools
cbindgen=$tools/bin/cbindgen
if [ "$("$cbindgen" --version 2>/dev/null || true)" != "cbindgen $CBINDGEN_VERSION" ]; then
  echo "installing cbindgen $CBINDGEN_VERSION into $tools"
  cargo install --locked --quiet --root "$tools" --version "$CBINDGEN_VERSION" cbindgen
fi
header=ffi/include/pocketrec.h
generate() { "$cbindgen" --quiet --config ffi/cbindgen.toml --crate pocketrec-ffi --output "$1" ffi; }
if [ "${1:-}" = "--check" ]; then
  fresh=$(mktemp)
  trap 'rm -f "$fresh"' EXIT
  generate "$fresh"
  if ! diff -u "$header" "$fresh"; then
    echo "$header is out of date: run scripts/ffi-header.sh and commit the result" >&2
    exit 1
  fi
  echo "$header is up to date (cbindgen $CBINDGEN_VERSION)"
else
  generate "$header"
  echo "wrote $header (cbindgen $CBINDGEN_VERSION)"
fi
