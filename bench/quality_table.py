"""Prints the Markdown table of docs/QUALITY.md from `pocketrec train --json` summaries (the
first one must be the dense model's)."""
import json
import sys

runs = [json.load(open(p)) for p in sys.argv[1:]]
dense = runs[0]
dense_recall = dense["files"][0]["eval"]["recall@20"]
print("| density | values | Recall@20 | NDCG@20 | kept | bytes | of dense f32 | training s | teacher s | setup s |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for run, path in zip(runs, sys.argv[1:]):
    density = run["nnz"] / ((run["users"] + run["items"]) * 64)
    label = "dense" if run is dense else f"{density:.3f}"
    for f in run["files"]:
        e = f["eval"]
        print(
            f"| {label} | {f['values']} | {e['recall@20']:.4f} | {e['ndcg@20']:.4f} | "
            f"{100 * e['recall@20'] / dense_recall:.1f} % | {f['bytes']:,} | "
            f"{100 * f['bytes'] / run['dense_f32_bytes']:.1f} % | {run['train_seconds']:.0f} | "
            f"{run.get('teacher_seconds') or 0:.0f} | {run['setup_seconds']:.1f} |"
        )
