"""Benchmarks prepared for evolution: seeded train / validation / held-out splits and their packed statistics."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence, Tuple

import numpy as np

from ..errors import SaswotError
from ..groundtruth.base import Benchmark
from ..stats import PackedStats


@dataclass
class BenchmarkData:
    """One benchmark prepared for evolution: its splits, their packed statistics and the batch used."""

    spec: str
    bench: Benchmark
    train: Benchmark
    val: Optional[Benchmark]
    test: Benchmark
    ptrain: PackedStats
    pval: Optional[PackedStats]
    ptest: PackedStats
    batch: str

    @property
    def name(self) -> str:
        """The benchmark's name."""
        return self.bench.name


def split_three(bench: Benchmark, train_size: int, seed: int, heldout_size: Optional[int],
                val_frac: float) -> Tuple[Benchmark, Optional[Benchmark], Benchmark]:
    """(train, validation or None, held-out): ``Benchmark.split`` then the last ``val_frac`` of the training split.

    The held-out architectures are exactly those of ``bench.split(train_size, seed, heldout_size)`` whatever
    ``val_frac`` is, so runs with and without validation report on the same architectures.
    """
    try:
        train, test = bench.split(train_size, seed=seed, max_eval=heldout_size)
    except ValueError as exc:
        raise SaswotError(str(exc)) from None
    if not 0 <= val_frac < 1:
        raise SaswotError(f"validation fraction {val_frac}; expected 0 <= fraction < 1")
    n_val = int(round(val_frac * len(train)))
    if n_val == 0:
        return train, None, test
    if len(train) - n_val < 4 or n_val < 4:
        raise SaswotError(f"benchmark {bench.name!r}: {len(train)} training architectures are too few to keep "
                          f"{n_val} for validation (need at least 4 on each side); expected a larger training split, "
                          f"or the final choice on training data (select 'train')")
    idx = np.arange(len(train))
    return train.subset(idx[: len(train) - n_val]), train.subset(idx[len(train) - n_val:]), test


SPLIT_RULES = ("committed", "random")
MEASURE_CACHE = "measure_scores.jsonl"  # measure terminals' values, in the statistics cache folder
DEFAULT_TRAIN_SIZE = 200  # training architectures of a seeded random split when none is asked for


def split_benchmark(bench: Benchmark, split: str, train_size: Optional[int], seed: int,
                    heldout_size: Optional[int], val_frac: float) -> Tuple[Benchmark, Optional[Benchmark], Benchmark, str]:
    """(train, validation, held-out, how it was split). ``split='committed'``: the benchmark's committed split
    (:mod:`saswot_gp.groundtruth.splits`) where it has one, ``train_size``/``heldout_size`` keeping the first
    architectures of those parts (its validation part is fixed; ``val_frac`` is not used); else, and with
    ``'random'``, :func:`split_three` seeded by ``seed``."""
    if split not in SPLIT_RULES:
        raise SaswotError(f"split {split!r}; expected one of {', '.join(SPLIT_RULES)}")
    if split == "committed":
        from ..groundtruth.splits import apply_split, committed_split
        entry = committed_split(bench)
        if entry is not None:
            train, val, test = apply_split(bench, entry, train_size, heldout_size)
            removed = ", ".join(f"{len(v)} {k}" for k, v in entry["removed"].items() if v)
            return train, val, test, "committed split" + (f" (removed first: {removed})" if removed else "")
    size = DEFAULT_TRAIN_SIZE if train_size is None else train_size
    train, val, test = split_three(bench, size, seed, heldout_size, val_frac)
    return train, val, test, f"random split, seed {seed}"


def prepare_benchmark(spec: str, metric: Optional[str] = None, seed: int = 0, train_size: Optional[int] = None,
                      heldout_size: Optional[int] = None, val_frac: float = 0.0, batch_size: int = 8,
                      resolution: Optional[Tuple[int, int]] = None, k: Optional[int] = 256, batch: str = "auto",
                      cache_dir: Optional[str] = None, log: Callable[[str], None] = print,
                      shared: Optional[dict] = None, executor=None, device: str = "cpu",
                      split: str = "random", measures: Sequence[str] = ()) -> BenchmarkData:
    """Load, split (:func:`split_benchmark`) and collect (or load cached) statistics of one benchmark; ``seed``
    sets the random split, batch and weights.

    ``shared``: a dict kept across calls; splits with the same space, architectures and batch (NAS-Bench-MR
    seg and seg-4x share their architectures) then share one packed-statistics object, which
    :class:`MultiEvaluator` scores once. ``executor``/``device``: where statistics are computed
    (:func:`saswot_gp.stats.cache.stats_for_archs`). ``measures``: registered measures whose values join the
    packed statistics as measure terminals (:mod:`saswot_gp.zerocost.terminals`), computed on the same batch and
    weights and cached in ``cache_dir/measure_scores.jsonl``; the median seconds per architecture are logged.
    """
    from ..batches import default_batch, describe_batch
    from ..groundtruth.loaders import resolve_benchmark
    from ..stats.cache import stats_and_targets
    bench = resolve_benchmark(spec, metric, cache_dir=cache_dir)
    for note in bench.notes:
        log(f"  note: {note}")
    train, val, test, how = split_benchmark(bench, split, train_size, seed, heldout_size, val_frac)
    images, labels = default_batch(bench, n=batch_size, seed=seed, resolution=resolution, kind=batch)
    desc = describe_batch(bench, images, seed, kind=batch)
    log(f"benchmark {bench.name}: {len(bench)} architectures of space {bench.space!r}, target {bench.metric}; "
        f"{len(train)} train / {len(val) if val is not None else 0} validation / {len(test)} held out ({how})")
    log(f"  statistics batch: {desc}; sketch K={'full' if k is None else k}")

    def bar(label):
        from ..progress import Progress
        return Progress(f"  {bench.name} {label} statistics", unit="net")

    from ..stats.cache import batch_digest
    digest = batch_digest(images, labels)

    def packed(part, label):
        key = (part.space, json.dumps(part.space_kwargs, sort_keys=True), tuple(part.archs), digest, k, seed)
        if shared is not None and key in shared:
            return shared[key]
        p = stats_and_targets(part, images, labels, k=k, seed=seed, cache_dir=cache_dir, progress=bar(label), log=log,
                              executor=executor, device=device)[0]
        if measures:
            from ..progress import Progress
            from ..zerocost.scoring import benchmark_measures
            from ..zerocost.terminals import attach_measures
            values, secs = benchmark_measures(
                part, measures, batch_size, seed, resolution, batch,
                cache=str(Path(cache_dir) / MEASURE_CACHE) if cache_dir else None, executor=executor, device=device,
                progress=Progress(f"  {bench.name} {label} measures", unit="net"))
            attach_measures(p, values)
            per_arch = np.nansum(np.array([secs[m] for m in measures]), axis=0)
            bad = {m: int(np.sum(~np.isfinite(v))) for m, v in values.items() if not np.all(np.isfinite(v))}
            log(f"  {bench.name} {label}: {len(measures)} measure terminals: median "
                f"{float(np.median(per_arch)):.2f} s per architecture when computed"
                + (f"; non-finite values: {', '.join(f'{m} {n}' for m, n in bad.items())}" if bad else ""))
        if shared is not None:
            shared[key] = p
        return p

    ptrain = packed(train, "train")
    pval = packed(val, "validation") if val is not None else None
    ptest = packed(test, "held-out")
    return BenchmarkData(spec, bench, train, val, test, ptrain, pval, ptest, desc)
