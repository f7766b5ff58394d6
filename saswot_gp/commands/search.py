"""``saswot-gp search``: training-free, latency-bounded evolutionary search scored by a proxy."""

from __future__ import annotations

from typing import Optional

import click

from ..progress import Progress
from ..spaces.base import parse_resolution
from . import dask_options, device_option, resume_hint, runtime_option


@click.command("search")
@click.option("--proxy", "proxy_spec", required=True,
              help="a proxy JSON file, saswot, a proxy-language name (nwot_gp, ...) or tree, or a registered zero-cost measure (snip, nwot, params, ...)")
@click.option("--space", "space_name", default="realtime", show_default=True, help="search space (only 'realtime')")
@click.option("--max-latency", "max_latency", default=None, type=float, help="latency budget in ms (LUT-predicted)")
@click.option("--min-fps", "min_fps", default=None, type=float, help="or: FPS budget (max latency = 1000 / F ms)")
@click.option("--resolution", default=None,
              help="input HxW (default: the LUT's, else 64x64); sides divisible by 32; refused when the "
                   "batch and its largest network would need more than $SASWOT_MAX_MEMORY (default 3/4 of the RAM)")
@click.option("--lut", "lut_path", default=None, type=click.Path(dir_okay=False),
              help="latency table from `saswot-gp latency build` (default: build one into OUT/latency_lut.json)")
@click.option("--budget", default=500, show_default=True, type=click.IntRange(1), help="architectures to score")
@click.option("--top", "top_k", default=10, show_default=True, type=click.IntRange(1), help="architectures to report")
@click.option("--out", "out_dir", default="runs/search", show_default=True, type=click.Path(file_okay=False))
@click.option("--seed", default=0, show_default=True, type=int, help="seeds the evolution and the weights")
@click.option("--population", default=50, show_default=True, type=click.IntRange(2))
@click.option("--sample-size", default=10, show_default=True, type=click.IntRange(1), help="tournament size")
@click.option("--batch", "batch_kind", default="digits", show_default=True, type=click.Choice(["digits", "synthetic"]),
              help="scoring batch: digit scenes (train split, data seed 0) or the seeded synthetic batch")
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(1))
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1),
              help="torch threads (of this process; Dask workers use 1 each)")
@dask_options
@device_option
@runtime_option("eager", "runtime the latency budget is for (eager or onnxruntime); a --lut measured with "
                         "another runtime is refused")
@click.option("--train-time", "train_time", default=None, type=click.FloatRange(min=0, min_open=True),
              help="measured training time of one network (s): also report the cost of training every scored one")
@click.option("--remeasure/--no-remeasure", default=True, show_default=True,
              help="measure the final top K on the table's runtime, threads and device, next to the predicted "
                   "latency; those over the budget when measured are marked and listed last")
@click.option("--resume", is_flag=True, help="continue the search checkpointed in OUT (same settings)")
@click.option("--overwrite", is_flag=True, help="replace the search already in OUT (default: refuse it)")
def search(proxy_spec: str, space_name: str, max_latency: Optional[float], min_fps: Optional[float],
           resolution: Optional[str], lut_path: Optional[str], budget: int, top_k: int, out_dir: str, seed: int,
           population: int, sample_size: int, batch_kind: str, batch_size: int, threads: int,
           train_time: Optional[float], workers: int, device: str, scheduler: Optional[str], remeasure: bool,
           resume: bool, overwrite: bool, runtime: str) -> None:
    """Regularised evolution under a latency budget, scoring candidates with a proxy only (never training).

    Writes OUT/top.csv, OUT/top.json (top architectures with proxy score, predicted latency and FPS, measured
    latency and whether it meets the budget, params, FLOPs, and the run's summary) and OUT/checkpoint.json (every few
    scores; --resume continues it). The top K are the proxy's best; re-measuring (default; --no-remeasure skips it)
    only moves those that miss the budget when measured to the end of the list.

    With --workers N (N >= 2) or --scheduler, candidates are scored on Dask, twice as many in flight as workers
    (asynchronous evolution: each score equals the serial one, but which architectures get scored depends on
    timing, so a seeded run is not reproducible). --workers 0 or 1 runs the serial, reproducible search.
    """
    import torch
    from ..errors import SaswotError
    from ..execution import executor
    from ..io import prepare_run_dir
    from ..search import RUN_FILES, ProxyScorer, format_top, parse_budget, resolve_lut, run_search

    def say(msg: str) -> None:
        click.echo(msg, err=True)

    limit = parse_budget(max_latency, min_fps)
    if scheduler and workers > 1:  # refused before --overwrite deletes anything (the executor says the same)
        raise SaswotError("give --workers or --scheduler, not both")
    res = parse_resolution(resolution)
    if res:  # the scoring batch is refused before a latency table is built for it (search_batch checks it again)
        from ..batches import check_memory
        from ..spaces import get_space
        check_memory(get_space(space_name, input_size=res), res, batch_size, batch_kind)
    from ..execution import check_device
    scorer = ProxyScorer(proxy_spec, seed=seed, device=check_device(device))
    torch.set_num_threads(threads)
    out = prepare_run_dir(out_dir, RUN_FILES, resume, overwrite, "--resume")
    resume_hint(f"add --resume to the same command to continue the search in {out}")
    space, lut = resolve_lut(space_name, res, lut_path, out, threads=threads, log=say, runtime=runtime)
    bar, best, before = Progress("  scoring", unit="arch"), [float("-inf")], [None]

    def progress(i: int, n: int, arch: str, score: float) -> None:
        if score == score:  # not NaN
            best[0] = max(best[0], score)
        if before[0] is None:
            before[0] = i - 1  # scored before this process (a resumed search): shown apart, not in the rate
        bar(i, n, cached=before[0], best=f"{best[0]:.5g}")

    with executor(workers if workers > 1 else 0, scheduler, log=say) as ex:
        summary = run_search(space, scorer, lut, limit, budget, out, top_k=top_k, seed=seed, population=population,
                             sample_size=sample_size, batch=batch_kind, batch_size=batch_size, resume=resume,
                             overwrite=overwrite, train_time=train_time, progress=progress, log=say, executor=ex,
                             runtime=runtime, remeasure=remeasure)
    click.echo(format_top(summary))
    if train_time is not None:
        c = summary["search_cost"]
        click.echo(f"training every scored candidate would take {c['train_all_h']:.2f} h "
                   f"({c['scored']} x {train_time:g} s) vs {c['search_wall_s']:.1f} s of search")
    written = list(RUN_FILES) + ([] if lut_path else ["latency_lut.json"])  # resolve_lut's table without --lut
    click.echo(f"wrote {out}/{written[0]}, {', '.join(written[1:])}")
