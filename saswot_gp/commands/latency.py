"""``saswot-gp latency build|calibrate|check``: the realtime space's latency lookup table."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from ..errors import SaswotError
from ..progress import Progress
from ..spaces.base import parse_resolution
from . import device_option, runtime_option


@click.group("latency")
def latency() -> None:
    """Latency lookup table of a search space: build it, calibrate it on measured networks, check it."""


# saswot_gp.latency's MIN_SEED, SAMPLERS, FEATURE_SETS, DEFAULT_FEATURES and RECOMMENDED_* (the build defaults
# below), not imported here: they would load torch at startup (tests check that they agree)
MIN_SEED = 1000
SAMPLERS = ("mixed", "uniform", "diverse")
MODELS = ("affine", "scale", "scale+overhead", "scale+macs")
DEFAULT_MODEL = "scale+macs"


def _calibration_options(f):
    """Options that say how a table is calibrated (``latency build --calibrate N`` and ``latency calibrate``)."""
    f = click.option("--sampler", default="mixed", show_default=True, type=click.Choice(list(SAMPLERS)),
                     help="how calibration networks are drawn: uniform, diverse, or alternately (mixed)")(f)
    f = click.option("--model", "model", default=DEFAULT_MODEL, show_default=True, type=click.Choice(list(MODELS)),
                     help="calibration model: affine (intercept + scale of the sum, 2 coefficients), scale "
                          "(intercept + a scale per part group, 10), scale+overhead (+ a per-layer overhead per "
                          "group, 17) or scale+macs (scale + ms per GMAC of the network, 11)")(f)
    return click.option("--calibrate-seed", "calibrate_seed", default=MIN_SEED, show_default=True,
                        type=click.IntRange(MIN_SEED),
                        help=f"seeds the calibration networks and weights (>= {MIN_SEED}: never a `latency check` "
                             f"sample)")(f)


def _check_calibration_n(flag: str, n: int, model: str) -> None:
    """A one-line error, before any work, when ``n`` networks are too few to fit the calibration ``model``."""
    from ..latency import min_calibration_n
    if n < min_calibration_n(model):
        raise SaswotError(f"{flag} {n}: calibration model {model!r} needs at least {min_calibration_n(model)} "
                          f"networks; expected {flag} {min_calibration_n(model)} or more")


def _calibrated(table, n: int, seed: int, warmup: int, repeats: int, rounds: int, model: str, sampler: str):
    """``table`` calibrated on ``n`` measured networks, with a progress bar and a one-line summary."""
    from ..latency import calibrate_lut
    bar = Progress("  calibrating", unit="net")
    out = calibrate_lut(table, n=n, seed=seed, warmup=warmup, repeats=repeats, rounds=rounds, features=model,
                        sampler=sampler, progress=bar)
    info = out.calibration.info
    fit, raw = info["fit"], info["raw"]
    click.echo(f"calibrated on {info['n']} networks (seed {seed}, {sampler}, model {model}, "
               f"{info['n_coefficients']} coefficients): median |error| {100 * raw['median_abs_rel_error']:.1f}% -> "
               f"{100 * fit['median_abs_rel_error']:.1f}%, Kendall tau {raw['kendall_tau']:.3f} -> "
               f"{fit['kendall_tau']:.3f} (in sample)")
    return out


def _table_timing(table, warmup: Optional[int], repeats: Optional[int], rounds: Optional[int]):
    """(warmup, repeats, rounds): those given, else the ones the table was built with (``LatencyTable.timing``)."""
    own = table.timing
    return (own["warmup"] if warmup is None else warmup, own["repeats"] if repeats is None else repeats,
            own["rounds"] if rounds is None else rounds)


@latency.command("build")
@click.option("--space", "space_name", default="realtime", show_default=True, help="search space (only 'realtime')")
@click.option("--resolution", default="64x64", show_default=True, help="input HxW (sides divisible by 32)")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1),
              help="threads while timing (torch threads; ONNX Runtime intra-op threads)")
@click.option("--repeats", default=20, show_default=True, type=click.IntRange(1), help="timed runs per entry")
@click.option("--warmup", default=5, show_default=True, type=click.IntRange(0), help="untimed runs per entry first")
@click.option("--rounds", default=5, show_default=True, type=click.IntRange(1),
              help="time all entries this many times in turn and summarise (spreads load bursts evenly)")
@click.option("--statistic", default="min", show_default=True, type=click.Choice(["median", "min"]),
              help="summary of the repeats and rounds (min resists interference from other processes)")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), help="LUT JSON file to write")
@click.option("--calibrate", "calibrate", default=60, show_default=True, type=click.IntRange(0),
              help="then measure N whole networks and fit the table's calibration on them (0: none, the table "
                   "predicts the plain sum of its parts; same as `latency calibrate`)")
@_calibration_options
@device_option
@runtime_option("eager")
def build(space_name: str, resolution: str, threads: int, repeats: int, warmup: int, rounds: int, statistic: str,
          out_path: str, calibrate: int, calibrate_seed: int, model: str, sampler: str, device: str,
          runtime: str) -> None:
    """Time every stem, layer and head configuration once at batch 1 and write the lookup table (JSON).

    --runtime onnxruntime exports each part to ONNX (once, untimed) and times it in an ONNX Runtime session
    (CPUExecutionProvider, --threads intra-op threads, 1 inter-op thread). --calibrate N then measures N whole
    networks (seeds from --calibrate-seed, with the build's --repeats, --warmup and --rounds) and stores a
    calibration that predictions use instead of the plain sum of entries."""
    from ..execution import check_device
    from ..latency import build_lut, check_runtime
    from ..io import check_output_path
    from ..spaces import get_space
    check_output_path(out_path, what="latency table")  # before timing anything
    check_runtime(runtime, check_device(device))
    if calibrate:
        _check_calibration_n("--calibrate", calibrate, model)
    res = parse_resolution(resolution)
    space = get_space(space_name, input_size=res)
    bar = Progress("  timing", unit="entry")

    def progress(i: int, n: int, key: str) -> None:
        bar(i, n)

    table = build_lut(space, res, threads=threads, repeats=repeats, warmup=warmup, progress=progress,
                      statistic=statistic, rounds=rounds, device=device, runtime=runtime)
    if calibrate:
        table = _calibrated(table, calibrate, calibrate_seed, warmup, repeats, rounds, model, sampler)
    table.save(out_path)
    click.echo(f"latency table of {space_name} at {res[0]}x{res[1]}, {runtime} {table.meta['runtime_version']}, "
               f"{threads} thread(s), {statistic} of {repeats}: "
               f"{len(table.entries)} entries timed in {table.meta['build_s']:.1f} s -> {out_path}")


@latency.command("calibrate")
@click.option("--lut", "lut_path", required=True, type=click.Path(dir_okay=False), help="LUT JSON file")
@click.option("--n", "n", default=60, show_default=True, type=click.IntRange(2), help="networks to sample and measure")
@click.option("--repeats", default=None, type=click.IntRange(1), help="timed runs per network [default: the table's]")
@click.option("--warmup", default=None, type=click.IntRange(0), help="untimed runs first [default: the table's]")
@click.option("--rounds", default=None, type=click.IntRange(1),
              help="measure all networks this many times in turn and summarise [default: the table's]")
@_calibration_options
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="calibrated LUT JSON to write (may be --lut itself)")
def calibrate(lut_path: str, n: int, repeats: Optional[int], warmup: Optional[int], rounds: Optional[int],
              calibrate_seed: int, model: str, sampler: str, out_path: str) -> None:
    """Measure N whole networks as `latency check` does (the table's runtime, threads, statistic and device) and fit
    the table's calibration: a small non-negative linear model over its entries that predictions then use.

    The networks come from --calibrate-seed (1000 and up), so `latency check` (seed 0 by default) measures other
    networks; its output says how many of its networks were calibrated on. An existing calibration is replaced."""
    from ..io import check_output_path
    from ..latency import LatencyTable
    check_output_path(out_path, what="latency table")  # before measuring anything
    _check_calibration_n("--n", n, model)
    table = LatencyTable.load(lut_path)
    warmup, repeats, rounds = _table_timing(table, warmup, repeats, rounds)
    table = _calibrated(table, n, calibrate_seed, warmup, repeats, rounds, model, sampler)
    table.save(out_path)
    click.echo(f"-> {out_path}")


@latency.command("check")
@click.option("--lut", "lut_path", required=True, type=click.Path(dir_okay=False), help="LUT JSON file")
@click.option("--n", "n", default=50, show_default=True, type=click.IntRange(2), help="networks to sample and measure")
@click.option("--seed", default=0, show_default=True, type=int, help="seeds the sample and the weights")
@click.option("--repeats", default=None, type=click.IntRange(1),
              help="timed runs per network [default: the table's]")
@click.option("--warmup", default=None, type=click.IntRange(0), help="untimed runs first [default: the table's]")
@click.option("--rounds", default=None, type=click.IntRange(1),
              help="measure all networks this many times in turn and summarise [default: the table's]")
@click.option("--repeatability", is_flag=True,
              help="measure everything twice and report measured-vs-measured tau (the noise ceiling)")
@click.option("--drift", "drift_n", default=10, show_default=True, type=click.IntRange(0),
              help="then measure this many of a calibrated table's calibration networks again, as they were "
                   "measured, and report how much faster or slower the machine runs now (0: skip)")
@click.option("--out", "out_path", default=None, type=click.Path(dir_okay=False), help="write the results as JSON")
@click.option("--plot", "plot_path", default=None, type=click.Path(dir_okay=False),
              help="also draw predicted against measured latency (.png or .svg)")
@click.option("--device", default=None, help="where to measure: cpu, cuda or cuda:N [default: the table's device]")
@runtime_option(None)
def check(lut_path: str, n: int, seed: int, repeats: Optional[int], warmup: Optional[int], rounds: Optional[int],
          repeatability: bool, drift_n: int, out_path: Optional[str], plot_path: Optional[str],
          device: Optional[str], runtime: Optional[str]) -> None:
    """Measure N sampled networks and compare with the table's predictions (Kendall tau, median ratio).

    The same procedure as benchmarks/latency_lut.py (both call saswot_gp.latency.check_lut): the same table,
    seed and settings give the same networks, weights and timing loop."""
    from ..io import atomic_write_json, check_output_path
    from ..latency import LatencyTable, check_lut
    from ..execution import check_device
    from ..viz import check_plot_path, plot_latency_check
    if out_path:
        check_output_path(out_path, what="results file")  # before measuring anything
    if plot_path:
        check_plot_path(plot_path)
    table = LatencyTable.load(lut_path)
    device = check_device(device or table.meta.get("device", "cpu"))
    warmup, repeats, rounds = _table_timing(table, warmup, repeats, rounds)

    progress = Progress("  measuring", unit="net")

    res = check_lut(table, n=n, seed=seed, warmup=warmup, repeats=repeats, rounds=rounds,
                    repeatability=repeatability, progress=progress, device=device, runtime=runtime)
    res["lut_path"] = str(Path(lut_path))
    drift = _drift(table, drift_n, device, res["runtime"])
    if drift is not None:
        res["calibration_drift"] = drift
    if out_path:
        atomic_write_json(out_path, res)
    if plot_path:
        plot_latency_check(res, plot_path)
    raw = res.get("raw")
    click.echo(f"{res['n']} networks at {table.resolution[0]}x{table.resolution[1]}, {res['runtime']}, "
               f"{table.threads} thread(s), "
               f"{table.statistic} of {repeats}: "
               f"Kendall tau {res['kendall_tau']:.3f}, median predicted/measured {res['median_ratio']:.3f}, "
               f"median |error| {100 * res['median_abs_rel_error']:.1f}%, "
               f"measured {res['measured_ms_range'][0]:.2f}-{res['measured_ms_range'][1]:.2f} ms"
               + (f"; measured-vs-measured tau {res['repeat_tau']:.3f}" if repeatability else "")
               + (f"; plain sum of entries: Kendall tau {raw['kendall_tau']:.3f}, median predicted/measured "
                  f"{raw['median_ratio']:.3f}, median |error| {100 * raw['median_abs_rel_error']:.1f}% "
                  f"({res['calibration_overlap']} of the networks calibrated on)" if raw else "")
               + (" -> " + ", ".join(p for p in (out_path, plot_path) if p) if out_path or plot_path else ""))
    if drift is not None:
        from ..latency import DRIFT_WARN, drifted
        ratio = drift["median_ratio"]
        advice = (f"more than {100 * DRIFT_WARN:.0f} % off: calibrate the table again (`latency calibrate`)"
                  if drifted(ratio) else f"within {100 * DRIFT_WARN:.0f} %: the calibration still fits")
        click.echo(f"calibration networks measured again: {drift['n']} run at {ratio:.3f}x their calibration times "
                   f"(median now/then; calibrated {drift['calibrated']}), so predictions are about {1 / ratio:.2f}x "
                   f"what this machine measures now; {advice}")


def _drift(table, n: int, device: str, runtime: str):
    """:func:`calibration_drift` of ``n`` networks, or None (``n`` 0, an uncalibrated table or one calibrated
    without stored measurements, or a check on another runtime than the table's)."""
    from ..latency import calibration_drift
    info = table.calibration.info if table.calibration is not None else {}
    if not n or not info.get("archs") or runtime != table.runtime:
        return None
    return calibration_drift(table, n=n, device=device, progress=Progress("  measuring again", unit="net"))
