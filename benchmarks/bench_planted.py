"""How reliably evolution recovers a planted proxy: held-out Kendall tau over several seeds.

Usage: python benchmarks/bench_planted.py [--seeds 8] [--population 100] [--generations 30] [--threads 1]
       python benchmarks/bench_planted.py --planted "sub_s(log_s(zc_snip), zc_zen)" --terminals sizes+measures \
           --out benchmarks/results/planted_measures.json     # a formula of two live measures (measure terminals)

For each planted proxy, a synthetic benchmark of 80 random ``tiny`` networks is built whose target is
the normal score of the planted proxy's rank plus N(0, 0.05) noise; 40 architectures train, 40 are held
out. Evolution runs once per seed with the default configuration; the held-out Kendall tau of the best
proxy (highest training tau) is recorded, with the planted proxy's own held-out tau as the ceiling.
Results go to benchmarks/results/planted.json. With measure terminals the measures' values are computed on the
same batch and weights and attached to the statistics, and the live measures join the seeds and baselines.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from saswot_gp.batches import default_batch
from saswot_gp.evolution import EvolutionConfig, ProxyEvaluator, evolve
from saswot_gp.evolution.report import evaluate_proxies
from saswot_gp.groundtruth.synthetic import planted_benchmark
from saswot_gp.handcrafted import seed_proxies
from saswot_gp.io import atomic_write_json
from saswot_gp.proxy import Proxy
from saswot_gp.evolution.data import MEASURE_CACHE
from saswot_gp.primitives.types import MEASURE_TERMINALS, uses_measures
from saswot_gp.stats import stats_and_targets
from saswot_gp.zerocost.scoring import benchmark_measures
from saswot_gp.zerocost.terminals import attach_measures

ROOT = Path(__file__).resolve().parent

PLANTED = ["layers_max(l2_w(mul_w(W, G)))", "layers_mean(div_l(std_a(AG), l2_w(W)))"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--population", type=int, default=100)
    ap.add_argument("--generations", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cache", default=str(ROOT / ".cache_planted"))
    ap.add_argument("--planted", nargs="+", default=PLANTED, help="planted proxies (functional notation)")
    ap.add_argument("--terminals", default="all", help="terminal set of evolution")
    ap.add_argument("--out", default=str(ROOT / "results" / "planted.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = {"population": args.population, "generations": args.generations, "threads": args.threads,
           "terminals": args.terminals, "runs": []}
    seeds = seed_proxies(args.terminals)
    for planted in args.planted:
        bench = planted_benchmark(80, proxy=planted, noise=0.05, cache_dir=args.cache)
        train, test = bench.split(40, seed=0)
        images, labels = default_batch(bench)
        ptr, _ = stats_and_targets(train, images, labels, cache_dir=args.cache)
        pte, _ = stats_and_targets(test, images, labels, cache_dir=args.cache)
        if uses_measures(args.terminals):
            for part, packed in ((train, ptr), (test, pte)):
                attach_measures(packed, benchmark_measures(part, MEASURE_TERMINALS, len(images), 0, None, "auto",
                                                           cache=str(Path(args.cache) / MEASURE_CACHE))[0])
        ceiling = evaluate_proxies({"p": Proxy.parse(planted)}, pte, test.target)["p"]["kendall"]
        hand = max(v["kendall"] for v in evaluate_proxies(dict(seeds), pte, test.target).values())
        ev = ProxyEvaluator(ptr, train.target)
        rows = []
        for seed in range(args.seeds):
            t = time.perf_counter()
            res = evolve(ev, EvolutionConfig(population=args.population, generations=args.generations, seed=seed,
                                             terminals=args.terminals), seeds=list(seeds.values()))
            held = evaluate_proxies({"b": res.best}, pte, test.target)["b"]
            rows.append({"seed": seed, "train_kendall": res.hall_of_fame[0]["train_kendall"], "heldout_kendall": held["kendall"],
                         "best": res.best.expression(), "seconds": time.perf_counter() - t, "evaluations": res.evaluations})
            print(f"{planted}  seed {seed}: train {rows[-1]['train_kendall']:.3f} held-out {held['kendall']:.3f} "
                  f"({rows[-1]['seconds']:.0f}s, {res.evaluations} evaluations)  {res.best.expression()}", flush=True)
        rate = sum(r["heldout_kendall"] >= 0.9 for r in rows)
        out["runs"].append({"planted": planted, "ceiling_heldout_kendall": ceiling, "best_handcrafted_heldout_kendall": hand,
                            "recovered_ge_0.9": rate, "seeds": len(rows), "rows": rows})
        print(f"{planted}: {rate}/{len(rows)} seeds reach held-out tau >= 0.9 (ceiling {ceiling:.3f}, best hand-designed {hand:.3f})")
    atomic_write_json(args.out, out)


if __name__ == "__main__":
    main()
