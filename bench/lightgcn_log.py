"""Reads a LightGCN-format training file (`user item item ...` per line) into the arrays the
PyTorch twins of pocketrec's training steps sample from (bench/torch_mf_bpr.py,
bench/torch_mf_softmax.py)."""
import numpy as np


def read_log(path):
    """Returns (n_users, n_items, pairs, items, starts, counts, active): the distinct
    `user * n_items + item` keys in increasing order, each key's item, user `u`'s items at
    `items[starts[u]:starts[u + 1]]` (`counts[u]` of them), and the users with at least one."""
    users, items = [], []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 2:
                continue
            u = int(parts[0])
            for it in parts[1:]:
                users.append(u)
                items.append(int(it))
    users, items = np.array(users, dtype=np.int64), np.array(items, dtype=np.int64)
    n_users, n_items = int(users.max()) + 1, int(items.max()) + 1
    pairs = np.unique(users * n_items + items)
    users, items = pairs // n_items, pairs % n_items
    starts = np.searchsorted(users, np.arange(n_users + 1))
    counts = np.diff(starts)
    active = np.nonzero(counts > 0)[0]
    return n_users, n_items, pairs, items, starts, counts, active
