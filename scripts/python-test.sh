#!/usr/bin/env bash
# Builds and tests the Python package `pocketrec` (python/) the way a user installs it: a fresh
# venv in a temporary directory, maturin, numpy, scipy, pytest and pyspark from PyPI (and a Java
# runtime from Debian for Spark), `pip install
# ./python` (pip builds the wheel through maturin, the PEP 517 backend), the CLI built for the
# byte-for-byte comparison with `pocketrec export` (POCKETREC_CLI), then pytest on python/tests.
# Exits non-zero when anything fails, and when pytest collects no test (its exit status 5).
#
# PYTHON=python3.12 bash scripts/python-test.sh   # another interpreter (default: python3)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
python=${PYTHON:-python3}

if ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "python-test: installing python3-venv"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
  else
    echo "python-test: $python cannot create a venv; install python3-venv" >&2
    exit 1
  fi
fi

# The crate is its own workspace (python/Cargo.toml): its format and lints are checked here.
cargo fmt --manifest-path python/Cargo.toml -- --check
cargo clippy --manifest-path python/Cargo.toml --all-targets -- -D warnings

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$python" -m venv "$tmp/venv"
py=$tmp/venv/bin/python
export PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1
echo "python-test: $("$py" --version) in a fresh venv"
"$py" -m pip install -q --upgrade pip
"$py" -m pip install -q maturin numpy scipy pytest pyspark
# Spark (pocketrec.spark's test on local[2]) needs a Java runtime, 17 or later.
if ! command -v java >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "python-test: installing a Java runtime for Spark"
    apt-get -o DPkg::Lock::Timeout=600 update -qq || true
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
      --no-install-recommends openjdk-17-jre-headless >/dev/null
  else
    echo "python-test: no java for the Spark test; install openjdk-17-jre-headless" >&2
    exit 1
  fi
fi

echo "python-test: pip install ./python (maturin builds the wheel)"
start=$SECONDS
if ! "$py" -m pip install ./python >"$tmp/pip-install.log" 2>&1; then
  cat "$tmp/pip-install.log" >&2
  echo "python-test: pip install ./python failed" >&2
  exit 1
fi
grep -E "^(Successfully|  Created wheel)" "$tmp/pip-install.log" || true
echo "python-test: installed in $((SECONDS - start)) s"

cargo build -q -p pocketrec-cli -p pocketrec-ffi
export POCKETREC_CLI=$repo/target/debug/pocketrec
# The C ABI, for the test that recommend_batch returns exactly what it returns.
export POCKETREC_LIB=$repo/target/debug/libpocketrec.so

# From the temporary directory, so that python/pocketrec (the sources, without the compiled
# module) cannot shadow the installed package, and no cache is left in the tree.
status=0
(cd "$tmp" && "$py" -m pytest "$repo/python/tests" -q -rs -p no:cacheprovider) || status=$?
if [ "$status" = 5 ]; then
  echo "python-test: pytest collected no tests" >&2
  exit 1
fi
exit "$status"
