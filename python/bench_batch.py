#!/usr/bin/env python3
"""Measures `Model.recommend_batch` on 1 thread against 2 threads (or more) in one run.

Exports random sparse tables (10,000 users, 100,000 items, d = 64, 10 % density by default),
then times `recommend_batch` over every user, alternating the thread counts so that both see
the same machine, and prints the best time of each, the queries per second and the speed-up.
The answers are checked to be identical across thread counts.

    python python/bench_batch.py [--users 10000] [--items 100000] [--values f16] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import sys

import numpy as np

# Run as `python python/bench_batch.py`, this directory comes first on sys.path, and its
# pocketrec/ (the source, without the compiled module) would hide the installed package.
if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)

import pocketrec  # noqa: E402


def table(rng: np.random.Generator, rows: int, dim: int, density: float) -> np.ndarray:
    t = rng.standard_normal((rows, dim)).astype(np.float32)
    t[rng.random((rows, dim)) >= density] = 0
    return t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("--items", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--density", type=float, default=0.1)
    p.add_argument("--values", default="f16")
    p.add_argument("--layout", default="rows")
    p.add_argument("-k", type=int, default=20)
    p.add_argument("--threads", default="1,2", help="thread counts to compare (first is the baseline)")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args()
    threads = [int(t) for t in args.threads.split(",")]

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "bench.prec")
        pocketrec.export(
            table(rng, args.users, args.dim, args.density),
            table(rng, args.items, args.dim, args.density),
            path,
            values=args.values,
            layout=args.layout,
        )
        model = pocketrec.Model(path)
        users = model.ids("user")
        model.recommend_batch(users[:256], k=args.k, threads=1)  # warm the mapping

        best = {t: float("inf") for t in threads}
        answers = {}
        for _ in range(args.repeat):
            for t in threads:
                start = time.perf_counter()
                ids, scores = model.recommend_batch(users, k=args.k, threads=t)
                best[t] = min(best[t], time.perf_counter() - start)
                answers.setdefault(t, (ids, scores))
        base = threads[0]
        for t in threads[1:]:
            assert np.array_equal(answers[t][0], answers[base][0]), "ids differ across threads"
            assert np.array_equal(answers[t][1], answers[base][1]), "scores differ across threads"

    result = {
        "users": args.users,
        "items": args.items,
        "dim": args.dim,
        "density": args.density,
        "values": args.values,
        "k": args.k,
        "cpus": os.cpu_count(),
        "kernels": pocketrec.simd_kernels(),
        "seconds": {str(t): round(best[t], 4) for t in threads},
        "queries_per_second": {str(t): round(args.users / best[t]) for t in threads},
        "speedup": {str(t): round(best[base] / best[t], 3) for t in threads[1:]},
    }
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"recommend_batch: {args.users:,} users x {args.items:,} items, d = {args.dim}, "
        f"density {args.density}, {args.values}, k = {args.k}, {pocketrec.simd_kernels()} kernels, "
        f"best of {args.repeat}"
    )
    for t in threads:
        print(f"  {t} thread{'s' if t > 1 else ' '}: {best[t]:.3f} s  ({args.users / best[t]:,.0f} queries/s)")
    for t in threads[1:]:
        print(f"  speed-up {t} threads vs {base}: {best[base] / best[t]:.2f}x")


if __name__ == "__main__":
    main()
