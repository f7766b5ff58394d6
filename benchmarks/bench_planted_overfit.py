"""Does the resampled fitness stop a large budget from overfitting? A planted benchmark with heavy noise.

Usage: python benchmarks/bench_planted_overfit.py [--seeds 6] [--noise 1.0] [--train 30] [--population 100]
                                                  [--generations 40]

A synthetic benchmark of 120 random ``tiny`` networks whose target is the normal score of the default planted
proxy's rank plus ``noise`` * N(0, 1) (at 1.0 the planted proxy itself reaches Kendall about 0.55 on the training
part and 0.47 held out: the rest is noise a proxy can only fit, not learn); ``--train`` architectures train, the
rest are held out. Each seed evolves twice with the same budget: the fixed-split fitness (Kendall on the whole
training part) and the resampled one (a fresh random half every generation, the default of ``saswot-gp evolve``);
the hall of fame's best (by Kendall on the whole training part) is reported on training and held-out
architectures. One torch thread. Results: benchmarks/results/planted_overfit.json.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from saswot_gp.batches import default_batch
from saswot_gp.evolution import EvolutionConfig, evolve
from saswot_gp.evolution.fitness import MultiEvaluator, ProxyEvaluator, Resampler
from saswot_gp.evolution.report import evaluate_proxies
from saswot_gp.groundtruth.synthetic import PLANTED, planted_benchmark
from saswot_gp.handcrafted import handcrafted_proxies
from saswot_gp.io import atomic_write_json
from saswot_gp.proxy import Proxy
from saswot_gp.stats import stats_and_targets

ROOT = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=6)
    ap.add_argument("--noise", type=float, default=1.0)
    ap.add_argument("--train", type=int, default=30)
    ap.add_argument("--population", type=int, default=100)
    ap.add_argument("--generations", type=int, default=40)
    ap.add_argument("--cache", default=str(ROOT / ".cache_planted"))
    ap.add_argument("--out", default=str(ROOT / "results" / "planted_overfit.json"))
    a = ap.parse_args()
    torch.set_num_threads(1)
    bench = planted_benchmark(n_archs=120, noise=a.noise, seed=0, cache_dir=a.cache)
    train, test = bench.split(a.train, seed=0)
    images, labels = default_batch(bench)
    ptr, _ = stats_and_targets(train, images, labels, cache_dir=a.cache)
    pte, _ = stats_and_targets(test, images, labels, cache_dir=a.cache)
    planted = Proxy.parse(PLANTED)
    ceiling = {"train": evaluate_proxies({"p": planted}, ptr, train.target)["p"]["kendall"],
               "heldout": evaluate_proxies({"p": planted}, pte, test.target)["p"]["kendall"]}
    print(f"planted {PLANTED}: train {ceiling['train']:.3f}, held-out {ceiling['heldout']:.3f}")
    rows = []
    for seed in range(a.seeds):
        row = {"seed": seed}
        for name, frac in (("fixed", 0.0), ("resampled", 0.5)):
            t = time.perf_counter()
            ev = MultiEvaluator({"planted": ProxyEvaluator(ptr, train.target)}, keep_scores=frac > 0)
            rs = Resampler({"planted": train.target}, frac, seed) if frac > 0 else None
            res = evolve(ev, EvolutionConfig(population=a.population, generations=a.generations, seed=seed,
                                             resample=frac), seeds=list(handcrafted_proxies().values()), resampler=rs)
            held = evaluate_proxies({"b": res.best}, pte, test.target)["b"]["kendall"]
            row[name] = {"train": res.hall_of_fame[0]["train_kendall"], "heldout": held,
                         "best": res.best.expression(), "seconds": time.perf_counter() - t}
        rows.append(row)
        print(f"seed {seed}: " + " | ".join(f"{n} train {row[n]['train']:.3f} held-out {row[n]['heldout']:.3f}"
                                            for n in ("fixed", "resampled")), flush=True)
    mean = {n: {k: float(np.mean([r[n][k] for r in rows])) for k in ("train", "heldout")}
            for n in ("fixed", "resampled")}
    wins = sum(r["resampled"]["heldout"] > r["fixed"]["heldout"] for r in rows)
    for n, m in mean.items():
        print(f"{n}: mean train {m['train']:.3f}, held-out {m['heldout']:.3f}, gap {m['train'] - m['heldout']:.3f}")
    print(f"resampled better held out in {wins} of {len(rows)} seeds")
    atomic_write_json(a.out, {"planted": PLANTED, "noise": a.noise, "n_train": len(train), "n_heldout": len(test),
                              "population": a.population, "generations": a.generations, "ceiling": ceiling,
                              "mean": mean, "resampled_wins": wins, "rows": rows})


if __name__ == "__main__":
    main()
