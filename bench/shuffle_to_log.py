#!/usr/bin/env python3
"""A LightGCN split file (`user item item ...`) as a timestamped log in a fixed random order.

    python3 bench/shuffle_to_log.py TRAIN.txt OUT.tsv [--seed 7]

Every (user, item) pair becomes a line `user<TAB>item<TAB>1<TAB>t` where t (unix seconds) is
its position in a random permutation drawn with the seed: there is no drift, so dealing the log
into periods (`pocketrec split --by interactions`) gives periods from one distribution, the
check that incremental updates match retraining when nothing changes (docs/INCREMENTAL.md).
"""

import argparse
import random


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("train")
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    pairs = []
    with open(a.train) as f:
        for line in f:
            fields = line.split()
            pairs.extend((fields[0], item) for item in fields[1:])
    random.Random(a.seed).shuffle(pairs)
    start = 1_700_000_000
    with open(a.out, "w") as f:
        f.write("user\titem\trating\ttimestamp\n")
        for k, (u, i) in enumerate(pairs):
            f.write(f"{u}\t{i}\t1\t{start + k}\n")
    print(f"{len(pairs)} interactions in a random order (seed {a.seed}) -> {a.out}")


if __name__ == "__main__":
    main()
