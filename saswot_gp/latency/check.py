"""Check a latency table: predicted against measured latency of whole networks."""

from __future__ import annotations

import json
import random
import statistics
import time
from collections import OrderedDict
from typing import Callable, Dict, Iterable, List, Optional, Sequence

import torch

from ..errors import SaswotError
from ..training import speed
from .runtime import OrtTimer, check_runtime, runtime_version
from .table import LatencyTable


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall tau-b between two sequences (:func:`saswot_gp.ranking.kendall`)."""
    from ..ranking import kendall
    return kendall(a, b)


# ONNX exports of whole networks kept in this process, so a second pass over the same networks (the check's
# ceiling, a search re-measuring what a check measured) does not export them again: (table's space, arch, seed)
# -> ONNX bytes, the most recent EXPORTS_KEPT (a 64x64 realtime network is about 0.1-1 MB)
_EXPORTS: "OrderedDict[tuple, bytes]" = OrderedDict()
EXPORTS_KEPT = 128


def _ort_timer(table: LatencyTable, arch: str, model, x: torch.Tensor, seed: int) -> OrtTimer:
    """An exported (untimed) ONNX Runtime timer of one network, its export reused when this process has it."""
    key = (table.space_name, json.dumps(table.space_kwargs, sort_keys=True), arch, int(seed))
    timer = OrtTimer(model, x, table.threads, model=_EXPORTS.get(key))
    timer.prepare()  # a no-op when the export was kept
    _EXPORTS[key] = timer.model
    _EXPORTS.move_to_end(key)
    while len(_EXPORTS) > EXPORTS_KEPT:
        _EXPORTS.popitem(last=False)
    return timer


def _network_timers(table: LatencyTable, archs: Sequence[str], models: List, device: str, runtime: str, seed: int,
                    warmup: int, repeats: int) -> List[Callable[[], float]]:
    """Per network: a call measuring it once (ms, the table's statistic of ``repeats`` runs after ``warmup``)."""
    field = "latency_ms" if table.statistic == "median" else "min_ms"
    if runtime == "eager":
        return [lambda model=model: float(speed.measure_latency(model, table.resolution, threads=table.threads,
                                                                warmup=warmup, repeats=repeats, device=device)[field])
                for model in models]
    x = torch.randn(1, 3, *table.resolution, generator=torch.Generator().manual_seed(int(seed)))
    # every network exported before any is timed (the export is not timed)
    timers = [_ort_timer(table, arch, model, x, seed) for arch, model in zip(archs, models)]
    return [lambda timer=timer: speed.summarise_ms(timer(warmup=warmup, repeats=repeats), table.statistic)
            for timer in timers]


def arch_timers(table: LatencyTable, archs: Sequence[str], seed: int = 0, warmup: int = 5, repeats: int = 20,
                device: Optional[str] = None, runtime: Optional[str] = None) -> List[Callable[[], float]]:
    """Per arch: a call that measures the network once (ms, the table's statistic of ``repeats`` runs after
    ``warmup``), as :func:`measure_archs` does; the networks are built (weights from ``seed``) and, for ONNX
    Runtime, exported (untimed) here, before any timing."""
    from ..stats.cache import build_model
    device = device or str(table.meta.get("device", "cpu"))
    runtime = check_runtime(runtime or table.runtime, device)
    space = table.space()
    models = [build_model(space, arch, seed) for arch in archs]
    if device != "cpu":
        models = [m.to(device) for m in models]
    return _network_timers(table, archs, models, device, runtime, seed, warmup, repeats)


def measure_archs(table: LatencyTable, archs: Sequence[str], seed: int = 0, warmup: int = 5, repeats: int = 20,
                  rounds: int = 1, progress: Optional[Callable[[int, int], None]] = None,
                  device: Optional[str] = None, runtime: Optional[str] = None) -> List[float]:
    """Measured batch-1 latency (ms) of each arch with the table's threads and statistic.

    ``runtime`` (default: the table's): 'eager' measures with ``measure_latency``; 'onnxruntime' exports each
    network once (untimed) and times it in an ONNX Runtime session with the table's threads as intra-op threads
    (:mod:`.runtime`) on an input drawn from ``seed``. With ``rounds > 1`` the networks are measured in turn
    ``rounds`` times and the rounds summarised with the table's statistic (interleaving spreads load from other
    processes evenly over the networks). ``device`` defaults to the table's.
    """
    if rounds < 1:
        raise SaswotError(f"need rounds >= 1, got {rounds}")
    from .build import timed_rounds
    measure = arch_timers(table, archs, seed=seed, warmup=warmup, repeats=repeats, device=device, runtime=runtime)
    ms = timed_rounds(dict(enumerate(measure)), rounds, table.statistic, table.threads,
                      (lambda i, n, key: progress(i, n)) if progress else None)
    return [ms[i] for i in range(len(measure))]


def agreement(pred: Sequence[float], meas: Sequence[float]) -> Dict[str, float]:
    """Kendall tau, median predicted/measured ratio and median |predicted - measured| / measured."""
    ratios = [p / m for p, m in zip(pred, meas)]
    return {"kendall_tau": kendall_tau(pred, meas), "median_ratio": float(statistics.median(ratios)),
            "median_abs_rel_error": float(statistics.median(abs(r - 1.0) for r in ratios))}


def _raw_and_overlap(table: LatencyTable, archs: List[str], raw: List[float], meas: Sequence[float],
                     again: Optional[Sequence[float]]) -> Dict[str, object]:
    """For a calibrated table: the plain sum's agreement on the same measurements, and how many checked networks
    are in the calibration sample (0 when the check's seeds differ from the calibration's)."""
    if table.calibration is None:
        return {"calibrated": False}
    out = agreement(raw, meas)
    if again is not None:
        out["kendall_tau_second_pass"] = kendall_tau(raw, again)
    sample = set(table.calibration.info.get("archs") or [])  # type: ignore[arg-type]
    return {"calibrated": True, "calibration_model": table.calibration.info.get("model"),
            "calibration_overlap": sum(a in sample for a in archs), "raw": out}


def check_lut(table: LatencyTable, n: int = 50, seed: int = 0, warmup: int = 5, repeats: int = 20,
              rounds: int = 1, archs: Optional[Iterable[str]] = None, repeatability: bool = False,
              progress: Optional[Callable[[int, int], None]] = None, device: Optional[str] = None,
              runtime: Optional[str] = None) -> Dict[str, object]:
    """Compare predicted with measured latency (:func:`measure_archs`) on ``n`` seeded samples (or ``archs``).

    The one check procedure: ``saswot-gp latency check`` and ``benchmarks/latency_lut.py`` both call it.

    Returns Kendall tau-b, the median predicted/measured ratio, the median absolute relative error
    (``median_abs_rel_error``: median of |predicted - measured| / measured) and one row per network. With
    ``repeatability`` the networks are measured a second, independent time: ``repeat_tau`` (measured vs
    measured) is the ceiling that timing noise on this machine puts on any predictor's tau. ``device`` and
    ``runtime`` default to the table's (another runtime than the table's is allowed: the result records both).
    A calibrated table's predictions are its calibration's; ``raw`` then holds the same figures for the plain sum of
    entries (``raw_ms`` in the rows) and ``calibration_overlap`` how many checked networks were calibrated on.
    """
    space = table.space()
    if archs is None:
        rng = random.Random(seed)
        archs = [space.sample(rng) for _ in range(int(n))]
    archs = list(archs)
    if len(archs) < 2:
        raise SaswotError(f"need at least 2 networks to check a latency table, got {len(archs)}")
    device = device or str(table.meta.get("device", "cpu"))
    runtime = check_runtime(runtime or table.runtime, device)
    pred = [table.predict(a) for a in archs]
    raw = [table.predict_raw(a) for a in archs]
    t0 = time.perf_counter()
    meas = measure_archs(table, archs, seed=seed, warmup=warmup, repeats=repeats, rounds=rounds, progress=progress,
                         device=device, runtime=runtime)
    rows = [{"arch": a, "predicted_ms": p, "measured_ms": m, "ratio": p / m} for a, p, m in zip(archs, pred, meas)]
    if table.calibration is not None:
        for r, value in zip(rows, raw):
            r["raw_ms"] = value
    out: Dict[str, object] = {"n": len(rows), **agreement(pred, meas)}
    out.update({
        "measured_ms_range": [min(meas), max(meas)], "predicted_ms_range": [min(pred), max(pred)],
        "seed": int(seed), "threads": table.threads, "statistic": table.statistic,
        "resolution": list(table.resolution), "warmup": int(warmup), "repeats": int(repeats), "rounds": int(rounds),
        "device": device, "runtime": runtime, "runtime_version": runtime_version(runtime), "lut_runtime": table.runtime})
    again = None
    if repeatability:
        again = measure_archs(table, archs, seed=seed, warmup=warmup, repeats=repeats, rounds=rounds, device=device,
                              runtime=runtime)
        out["repeat_tau"] = kendall_tau(meas, again)
        out["kendall_tau_second_pass"] = kendall_tau(pred, again)
        for r, m in zip(rows, again):
            r["measured_ms_again"] = m
    out.update(_raw_and_overlap(table, archs, raw, meas, again))
    out["check_s"] = round(time.perf_counter() - t0, 3)
    out["lut"] = table.meta
    out["rows"] = rows
    return out
