"""pocketrec.Model: recommend and recommend_batch agree, threads do not change answers, string
ids come back as strings, fold-in, scores, verify."""

import numpy as np
import pytest

import pocketrec
from conftest import sparse_table


@pytest.fixture
def model(tmp_path, tables):
    users, items = tables
    path = tmp_path / "m.prec"
    pocketrec.export(users, items, path, values="f16", user_bias=np.linspace(-1, 1, 200))
    return pocketrec.Model(path)


def test_recommend_and_recommend_batch_agree(model):
    users = np.arange(200)
    ids, scores = model.recommend_batch(users, k=10, threads=2)
    assert ids.shape == (200, 10) and ids.dtype == np.uint64
    assert scores.shape == (200, 10) and scores.dtype == np.float32
    for u in (0, 1, 57, 199):
        top = model.recommend(u, k=10)
        assert [i for i, _ in top] == ids[u].tolist()
        np.testing.assert_array_equal(np.array([s for _, s in top], dtype=np.float32), scores[u])
        assert all(a >= b for a, b in zip(scores[u], scores[u][1:]))
    # Scores are the model's: score() and score_candidates() give the same numbers.
    u, items = 57, ids[57][:3]
    assert model.score(u, int(items[0])) == pytest.approx(float(scores[u][0]), rel=1e-6)
    np.testing.assert_allclose(model.score_candidates(u, items.tolist()), scores[u][:3], rtol=1e-6)
    # Excluded items are skipped.
    first = int(ids[0][0])
    assert first not in [i for i, _ in model.recommend(0, k=10, exclude=[first])]


def test_recommend_vector_batch_answers_each_vector_as_recommend_vector(model):
    vectors = model.embeddings("user")[:60].copy()
    vectors[::7] = 0.0  # some all-zero users
    vectors[1::5, ::2] *= -3.0
    for threads in (1, 2, 0):
        ids, scores = model.recommend_vector_batch(vectors, k=15, threads=threads)
        assert ids.shape == (60, 15) and scores.shape == (60, 15)
        for u in range(60):
            top = model.recommend_vector(vectors[u], k=15)
            assert [i for i, _ in top] == ids[u].tolist()
            np.testing.assert_array_equal(np.array([s for _, s in top], dtype=np.float32), scores[u])
    # A column slice (not contiguous) gives the same answers as its copy.
    wide = np.concatenate([vectors, vectors], axis=1)[:, : vectors.shape[1]]
    np.testing.assert_array_equal(model.recommend_vector_batch(wide, k=15)[0], ids)
    # k beyond the catalogue pads with 2**64 - 1 and NaN; no users gives empty arrays.
    many, many_scores = model.recommend_vector_batch(vectors[:2], k=1000)
    assert many.shape == (2, 1000) and many[0, -1] == 2**64 - 1 and np.isnan(many_scores[0, -1])
    assert model.recommend_vector_batch(np.zeros((0, vectors.shape[1])), k=5)[0].shape == (0, 5)
    with pytest.raises(pocketrec.PocketrecError, match="dimension"):
        model.recommend_vector_batch(vectors[:, :-1], k=5)
    with pytest.raises(pocketrec.PocketrecError, match="2-D"):
        model.recommend_vector_batch(vectors[0], k=5)
    bad = vectors.copy()
    bad[3, 1] = np.nan
    with pytest.raises(pocketrec.PocketrecError):
        model.recommend_vector_batch(bad, k=5)


def test_threads_give_identical_results(model):
    users = np.tile(np.arange(200), 10)  # 2,000 queries
    one = model.recommend_batch(users, k=20, threads=1)
    two = model.recommend_batch(users, k=20, threads=2)
    default = model.recommend_batch(users, k=20)
    for other in (two, default):
        np.testing.assert_array_equal(one[0], other[0])
        np.testing.assert_array_equal(one[1], other[1])


def test_batch_padding_and_errors(model):
    ids, scores = model.recommend_batch([3, 4], k=600)
    assert np.all(ids[:, 500:] == np.iinfo(np.uint64).max)
    assert np.all(np.isnan(scores[:, 500:]))
    assert not np.any(np.isnan(scores[:, :500]))
    ids, scores = model.recommend_batch(np.array([], dtype=np.int64), k=5)
    assert ids.shape == (0, 5)
    with pytest.raises(pocketrec.PocketrecError, match=r"no user with id 999 \(users\[1\]\)"):
        model.recommend_batch([1, 999, 2], k=5)
    with pytest.raises(pocketrec.PocketrecError, match="no user with id 999"):
        model.recommend(999)
    with pytest.raises(pocketrec.PocketrecError):
        model.recommend_batch(np.array([1, -1]), k=5)


def test_string_ids_come_back_as_strings(tmp_path, tables):
    users, items = tables
    user_names = [f"user-{i}" for i in range(200)]
    item_names = [f"sku-{i:04d}" for i in range(500)]
    path = tmp_path / "s.prec"
    pocketrec.export(users, items, path, user_ids=user_names, item_ids=item_names)
    model = pocketrec.Model(path)
    assert model.id_kind("user") == "string"
    top = model.recommend("user-3", k=5)
    assert all(isinstance(i, str) and i.startswith("sku-") for i, _ in top)
    assert top[0][0] not in [i for i, _ in model.recommend("user-3", k=5, exclude=[top[0][0]])]
    ids, scores = model.recommend_batch(["user-3", "user-4"], k=5)
    names = model.strings(ids)
    assert names.shape == (2, 5) and names.dtype == object
    assert names[0].tolist() == [i for i, _ in top]
    # The stored ids (hashes) work too, e.g. from model.ids().
    ids2, _ = model.recommend_batch(model.ids("user")[:50], k=5)
    assert model.strings(ids2).shape == (50, 5)
    assert model.score("user-3", top[0][0]) == pytest.approx(top[0][1], rel=1e-6)
    np.testing.assert_array_equal(model.embedding("item", "sku-0042"), items[42])
    with pytest.raises(pocketrec.PocketrecError, match="no user with id \"nobody\""):
        model.recommend("nobody")
    # Without the strings, items come back as their 64-bit ids.
    pocketrec.export(users, items, path, item_ids=item_names, id_strings=False)
    model = pocketrec.Model(path)
    item, _ = model.recommend(0, k=1)[0]
    assert isinstance(item, int) and item in {pocketrec.string_id(s) for s in item_names}


def test_fold_in(tmp_path, rng):
    users = sparse_table(rng, 50, 8, 0.5)
    items = sparse_table(rng, 300, 8, 0.5)
    path = tmp_path / "f.prec"
    pocketrec.export(users, items, path, item_ids=[f"i{n}" for n in range(300)])
    model = pocketrec.Model(path)
    history = ["i1", "i7", "i42"]
    vector = model.fold_in(history)
    assert vector.shape == (8,) and vector.dtype == np.float32 and np.all(np.isfinite(vector))
    top = model.recommend_vector(vector, k=10, exclude=history)
    assert len(top) == 10 and not set(history) & {i for i, _ in top}
    assert all(a[1] >= b[1] for a, b in zip(top, top[1:]))
    # Weights and a prior move the answer; unknown items are skipped.
    weighted = model.fold_in(history + ["not-an-item"], weights=[1, 1, 5, 1])
    assert not np.allclose(weighted, vector)
    moved = model.fold_in(["i3"], prior=vector, precision=10.0)
    assert np.all(np.isfinite(moved))
    with pytest.raises(pocketrec.PocketrecError):
        model.fold_in(["not-an-item"])
    pocketrec.export(users, items, path, fold_in=False)
    with pytest.raises(pocketrec.PocketrecError):
        pocketrec.Model(path).fold_in([1, 2])


def test_verify_finds_a_damaged_byte(tmp_path, model):
    data = bytearray(open(model.path, "rb").read())
    data[-1] ^= 0x01  # the last byte is row data
    damaged = tmp_path / "damaged.prec"
    damaged.write_bytes(bytes(data))
    with pytest.raises(pocketrec.PocketrecError, match="damaged.prec"):
        pocketrec.Model(damaged).verify()
    (tmp_path / "not-a-model.prec").write_bytes(b"hello")
    with pytest.raises(pocketrec.PocketrecError, match="not-a-model.prec"):
        pocketrec.Model(tmp_path / "not-a-model.prec")
    with pytest.raises(pocketrec.PocketrecIOError):
        pocketrec.Model(tmp_path / "missing.prec")
