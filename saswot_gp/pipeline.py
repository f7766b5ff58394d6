"""Glue between benchmarks, statistics and evolution: the library side of ``saswot-gp evolve``."""

from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple

import numpy as np
import torch

from .batches import synthetic_batch
from .groundtruth.base import Benchmark
from .stats import PackedStats, pack, stats_for_archs


def default_batch(bench: Benchmark, n: int = 8, seed: int = 0, resolution: Optional[Tuple[int, int]] = None):
    """The fixed batch used for a benchmark's statistics (seeded synthetic images and labels)."""
    from .spaces import get_space
    sp = get_space(bench.space, **bench.space_kwargs)
    size = tuple(resolution or sp.input_size)
    return synthetic_batch(n=n, size=size, num_classes=sp.num_classes, seed=seed)


def stats_and_targets(bench: Benchmark, images: torch.Tensor, labels: torch.Tensor, k: Optional[int] = 256,
                      seed: int = 0, cache_dir: Optional[str] = None,
                      progress: Optional[Callable[[int, int], None]] = None) -> Tuple[PackedStats, np.ndarray]:
    """Packed statistics of every architecture of ``bench`` and the aligned targets."""
    from .spaces import get_space
    sp = get_space(bench.space, **bench.space_kwargs)
    sid = f"{bench.space}:{sorted(bench.space_kwargs.items())}"
    st = stats_for_archs(sp, bench.archs, images, labels, k=k, seed=seed, cache_dir=cache_dir,
                         progress=progress, space_id=sid)
    return pack(st), bench.target


def evaluate_proxies(proxies: Dict[str, "object"], packed: PackedStats, target) -> Dict[str, Dict[str, float]]:
    """Kendall and Spearman of each named proxy's scores against ``target``."""
    from .evolution import correlations
    out = {}
    with torch.no_grad():
        for name, p in proxies.items():
            try:
                s = p.evaluate(packed).numpy()
            except (RuntimeError, ValueError) as exc:
                out[name] = {"kendall": float("nan"), "spearman": float("nan"), "error": str(exc)}
                continue
            out[name] = correlations(s, target)
    return out
