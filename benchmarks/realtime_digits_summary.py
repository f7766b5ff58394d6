"""Summary of the embedded realtime/digits ground truth (issue 4): noise ceiling, params/FLOPs vs mIoU, cost.

Usage: python benchmarks/realtime_digits_summary.py [CSV] [--out benchmarks/results/realtime_digits]

Reads a ``saswot-gp bench build`` CSV (default: the shipped ``saswot_gp/resources/realtime-digits.csv``)
and writes OUT.json, OUT.md and OUT.png (seed 0 vs seed 1 mIoU; mIoU vs params, FLOPs and latency).
Correlations of params, FLOPs and latency use the seed-averaged mIoU of every architecture (what
``load_benchmark`` gives ``evolve``); the noise ceiling uses the architectures trained with both seeds.
Intervals: percentile bootstrap over architectures, 2000 resamples, seed 0.
"""
import argparse
import csv
import json
import statistics
import sys
from pathlib import Path

import numpy as np
from scipy import stats

DEFAULT = Path(__file__).resolve().parent.parent / "saswot_gp" / "resources" / "realtime-digits.csv"


def _boot(x, y, fn, n=2000, seed=0):
    rng = np.random.default_rng(seed)
    x, y = np.asarray(x), np.asarray(y)
    vals = []
    for _ in range(n):
        i = rng.integers(0, len(x), len(x))
        vals.append(fn(x[i], y[i]).statistic)
    return [float(np.nanpercentile(vals, 2.5)), float(np.nanpercentile(vals, 97.5))]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("csv", nargs="?", default=str(DEFAULT))
    ap.add_argument("--out", default="benchmarks/results/realtime_digits")
    a = ap.parse_args()
    lines = open(a.csv, encoding="utf-8").read().splitlines()
    header = [ln for ln in lines if ln.startswith("#")]
    rows = list(csv.DictReader([ln for ln in lines if not ln.startswith("#")]))
    by = {}
    for r in rows:
        by.setdefault(r["arch"], {})[int(r["seed"])] = r
    pairs = [(v[0], v[1]) for v in by.values() if 0 in v and 1 in v]
    m0 = [float(p[0]["mIoU"]) for p in pairs]
    m1 = [float(p[1]["mIoU"]) for p in pairs]
    archs = list(by)
    miou = np.array([statistics.fmean(float(r["mIoU"]) for r in by[x].values()) for x in archs])
    col = lambda c: np.array([statistics.fmean(float(r[c]) for r in by[x].values()) for x in archs])
    res = {"csv": str(a.csv), "settings": header, "rows": len(rows), "architectures": len(archs),
           "two_seed_architectures": len(pairs),
           "noise_ceiling": {"kendall": float(stats.kendalltau(m0, m1).statistic),
                             "kendall_ci95": _boot(m0, m1, stats.kendalltau),
                             "spearman": float(stats.spearmanr(m0, m1).statistic),
                             "spearman_ci95": _boot(m0, m1, stats.spearmanr),
                             "mean_abs_seed_difference": float(np.mean(np.abs(np.array(m0) - np.array(m1))))},
           "mIoU": {"min": float(miou.min()), "median": float(np.median(miou)), "max": float(miou.max()),
                    "std": float(miou.std())},
           "vs_mIoU": {}}
    for c in ("params", "flops", "latency_ms"):
        v = col(c)
        res["vs_mIoU"][c] = {"kendall": float(stats.kendalltau(v, miou).statistic),
                             "kendall_ci95": _boot(v, miou, stats.kendalltau),
                             "spearman": float(stats.spearmanr(v, miou).statistic)}
    tt = np.array([float(r["train_time_s"]) for r in rows])
    res["train_time_s"] = {"median": float(np.median(tt)), "mean": float(tt.mean()), "total_h": float(tt.sum() / 3600)}
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=2))
    nc, v = res["noise_ceiling"], res["vs_mIoU"]
    md = [f"Ground truth `{Path(a.csv).name}`: {len(rows)} rows, {len(archs)} architectures, {len(pairs)} with two seeds.",
          "", "| quantity | Kendall [95% CI] | Spearman |", "|---|---:|---:|",
          f"| seed 0 vs seed 1 mIoU (noise ceiling, {len(pairs)} archs) | {nc['kendall']:.3f} "
          f"[{nc['kendall_ci95'][0]:.3f}, {nc['kendall_ci95'][1]:.3f}] | {nc['spearman']:.3f} |"]
    for c in ("params", "flops", "latency_ms"):
        md.append(f"| {c} vs mean mIoU ({len(archs)} archs) | {v[c]['kendall']:.3f} "
                  f"[{v[c]['kendall_ci95'][0]:.3f}, {v[c]['kendall_ci95'][1]:.3f}] | {v[c]['spearman']:.3f} |")
    md += ["", f"mIoU (seed mean): min {res['mIoU']['min']:.3f}, median {res['mIoU']['median']:.3f}, max "
           f"{res['mIoU']['max']:.3f}; mean |seed 0 - seed 1| {nc['mean_abs_seed_difference']:.3f}. Training time per "
           f"job: median {res['train_time_s']['median']:.1f} s, mean {res['train_time_s']['mean']:.1f} s, total "
           f"{res['train_time_s']['total_h']:.2f} h of one core (training loop only; 2 jobs in parallel)."]
    out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(1, 3, figsize=(13, 4))
    ax[0].scatter(m0, m1, s=12)
    lim = [min(m0 + m1), max(m0 + m1)]
    ax[0].plot(lim, lim, "k--", lw=0.8)
    ax[0].set(xlabel="mIoU seed 0", ylabel="mIoU seed 1", title=f"noise ceiling: Kendall {nc['kendall']:.2f}")
    ax[1].scatter(col("params") / 1e6, miou, s=10)
    ax[1].set(xscale="log", xlabel="params (M)", ylabel="mIoU", title=f"params: Kendall {v['params']['kendall']:.2f}")
    ax[2].scatter(col("latency_ms"), miou, s=10)
    ax[2].set(xscale="log", xlabel="latency ms (batch 1, 1 thread)", ylabel="mIoU",
              title=f"latency: Kendall {v['latency_ms']['kendall']:.2f}")
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=110)
    return 0


if __name__ == "__main__":
    sys.exit(main())
