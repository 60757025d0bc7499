#!/usr/bin/env python3
"""Evaluation over time of incremental training (docs/INCREMENTAL.md).

    python3 bench/incremental.py [--log LOG | --generate-seed S] [--periods N] [--out DIR]
        [--density D] [--prior-strength P] [--churn C] [--mask-fraction M] [--resume-epochs E]
        [--resume-lr LR] [--resume-lr-end F] [--resume-lr-decay-start F]
        [--replay-share R | --replay-budget B] [--fold-in] [--json F]

A timestamped log (by default one `pocketrec generate-log` writes: drifting taste clusters,
8 weekly periods, seed 42) is split into periods with `pocketrec split --by time` (or, with
--by interactions, equal numbers of interactions). For t = 1 .. T-1 every model is tested on
period t+1 with `pocketrec eval` (each user's items of periods 1..t excluded; users the model
has no row for are cold and counted apart):

  (a) frozen:      the model trained on period 1 only;
  (b) incremental: period 1's model, then `train --resume` with each later period in turn;
  (c) retrained:   trained from scratch on periods 1..t.

The table gives Recall@20, NDCG@20, training seconds (dense teacher or master included),
the fraction of rows an update changed, and the model's active weights against its budget.
With --replay-share R, each update also replays a random sample of the earlier periods'
interactions of the users who come back, R times as many as the new period has (all of them if
there are fewer: `train --replay HISTORY --replay-share R`). With --replay-budget B instead,
each update's share is chosen to spend B times the retraining's work of the same step, counted
as interactions times epochs (which tracks the measured seconds: docs/INCREMENTAL.md): the
share grows with the history, `B * (E_retrain / E_update) * |periods 1..t| / |period t| - 1`.
With --fold-in, every model is evaluated as a device serves it with users folded in: each
test user's vector is folded in from their interactions of periods 1..t through the file's
fold-in section (`pocketrec eval --fold-in`), the three models alike; users still count as cold
only when they have no interaction before period t+1.
Hyperparameters: --prior-strength, --churn, --mask-fraction, --resume-epochs, the updates'
learning rate and schedule (--resume-lr*: train --resume's --lr, --lr-end, --lr-decay-start)
and --replay-share; choose them
on a log of another seed (--generate-seed 7, or another --seed of bench/shuffle_to_log.py),
never on the reported one.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(args, capture=True):
    result = subprocess.run(args, capture_output=capture, text=True)
    if result.returncode != 0:
        sys.stderr.write(result.stderr)
        raise SystemExit(f"failed: {' '.join(args)}")
    return result.stdout


def concat(paths, out):
    """The periods' lines in one log (the first file's header kept)."""
    with open(out, "w") as f:
        for k, p in enumerate(paths):
            with open(p) as src:
                lines = src.read().splitlines()
            if k > 0 and lines and lines[0].startswith("user"):
                lines = lines[1:]
            f.write("\n".join(lines) + "\n")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--log", help="a timestamped interaction log (default: generated)")
    ap.add_argument("--generate-seed", type=int, default=42)
    ap.add_argument("--periods", type=int, default=8)
    ap.add_argument("--by", default="time", choices=["time", "interactions"])
    ap.add_argument("--out", default=None)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--density", type=float, default=0.1)
    ap.add_argument("--epochs", type=int, default=None, help="first and retrained models")
    ap.add_argument("--resume-epochs", type=int, default=None)
    ap.add_argument("--prior-strength", type=float, default=None)
    ap.add_argument("--churn", type=float, default=None)
    ap.add_argument("--mask-fraction", type=float, default=None)
    ap.add_argument("--resume-lr", type=float, default=None,
                    help="the updates' learning rate (default: train's)")
    ap.add_argument("--resume-lr-end", type=float, default=None)
    ap.add_argument("--resume-lr-decay-start", type=float, default=None)
    ap.add_argument("--replay-share", type=float, default=0.0,
                    help="replay this many earlier interactions per new one (0: none)")
    ap.add_argument("--replay-budget", type=float, default=None,
                    help="choose each update's replay share to spend this fraction of the "
                         "retraining's work (needs --epochs and --resume-epochs)")
    ap.add_argument("--fold-in", action="store_true",
                    help="evaluate every model with users folded in from their history")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="also write the rows as JSON here")
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/pocketrec"))
    a = ap.parse_args()
    if a.replay_budget is not None and not (a.epochs and a.resume_epochs):
        ap.error("--replay-budget needs --epochs and --resume-epochs")
    out = a.out or tempfile.mkdtemp(prefix="pocketrec-incremental-")
    os.makedirs(out, exist_ok=True)
    b = a.bin
    log = a.log
    if log is None:
        log = os.path.join(out, "log.tsv")
        run([b, "generate-log", "-o", log, "--periods", str(a.periods),
             "--seed", str(a.generate_seed)])
    split = json.loads(run([b, "split", log, "-o", os.path.join(out, "periods"),
                            "--periods", str(a.periods), "--by", a.by, "--json"]))
    periods = [p["path"] for p in split]
    common = ["--dim", str(a.dim), "--density", str(a.density), "--threads", str(a.threads),
              "--json", "-q"]
    if a.epochs:
        common += ["--epochs", str(a.epochs)]
    update_flags = ["--threads", str(a.threads), "--json", "-q"]
    for flag, value in [("--epochs", a.resume_epochs), ("--prior-strength", a.prior_strength),
                        ("--churn", a.churn), ("--mask-fraction", a.mask_fraction),
                        ("--lr", a.resume_lr), ("--lr-end", a.resume_lr_end),
                        ("--lr-decay-start", a.resume_lr_decay_start)]:
        if value is not None:
            update_flags += [flag, str(value)]

    def train(name, log_path, extra):
        # Models trained from scratch do not depend on the update's settings: a summary left
        # by an earlier run with the same --out is reused (delete it to train again).
        cached = os.path.join(out, name + ".summary.json")
        if os.path.exists(cached) and all(os.path.exists(x) for x in [
                os.path.join(out, name + ".prec")] + [e for e in extra if e.endswith(".ckpt")]):
            with open(cached) as f:
                return json.load(f)
        summary = json.loads(run([b, "train", "--train", log_path, "-o",
                                  os.path.join(out, name + ".prec")] + common + extra))
        with open(cached, "w") as f:
            json.dump(summary, f)
        return summary

    def evaluate(name, history, test):
        return json.loads(run([b, "eval", os.path.join(out, name + ".prec"), "--train", history,
                               "--test", test, "--json", "-q", "--threads", str(a.threads)]
                              + (["--fold-in"] if a.fold_in else [])))

    def seconds(summary):
        return summary["train_seconds"] + (summary.get("teacher_seconds") or 0.0)

    rows = []
    first = train("first", periods[0], ["--checkpoint", os.path.join(out, "c1.ckpt")])
    print(f"update flags: {' '.join(update_flags)}", file=sys.stderr)
    for t in range(1, len(periods)):
        history = concat(periods[:t], os.path.join(out, f"history-{t}.tsv"))
        test = periods[t]
        if t == 1:
            inc, retrain = first, first
            inc_name, retrain_name = "first", "first"
        else:
            inc_name = f"inc-{t}"
            replay = []
            share = a.replay_share
            if a.replay_budget is not None:
                count = lambda path: sum(1 for line in open(path)
                                         if line.strip() and not line.startswith("user"))
                new = count(periods[t - 1])
                everything = sum(count(p) for p in periods[:t])
                share = max(0.0, round(a.replay_budget * a.epochs / a.resume_epochs
                                       * everything / new - 1.0, 3))
                print(f"update {t}: replay share {share} ({everything} interactions so far, "
                      f"{new} new)", file=sys.stderr)
            if share > 0:
                replay = ["--replay", os.path.join(out, f"history-{t - 1}.tsv"),
                          "--replay-share", str(share)]
            inc = json.loads(run([b, "train", "--resume", os.path.join(out, f"c{t - 1}.ckpt"),
                                  "--train", periods[t - 1], "-o",
                                  os.path.join(out, inc_name + ".prec"), "--checkpoint",
                                  os.path.join(out, f"c{t}.ckpt")] + update_flags + replay))
            retrain_name = f"retrain-{t}"
            retrain = train(retrain_name, history, [])
        for method, name, summary in [("frozen", "first", first), ("incremental", inc_name, inc),
                                      ("retrained", retrain_name, retrain)]:
            e = evaluate(name, history, test)
            update = summary.get("update") or {}
            rows.append({
                "t": t, "method": method, "recall": e["recall@20"], "ndcg": e["ndcg@20"],
                "users": e["users"], "cold_users": e.get("cold_users", 0),
                "seconds": 0.0 if method == "frozen" and t > 1 else seconds(summary),
                "changed_fraction": update.get("changed_fraction"),
                "nnz": summary["nnz"], "rows": summary["users"] + summary["items"],
            })
            print(json.dumps(rows[-1]), file=sys.stderr)
    print(f"log {log}, periods by {a.by}, d = {a.dim}, density {a.density}, output {out}"
          + (", users folded in from their history" if a.fold_in else ", stored user rows"))
    print(f"updates: {' '.join(update_flags)}"
          + (f", replaying {a.replay_share} earlier interactions per new one"
             if a.replay_share and a.replay_budget is None else "")
          + (f", replay shares chosen to spend {a.replay_budget} of the retraining's work"
             if a.replay_budget is not None else ""))
    print("| test period | model | Recall@20 | NDCG@20 | users (cold) | training s | rows changed | non-zeros / budget |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        budget = round(a.density * r["rows"] * a.dim)
        changed = "" if r["changed_fraction"] is None else f"{100 * r['changed_fraction']:.1f} %"
        print(f"| {r['t'] + 1} | {r['method']} | {r['recall']:.4f} | {r['ndcg']:.4f} | "
              f"{r['users']} ({r['cold_users']}) | {r['seconds']:.1f} | {changed} | "
              f"{r['nnz']} / {budget} |")
    later = [r for r in rows if r["t"] > 1]
    if later:
        by = {m: [r for r in later if r["method"] == m] for m in ["frozen", "incremental", "retrained"]}
        mean = lambda xs: sum(xs) / max(len(xs), 1)
        ratios = [i["recall"] / max(r["recall"], 1e-12) for i, r in zip(by["incremental"], by["retrained"])]
        time_ratio = sum(r["seconds"] for r in by["incremental"]) / max(
            sum(r["seconds"] for r in by["retrained"]), 1e-12)
        print()
        print(f"periods 3..{len(periods)}: incremental Recall@20 / retrained, mean {mean(ratios):.3f} "
              f"(min {min(ratios):.3f}); training time incremental / retrained {time_ratio:.3f}; "
              f"mean Recall@20 frozen {mean([r['recall'] for r in by['frozen']]):.4f}, "
              f"incremental {mean([r['recall'] for r in by['incremental']]):.4f}, "
              f"retrained {mean([r['recall'] for r in by['retrained']]):.4f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
