"""A synthetic benchmark with a planted proxy: the ground truth is a known proxy's value plus noise.

It is the stand-in default of ``saswot-gp evolve`` until the embedded trained benchmark exists, and
the test that evolution recovers a known proxy.
"""

from __future__ import annotations

import random

import numpy as np

from ..proxy import Proxy
from .base import Benchmark

PLANTED = "layers_mean(div_l(std_a(AG), l2_w(W)))"


def planted_benchmark(n_archs: int = 60, proxy: str = PLANTED, noise: float = 0.1, seed: int = 0,
                      space: str = "tiny", k: int = 256, batch_seed: int = 0, cache_dir=None) -> Benchmark:
    """Sample ``n_archs`` architectures of ``space``; target = normal score of the planted proxy's rank + noise * N(0,1)."""
    from ..batches import default_batch
    from ..stats.cache import stats_and_targets
    from ..spaces import get_space
    sp = get_space(space)
    rng = random.Random(seed)
    archs = []
    while len(archs) < n_archs:
        a = sp.sample(rng)
        if a not in archs:
            archs.append(a)
    bench = Benchmark(f"synthetic-planted[{proxy}]", space, archs, np.zeros(n_archs), metric="planted score",
                      description=f"synthetic stand-in: target = normal-score rank of {proxy} + {noise} * N(0,1) on {n_archs} random {space} networks")
    images, labels = default_batch(bench, seed=batch_seed)
    packed, _ = stats_and_targets(bench, images, labels, k=k, seed=batch_seed, cache_dir=cache_dir)
    tree = Proxy.parse(proxy)
    need = tree.measures()
    if need:  # a formula over live measures: their values on the same batch and weights
        from ..zerocost.scoring import benchmark_measures
        from ..zerocost.terminals import attach_measures
        attach_measures(packed, benchmark_measures(bench, need, len(images), batch_seed, None, "auto", cache=None)[0])
    s = tree.evaluate(packed).numpy()
    from scipy import stats as sstats
    z = sstats.norm.ppf(sstats.rankdata(s) / (n_archs + 1))  # normal scores: noise acts on ranks, not on raw scale
    bench.target = z + noise * np.random.default_rng(seed).standard_normal(n_archs)
    return bench
