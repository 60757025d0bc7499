#!/usr/bin/env bash
# Checks the dependency rules of docs/ARCHITECTURE.md with `cargo tree` (normal and build
# dependencies; dev-dependencies are the tests' business):
# - the runtime `pocketrec` depends on no other pocketrec crate;
# - `pocketrec-export` depends on neither clap, indicatif nor `pocketrec-train`;
# - `pocketrec-train` does not depend on clap or indicatif;
# - `pocketrec-ffi` depends on no workstation crate;
# - `pocketrec-python` wraps the libraries, not the CLI.
set -euo pipefail
cd "$(dirname "$0")/.."

fail=0
# forbid CRATE PATTERN WHY [MANIFEST]: fails when CRATE's dependency tree has a package matching
# PATTERN (MANIFEST: the crate's own Cargo.toml, for a crate outside the main workspace).
forbid() {
  local crate=$1 pattern=$2 why=$3 manifest=${4:-Cargo.toml} found
  found=$(cargo tree -q --manifest-path "$manifest" -p "$crate" -e normal,build --prefix none | grep -v "^$crate v" |
    awk '{print $1}' | grep -xE "$pattern" | sort -u || true)
  if [ -n "$found" ]; then
    echo "crate-rules: $crate depends on $(echo "$found" | tr '\n' ' ')($why)" >&2
    fail=1
  else
    echo "crate-rules: $crate: none of $pattern"
  fi
}
forbid pocketrec 'pocketrec-.*' 'the runtime stands alone'
forbid pocketrec-export 'clap|indicatif|pocketrec-train|pocketrec-cli' 'a library, below the trainer and the CLI'
forbid pocketrec-train 'clap|indicatif|pocketrec-cli' 'a library, below the CLI'
forbid pocketrec-ffi 'pocketrec-export|pocketrec-train|pocketrec-cli|clap|indicatif' 'an app links the runtime only'
forbid pocketrec-python 'clap|indicatif|pocketrec-cli' 'the Python package wraps the libraries, not the CLI' python/Cargo.toml
exit $fail
