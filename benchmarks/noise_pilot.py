"""Pilot for choosing the realtime/digits training budget: seed-to-seed Kendall tau of mIoU on a few archs.

Usage: python benchmarks/noise_pilot.py --tag NAME --steps 600 --batch-size 32 [--lr 3e-3]
       [--data-kwargs JSON] [--archs 12] --out benchmarks/results/noise_pilot.jsonl

Trains the first ``--archs`` architectures of the bench-build plan with seeds 0 and 1 (1 torch thread),
appends one JSON line per job (resumable: finished (tag, arch, seed) jobs are skipped), then prints the
Kendall and Spearman tau between the two seeds' mIoU and the median seconds per job.
"""
import argparse
import json
import os
import statistics
import sys
import time

from scipy import stats

from saswot_gp.benchbuild import plan
from saswot_gp.spaces import get_space
from saswot_gp.training import train_arch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tag", required=True)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--data-kwargs", default="{}")
    ap.add_argument("--archs", type=int, default=12)
    ap.add_argument("--out", default="benchmarks/results/noise_pilot.jsonl")
    a = ap.parse_args()
    dk = json.loads(a.data_kwargs)
    dk.setdefault("seed", 0)
    sp = get_space("realtime")
    archs = [arch for arch, s in plan(sp, 200, 2, 50) if s == 0][: a.archs]
    done = {}
    if os.path.exists(a.out):
        for ln in open(a.out):
            r = json.loads(ln)
            if r["tag"] == a.tag:
                done[(r["arch"], r["seed"])] = r
    for arch in archs:
        for seed in (0, 1):
            if (arch, seed) in done:
                continue
            t0 = time.perf_counter()
            row = train_arch(arch, space=sp, steps=a.steps, batch_size=a.batch_size, lr=a.lr, seed=seed,
                             threads=1, data_kwargs=dk, latency=False)
            rec = {"tag": a.tag, "arch": arch, "seed": seed, "mIoU": row["mIoU"], "pixel_acc": row["pixel_acc"],
                   "params": row["params"], "seconds": time.perf_counter() - t0, "steps": a.steps,
                   "batch_size": a.batch_size, "lr": row["lr"], "data_kwargs": dk}
            with open(a.out, "a") as fh:
                fh.write(json.dumps(rec) + "\n")
            done[(arch, seed)] = rec
            print(a.tag, f"{rec['mIoU']:.3f}", f"{rec['seconds']:.0f}s", arch, seed, flush=True)
    pairs = [(done[(x, 0)]["mIoU"], done[(x, 1)]["mIoU"]) for x in archs if (x, 0) in done and (x, 1) in done]
    x, y = zip(*pairs)
    secs = [r["seconds"] for r in done.values()]
    print(json.dumps({"tag": a.tag, "pairs": len(pairs), "kendall": stats.kendalltau(x, y).statistic,
                      "spearman": stats.spearmanr(x, y).statistic, "median_s": statistics.median(secs),
                      "mean_mIoU": statistics.mean(x + y)}))


if __name__ == "__main__":
    sys.exit(main())
