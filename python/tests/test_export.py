"""pocketrec.export: arrays of every kind to .prec files, the same bytes as the CLI, and the
exporter's checks raised as Python exceptions."""

import subprocess

import numpy as np
import pytest

import pocketrec
from conftest import sparse_table


def test_numpy_export_opens_and_verifies(tmp_path, tables):
    users, items = tables
    out = tmp_path / "m.prec"
    summary = pocketrec.export(users, items, out)
    assert summary["output"] == str(out)
    assert summary["file_bytes"] == out.stat().st_size
    assert summary["dense_f32_bytes"] == 4 * (200 + 500) * 16
    model = pocketrec.Model(out)
    model.verify()
    assert (model.num_users, model.num_items, model.dim) == (200, 500, 16)
    assert model.properties["source.users"] == "<array> [users]"
    assert model.properties["source.items"] == "<array> [items]"
    # f32 is exact: the tables come back as they went in (ids are row numbers).
    np.testing.assert_array_equal(model.embeddings("user"), users)
    np.testing.assert_array_equal(model.embeddings("item"), items)
    np.testing.assert_array_equal(model.embedding("item", 17), items[17])
    report = model.inspect()
    assert [t["role"] for t in report["tables"]] == ["user", "item"]
    assert report["file_bytes"] == summary["file_bytes"]


def test_float64_float16_and_options(tmp_path, tables):
    users, items = tables
    out = tmp_path / "m.prec"
    pocketrec.export(
        users.astype(np.float64),
        items.astype(np.float16),
        out,
        values="i8",
        layout="both",
        scoring="cosine",
        prune_density=0.2,
        user_bias=np.linspace(0, 1, 200),
        item_bias=list(range(500)),
        global_bias=0.5,
    )
    model = pocketrec.Model(out)
    model.verify()
    assert model.scoring == "cosine"
    assert model.global_bias == 0.5
    props = model.properties
    assert (props["values"], props["layout"], props["pruned_to_density"]) == ("i8", "both", "0.2")
    nnz = sum(t["nnz"] for t in model.inspect()["tables"])
    assert nnz <= 0.2 * (200 + 500) * 16 + 2


@pytest.mark.parametrize("values", ["f32", "f16"])
def test_same_bytes_as_the_cli(tmp_path, rng, cli, values, monkeypatch):
    """A 100,000 x 64 float32 table at 10 % density, exported from NumPy, gives the same bytes
    as `pocketrec export` on the .npy (with the provenance the CLI records)."""
    users = sparse_table(rng, 100_000, 64, 0.1)
    items = sparse_table(rng, 20_000, 64, 0.1)
    np.save(tmp_path / "users.npy", users)
    np.save(tmp_path / "items.npy", items)
    run = subprocess.run(
        [cli, "export", "--users", "users.npy", "--items", "items.npy", "-o", "cli.prec",
         "--values", values],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    cli_bytes = (tmp_path / "cli.prec").read_bytes()

    pocketrec.export(
        users, items, tmp_path / "arrays.prec", values=values,
        source_users="users.npy [users]", source_items="items.npy [items]",
    )
    assert (tmp_path / "arrays.prec").read_bytes() == cli_bytes

    # The same files read by the exporter's readers, as the CLI reads them.
    monkeypatch.chdir(tmp_path)
    pocketrec.export("users.npy", "items.npy", "files.prec", values=values)
    assert (tmp_path / "files.prec").read_bytes() == cli_bytes


def test_items_alone(tmp_path, tables, cli, monkeypatch):
    """users=None with items_only=True writes the item table alone, the same bytes as
    `pocketrec export --items items.npy --items-only` from an array or from the file; without
    items_only, or with user ids, it is refused."""
    _, items = tables
    np.save(tmp_path / "items.npy", items)
    run = subprocess.run(
        [cli, "export", "--items", "items.npy", "--items-only", "-o", "cli.prec", "--values", "i8"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    cli_bytes = (tmp_path / "cli.prec").read_bytes()
    pocketrec.export(
        None, items, tmp_path / "arrays.prec", values="i8", items_only=True,
        source_items="items.npy [items]",
    )
    assert (tmp_path / "arrays.prec").read_bytes() == cli_bytes
    monkeypatch.chdir(tmp_path)
    pocketrec.export(None, "items.npy", "files.prec", values="i8", items_only=True)
    assert (tmp_path / "files.prec").read_bytes() == cli_bytes
    model = pocketrec.Model(tmp_path / "files.prec")
    model.verify()
    assert (model.num_users, model.num_items) == (0, 500)
    assert model.properties["source.users"] == "none: the item table alone, users folded in"
    # A folded-in user is recommended from the item table alone.
    vector = model.fold_in([3, 17, 42])
    assert len(model.recommend_vector(vector, k=5, exclude=[3, 17, 42])) == 5

    with pytest.raises(TypeError, match="items_only=True"):
        pocketrec.export(None, items, tmp_path / "x.prec")
    with pytest.raises(pocketrec.PocketrecError, match="user_ids and user_bias"):
        pocketrec.export(None, items, tmp_path / "x.prec", items_only=True, user_ids=[1, 2])
    assert not (tmp_path / "x.prec").exists()


def test_scipy_sparse_matrices(tmp_path, tables):
    sp = pytest.importorskip("scipy.sparse")
    users, items = tables
    pocketrec.export(users, items, tmp_path / "dense.prec")
    expected = (tmp_path / "dense.prec").read_bytes()
    for fmt in ("csr", "csc", "coo"):
        out = tmp_path / f"{fmt}.prec"
        pocketrec.export(
            getattr(sp, f"{fmt}_matrix")(users), getattr(sp, f"{fmt}_matrix")(items), out
        )
        assert out.read_bytes() == expected, fmt
    # Unsorted column indices and duplicate entries are canonicalised as scipy does.
    m = sp.csr_matrix(
        (np.array([1.0, 2.0, 3.0], dtype=np.float32), np.array([3, 0, 3]), np.array([0, 3, 3])),
        shape=(2, 16),
    )
    out = tmp_path / "dup.prec"
    pocketrec.export(m, items, out)
    row = pocketrec.Model(out).embedding("user", 0)
    assert row[0] == 2.0 and row[3] == 4.0 and np.count_nonzero(row) == 2


class DLPackOnly:
    """A torch-like tensor exposing only the DLPack protocol."""

    def __init__(self, array):
        self._array = array

    def __dlpack__(self, *args, **kwargs):
        return self._array.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self._array.__dlpack_device__()


class ArrayOnly:
    """A tensor-like object exposing only `__array__`."""

    def __init__(self, array):
        self._array = array

    def __array__(self, dtype=None, copy=None):
        return self._array if dtype is None else self._array.astype(dtype)


def test_dlpack_and_array_protocols(tmp_path, tables):
    users, items = tables
    pocketrec.export(users, items, tmp_path / "numpy.prec")
    expected = (tmp_path / "numpy.prec").read_bytes()
    for wrap in (DLPackOnly, ArrayOnly):
        out = tmp_path / f"{wrap.__name__}.prec"
        pocketrec.export(wrap(users), wrap(items), out)
        assert out.read_bytes() == expected, wrap.__name__
    # f16 through DLPack too.
    pocketrec.export(DLPackOnly(users.astype(np.float16)), items, tmp_path / "h.prec")
    pocketrec.Model(tmp_path / "h.prec").verify()


def test_nan_and_inf_are_refused_with_row_and_column(tmp_path, tables):
    users, items = tables
    out = tmp_path / "m.prec"
    bad = users.copy()
    bad[3, 7] = np.nan
    with pytest.raises(pocketrec.PocketrecError, match=r"tensor 'users' row 3, column 7: value NaN is not finite"):
        pocketrec.export(bad, items, out)
    bad = items.astype(np.float64)
    bad[42, 1] = -np.inf
    with pytest.raises(ValueError, match=r"tensor 'items' row 42, column 1: value -inf is not finite"):
        pocketrec.export(users, bad, out)
    bad[42, 1] = 1e300
    with pytest.raises(pocketrec.PocketrecError, match=r"row 42, column 1: value 1e300 does not fit in f32"):
        pocketrec.export(users, bad, out)
    sp = pytest.importorskip("scipy.sparse")
    csr = sp.csr_matrix(users)
    csr.data[5] = np.nan
    row = int(np.searchsorted(csr.indptr, 5, side="right") - 1)
    with pytest.raises(pocketrec.PocketrecError, match=rf"row {row}, column {csr.indices[5]}: value NaN"):
        pocketrec.export(csr, items, out)
    assert not out.exists(), "nothing is written on error"


def test_bad_input_is_refused(tmp_path, tables):
    users, items = tables
    out = tmp_path / "m.prec"
    with pytest.raises(pocketrec.PocketrecError, match="has 8 columns, but the user table 'users'"):
        pocketrec.export(users, items[:, :8], out)
    with pytest.raises(pocketrec.PocketrecError, match="duplicate id 5 at index 2"):
        pocketrec.export(users, items, out, user_ids=[5, 6, 5] + list(range(7, 204)))
    with pytest.raises(pocketrec.PocketrecError, match=r'duplicate id "b" at index 2 \(first at index 1\)'):
        pocketrec.export(users, items, out, item_ids=["a", "b", "b"] + [str(i) for i in range(497)])
    with pytest.raises(pocketrec.PocketrecError, match="has 3 entries"):
        pocketrec.export(users, items, out, item_ids=[1, 2, 3])
    with pytest.raises(pocketrec.PocketrecError, match="dtype int32; supported"):
        pocketrec.export(users.astype(np.int32), items, out)
    with pytest.raises(pocketrec.PocketrecError, match="expected a 2-D table"):
        pocketrec.export(users[0], items, out)
    with pytest.raises(pocketrec.PocketrecError, match="prune-density must be in"):
        pocketrec.export(users, items, out, prune_density=1.5)
    with pytest.raises(pocketrec.PocketrecError, match="values must be one of"):
        pocketrec.export(users, items, out, values="f8")
    with pytest.raises(pocketrec.PocketrecError, match=r"tensor 'item bias' row 2, column 0: value NaN"):
        pocketrec.export(users, items, out, item_bias=[0, 1, np.nan] + [0] * 497)
    with pytest.raises(pocketrec.PocketrecIOError) as e:
        pocketrec.export(users, items, tmp_path / "no-such-dir" / "m.prec")
    assert isinstance(e.value, OSError)
    with pytest.raises(OSError, match="no-such.npy"):
        pocketrec.export(tmp_path / "no-such.npy", items, out)
    assert not out.exists()


def test_ids_from_numpy_and_files(tmp_path, tables):
    users, items = tables
    out = tmp_path / "m.prec"
    (tmp_path / "items.txt").write_text("".join(f"item-{i}\n" for i in range(500)))
    pocketrec.export(users, items, out, user_ids=np.arange(1000, 1200), item_ids=tmp_path / "items.txt")
    model = pocketrec.Model(out)
    assert model.id_kind("user") == "integer" and model.id_kind("item") == "string"
    np.testing.assert_array_equal(model.ids("user"), np.arange(1000, 1200, dtype=np.uint64))
    np.testing.assert_array_equal(model.embedding("user", 1005), users[5])
    np.testing.assert_array_equal(model.embedding("item", "item-9"), items[9])
    with pytest.raises(pocketrec.PocketrecError, match="not in 0..2"):
        pocketrec.export(users, items, out, user_ids=-np.arange(200))


def test_files_mixed_with_arrays(tmp_path, tables, monkeypatch):
    users, items = tables
    monkeypatch.chdir(tmp_path)
    np.savez("model.npz", user_embedding=users, item_embedding=items)
    np.save("items.npy", items)
    # One file holding both tables, as `pocketrec export model.npz`.
    pocketrec.export("model.npz", None, "both.prec")
    model = pocketrec.Model("both.prec")
    assert model.properties["source.users"] == "model.npz [user_embedding]"
    np.testing.assert_array_equal(model.embeddings("item"), items)
    # An array with a file, ids given in Python: the file is read by the exporter's readers.
    pocketrec.export(users, "items.npy", "mixed.prec", item_ids=[f"i{n}" for n in range(500)],
                     fold_in_unobserved_weight=0.5, fold_in_regularization=2.0)
    model = pocketrec.Model("mixed.prec")
    props = model.properties
    assert props["source.items"] == "items.npy [items]"
    assert props["source.users"] == "<array> [users]"
    assert (props["fold_in.chosen_by"], props["fold_in.unobserved_weight"]) == ("given", "0.5")
    np.testing.assert_array_equal(model.embedding("item", "i3"), items[3])
    # Provenance given for a file table is recorded as given.
    pocketrec.export("model.npz", None, "named.prec", source_users="trained users [U]")
    assert pocketrec.Model("named.prec").properties["source.users"] == "trained users [U]"
