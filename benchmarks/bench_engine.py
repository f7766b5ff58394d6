"""Engine speed: candidate proxies evaluated per second on packed statistics, and collection overhead.

Usage: python benchmarks/bench_engine.py [--space realtime] [--archs 200] [--candidates 300] [--threads 2]

* Candidates/s: ``--candidates`` random typed trees (DEAP ramped half-and-half, heights 2-5, the same
  trees for every K) are each evaluated once (scores + Kendall tau, exactly the fitness function) on the
  packed statistics of ``--archs`` sampled architectures; reported as the number of candidates divided
  by the total wall time, plus the median per-candidate time. K = 256 and K = full.
* Collection overhead: for ``--overhead-archs`` architectures, the median of timed bare
  forward+backward passes of the segmentation loss versus the median of ``collect_stats`` calls on the
  same net and batch (11 repetitions each, after one warm-up); the per-architecture ratio's median and maximum are reported.
Figures go to benchmarks/results/engine.json and are printed.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from saswot_gp.batches import synthetic_batch
from saswot_gp.evolution import ProxyEvaluator, build_pset
from saswot_gp.io import atomic_write_json
from saswot_gp.spaces import get_space
from saswot_gp.stats import collect_stats, pack, segmentation_loss
from saswot_gp.stats.cache import build_model

ROOT = Path(__file__).resolve().parent


def random_candidates(n: int, seed: int):
    from deap import gp
    pset = build_pset()
    random.seed(seed)
    return [[node.name for node in gp.PrimitiveTree(gp.genHalfAndHalf(pset, 2, 5))] for _ in range(n)]


def sample_archs_and_batch(space, n: int, batch: int, seed: int):
    """``n`` distinct architectures sampled from ``space`` with ``seed`` and a seeded synthetic batch of ``batch``
    images: what the engine benchmarks score."""
    rng = random.Random(seed)
    archs = list(dict.fromkeys(space.sample(rng) for _ in range(n * 2)))[:n]
    images, labels = synthetic_batch(batch, space.input_size, space.num_classes, seed=seed)
    return archs, images, labels


def median_time(fn, reps=11):
    """Median wall time of ``reps`` calls of ``fn``. Not ``saswot_gp.training.speed.forward_times``: that one times
    a model's forward pass in eval mode under ``inference_mode``; here ``fn`` is a training-mode forward+backward
    or a ``collect_stats`` call."""
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--space", default="realtime")
    ap.add_argument("--archs", type=int, default=200)
    ap.add_argument("--candidates", type=int, default=300)
    ap.add_argument("--overhead-archs", type=int, default=20)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--overhead-only", action="store_true", help="skip the candidate timing; update only the overhead figures")
    ap.add_argument("--out", default=str(ROOT / "results" / "engine.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    space = get_space(args.space)
    archs, images, labels = sample_archs_and_batch(space, args.archs, args.batch, args.seed)
    target = np.random.default_rng(0).standard_normal(len(archs))
    cands = random_candidates(args.candidates, args.seed)
    result = {"space": args.space, "input_size": list(space.input_size), "batch": args.batch, "archs": len(archs),
              "candidates": len(cands), "threads": args.threads, "torch": torch.__version__,
              "machine": platform.processor() or platform.machine(), "k": {}}
    if args.overhead_only:
        result = json.loads(Path(args.out).read_text())
    for k in (() if args.overhead_only else (256, None)):
        t = time.perf_counter()
        stats = [collect_stats(build_model(space, a, 0), images, labels, k=k, seed=0) for a in archs]
        t_collect = time.perf_counter() - t
        packed = pack(stats)
        ev = ProxyEvaluator(packed, target)
        ev(cands[0])  # warm-up (logdet grouping is built lazily)
        per = []
        t = time.perf_counter()
        for c in cands:
            t1 = time.perf_counter()
            ev(c)
            per.append(time.perf_counter() - t1)
        total = time.perf_counter() - t
        name = "256" if k else "full"
        result["k"][name] = {"candidates_per_s": len(cands) / total, "median_ms_per_candidate": 1000 * statistics.median(per),
                             "p90_ms_per_candidate": 1000 * float(np.percentile(per, 90)),
                             "packed_mib": packed.nbytes() / 2 ** 20, "layers": packed.n_layers,
                             "collect_s_per_arch": t_collect / len(archs)}
        print(f"K={name:>4}: {len(cands) / total:8.1f} candidates/s  (median {1000 * statistics.median(per):.2f} ms, "
              f"packed {packed.nbytes() / 2 ** 20:.1f} MiB over {packed.n_layers} layers; collection {t_collect / len(archs) * 1000:.0f} ms/arch)", flush=True)
    ratios = {"256": [], "full": []}
    for a in archs[: args.overhead_archs]:
        model = build_model(space, a, 0)
        model.train()

        def bare():
            model.zero_grad(set_to_none=True)
            segmentation_loss(model(images), labels).backward()

        bare()
        tb = median_time(bare)
        for k, name in ((256, "256"), (None, "full")):
            tc = median_time(lambda: collect_stats(model, images, labels, k=k, seed=0))
            ratios[name].append(tc / tb)
    for name, r in ratios.items():
        result["k"][name]["overhead_threads"] = args.threads
        result["k"][name]["collection_overhead_median"] = statistics.median(r)
        result["k"][name]["collection_overhead_max"] = max(r)
        print(f"collection / bare forward+backward, K={name}: median {statistics.median(r):.3f}x, max {max(r):.3f}x "
              f"over {len(r)} architectures")
    atomic_write_json(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
