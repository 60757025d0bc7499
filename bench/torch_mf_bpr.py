"""The MF-BPR training step of `pocketrec train`, in PyTorch on the CPU, for a throughput
comparison (bench/throughput.sh runs both in one go).

Same recipe: triples drawn like pocketrec (a user uniformly among users with items, a positive
uniformly among the user's items, a negative uniformly among the items the user has not
interacted with), batch loss mean(softplus(-(x_ui - x_uj))) + l2/2 * (|u|^2 + |v_i|^2 + |v_j|^2)
/ B, Adam. `--optimizer sparse` uses sparse embedding gradients and torch.optim.SparseAdam (lazy
Adam on the batch's rows, pocketrec's update); `--optimizer dense` is the textbook
nn.Embedding + torch.optim.Adam, which updates every row at every step.

Prints one JSON line: {"optimizer": ..., "threads": ..., "interactions_per_second": ...}.
"""
import argparse
import json
import time

import numpy as np
import torch

from lightgcn_log import read_log


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--train", required=True)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=2048)
    p.add_argument("--lr", type=float, default=0.005)
    p.add_argument("--l2", type=float, default=0.01)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--optimizer", choices=["sparse", "dense"], default="sparse")
    p.add_argument("--seed", type=int, default=42)
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    n_users, n_items, pairs, items, starts, counts, active = read_log(a.train)

    def is_positive(u, i):
        keys = u * n_items + i
        at = np.minimum(np.searchsorted(pairs, keys), len(pairs) - 1)
        return pairs[at] == keys

    sparse = a.optimizer == "sparse"
    u_emb = torch.nn.Embedding(n_users, a.dim, sparse=sparse)
    i_emb = torch.nn.Embedding(n_items, a.dim, sparse=sparse)
    torch.nn.init.normal_(u_emb.weight, std=0.1)
    torch.nn.init.normal_(i_emb.weight, std=0.1)
    params = list(u_emb.parameters()) + list(i_emb.parameters())
    opt = torch.optim.SparseAdam(params, lr=a.lr) if sparse else torch.optim.Adam(params, lr=a.lr)

    def sample(n):
        u = active[rng.integers(0, len(active), n)]
        pos = items[starts[u] + (rng.random(n) * counts[u]).astype(np.int64)]
        neg = rng.integers(0, n_items, n)
        bad = is_positive(u, neg)
        while bad.any():
            neg[bad] = rng.integers(0, n_items, int(bad.sum()))
            bad[bad] = is_positive(u[bad], neg[bad])
        return torch.from_numpy(u), torch.from_numpy(pos), torch.from_numpy(neg)

    per_epoch = len(pairs)
    started = time.perf_counter()
    done = 0
    for _ in range(a.epochs):
        left = per_epoch
        while left > 0:
            n = min(a.batch_size, left)
            u, i, j = sample(n)
            eu, ei, ej = u_emb(u), i_emb(i), i_emb(j)
            x = (eu * (ei - ej)).sum(1)
            reg = (eu.pow(2).sum() + ei.pow(2).sum() + ej.pow(2).sum()) / (2 * n)
            loss = torch.nn.functional.softplus(-x).mean() + a.l2 * reg
            opt.zero_grad()
            loss.backward()
            opt.step()
            left -= n
            done += n
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "implementation": "pytorch " + torch.__version__,
                "optimizer": a.optimizer,
                "threads": a.threads,
                "interactions": done,
                "seconds": seconds,
                "interactions_per_second": done / seconds,
                "final_loss": float(loss.detach()),
            }
        )
    )


if __name__ == "__main__":
    main()
