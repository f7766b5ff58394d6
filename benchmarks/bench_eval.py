"""Candidates/s of the fitness function: the library's evaluation ("new") against the reference ("old": every
protected operator rewrites its result with ``nan_to_num``, as before the fast path), "bare" torch (the same
arithmetic without ``finite``) and "plain" torch (no guards either: ``x / y``, ``log x``...), in one run (see
``reference_eval.py``).

Usage: python benchmarks/bench_eval.py [--space realtime] [--archs 1000] [--candidates 300] [--threads 1]

Statistics of ``--archs`` distinct networks sampled from ``--space`` (seed 0, batch of 8, K = 256) are packed once.
``--candidates`` random typed trees (DEAP ramped half-and-half, heights 2-5, seed 0: the trees of
``bench_engine.py``) are each evaluated once by each of the four variants, one after the other in an order that
rotates from candidate to candidate (so drifts in machine load fall on all alike), after one untimed
warm-up: scores of every architecture, then rank quality against a fixed random target, exactly the fitness
function (``ProxyEvaluator``). Reported per variant: candidates/s (candidates / total time), the median and
90th-percentile ms per candidate; and the ratios new/bare and old/bare of the total times and the medians of the
per-candidate ratios, old/new, and new/plain, old/plain. ``--check`` also asserts that new and old scores are bit for bit identical.
Prints and writes benchmarks/results/eval_speed.json (or ``--out``).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from saswot_gp.evolution import ProxyEvaluator
from saswot_gp.io import atomic_write_json
from saswot_gp.spaces import get_space
from saswot_gp.stats import collect_stats, pack
from saswot_gp.stats.cache import build_model

from bench_engine import random_candidates, sample_archs_and_batch
from reference_eval import BARE, PLAIN, REFERENCE, evaluate_reference

ROOT = Path(__file__).resolve().parent
VARIANTS = ("new", "old", "bare", "plain")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--space", default="realtime")
    ap.add_argument("--archs", type=int, default=1000)
    ap.add_argument("--candidates", type=int, default=300)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--check", action="store_true", help="assert new scores == old scores, bit for bit")
    ap.add_argument("--out", default=str(ROOT / "results" / "eval_speed.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    space = get_space(args.space)
    archs, images, labels = sample_archs_and_batch(space, args.archs, args.batch, args.seed)
    t = time.perf_counter()
    packed = pack([collect_stats(build_model(space, a, 0), images, labels, k=256, seed=0) for a in archs])
    t_collect = time.perf_counter() - t
    print(f"statistics of {len(archs)} networks: {t_collect:.0f} s, {packed.n_layers} layers, "
          f"{packed.nbytes() / 2 ** 20:.0f} MiB packed", flush=True)
    ev = ProxyEvaluator(packed, np.random.default_rng(0).standard_normal(len(archs)))

    def reference(ops):
        def fitness(tokens):
            with torch.no_grad():
                return ev.judge(evaluate_reference(tokens, packed, ops).numpy())
        return fitness

    run = {"new": ev, "old": reference(REFERENCE), "bare": reference(BARE), "plain": reference(PLAIN)}
    cands = random_candidates(args.candidates, args.seed)
    for f in run.values():
        f(cands[0])  # warm-up (logdet grouping is built lazily)
    times = {v: [] for v in VARIANTS}
    for i, c in enumerate(cands):
        for v in VARIANTS[i % len(VARIANTS):] + VARIANTS[:i % len(VARIANTS)]:
            t1 = time.perf_counter()
            run[v](c)
            times[v].append(time.perf_counter() - t1)
        if args.check:
            with torch.no_grad():
                a, b = ev.scores(c), evaluate_reference(c, packed).numpy()
            assert a.tobytes() == b.tobytes(), c
    result = {"space": args.space, "input_size": list(space.input_size), "batch": args.batch, "k": 256,
              "archs": len(archs), "layers": packed.n_layers, "packed_mib": packed.nbytes() / 2 ** 20,
              "collect_s": t_collect, "candidates": len(cands), "threads": args.threads, "torch": torch.__version__,
              "machine": platform.processor() or platform.machine(), "checked_bit_identical": args.check,
              "variants": {}, "ratios": {}}
    for v in VARIANTS:
        ts = times[v]
        result["variants"][v] = {"candidates_per_s": len(ts) / sum(ts), "median_ms": 1000 * statistics.median(ts),
                                 "p90_ms": 1000 * float(np.percentile(ts, 90)), "total_s": sum(ts)}
        print(f"{v:>4}: {len(ts) / sum(ts):7.2f} candidates/s  median {1000 * statistics.median(ts):7.2f} ms  "
              f"p90 {1000 * float(np.percentile(ts, 90)):8.2f} ms", flush=True)
    for a, b in (("new", "bare"), ("old", "bare"), ("old", "new"), ("new", "plain"), ("old", "plain")):
        total = sum(times[a]) / sum(times[b])
        med = statistics.median(x / y for x, y in zip(times[a], times[b]))
        result["ratios"][f"{a}/{b}"] = {"total_time": total, "median_per_candidate": med}
        print(f"{a}/{b}: {total:.3f}x total time, {med:.3f}x median per candidate")
    atomic_write_json(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
