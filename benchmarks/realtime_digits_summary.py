"""Summary of the embedded realtime/digits ground truth (issue 4): noise ceiling, params/FLOPs vs mIoU, cost.

Usage: python benchmarks/realtime_digits_summary.py [CSV] [--out benchmarks/results/realtime_digits]

Reads a ``saswot-gp bench build`` CSV (default: the shipped ``saswot_gp/resources/realtime-digits.csv``)
and writes OUT.json, OUT.md and OUT.png (seed 0 vs seed 1 mIoU; mIoU vs params, FLOPs and latency).
Correlations of params, FLOPs and latency use the seed-averaged mIoU of every architecture (what
``load_benchmark`` gives ``evolve``); the noise ceiling uses the architectures trained with both seeds.
Intervals: percentile bootstrap over architectures, 2000 resamples, seed 0.
"""
import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

import saswot_gp
from saswot_gp.benchbuild import done_rows, read_header
from saswot_gp.groundtruth.loaders import format_csv_header
from saswot_gp.io import atomic_write_json, atomic_write_text
from saswot_gp.ranking import rank_correlations

DEFAULT = Path(saswot_gp.__file__).resolve().parent / "resources" / "realtime-digits.csv"
N_BOOT = 2000  # bootstrap resamples of the 95% intervals (seed 0)


def load(path: str):
    """The CSV's settings lines, its rows, and the rows by architecture and seed (``{arch: {seed: row}}``)."""
    header = format_csv_header(read_header(path)).splitlines()
    done = done_rows(Path(path))
    by = {}
    for (arch, seed), r in done.items():
        by.setdefault(arch, {})[seed] = r
    return header, list(done.values()), by


def seed_mean(by: dict, column: str) -> np.ndarray:
    """``column`` of every architecture, averaged over its seeds (architectures in file order)."""
    return np.array([statistics.fmean(float(r[column]) for r in seeds.values()) for seeds in by.values()])


def ranked(x, y, keys=("kendall", "spearman")) -> dict:
    """Kendall and Spearman of ``x`` with ``y``, and the bootstrap 95% interval of each of ``keys`` (as [lo, hi])."""
    r = rank_correlations(x, y, n_boot=N_BOOT, seed=0)
    out = {}
    for name in ("kendall", "spearman"):
        out[name] = r[name]
        if name in keys:
            out[f"{name}_ci95"] = [r[f"{name}_lo"], r[f"{name}_hi"]]
    return out


def summarise(path: str, header: list, rows: list, by: dict, m0: list, m1: list) -> dict:
    """OUT.json: the noise ceiling (seed 0 vs seed 1), the mIoU range, params/FLOPs/latency vs mIoU, training cost."""
    miou = seed_mean(by, "mIoU")
    nc = ranked(m0, m1)
    res = {"csv": str(path), "settings": header, "rows": len(rows), "architectures": len(by),
           "two_seed_architectures": len(m0),
           "noise_ceiling": {"kendall": nc["kendall"], "kendall_ci95": nc["kendall_ci95"],
                             "spearman": nc["spearman"], "spearman_ci95": nc["spearman_ci95"],
                             "mean_abs_seed_difference": float(np.mean(np.abs(np.array(m0) - np.array(m1))))},
           "mIoU": {"min": float(miou.min()), "median": float(np.median(miou)), "max": float(miou.max()),
                    "std": float(miou.std())},
           "vs_mIoU": {c: ranked(seed_mean(by, c), miou, keys=("kendall",)) for c in ("params", "flops", "latency_ms")}}
    tt = np.array([float(r["train_time_s"]) for r in rows])
    res["train_time_s"] = {"median": float(np.median(tt)), "mean": float(tt.mean()), "total_h": float(tt.sum() / 3600)}
    return res


def markdown(res: dict) -> list:
    """The lines of OUT.md."""
    nc, v = res["noise_ceiling"], res["vs_mIoU"]
    md = [f"Ground truth `{Path(res['csv']).name}`: {res['rows']} rows, {res['architectures']} architectures, "
          f"{res['two_seed_architectures']} with two seeds.",
          "", "| quantity | Kendall [95% CI] | Spearman |", "|---|---:|---:|",
          f"| seed 0 vs seed 1 mIoU (noise ceiling, {res['two_seed_architectures']} archs) | {nc['kendall']:.3f} "
          f"[{nc['kendall_ci95'][0]:.3f}, {nc['kendall_ci95'][1]:.3f}] | {nc['spearman']:.3f} |"]
    for c in ("params", "flops", "latency_ms"):
        md.append(f"| {c} vs mean mIoU ({res['architectures']} archs) | {v[c]['kendall']:.3f} "
                  f"[{v[c]['kendall_ci95'][0]:.3f}, {v[c]['kendall_ci95'][1]:.3f}] | {v[c]['spearman']:.3f} |")
    md += ["", f"mIoU (seed mean): min {res['mIoU']['min']:.3f}, median {res['mIoU']['median']:.3f}, max "
           f"{res['mIoU']['max']:.3f}; mean |seed 0 - seed 1| {nc['mean_abs_seed_difference']:.3f}. Training time per "
           f"job: median {res['train_time_s']['median']:.1f} s, mean {res['train_time_s']['mean']:.1f} s, total "
           f"{res['train_time_s']['total_h']:.2f} h of one core (training loop only; 2 jobs in parallel)."]
    return md


def plot(res: dict, by: dict, m0: list, m1: list, path: Path) -> None:
    """Seed 0 vs seed 1 mIoU, and mIoU against params and against latency."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    nc, v, miou = res["noise_ceiling"], res["vs_mIoU"], seed_mean(by, "mIoU")
    fig, ax = plt.subplots(1, 3, figsize=(13, 4))
    ax[0].scatter(m0, m1, s=12)
    lim = [min(m0 + m1), max(m0 + m1)]
    ax[0].plot(lim, lim, "k--", lw=0.8)
    ax[0].set(xlabel="mIoU seed 0", ylabel="mIoU seed 1", title=f"noise ceiling: Kendall {nc['kendall']:.2f}")
    ax[1].scatter(seed_mean(by, "params") / 1e6, miou, s=10)
    ax[1].set(xscale="log", xlabel="params (M)", ylabel="mIoU", title=f"params: Kendall {v['params']['kendall']:.2f}")
    ax[2].scatter(seed_mean(by, "latency_ms"), miou, s=10)
    ax[2].set(xscale="log", xlabel="latency ms (batch 1, 1 thread)", ylabel="mIoU",
              title=f"latency: Kendall {v['latency_ms']['kendall']:.2f}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("csv", nargs="?", default=str(DEFAULT))
    ap.add_argument("--out", default="benchmarks/results/realtime_digits")
    a = ap.parse_args()
    header, rows, by = load(a.csv)
    pairs = [(v[0], v[1]) for v in by.values() if 0 in v and 1 in v]
    m0 = [float(p[0]["mIoU"]) for p in pairs]
    m1 = [float(p[1]["mIoU"]) for p in pairs]
    res = summarise(a.csv, header, rows, by, m0, m1)
    out = Path(a.out)
    atomic_write_json(out.with_suffix(".json"), res)
    md = markdown(res)
    atomic_write_text(out.with_suffix(".md"), "\n".join(md) + "\n")
    print("\n".join(md))
    plot(res, by, m0, m1, out.with_suffix(".png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
