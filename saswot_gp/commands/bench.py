"""``saswot-gp bench build``: a ground-truth benchmark built by training (:func:`saswot_gp.benchbuild.build`)."""

from __future__ import annotations

from typing import Optional

import click

from . import dask_options, device_option, resume_hint


@click.group("bench")
def bench() -> None:
    """Ground-truth benchmarks built by training."""


@bench.command("build")
@click.option("--space", default="realtime", show_default=True)
@click.option("--data", type=click.Choice(["digits", "cityscapes", "camvid"]), default="digits", show_default=True)
@click.option("--root", default=None, type=click.Path(exists=True, file_okay=False), help="data set folder (cityscapes, camvid)")
@click.option("--name", default=None, help="the benchmark's name in its header (default: the --out file name without extension)")
@click.option("--n", "n", default=200, show_default=True, type=click.IntRange(1))
@click.option("--seeds", default=2, show_default=True, type=click.IntRange(1))
@click.option("--repeat", default=50, show_default=True, type=click.IntRange(0), help="how many architectures get all --seeds")
@click.option("--steps", default=1000, show_default=True, type=click.IntRange(1))
@click.option("--batch-size", default=16, show_default=True, type=click.IntRange(1))
@click.option("--optimizer", type=click.Choice(["adamw", "sgd"]), default="adamw", show_default=True)
@click.option("--lr", default=None, type=click.FloatRange(min=0, min_open=True), help="peak learning rate (default: the optimizer's)")
@click.option("--warmup", default=0, show_default=True, type=click.IntRange(0), help="linear warm-up steps")
@click.option("--sampler", type=click.Choice(["uniform", "diverse"]), default="uniform", show_default=True,
              help="how architectures are drawn: i.i.d. layers, or per-architecture operator/width preferences")
@click.option("--input-size", default=None, type=click.IntRange(32))
@click.option("--base-width", default=None, type=click.IntRange(1))
@dask_options
@device_option
@click.option("--out", required=True, type=click.Path(dir_okay=False))
def build(space: str, data: str, root: Optional[str], name: Optional[str], n: int, seeds: int, repeat: int, steps: int,
          batch_size: int, optimizer: str, lr: Optional[float], warmup: int, sampler: str, input_size: Optional[int],
          base_width: Optional[int], workers: int, scheduler: Optional[str], device: str, out: str) -> None:
    """Train N sampled architectures (append-only, resumable CSV; one row per architecture and seed).

    With --workers N (N >= 2) or --scheduler, every (architecture, seed) is one Dask task; rows are appended as
    tasks finish (in any order), and a worker that dies has its job run again elsewhere. --workers 0 or 1 trains
    serially in-process."""
    from ..benchbuild import build as build_benchmark, noise_ceiling
    from ..execution import check_device, executor
    from ..progress import Progress
    check_device(device)
    skw = {k: v for k, v in (("input_size", input_size), ("base_width", base_width)) if v is not None}
    resume_hint(f"run the same command again to continue: the rows already in {out} are kept")
    say = lambda m: click.echo(m, err=True)  # noqa: E731
    with executor(workers if workers > 1 else 0, scheduler, log=say) as ex:
        build_benchmark(out, space=space, data=data, n=n, seeds=seeds, repeat=repeat, steps=steps,
                        batch_size=batch_size, optimizer=optimizer, lr=lr, warmup=warmup, sampler=sampler,
                        space_kwargs=skw, name=name, data_root=root, log=say, executor=ex, device=device,
                        progress=Progress("  training", unit="job"))
    nc = noise_ceiling(out)
    if seeds < 2 or repeat < 3:
        click.echo("no seed-to-seed agreement: it needs architectures trained with two seeds (--seeds 2 or more, "
                   "--repeat 3 or more)")
    elif nc["n"] < 3:
        click.echo(f"no seed-to-seed agreement yet: {nc['n']} architecture(s) trained with two seeds; it needs 3")
    else:
        click.echo(f"seed-to-seed agreement over {nc['n']} architectures: Kendall {nc['kendall']:.3f}, "
                   f"Spearman {nc['spearman']:.3f}")
