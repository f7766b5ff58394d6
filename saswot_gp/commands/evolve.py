"""``saswot-gp evolve``: evolve a proxy on one or several benchmarks (:func:`saswot_gp.evolution.job.run_evolve`)."""

from __future__ import annotations

from typing import Optional, Tuple

import click
from click.core import ParameterSource

from ..errors import SaswotError
from ..spaces.base import parse_resolution
from . import dask_options, device_option, resume_hint


# saswot_gp.evolution.pset.TERMINAL_SETS, spelled out so that --help does not import DEAP (a test keeps them equal)
TERMINAL_CHOICES = ("all", "stats", "sizes", "scalefree", "all+measures", "stats+measures", "sizes+measures",
                    "scalefree+measures")

# the options that are run settings (EvolveSettings fields): given with --resume, each must equal the checkpoint's
SETTINGS = ("benchmarks", "metric", "fitness", "terminals", "select", "val_frac", "batch", "population", "seed",
            "data_seed", "k", "train_size", "heldout_size", "batch_size", "resolution", "split", "resample", "parsimony",
            "root")


def _k_option(value: str) -> Optional[int]:
    """--k as a sketch size: a positive integer, or None for 'full' (also 'none')."""
    if value in ("full", "none", "None"):
        return None
    try:
        k = int(value)
    except ValueError:
        k = 0
    if k < 1:
        raise SaswotError(f"--k {value!r}; expected a positive integer or 'full' (the sketch size per tensor)")
    return k


@click.command("evolve")
@click.option("--benchmark", "benchmarks", multiple=True, default=("realtime-digits",), show_default=True,
              help="registered name or path to a benchmark file; repeat it to evolve on several benchmarks at once "
                   "(default: the embedded trained realtime/digits benchmark; 'synthetic' is the planted test stand-in); "
                   "a TransNAS-Bench-101 name or file with @TASK (transnas-micro@class_scene) targets another task "
                   "of the same architectures")
@click.option("--metric", default=None, help="target column of the benchmark (default: the file's main metric)")
@click.option("--fitness", type=click.Choice(["mean", "min"]), default="mean", show_default=True,
              help="how the per-benchmark training Kendall taus are combined")
@click.option("--terminals", type=click.Choice(TERMINAL_CHOICES), default="all", show_default=True,
              help="leaves of the trees: network statistics and layer sizes, statistics only (W, G, A, AG), sizes only, "
                   "or statistics through size-independent reductions only (scalefree); +measures adds the registered "
                   "live measures as terminals (zc_snip, zc_nwot ...: computed once per architecture, cached)")
@click.option("--select", type=click.Choice(["train", "val"]), default="val", show_default=True,
              help="choose the final proxy by validation Kendall among the hall of fame and the hand-designed seeds "
                   "(val), or among the hall of fame by training Kendall (train)")
@click.option("--val-frac", default=None, type=click.FloatRange(0, 1, max_open=True),
              help="fraction of each training split kept aside as validation (default: 0.25 with --select val, else 0)")
@click.option("--batch", type=click.Choice(["auto", "synthetic", "natural", "digits"]), default="auto", show_default=True,
              help="statistics batch: auto (digit scenes for digits-trained benchmarks, else synthetic), or one kind for all")
@click.option("--population", default=64, show_default=True, type=click.IntRange(4))
@click.option("--generations", default=None, type=click.IntRange(0),
              help="generations after the initial population [default: 20; with --resume: the checkpoint's, or more to extend it]")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--data-seed", default=None, type=int, help="seed of splits, batches and weights (default: --seed)")
@click.option("--out", "out_dir", default="runs/evolve", show_default=True, type=click.Path(file_okay=False))
@click.option("--resume", "resume_dir", default=None, type=click.Path(file_okay=False),
              help="continue the run in DIR (settings come from its checkpoint; --generations may extend it)")
@click.option("--overwrite", is_flag=True, help="replace the run already in --out (default: refuse it)")
@click.option("--cache-dir", default=None, type=click.Path(file_okay=False),
              help="statistics cache shared between runs (default: OUT/stats_cache)")
@click.option("--k", "k", default="256", show_default=True, help="sketch size per tensor, or 'full'")
@click.option("--split", type=click.Choice(["committed", "random"]), default="committed", show_default=True,
              help="committed: the benchmark's committed train/validation/held-out split where it has one "
                   "(realtime-digits, TransNAS micro and macro, NAS-Bench-MR), else a seeded random split; random: always "
                   "the seeded random split")
@click.option("--train-size", default=None, type=click.IntRange(2),
              help="at most this many training architectures (default: the committed split's all, or 200 for a random split)")
@click.option("--heldout-size", default=None, type=click.IntRange(2), help="at most this many held-out architectures (default: all the rest)")
@click.option("--resample", default=0.5, show_default=True, type=click.FloatRange(0, 1),
              help="fitness on a fresh random fraction of each training split every generation (0: the whole split; "
                   "0.5 had the best validation Kendall, benchmarks/RESULTS.md)")
@click.option("--parsimony", default=0.0, show_default=True, type=click.FloatRange(0, 1, max_open=True),
              help="selection fitness = training Kendall tau - parsimony x tree size")
@click.option("--root", type=click.Choice(["auto", "plain", "rank"]), default="auto", show_default=True,
              help="plain: a tree is one score; rank: a tree is rank1 .. rank4 of score subtrees, the sum of their "
                   "log-ranks within the set being ranked (AZ-NAS); auto: rank with several --benchmark, plain "
                   "with one (each validated better there, benchmarks/RESULTS.md)")
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(2))
@click.option("--resolution", default=None,
              help="HxW of the statistics batch (default: the space's input size); refused when the batch and its "
                   "largest network would need more memory than $SASWOT_MAX_MEMORY (default 3/4 of the RAM)")
@dask_options
@device_option
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1),
              help="torch threads (1 is fastest for these small networks; more only helps on idle cores)")
def evolve(benchmarks: Tuple[str, ...], metric: Optional[str], fitness: str, terminals: str, select: str,
           val_frac: Optional[float], batch: str, population: int, generations: Optional[int], seed: int,
           data_seed: Optional[int], out_dir: str, resume_dir: Optional[str], overwrite: bool, cache_dir: Optional[str],
           k: str, split: str, train_size: Optional[int], heldout_size: Optional[int], resample: float,
           parsimony: float, root: str, batch_size: int, resolution: Optional[str],
           workers: int, scheduler: Optional[str], device: str, threads: int) -> None:
    """Evolve a proxy on one or several benchmarks and report it beside the hand-designed proxies."""
    import torch
    from ..errors import SaswotError
    from ..evolution.job import RUN_FILES, format_table, run_evolve
    from ..execution import check_device
    ctx = click.get_current_context()
    typed = [p for p in SETTINGS if ctx.get_parameter_source(p) not in (ParameterSource.DEFAULT,
                                                                        ParameterSource.DEFAULT_MAP)]
    if resume_dir and ctx.get_parameter_source("out_dir") == ParameterSource.COMMANDLINE and out_dir != resume_dir:
        raise SaswotError(f"--out {out_dir} and --resume {resume_dir} name two folders; a resumed run stays in its "
                          f"own folder: give only --resume")
    torch.set_num_threads(threads)
    check_device(device)
    resume_hint(f"continue with: saswot-gp evolve --resume {resume_dir or out_dir} (from the last finished generation)")
    summary = run_evolve(benchmark=list(benchmarks), metric=metric, out_dir=resume_dir or out_dir, population=population,
                         generations=generations, seed=seed, k=_k_option(k), train_size=train_size,
                         batch_size=batch_size, workers=workers, resume=resume_dir is not None, heldout_size=heldout_size,
                         resolution=parse_resolution(resolution), fitness=fitness, terminals=terminals, select=select,
                         val_frac=val_frac, batch=batch, data_seed=data_seed, cache_dir=cache_dir,
                         overwrite=overwrite, scheduler=scheduler, device=device, split=split, resample=resample,
                         parsimony=parsimony, root=root, log=lambda m: click.echo(m, err=True), explicit=typed)
    click.echo(f"\n{summary['benchmark']} ({summary['metric']}): {summary['n_train']} train / "
               f"{summary['n_heldout']} held-out architectures; Kendall tau and Spearman rho")
    click.echo(format_table(summary))
    out = resume_dir or out_dir
    if summary.get("already_finished"):
        click.echo(f"\nnothing written: the report of {out} is in {out}/summary.json")
        return
    written = list(RUN_FILES) + ([] if cache_dir else ["stats_cache/"])
    click.echo(f"\nwrote {out}/{written[0]}, {', '.join(written[1:])}")
