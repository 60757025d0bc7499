#!/usr/bin/env python3
"""topk_equal.py EXPECTED ACTUAL: checks that two files of top-k JSON lines
({"user": U, "items": [{"item": I, "score": S}, ...]}, as `pocketrec recommend --json` and
ffi/examples/recommend.c print them) hold the same users, the same items in the same order,
and the same scores as 32-bit floats (the texts may differ: 3.21 and 3.21000004 are one float).
Exit status 0 when equal, 1 otherwise (with the first difference)."""
import json
import struct
import sys


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def main():
    expected, actual = load(sys.argv[1]), load(sys.argv[2])
    if len(expected) != len(actual) or not expected:
        print(f"topk_equal: {len(expected)} lines expected, {len(actual)} found")
        return 1
    for n, (e, a) in enumerate(zip(expected, actual), 1):
        if e["user"] != a["user"] or len(e["items"]) != len(a["items"]):
            print(f"topk_equal: line {n}: {e} != {a}")
            return 1
        for rank, (ei, ai) in enumerate(zip(e["items"], a["items"]), 1):
            if ei["item"] != ai["item"] or f32(ei["score"]) != f32(ai["score"]):
                print(f"topk_equal: line {n} (user {e['user']}), rank {rank}: {ei} != {ai}")
                return 1
    print(f"topk_equal: {len(expected)} lists equal")
    return 0


if __name__ == "__main__":
    sys.exit(main())
