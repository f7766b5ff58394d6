"""Glue between benchmarks, statistics and evolution: the library side of ``saswot-gp evolve``."""

from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple

import numpy as np
import torch

from .batches import digits_batch, natural_batch, synthetic_batch
from .errors import SaswotError
from .groundtruth.base import Benchmark
from .stats import PackedStats, pack, stats_for_archs


BATCH_KINDS = ("auto", "synthetic", "natural", "digits")


def batch_source(bench: Benchmark, kind: str = "auto") -> str:
    """The statistics batch a benchmark gets: ``kind`` itself, or for 'auto' 'digits' when the benchmark was
    trained on the embedded digit scenes (its name says so) and 'synthetic' otherwise."""
    if kind not in BATCH_KINDS:
        raise SaswotError(f"batch {kind!r}; expected one of {', '.join(BATCH_KINDS)}")
    if kind != "auto":
        return kind
    return "digits" if bench.space == "realtime" and "digits" in bench.name else "synthetic"


def default_batch(bench: Benchmark, n: int = 8, seed: int = 0, resolution: Optional[Tuple[int, int]] = None,
                  kind: str = "auto"):
    """The fixed batch used for a benchmark's statistics: ``(images, labels)``.

    ``kind`` (:func:`batch_source`): 'digits', the first ``n`` training digit scenes generated with data seed
    ``seed`` (the build's own data when ``seed`` is 0); 'synthetic', seeded smooth random images with spatially
    coherent random labels; 'natural', seeded random crops of real photographs (``batches.natural_batch``).
    Real images of the public benchmarks are not available offline.
    """
    from .spaces import get_space
    sp = get_space(bench.space, **bench.space_kwargs)
    size = sp.check_resolution(resolution)
    src = batch_source(bench, kind)
    if src == "digits":
        if sp.num_classes < 11:
            raise SaswotError(f"digit scenes have 11 classes but space {bench.space!r} has {sp.num_classes}; "
                              f"use --batch synthetic or natural")
        return digits_batch(n=n, size=size, seed=seed)
    if src == "natural":
        return natural_batch(n=n, size=size, num_classes=sp.num_classes, seed=seed)
    return synthetic_batch(n=n, size=size, num_classes=sp.num_classes, seed=seed)


def describe_batch(bench: Benchmark, images: torch.Tensor, seed: int, kind: str = "auto") -> str:
    """One line saying what :func:`default_batch` gave (printed by the commands that use it)."""
    src = batch_source(bench, kind)
    if src == "digits":
        return f"the first {images.shape[0]} training digit scenes (data seed {seed}), {tuple(images.shape)}"
    if src == "natural":
        return (f"random crops of scikit-learn's sample photographs {tuple(images.shape)} with colour-cluster labels "
                f"(seed {seed})")
    return f"seeded synthetic images {tuple(images.shape)} with smooth random labels (seed {seed})"


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


def resolve_benchmark(spec: str, metric: Optional[str] = None, cache_dir: Optional[str] = None) -> Benchmark:
    """A registered benchmark name or a path to a benchmark file (see ``groundtruth.loaders``)."""
    if spec == "synthetic":
        from .groundtruth.synthetic import planted_benchmark
        return planted_benchmark(n_archs=80, cache_dir=cache_dir)
    from .groundtruth.loaders import load_benchmark
    return load_benchmark(spec, metric=metric)
