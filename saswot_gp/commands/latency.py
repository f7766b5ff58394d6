"""``saswot-gp latency build|check``: the realtime space's latency lookup table."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from ..progress import Progress
from ..spaces.base import parse_resolution
from . import device_option, runtime_option


@click.group("latency")
def latency() -> None:
    """Latency lookup table of a search space: build it, check it against measured networks."""


@latency.command("build")
@click.option("--space", "space_name", default="realtime", show_default=True, help="search space (only 'realtime')")
@click.option("--resolution", default="64x64", show_default=True, help="input HxW (sides divisible by 32)")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1),
              help="threads while timing (torch threads; ONNX Runtime intra-op threads)")
@click.option("--repeats", default=20, show_default=True, type=click.IntRange(1), help="timed runs per entry (median)")
@click.option("--warmup", default=5, show_default=True, type=click.IntRange(0), help="untimed runs per entry first")
@click.option("--rounds", default=1, show_default=True, type=click.IntRange(1),
              help="time all entries this many times in turn and summarise (spreads load bursts evenly)")
@click.option("--statistic", default="median", show_default=True, type=click.Choice(["median", "min"]),
              help="summary of the repeats (min resists interference from other processes on a busy machine)")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), help="LUT JSON file to write")
@device_option
@runtime_option("eager")
def build(space_name: str, resolution: str, threads: int, repeats: int, warmup: int, rounds: int, statistic: str,
          out_path: str, device: str, runtime: str) -> None:
    """Time every stem, layer and head configuration once at batch 1 and write the lookup table (JSON).

    --runtime onnxruntime exports each part to ONNX (once, untimed) and times it in an ONNX Runtime session
    (CPUExecutionProvider, --threads intra-op threads, 1 inter-op thread)."""
    from ..execution import check_device
    from ..latency import build_lut, check_runtime
    from ..spaces import get_space
    check_runtime(runtime, check_device(device))
    res = parse_resolution(resolution)
    space = get_space(space_name, input_size=res)
    bar = Progress("  timing", unit="entry")

    def progress(i: int, n: int, key: str) -> None:
        bar(i, n)

    table = build_lut(space, res, threads=threads, repeats=repeats, warmup=warmup, progress=progress,
                      statistic=statistic, rounds=rounds, device=device, runtime=runtime)
    table.save(out_path)
    click.echo(f"latency table of {space_name} at {res[0]}x{res[1]}, {runtime} {table.meta['runtime_version']}, "
               f"{threads} thread(s), {statistic} of {repeats}: "
               f"{len(table.entries)} entries timed in {table.meta['build_s']:.1f} s -> {out_path}")


@latency.command("check")
@click.option("--lut", "lut_path", required=True, type=click.Path(dir_okay=False), help="LUT JSON file")
@click.option("--n", "n", default=50, show_default=True, type=click.IntRange(2), help="networks to sample and measure")
@click.option("--seed", default=0, show_default=True, type=int, help="seeds the sample and the weights")
@click.option("--repeats", default=20, show_default=True, type=click.IntRange(1), help="timed runs per network (median)")
@click.option("--warmup", default=5, show_default=True, type=click.IntRange(0))
@click.option("--rounds", default=1, show_default=True, type=click.IntRange(1),
              help="measure all networks this many times in turn and summarise")
@click.option("--repeatability", is_flag=True,
              help="measure everything twice and report measured-vs-measured tau (the noise ceiling)")
@click.option("--out", "out_path", default=None, type=click.Path(dir_okay=False), help="write the results as JSON")
@click.option("--device", default=None, help="where to measure: cpu, cuda or cuda:N [default: the table's device]")
@runtime_option(None)
def check(lut_path: str, n: int, seed: int, repeats: int, warmup: int, rounds: int, repeatability: bool,
          out_path: Optional[str], device: Optional[str], runtime: Optional[str]) -> None:
    """Measure N sampled networks and compare with the table's predictions (Kendall tau, median ratio).

    The same procedure as benchmarks/latency_lut.py (both call saswot_gp.latency.check_lut): the same table,
    seed and settings give the same networks, weights and timing loop."""
    from ..io import atomic_write_json
    from ..latency import LatencyTable, check_lut
    from ..execution import check_device
    table = LatencyTable.load(lut_path)
    device = check_device(device or table.meta.get("device", "cpu"))

    progress = Progress("  measuring", unit="net")

    res = check_lut(table, n=n, seed=seed, warmup=warmup, repeats=repeats, rounds=rounds,
                    repeatability=repeatability, progress=progress, device=device, runtime=runtime)
    res["lut_path"] = str(Path(lut_path))
    if out_path:
        atomic_write_json(out_path, res)
    click.echo(f"{res['n']} networks at {table.resolution[0]}x{table.resolution[1]}, {res['runtime']}, "
               f"{table.threads} thread(s), "
               f"{table.statistic} of {repeats}: "
               f"Kendall tau {res['kendall_tau']:.3f}, median predicted/measured {res['median_ratio']:.3f}, "
               f"measured {res['measured_ms_range'][0]:.2f}-{res['measured_ms_range'][1]:.2f} ms"
               + (f"; measured-vs-measured tau {res['repeat_tau']:.3f}" if repeatability else "")
               + (f" -> {out_path}" if out_path else ""))
