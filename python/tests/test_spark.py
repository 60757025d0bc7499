"""pocketrec.spark.recommend_all on a local[2] Spark: the same rows as recommend_batch, for
integer and string ids, with unknown users left out. Skipped when pyspark is not installed
(scripts/python-test.sh installs it, with a JDK)."""

import os
import sys

import numpy as np
import pytest

import pocketrec

pyspark = pytest.importorskip("pyspark")
from pyspark.sql import SparkSession  # noqa: E402

import pocketrec.spark  # noqa: E402


@pytest.fixture(scope="module")
def spark():
    # The workers must run this interpreter, the one with pocketrec installed.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master("local[2]")
        .appName("pocketrec-test")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )
    yield session
    session.stop()


def tables(rng, users, items, dim=16, density=0.3):
    def table(n):
        t = rng.standard_normal((n, dim)).astype(np.float32)
        t[rng.random((n, dim)) > density] = 0.0
        return t

    return table(users), table(items)


def test_integer_ids_equal_recommend_batch(spark, tmp_path):
    rng = np.random.default_rng(5)
    users, items = tables(rng, 300, 500)
    path = str(tmp_path / "m.prec")
    pocketrec.export(users, items, path, values="f16", user_ids=np.arange(300) * 3 + 7)
    model = pocketrec.Model(path)
    asked = [int(u) for u in model.ids("user")]
    df = spark.createDataFrame([(u,) for u in asked + [999_999]], ["user"]).repartition(5)
    rows = pocketrec.spark.recommend_all(df, path, k=10).collect()
    got = {}
    for r in rows:
        got.setdefault(r["user"], []).append((r["rank"], r["item"], r["score"]))
    assert 999_999 not in got  # an unknown user gets no rows
    ids, scores = model.recommend_batch(asked, k=10, threads=2)
    assert len(got) == len(asked)
    for i, u in enumerate(asked):
        ranked = sorted(got[u])
        assert [r for r, _, _ in ranked] == list(range(1, 11))
        assert [it for _, it, _ in ranked] == [int(x) for x in ids[i]]
        assert np.array_equal(
            np.array([s for _, _, s in ranked], dtype=np.float32), scores[i]
        )


def test_string_ids_come_back_as_strings(spark, tmp_path):
    rng = np.random.default_rng(6)
    users, items = tables(rng, 40, 60)
    path = str(tmp_path / "s.prec")
    user_names = [f"user-{i}" for i in range(40)]
    item_names = [f"sku-{i:04d}" for i in range(60)]
    pocketrec.export(users, items, path, user_ids=user_names, item_ids=item_names)
    model = pocketrec.Model(path)
    df = spark.createDataFrame([(u,) for u in user_names[:10]], ["user"])
    rows = pocketrec.spark.recommend_all(df, path, k=3, shared=True).collect()
    assert len(rows) == 30
    for r in rows:
        assert r["item"].startswith("sku-")
    best = {r["user"]: r["item"] for r in rows if r["rank"] == 1}
    for u in user_names[:10]:
        assert best[u] == model.recommend(u, k=1)[0][0]
