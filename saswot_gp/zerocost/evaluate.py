"""Tables of zero-cost proxies on a benchmark: scores, rank correlations with bootstrap intervals, plots.

:func:`run_proxies` is the whole ``saswot-gp proxies`` job: it loads a benchmark, samples it or keeps
the held-out part of evolve's split, scores every architecture (:func:`proxy_table`), and writes the
table, the per-architecture scores and one scatter plot per proxy.

:func:`proxy_table` scores every architecture of a benchmark with the registered measures and with
proxy-language trees (:func:`.scoring.score_architectures`, resumable through its score cache) and
returns one row per proxy with Kendall tau-b and Spearman rho against the benchmark's target and
seeded percentile-bootstrap 95% intervals.

Why a score or a correlation is NaN is said once, in a row's ``note`` (:func:`row_note`): the failure
texts ``compute_measures`` (and a proxy file's scoring) give for an architecture (kept in the cache
with its scores), constant scores, and swap's saturation (:func:`.measures.swap_saturation`).
:func:`.report.format_table` prints the notes under the table and :func:`.report.write_csv` writes them.

The scoring (:mod:`.scoring`) and the tables and plots (:mod:`.report`) live in their own modules;
their public names are importable from here as well.
"""

from __future__ import annotations

import math
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import SaswotError
from ..groundtruth.base import Benchmark
from ..io import prepare_run_dir
from ..ranking import rank_correlations
from .measures import get_measure, measure_names, swap_saturation
from .report import (CSV_COLUMNS, format_table, plot_scatter, scatter_figure, scatter_name, write_csv,
                     write_scores_csv)
from .scoring import (CACHE_VERSION, PROXY_K, PathLike, ScoreCache, load_proxy_files, sample_benchmark,
                      score_architectures)

__all__ = ["run_proxies", "proxy_table", "row_note",
           # from .scoring and .report, importable from here as before
           "CACHE_VERSION", "PROXY_K", "ScoreCache", "load_proxy_files", "sample_benchmark", "score_architectures",
           "CSV_COLUMNS", "format_table", "plot_scatter", "scatter_figure", "scatter_name", "write_csv",
           "write_scores_csv"]

ProgressFn = Callable[[int, int, str, float], None]   # (i, n, arch, seconds)


# ---------------------------------------------------------------------------------- statistics

def row_note(proxy: str, kind: str, scores: Sequence[float], target: Sequence[float], batch_size: int,
             failures: Optional[Dict[str, str]] = None) -> str:
    """Why a proxy's correlation is NaN, or what else about its scores a reader should know ('' if nothing).

    A NaN correlation reads ``nan (<reason>)``: swap saturated at 2^batch_size patterns, all scores
    equal, a constant target, or fewer than 3 finite scores (with the failure text of the NaN scores
    when one was recorded). Otherwise the note names NaN scores and swap architectures at saturation.
    """
    s = np.asarray(scores, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    bad = ~np.isfinite(s)
    failed = ""
    if bad.any():
        texts = sorted(set((failures or {}).values()))
        failed = (f"{int(bad.sum())} of {len(s)} scores nan"
                  + (f": {texts[0]}" + (f" (and {len(texts) - 1} other failure texts)" if len(texts) > 1 else "")
                     if texts else ""))
    saturated = swap_saturation(s, batch_size) if proxy == "swap" and kind == "measure" else None
    ok = np.isfinite(s) & np.isfinite(t)
    reason = ""
    if ok.sum() < 3:
        reason = f"only {int(ok.sum())} finite scores, at least 3 needed"
    elif np.ptp(s[ok]) == 0:                      # when swap saturates, it is the reason the scores are equal
        reason, saturated = saturated or f"all {int(ok.sum())} scores equal {s[ok][0]:.6g}", None
    elif np.ptp(t[ok]) == 0:
        reason = f"the target is the same for all {int(ok.sum())} architectures"
    parts = [p for p in (reason, failed, saturated) if p]
    if reason:
        return f"nan ({'; '.join(parts)})"
    return "; ".join(parts)


def proxy_table(bench: Benchmark, names: Optional[Sequence[str]] = None, proxy_files: Sequence[PathLike] = (),
                resolution: Optional[Tuple[int, int]] = None, batch_size: int = 8, seed: int = 0,
                cache: Optional[PathLike] = None, progress: Optional[ProgressFn] = None,
                n_boot: int = 1000, executor=None, device: str = "cpu") -> List[dict]:
    """One row per proxy: kind, n, Kendall/Spearman vs ``bench.target`` with 95% bootstrap bounds, seconds per arch.

    Each row also holds ``scores`` (aligned with ``bench.archs``) for plots; :func:`write_csv` leaves it out.
    ``note`` says why a correlation is NaN (:func:`row_note`; '' when there is nothing to say).
    ``executor``, ``device``: where architectures are scored (:func:`.scoring.score_architectures`).
    """
    failures: Dict[str, Dict[str, str]] = {}
    scores, seconds, kinds = score_architectures(bench, names, proxy_files, resolution, batch_size, seed, cache,
                                                 progress, errors=failures, executor=executor, device=device)
    rows = []
    for n, s in scores.items():
        row = {"proxy": n, "kind": kinds[n]}
        row.update(rank_correlations(s, bench.target, n_boot=n_boot, seed=seed))
        sec = seconds[n][np.isfinite(seconds[n])]
        row["sec_per_arch"] = float(sec.mean()) if len(sec) else math.nan
        row["note"] = row_note(n, kinds[n], s, bench.target, batch_size, failures.get(n))
        row["scores"] = s
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------------ the job

# the finished results that mark a folder as holding a proxies run (the score cache is not one: a rerun resumes it)
RUN_FILES = ("proxies.csv", "scores.csv", "scatter_*.png")

def _load_benchmark(benchmark: Union[str, Benchmark], metric: Optional[str]) -> Benchmark:
    """A Benchmark as given, the planted 'synthetic' stand-in, or a registered name or file (``load_benchmark``)."""
    from ..groundtruth.loaders import load_benchmark, resolve_benchmark
    if isinstance(benchmark, Benchmark):
        return benchmark
    if benchmark == "synthetic":
        return resolve_benchmark(benchmark, metric)
    return load_benchmark(benchmark, metric=metric)


def _select(bench: Benchmark, n: Optional[int], split: Union[None, str, Tuple[int, Optional[int], int]], seed: int,
            log: Callable[[str], None]) -> Benchmark:
    """The architectures to score: the held-out part of ``split`` (evolve's: ``'committed'`` or (train size,
    held-out size, seed)), or ``n`` sampled with ``seed``."""
    if split is None:
        return sample_benchmark(bench, n, seed=seed)
    if split == "committed":
        from ..groundtruth.splits import apply_split, committed_split
        entry = committed_split(bench)
        if entry is None:
            raise SaswotError(f"benchmark {bench.name!r} has no committed split; expected one of "
                              f"realtime-digits, TransNAS-Bench-101 micro or macro, NAS-Bench-MR seg or seg-4x")
        held = apply_split(bench, entry)[2]
        log(f"scoring the {len(held)} held-out architectures of the committed split of {len(bench)}")
        return held
    n_train, n_held, split_seed = split
    try:
        held = bench.split(n_train, seed=split_seed, max_eval=n_held)[1]
    except ValueError as exc:
        raise SaswotError(str(exc)) from None
    log(f"scoring the {len(held)} held-out architectures of the split --train-size {n_train} "
        f"--heldout-size {n_held} --seed {split_seed} of {len(bench)} (as evolve makes it)")
    return held


def run_proxies(benchmark: Union[str, Benchmark], metric: Optional[str] = None, proxy_specs: Sequence[str] = (),
                measures: Optional[Sequence[str]] = None, n: Optional[int] = None,
                split: Union[None, str, Tuple[int, Optional[int], int]] = None,
                resolution: Optional[Tuple[int, int]] = None, batch_size: int = 8, seed: int = 0,
                n_boot: int = 1000, out_dir: PathLike = "runs/proxies", progress: Optional[ProgressFn] = None,
                log: Optional[Callable[[str], None]] = None, workers: int = 0, scheduler: Optional[str] = None,
                device: str = "cpu", overwrite: bool = False) -> dict:
    """Score a benchmark's architectures with zero-cost proxies and write the table, scores and scatter plots.

    ``benchmark`` is a registered name, a benchmark file, 'synthetic' or a :class:`Benchmark`; ``metric``
    its target column (default: the file's main metric). ``measures`` are registered measure names (None:
    all; empty: only ``proxy_specs``, the proxy-language trees of :func:`.scoring.load_proxy_files`).
    ``n`` samples that many architectures with ``seed``; ``split`` = (train size, held-out size or None,
    split seed) scores only the held-out part of the split ``evolve`` makes instead. ``seed`` also seeds
    the weights, the batch and the bootstrap (``n_boot`` resamples). ``progress(i, n, arch, seconds)``
    follows the scoring and ``log`` receives progress lines. Scores are cached in
    ``out_dir/score_cache.jsonl``, so a rerun with the same settings resumes. A folder that holds finished results
    (:data:`RUN_FILES`) is refused unless ``overwrite`` (they are deleted first; the score cache is kept). ``workers``/``scheduler``: score
    architectures on a Dask cluster (:func:`saswot_gp.execution.executor`; same scores as serial); ``device``:
    where the networks run.

    Returns {"benchmark": the scored Benchmark, "rows": :func:`proxy_table`'s rows, "out_dir": Path,
    "paths": {"table", "scores", "cache": Path, "scatter": [Path, ...]}}.
    """
    say = log or (lambda msg: None)
    if split is not None and n is not None:
        raise SaswotError("give n or split, not both")
    names = measure_names() if measures is None else list(measures)
    for m in names:
        get_measure(m)
    out = prepare_run_dir(out_dir, RUN_FILES, False, overwrite, None)  # before any work
    loaded = _load_benchmark(benchmark, metric)
    for note in loaded.notes:
        say(f"note: {note}")
    bench = _select(loaded, n, split, seed, say)
    from ..batches import default_batch, describe_batch
    images, _ = default_batch(bench, n=batch_size, seed=seed, resolution=resolution)
    say(f"benchmark {bench.name}: {len(bench)} architectures of space {bench.space!r}, target {bench.metric}; "
        f"batch: {describe_batch(bench, images, seed)}")
    cache = out / "score_cache.jsonl"
    from ..execution import executor
    with executor(workers, scheduler, say) as ex:
        rows = proxy_table(bench, names, list(proxy_specs), resolution, batch_size, seed, cache=cache,
                           progress=progress, n_boot=n_boot, executor=ex, device=device)
    table = write_csv(rows, out / "proxies.csv")
    scores = write_scores_csv(bench, rows, out / "scores.csv")
    scatter = [plot_scatter(r, bench.target, out / scatter_name(r["proxy"]), metric=bench.metric, benchmark=bench.name)
               for r in rows]
    paths = {"table": table, "scores": scores, "cache": cache, "scatter": scatter}
    return {"benchmark": bench, "rows": rows, "out_dir": out, "paths": paths}
