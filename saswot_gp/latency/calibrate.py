"""Calibrate a latency table on measured whole networks (the model: :mod:`.model`).

:func:`calibrate_lut` measures ``n`` seeded networks with :func:`.check.measure_archs`, the procedure of
``saswot-gp latency check``, on the table's runtime, threads, statistic and device, and fits the model
(non-negative least squares on relative errors). Its networks come from seeds >= :data:`MIN_SEED` (default 1000),
so they are never the networks ``latency check`` draws with its seeds (default 0), and every check reports how many
of its networks are in the calibration sample (``calibration_overlap``). :func:`calibration_drift` measures some of
a table's calibration networks again, to tell whether the machine still runs at the speed it was calibrated at.
"""

from __future__ import annotations

import datetime
import random
import time
from typing import Callable, Dict, List, Optional, Sequence

from ..errors import SaswotError
from .check import agreement, measure_archs
from .model import DEFAULT_FEATURES, Calibration, feature_set, fit
from .table import LatencyTable

MIN_SEED = 1000
# how tables are built and calibrated unless told otherwise (``latency build``'s defaults, the table a search
# builds for itself): the settings whose predictions RESULTS.md measured against re-measuring
RECOMMENDED_TIMING = {"repeats": 20, "warmup": 5, "rounds": 5, "statistic": "min"}
RECOMMENDED_CALIBRATION_N = 60
SAMPLERS = ("mixed", "uniform", "diverse")


def sample_archs(space, n: int, seed: int, sampler: str = "mixed") -> List[str]:
    """``n`` archs drawn from ``random.Random(seed)``: uniform (``space.sample``), diverse (``sample_diverse``:
    few operators and widths per network, a wider range of latency) or mixed (alternately, uniform first)."""
    if sampler not in SAMPLERS:
        raise SaswotError(f"unknown calibration sampler {sampler!r}; expected one of {list(SAMPLERS)}")
    rng = random.Random(int(seed))
    out = []
    for i in range(int(n)):
        diverse = sampler == "diverse" or (sampler == "mixed" and i % 2 == 1)
        out.append(space.sample_diverse(rng) if diverse else space.sample(rng))
    return out


def fit_calibration(table: LatencyTable, archs: Sequence[str], measured: Sequence[float],
                    features: str = DEFAULT_FEATURES, info: Optional[Dict[str, object]] = None) -> LatencyTable:
    """A copy of ``table`` calibrated by the model ``features`` (a name of :data:`.model.FEATURE_SETS`) fitted on
    ``archs`` and their ``measured`` latencies (ms). No timing happens here; the fit, its residuals, the sample
    and ``info`` are stored in the calibration."""
    names = feature_set(features)
    archs, measured = list(archs), [float(m) for m in measured]
    rows = [table.parts(a) for a in archs]
    coef, unfitted = fit(names, rows, measured)
    cal = Calibration(names, coef)
    fitted = [cal.predict(parts) for parts in rows]
    raw = [table.predict_raw(a) for a in archs]
    cal.info = dict(info or {})
    cal.info.update(
        model=features, n_coefficients=len(names), unfitted=unfitted, entries_digest=table.entries_digest(),
        fit=agreement(fitted, measured), raw=agreement(raw, measured), archs=archs, measured_ms=measured,
        fitted_ms=fitted, residuals_ms=[m - f for m, f in zip(measured, fitted)])
    return table.with_calibration(cal)


def min_calibration_n(features: str = DEFAULT_FEATURES) -> int:
    """The fewest networks the calibration model ``features`` can be fitted on (its coefficients plus two)."""
    return len(feature_set(features)) + 2


def calibrate_lut(table: LatencyTable, n: int = 60, seed: int = MIN_SEED, warmup: int = 5, repeats: int = 20,
                  rounds: int = 1, features: str = DEFAULT_FEATURES, sampler: str = "mixed",
                  progress: Optional[Callable[[int, int], None]] = None,
                  archs: Optional[Sequence[str]] = None) -> LatencyTable:
    """Measure ``n`` networks (:func:`sample_archs` with ``seed`` and ``sampler``, or ``archs``) as
    ``latency check`` does (:func:`.check.measure_archs`: the table's runtime, threads, statistic, device; weights
    from ``seed``; ``warmup``, ``repeats``, ``rounds``) and return a copy of ``table`` with the model ``features``
    fitted on them (any calibration the table had is replaced; the raw entries are what is fitted).

    ``seed`` must be at least :data:`MIN_SEED`, so that the sample is not a ``latency check`` sample."""
    if int(seed) < MIN_SEED:
        raise SaswotError(f"calibration seed {seed}: use {MIN_SEED} or more, so that calibration networks are never "
                          f"the ones `latency check` draws (seed 0 by default)")
    feature_set(features)                     # fail before measuring
    given = archs is not None
    archs = list(archs) if given else sample_archs(table.space(), n, seed, sampler)
    if len(archs) < min_calibration_n(features):
        raise SaswotError(f"calibration model {features!r} needs at least {min_calibration_n(features)} networks, "
                          f"got {len(archs)}")
    t0 = time.perf_counter()
    measured = measure_archs(table, archs, seed=int(seed), warmup=warmup, repeats=repeats, rounds=rounds,
                                   progress=progress)
    info: Dict[str, object] = {
        "n": len(archs), "seed": int(seed), "sampler": "given" if given else sampler,
        "warmup": int(warmup), "repeats": int(repeats), "rounds": int(rounds), "runtime": table.runtime,
        "threads": table.threads, "statistic": table.statistic, "device": str(table.meta.get("device", "cpu")),
        "measure_s": round(time.perf_counter() - t0, 3),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    return fit_calibration(table, archs, measured, features, info)


DRIFT_N = 10  # calibration networks `latency check` measures again by default (calibration_drift)
# measured latency further than this from the table's (now/then of its calibration networks in `latency check`,
# measured/predicted of a search's re-measured top K): the calibration no longer fits the machine; issue 14's error
# target for a latency model, 5 %
DRIFT_WARN = 0.05


def drifted(ratio: float) -> bool:
    """Whether a measured/then or measured/predicted ``ratio`` is more than :data:`DRIFT_WARN` from 1: the table's
    calibration no longer fits the machine."""
    return abs(float(ratio) - 1.0) > DRIFT_WARN


def calibration_drift(table: LatencyTable, n: int = DRIFT_N, device: Optional[str] = None,
                      progress: Optional[Callable[[int, int], None]] = None) -> Dict[str, object]:
    """Measure the first ``n`` of a calibrated ``table``'s calibration networks again, exactly as they were
    measured (:func:`.check.measure_archs`: their seed, warm-up, repeats and rounds; the table's runtime, threads
    and statistic), and compare with the times stored in the calibration.

    Returns ``n``, ``median_ratio`` (median of now / then: below 1 the machine runs faster than when the table was
    calibrated, above 1 slower, and predictions err by about as much), the per-network ``ratios``, ``now_ms`` and
    ``then_ms``. A table calibrated on a machine whose speed has since changed predicts latencies off by this
    factor: recalibrate it (``latency calibrate``)."""
    import statistics
    cal = table.calibration
    info = cal.info if cal is not None else {}
    archs, then = info.get("archs"), info.get("measured_ms")
    if not isinstance(archs, list) or not isinstance(then, list) or not archs or len(archs) != len(then):
        raise SaswotError("this latency table has no stored calibration measurements to compare with; calibrate it "
                          "first (`latency calibrate`)")
    if int(n) < 1:
        raise SaswotError(f"need at least 1 calibration network to measure again, got {n}")
    k = min(int(n), len(archs))
    now = measure_archs(table, archs[:k], seed=int(info.get("seed", MIN_SEED)), warmup=int(info.get("warmup", 5)),
                        repeats=int(info.get("repeats", 20)), rounds=int(info.get("rounds", 1)), progress=progress,
                        device=device)
    ratios = [a / float(b) for a, b in zip(now, then[:k])]
    return {"n": k, "median_ratio": float(statistics.median(ratios)), "ratios": ratios, "now_ms": now,
            "then_ms": [float(b) for b in then[:k]], "calibrated": info.get("date")}
