"""``saswot-gp proxies``: every hand-designed zero-cost measure (and given proxy files) on a benchmark."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional, Tuple

import click

from ..errors import SaswotError


def _load(benchmark: str, metric):
    from ..groundtruth.loaders import load_benchmark
    from ..pipeline import resolve_benchmark
    if benchmark == "synthetic":
        return resolve_benchmark(benchmark, metric)
    return load_benchmark(benchmark, metric=metric)


@click.command("proxies")
@click.option("--benchmark", required=True, help="registered name or path to a benchmark file (CSV, NASLib JSON, ...)")
@click.option("--metric", default=None, help="target column of the benchmark (default: the file's main metric)")
@click.option("--proxy", "proxy_files", multiple=True, type=click.Path(dir_okay=False),
              help="a discovered proxy JSON file to score as well (repeatable)")
@click.option("--measures", default=None,
              help="comma-separated registered measures (default: all; 'none' for proxy files only)")
@click.option("--n", "n_archs", default=None, type=click.IntRange(3), help="score N architectures sampled with --seed")
@click.option("--resolution", default=None, help="HxW of the batch (default: the space's input size)")
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(2))
@click.option("--seed", default=0, show_default=True, type=int, help="seeds the sample, the weights and the batch")
@click.option("--bootstrap", "n_boot", default=1000, show_default=True, type=click.IntRange(0),
              help="bootstrap resamples for the 95% intervals")
@click.option("--out", "out_dir", default="runs/proxies", show_default=True, type=click.Path(file_okay=False))
@click.option("--threads", default=2, show_default=True, type=click.IntRange(1), help="torch threads")
def proxies(benchmark: str, metric: Optional[str], proxy_files: Tuple[str, ...], measures: Optional[str],
            n_archs: Optional[int], resolution: Optional[str], batch_size: int, seed: int, n_boot: int, out_dir: str,
            threads: int) -> None:
    """Score a benchmark's architectures with zero-cost proxies; print and save rank correlations.

    Writes OUT/proxies.csv (one row per proxy), OUT/scores.csv (one row per architecture),
    OUT/scatter_<proxy>.png and OUT/score_cache.jsonl (a rerun with the same settings resumes from it).
    """
    try:
        _run(benchmark, metric, proxy_files, measures, n_archs, resolution, batch_size, seed, n_boot, out_dir, threads)
    except SaswotError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


def _run(benchmark, metric, proxy_files, measures, n_archs, resolution, batch_size, seed, n_boot, out_dir, threads):
    import torch
    from ..zerocost import get_measure, measure_names
    from ..zerocost.evaluate import (format_table, parse_resolution, plot_scatter, proxy_table, sample_benchmark,
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
    bench = sample_benchmark(_load(benchmark, metric), n_archs, seed=seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    from ..pipeline import default_batch
    images, _ = default_batch(bench, n=batch_size, seed=seed, resolution=res)
    click.echo(f"benchmark {bench.name}: {len(bench)} architectures of space {bench.space!r}, target {bench.metric}; "
               f"batch: seeded synthetic images {tuple(images.shape)} with smooth random labels (seed {seed})", err=True)

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
        plot_scatter(r, bench.target, out / scatter_name(r["proxy"]), metric=bench.metric)
    click.echo(f"\nwrote {out}/proxies.csv, scores.csv and {len(rows)} scatter_<proxy>.png")
