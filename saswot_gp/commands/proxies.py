"""``saswot-gp proxies``: every hand-designed zero-cost measure (and given proxy files) on a benchmark."""

from __future__ import annotations

from typing import List, Optional, Tuple

import click

from ..errors import SaswotError
from ..progress import Progress
from ..spaces.base import parse_resolution
from . import dask_options, device_option, resume_hint


def _measure_list(measures: Optional[str]) -> Optional[List[str]]:
    """--measures as names: None for all, [] for 'none', else the comma-separated names."""
    if measures is None:
        return None
    if measures.strip().lower() == "none":
        return []
    return [m.strip() for m in measures.split(",") if m.strip()]


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
@click.option("--committed-split", is_flag=True,
              help="score only the held-out part of the benchmark's committed split (what evolve reports on by default)")
@click.option("--resolution", default=None,
              help="HxW of the batch (default: the space's input size); refused when the batch and its largest "
                   "network would need more memory than $SASWOT_MAX_MEMORY (default 3/4 of the RAM)")
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(2))
@click.option("--seed", default=0, show_default=True, type=int, help="seeds the sample, the weights and the batch")
@click.option("--bootstrap", "n_boot", default=1000, show_default=True, type=click.IntRange(0),
              help="bootstrap resamples for the 95% intervals")
@click.option("--out", "out_dir", default="runs/proxies", show_default=True, type=click.Path(file_okay=False))
@click.option("--overwrite", is_flag=True, help="replace the results already in --out (default: refuse them; the "
                                                 "score cache is kept and reused)")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1),
              help="torch threads (1 is fastest for these small networks)")
@dask_options
@device_option
def proxies(benchmark: str, metric: Optional[str], proxy_files: Tuple[str, ...], measures: Optional[str],
            n_archs: Optional[int], split_train: Optional[int], split_heldout: Optional[int], split_seed: int,
            committed_split: bool, resolution: Optional[str], batch_size: int, seed: int, n_boot: int, out_dir: str,
            overwrite: bool, threads: int, workers: int, scheduler: Optional[str], device: str) -> None:
    """Score a benchmark's architectures with zero-cost proxies; print and save rank correlations.

    Writes OUT/proxies.csv (one row per proxy), OUT/scores.csv (one row per architecture),
    OUT/scatter_<proxy>.png and OUT/score_cache.jsonl (an interrupted run, run again, resumes from it). A folder
    that already holds results is refused unless --overwrite.
    """
    import torch
    from ..execution import check_device
    from ..zerocost.evaluate import format_table, run_proxies
    resume_hint(f"run the same command again to continue: scores already in {out_dir}/score_cache.jsonl are kept")
    if split_heldout is not None and split_train is None:
        raise SaswotError("--heldout-size needs --train-size (it limits the held-out part of that split)")
    if split_train is not None and n_archs is not None:
        raise SaswotError("give --n or --train-size, not both")
    if committed_split and (split_train is not None or n_archs is not None):
        raise SaswotError("give --committed-split, --n or --train-size, not two of them")
    torch.set_num_threads(threads)
    check_device(device)

    def say(msg: str) -> None:
        click.echo(msg, err=True)

    bar, cached = Progress("  scoring", unit="arch"), [0]

    def progress(i: int, n: int, arch: str, sec: float) -> None:
        cached[0] += sec == 0   # an architecture scored entirely from the cache (score_architectures' rule)
        bar(i, n, cached=cached[0])

    done = run_proxies(benchmark, metric, proxy_files, _measure_list(measures), n=n_archs,
                       split="committed" if committed_split else
                       (split_train, split_heldout, split_seed) if split_train is not None else None,
                       resolution=parse_resolution(resolution), batch_size=batch_size, seed=seed, n_boot=n_boot,
                       out_dir=out_dir, progress=progress, log=say, workers=workers, scheduler=scheduler,
                       device=device, overwrite=overwrite)
    bench, rows = done["benchmark"], done["rows"]
    click.echo(f"\n{bench.name} ({bench.metric}), {len(bench)} architectures: Kendall tau-b and Spearman rho "
               f"with 95% bootstrap intervals ({n_boot} resamples, seed {seed})")
    click.echo(format_table(rows))
    paths = done["paths"]
    click.echo(f"\nwrote {done['out_dir']}/{paths['table'].name}, {paths['scores'].name}, {paths['cache'].name} and "
               f"{len(paths['scatter'])} scatter_<proxy>.png")
