"""``saswot-gp proxies``: every hand-designed zero-cost measure (and given proxy files) on a benchmark."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple

import click

from ..errors import SaswotError
from ..spaces.base import parse_resolution
from . import resume_hint


def _load(benchmark: str, metric):
    from ..groundtruth.loaders import load_benchmark
    from ..groundtruth.loaders import resolve_benchmark
    if benchmark == "synthetic":
        return resolve_benchmark(benchmark, metric)
    return load_benchmark(benchmark, metric=metric)


@click.command("proxies")
@click.option("--benchmark", required=True, help="registered name or path to a benchmark file (CSV, NASLib JSON, ...)")
@click.option("--metric", default=None, help="target column of the benchmark (default: the file's main metric)")
@click.option("--proxy", "proxy_files", multiple=True, type=click.Path(dir_okay=False),
              help="a proxy-language tree to score as well: a JSON file, the shipped general proxy saswot, a name such as nwot_gp, or functional notation (repeatable)")
@click.option("--measures", default=None,
              help="comma-separated registered measures (default: all; 'none' for proxy files only)")
@click.option("--n", "n_archs", default=None, type=click.IntRange(3), help="score N architectures sampled with --seed")
@click.option("--train-size", "split_train", default=None, type=click.IntRange(2),
              help="score only the held-out part of the split `evolve --train-size N` makes (same seeded split)")
@click.option("--heldout-size", "split_heldout", default=None, type=click.IntRange(1),
              help="with --train-size: at most this many held-out architectures, as `evolve --heldout-size`")
@click.option("--split-seed", default=0, show_default=True, type=int, help="with --train-size: the split seed (evolve's --seed)")
@click.option("--resolution", default=None, help="HxW of the batch (default: the space's input size)")
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(2))
@click.option("--seed", default=0, show_default=True, type=int, help="seeds the sample, the weights and the batch")
@click.option("--bootstrap", "n_boot", default=1000, show_default=True, type=click.IntRange(0),
              help="bootstrap resamples for the 95% intervals")
@click.option("--out", "out_dir", default="runs/proxies", show_default=True, type=click.Path(file_okay=False))
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1),
              help="torch threads (1 is fastest for these small networks)")
def proxies(benchmark: str, metric: Optional[str], proxy_files: Tuple[str, ...], measures: Optional[str],
            n_archs: Optional[int], split_train: Optional[int], split_heldout: Optional[int], split_seed: int,
            resolution: Optional[str], batch_size: int, seed: int, n_boot: int, out_dir: str, threads: int) -> None:
    """Score a benchmark's architectures with zero-cost proxies; print and save rank correlations.

    Writes OUT/proxies.csv (one row per proxy), OUT/scores.csv (one row per architecture),
    OUT/scatter_<proxy>.png and OUT/score_cache.jsonl (a rerun with the same settings resumes from it).
    """
    resume_hint(f"run the same command again to continue: scores already in {out_dir}/score_cache.jsonl are kept")
    if split_heldout is not None and split_train is None:
        raise SaswotError("--heldout-size needs --train-size (it limits the held-out part of that split)")
    if split_train is not None and n_archs is not None:
        raise SaswotError("give --n or --train-size, not both")
    _run(benchmark, metric, proxy_files, measures, n_archs, resolution, batch_size, seed, n_boot, out_dir, threads,
         (split_train, split_heldout, split_seed) if split_train is not None else None)


def _run(benchmark, metric, proxy_files, measures, n_archs, resolution, batch_size, seed, n_boot, out_dir, threads,
         split=None):
    import torch
    from ..zerocost import get_measure, measure_names
    from ..zerocost.evaluate import (format_table, plot_scatter, proxy_table, sample_benchmark,
                                     scatter_name, write_csv, write_scores_csv)
    torch.set_num_threads(threads)
    res = parse_resolution(resolution)
    if measures is None:
        names = measure_names()
    elif measures.strip().lower() == "none":
        names = []
    else:
        names = [m.strip() for m in measures.split(",") if m.strip()]
        for m in names:
            get_measure(m)
    bench = _load(benchmark, metric)
    if split is not None:
        n_train, n_held, split_seed = split
        full = len(bench)
        try:
            bench = bench.split(n_train, seed=split_seed, max_eval=n_held)[1]
        except ValueError as exc:
            raise SaswotError(str(exc)) from None
        click.echo(f"scoring the {len(bench)} held-out architectures of the split --train-size {n_train} "
                   f"--heldout-size {n_held} --seed {split_seed} of {full} (as evolve makes it)", err=True)
    else:
        bench = sample_benchmark(bench, n_archs, seed=seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    from ..batches import default_batch, describe_batch
    images, _ = default_batch(bench, n=batch_size, seed=seed, resolution=res)
    click.echo(f"benchmark {bench.name}: {len(bench)} architectures of space {bench.space!r}, target {bench.metric}; "
               f"batch: {describe_batch(bench, images, seed)}", err=True)

    def progress(i, n, arch, sec):
        if sec > 0 or i == n:
            click.echo(f"  [{i}/{n}] {arch} {sec:.2f}s", err=True)

    rows = proxy_table(bench, names, list(proxy_files), res, batch_size, seed, cache=out / "score_cache.jsonl",
                       progress=progress, n_boot=n_boot)
    click.echo(f"\n{bench.name} ({bench.metric}), {len(bench)} architectures: Kendall tau-b and Spearman rho "
               f"with 95% bootstrap intervals ({n_boot} resamples, seed {seed})")
    click.echo(format_table(rows))
    write_csv(rows, out / "proxies.csv")
    write_scores_csv(bench, rows, out / "scores.csv")
    for r in rows:
        plot_scatter(r, bench.target, out / scatter_name(r["proxy"]), metric=bench.metric, benchmark=bench.name)
    click.echo(f"\nwrote {out}/proxies.csv, scores.csv and {len(rows)} scatter_<proxy>.png")
