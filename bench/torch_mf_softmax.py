"""The cosine-loss training step of `pocketrec train --loss ssm|bsl|ccl`, in PyTorch on the CPU,
for a throughput comparison (bench/throughput.sh runs both in one go).

Same recipe as pocketrec's: pairs drawn like its triples (a user uniformly among users with items,
a positive uniformly among the user's items), `--negatives` item rows drawn uniformly per batch and
shared by the whole batch, user and item rows L2-normalised, scores S = U N^T as one matrix
product, and the loss (docs/TRAINING.md, *Losses*):

    ssm:  -s+/t + log(exp(s+/t) + sum_j exp(s_j/t))
    bsl:  -s+/t + power * log(sum_j exp(s_j/t))
    ccl:  (1 - s+) + w/N sum_j max(0, s_j - margin)

then lazy Adam on the batch's rows (sparse embedding gradients, torch.optim.SparseAdam), which is
pocketrec's update.

Prints one JSON line: {"loss": ..., "threads": ..., "interactions_per_second": ...}.
"""
import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F

from lightgcn_log import read_log


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--train", required=True)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=2048)
    p.add_argument("--negatives", type=int, default=512)
    p.add_argument("--loss", choices=["ssm", "bsl", "ccl"], default="bsl")
    p.add_argument("--temperature", type=float, default=0.1)
    p.add_argument("--power", type=float, default=1.2)
    p.add_argument("--margin", type=float, default=0.9)
    p.add_argument("--negative-weight", type=float, default=150.0)
    p.add_argument("--lr", type=float, default=0.02)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=42)
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    n_users, n_items, pairs, items, starts, counts, active = read_log(a.train)

    u_emb = torch.nn.Embedding(n_users, a.dim, sparse=True)
    i_emb = torch.nn.Embedding(n_items, a.dim, sparse=True)
    torch.nn.init.normal_(u_emb.weight, std=0.1)
    torch.nn.init.normal_(i_emb.weight, std=0.1)
    opt = torch.optim.SparseAdam(list(u_emb.parameters()) + list(i_emb.parameters()), lr=a.lr)

    def sample(n):
        u = active[rng.integers(0, len(active), n)]
        pos = items[starts[u] + (rng.random(n) * counts[u]).astype(np.int64)]
        neg = rng.integers(0, n_items, a.negatives)
        return torch.from_numpy(u), torch.from_numpy(pos), torch.from_numpy(neg)

    def loss_of(sp, sn):
        t = a.temperature
        if a.loss == "ssm":
            return (-sp / t + torch.logsumexp(torch.cat([sp[:, None], sn], 1) / t, 1)).mean()
        if a.loss == "bsl":
            return (-sp / t + a.power * torch.logsumexp(sn / t, 1)).mean()
        w = a.negative_weight / sn.shape[1]
        return (1 - sp + w * F.relu(sn - a.margin).sum(1)).mean()

    per_epoch = len(pairs)
    started = time.perf_counter()
    done = 0
    for _ in range(a.epochs):
        left = per_epoch
        while left > 0:
            n = min(a.batch_size, left)
            u, i, j = sample(n)
            eu = F.normalize(u_emb(u), dim=1)
            ei = F.normalize(i_emb(i), dim=1)
            ej = F.normalize(i_emb(j), dim=1)
            loss = loss_of((eu * ei).sum(1), eu @ ej.T)
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
                "loss": a.loss,
                "negatives": a.negatives,
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
