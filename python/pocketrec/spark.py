"""Batch scoring on Spark: the top-k items of every user of a DataFrame, computed on the
executors by pocketrec's runtime.

The model file is shipped to the executors with ``SparkContext.addFile`` (or read from a path
every executor sees, ``shared=True``); each Python worker memory-maps it once and keeps it for
the partitions it scores after that. A worker's memory is the file's pages that queries touch
(shared with the page cache, so the workers of one executor share them) plus a few kilobytes
per thread.

Example::

    from pyspark.sql import SparkSession
    import pocketrec.spark

    spark = SparkSession.builder.master("local[2]").getOrCreate()
    users = spark.createDataFrame([(u,) for u in range(1000)], ["user"])
    recs = pocketrec.spark.recommend_all(users, "model.prec", k=20)
    recs.show()   # user, item, score, rank (rank 1 is the best)
"""

from __future__ import annotations

import os
from typing import Any, Dict, Iterable, Iterator

import numpy as np

from . import string_id

# Models a worker has opened, by path: one memory map per worker process and file, and the
# set of each one's user ids.
_OPENED: Dict[str, Any] = {}
_USERS: Dict[str, Any] = {}


def _known_users(model: Any, path: str) -> Any:
    users = _USERS.get(path)
    if users is None:
        users = set(int(u) for u in model.ids("user"))
        _USERS[path] = users
    return users


def _model(path: str) -> Any:
    from . import Model

    model = _OPENED.get(path)
    if model is None:
        model = Model(path)
        _OPENED[path] = model
    return model


def _score_partition(
    rows: Iterable[Any], path: str, shipped: bool, user_col: str, k: int, threads: int
) -> Iterator[tuple]:
    if shipped:
        from pyspark import SparkFiles

        path = SparkFiles.get(os.path.basename(path))
    model = _model(path)
    users = [row[user_col] for row in rows]
    if not users:
        return
    known = _known_users(model, path)
    as_id = (lambda u: string_id(str(u))) if model.id_kind("user") == "string" else int
    asked = [u for u in users if as_id(u) in known]
    if not asked:
        return
    ids, scores = model.recommend_batch(asked, k=k, threads=threads)
    strings = model.strings(ids) if model.id_kind("item") == "string" else None
    missing = np.uint64(2**64 - 1)
    for i, user in enumerate(asked):
        for rank in range(ids.shape[1]):
            if ids[i, rank] == missing:
                break
            item = strings[i, rank] if strings is not None else int(ids[i, rank])
            yield (user, item, float(scores[i, rank]), rank + 1)


def recommend_all(
    df: Any,
    model: str,
    k: int = 20,
    user_col: str = "user",
    threads: int = 1,
    shared: bool = False,
) -> Any:
    """The ``k`` best items of every user in ``df[user_col]``, as a DataFrame of
    ``(user, item, score, rank)``: the same items, scores and order as
    :meth:`pocketrec.Model.recommend_batch` gives for those users (rank 1 is the best).
    Users the model does not know get no rows.

    Args:
        df: a Spark DataFrame with a column of user ids (ints, or strs for string ids).
        model: the ``.prec`` file. Shipped to every executor with ``SparkContext.addFile``,
            unless ``shared`` says every executor can read this path itself (HDFS-mounted,
            NFS, a cluster image).
        k: items per user.
        user_col: the column of user ids.
        threads: threads per task (Spark already runs one task per core: keep 1 unless
            tasks have cores to themselves).
        shared: read ``model`` in place on the executors instead of shipping it.
    """
    from pyspark.sql import SparkSession
    from pyspark.sql.types import (
        FloatType,
        IntegerType,
        LongType,
        StringType,
        StructField,
        StructType,
    )

    from . import Model

    local = Model(model)  # checks the file on the driver, and gives the id kinds
    path = os.path.abspath(model)
    spark = SparkSession.getActiveSession() or df.sparkSession
    if not shared:
        spark.sparkContext.addFile(path)
    user_type = StringType() if local.id_kind("user") == "string" else LongType()
    item_type = StringType() if local.id_kind("item") == "string" else LongType()
    schema = StructType(
        [
            StructField(user_col, user_type, False),
            StructField("item", item_type, False),
            StructField("score", FloatType(), False),
            StructField("rank", IntegerType(), False),
        ]
    )
    shipped = not shared
    k, threads = int(k), int(threads)
    rdd = df.select(user_col).rdd.mapPartitions(
        lambda rows: _score_partition(rows, path, shipped, user_col, k, threads)
    )
    return spark.createDataFrame(rdd, schema)


__all__ = ["recommend_all"]
