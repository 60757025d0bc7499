"""Shared fixtures: small random tables and the path of the `pocketrec` CLI binary."""

import os
import pathlib

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


def sparse_table(rng, rows, dim, density, dtype=np.float32):
    """A rows x dim table with about `density` of its values non-zero (normal values)."""
    table = rng.standard_normal((rows, dim)).astype(dtype)
    table[rng.random((rows, dim)) >= density] = 0
    return table


@pytest.fixture
def rng():
    return np.random.default_rng(7)


@pytest.fixture
def tables(rng):
    """A user table (200 x 16) and an item table (500 x 16), 30 % dense."""
    return sparse_table(rng, 200, 16, 0.3), sparse_table(rng, 500, 16, 0.3)


@pytest.fixture
def cli():
    """The `pocketrec` binary: $POCKETREC_CLI (scripts/python-test.sh builds it and sets it),
    else target/debug/pocketrec or target/release/pocketrec when built; skips otherwise."""
    given = os.environ.get("POCKETREC_CLI")
    if given:
        assert os.access(given, os.X_OK), f"POCKETREC_CLI={given} is not an executable"
        return given
    for profile in ("debug", "release"):
        path = REPO / "target" / profile / "pocketrec"
        if path.exists():
            return str(path)
    pytest.skip(
        "no pocketrec CLI binary: build it with `cargo build -p pocketrec-cli` or set "
        "POCKETREC_CLI (scripts/python-test.sh does both)"
    )
