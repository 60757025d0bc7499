"""Carves a validation split out of a LightGCN-format training file, for choosing training
settings without looking at the test set: each user's items are shuffled with a fixed seed and
`fraction` of them (rounded, at least one when the user has two or more) are held out.

    python3 bench/split_validation.py TRAIN.txt OUT_DIR [--fraction 0.2] [--seed 7]

writes OUT_DIR/train.txt (the rest) and OUT_DIR/valid.txt, both in the LightGCN format.
"""
import argparse
import os
import random

parser = argparse.ArgumentParser()
parser.add_argument("train")
parser.add_argument("out")
parser.add_argument("--fraction", type=float, default=0.2)
parser.add_argument("--seed", type=int, default=7)
args = parser.parse_args()

rng = random.Random(args.seed)
os.makedirs(args.out, exist_ok=True)
kept_lines, held_lines = [], []
kept_n = held_n = 0
with open(args.train) as f:
    for line in f:
        fields = line.split()
        if not fields:
            continue
        user, items = fields[0], list(dict.fromkeys(fields[1:]))
        rng.shuffle(items)
        held = round(args.fraction * len(items)) if len(items) >= 2 else 0
        held = max(held, 1) if len(items) >= 2 else 0
        keep, out = sorted(items[held:], key=int), sorted(items[:held], key=int)
        kept_lines.append(" ".join([user] + keep))
        if out:
            held_lines.append(" ".join([user] + out))
        kept_n += len(keep)
        held_n += len(out)
with open(os.path.join(args.out, "train.txt"), "w") as f:
    f.write("\n".join(kept_lines) + "\n")
with open(os.path.join(args.out, "valid.txt"), "w") as f:
    f.write("\n".join(held_lines) + "\n")
print(f"{kept_n} training and {held_n} validation interactions, {len(held_lines)} users")
