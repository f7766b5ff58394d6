"""Should a table's calibration networks be timed in the same rounds as its parts? (issue 14; tried, not kept)

Usage (from the repository root)::

    python benchmarks/latency_interleave.py [--pairs 4] [--arms sequential,rounds] [--out FILE.json] [--resume]

A/B on validation networks only (50 uniform from seed 2000 and 50 diverse from seed 2001, as in
``latency_pairs.py``: neither calibration networks nor the reported checks of seed 0). Each *arm* builds a table
at ``latency build``'s defaults (64x64, 1 thread, minimum of 20 repeats over 5 rounds, calibrated on 60 networks
of seed 1000 with ``scale+macs``), then at once measures the validation networks twice (``measure_archs``, the
procedure of ``latency check``) and scores the table's predictions against them:

* ``sequential``: ``build_lut``, then ``calibrate_lut`` (the networks timed after all the parts);
* ``rounds``: :func:`build_in_rounds`, the networks timed in the same rounds as the parts (each round times every
  part, then every network), each summarised over the rounds with the minimum;
* ``spread``: the same with the networks spread evenly among the parts within each round (network ``i`` after part
  ``i * parts // networks``).

The idea: the README's checks missed the error target only with a table calibrated at noon, whose networks, timed
after its parts, ran 11 % slower than the sum of their parts (4-9 % otherwise), so timing both in the same rounds
should let the minimum over rounds leave a slow spell out of both. On an idle machine it did the opposite: both
``rounds`` and ``spread`` predicted 2-4 % too fast where ``sequential`` erred by about 1 %, so ``latency build``
keeps timing the networks after the parts.

The arms alternate (pair k runs them in order when k is even, reversed when odd), so that a drifting machine
favours neither. Reported per arm and sample: median |error| of the calibrated prediction, the gap to the noise ceiling
(measured-vs-re-measured Kendall tau minus the mean tau of the predictions against the two measurements), and
how much slower the calibration networks ran than the sum of their parts (``cal_ratio``).

A slow spell of the machine could not be emulated here: a process pinned to the same core, busy 20, 50 or 80 % of
every 10 ms, left a network's minimum of 20 runs where it was (1.61-1.66 ms against 1.61-1.63 ms idle), so the
comparison is on an idle machine only.
Use 1 torch thread on an idle machine. The JSON is written after every arm; ``--resume`` continues a file.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Sequence

import torch

from saswot_gp.io import atomic_write_json
from saswot_gp.latency import DEFAULT_FEATURES, LatencyTable, build_lut, calibrate_lut, fit_calibration, sample_archs
from saswot_gp.latency.build import finish_build, part_timers, timed_rounds
from saswot_gp.latency.calibrate import MIN_SEED as CALIBRATION_SEED
from saswot_gp.latency.calibrate import RECOMMENDED_CALIBRATION_N, RECOMMENDED_TIMING
from saswot_gp.latency.check import agreement, arch_timers, measure_archs
from saswot_gp.spaces import get_space

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
from latency_model_selection import gap  # noqa: E402  (one home for the gap to the ceiling)
from latency_pairs import networks  # noqa: E402  (one home for the validation networks)

ARMS = ("sequential", "rounds", "spread")


def _rounds_layout(parts: Dict[str, Callable[[], float]], nets: Sequence[Callable[[], float]]
                   ) -> Dict[str, Callable[[], float]]:
    """The ``rounds`` arm's round: every part, then every network (keyed ``network:i``)."""
    return {**parts, **{f"network:{i}": once for i, once in enumerate(nets)}}


def _spread_layout(parts: Dict[str, Callable[[], float]], nets: Sequence[Callable[[], float]]
                   ) -> Dict[str, Callable[[], float]]:
    """The ``spread`` arm's round: network ``i`` (``network:i``) timed after part ``i * len(parts) // len(nets)``."""
    at: Dict[int, List[int]] = {}
    for i in range(len(nets)):
        at.setdefault(i * len(parts) // max(1, len(nets)), []).append(i)
    out: Dict[str, Callable[[], float]] = {}
    for j, (key, once) in enumerate(parts.items()):
        for i in at.get(j, []):
            out[f"network:{i}"] = nets[i]
        out[key] = once
    return out


LAYOUTS = {"rounds": _rounds_layout, "spread": _spread_layout}


def build_in_rounds(space, layout: str = "rounds", n: int = RECOMMENDED_CALIBRATION_N, seed: int = CALIBRATION_SEED,
                    features: str = DEFAULT_FEATURES, threads: int = 1, repeats: int = 20, warmup: int = 5,
                    rounds: int = 5, statistic: str = "min") -> LatencyTable:
    """A table built and calibrated in one pass: in each of ``rounds`` rounds the parts (``build_lut``'s timers)
    and the ``n`` calibration networks (``sample_archs(space, n, seed)``, timed as ``latency check`` times them)
    are timed in the order ``layout`` gives; each is summarised over the rounds with ``statistic`` and the model
    ``features`` fitted as ``latency calibrate`` fits it."""
    t0 = time.perf_counter()
    parts = part_timers(space, threads=threads, repeats=repeats, warmup=warmup, statistic=statistic, rounds=rounds)
    archs = sample_archs(parts.table.space(), n, seed)
    nets = arch_timers(parts.table, archs, seed=seed, warmup=warmup, repeats=repeats)
    ms = timed_rounds(LAYOUTS[layout](parts.timers, nets), rounds, statistic, threads)
    seconds = time.perf_counter() - t0
    table = finish_build(parts, {key: ms[key] for key in parts.timers}, seconds)
    info = {"n": len(archs), "seed": seed, "sampler": "mixed", "warmup": warmup, "repeats": repeats,
            "rounds": rounds, "runtime": table.runtime, "threads": threads, "statistic": statistic,
            "measure_s": round(seconds, 3), "timed_with_parts": layout}
    return fit_calibration(table, archs, [ms[f"network:{i}"] for i in range(len(archs))], features, info)


def build(arm: str, space):
    """A table at ``latency build``'s defaults, calibrated the ``arm`` way."""
    t = RECOMMENDED_TIMING
    kw = dict(threads=1, repeats=t["repeats"], warmup=t["warmup"], rounds=t["rounds"], statistic=t["statistic"])
    if arm in LAYOUTS:
        return build_in_rounds(space, arm, **kw)
    table = build_lut(space, **kw)
    return calibrate_lut(table, n=RECOMMENDED_CALIBRATION_N, **table.timing)


def run_arm(arm: str, space, nets: dict) -> dict:
    """Build the ``arm`` way, then measure and score the validation networks."""
    t0 = time.perf_counter()
    table = build(arm, space)
    built = time.perf_counter() - t0
    info = table.calibration.info
    row = {"arm": arm, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "build_s": round(built, 1), "cal_ratio": 1.0 / info["raw"]["median_ratio"],
           "fit_error": info["fit"]["median_abs_rel_error"]}
    kw = dict(seed=2000, **table.timing)
    for name in ("uniform", "diverse"):
        first = measure_archs(table, nets[name], **kw)
        second = measure_archs(table, nets[name], **kw)
        pred = [table.predict(a) for a in nets[name]]
        raw = [table.predict_raw(a) for a in nets[name]]
        scores = agreement(pred, first)
        row[name] = {"error": scores["median_abs_rel_error"], "ratio": scores["median_ratio"],
                     "gap": gap(pred, first, second),
                     "ceiling": agreement(first, second)["kendall_tau"],
                     "raw_error": agreement(raw, first)["median_abs_rel_error"], "ms": first, "ms_again": second}
    return row


def summary(rows: list) -> dict:
    """Per arm: the median and the worst of each figure over its runs."""
    out = {}
    for arm in ARMS:
        mine = [r for r in rows if r["arm"] == arm]
        if not mine:
            continue
        out[arm] = {"runs": len(mine), "cal_ratio": [round(r["cal_ratio"], 4) for r in mine]}
        for s in ("uniform", "diverse"):
            for f in ("error", "gap"):
                v = [r[s][f] for r in mine]
                out[arm][f"{s}_{f}"] = {"median": statistics.median(v), "max": max(v), "all": [round(x, 4) for x in v]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=4, help="sequential/interleaved pairs to run")
    ap.add_argument("--arms", default="sequential,rounds", help=f"two or more of {','.join(ARMS)}")
    ap.add_argument("--out", default=str(ROOT / "results" / "latency_interleave.json"))
    ap.add_argument("--resume", action="store_true", help="continue the runs stored in --out")
    a = ap.parse_args()
    arms = tuple(a.arms.split(","))
    if len(arms) < 2 or not set(arms) <= set(ARMS):
        raise SystemExit(f"--arms {a.arms!r}: expected two or more of {','.join(ARMS)}")
    out = Path(a.out)
    if out.exists() and not a.resume:
        raise SystemExit(f"{out} exists: --resume to continue it, or another --out")
    doc = json.loads(out.read_text()) if out.exists() else {"arms": list(arms), "runs": []}
    arms = tuple(doc["arms"])
    torch.set_num_threads(1)
    space = get_space("realtime")
    nets = networks(space)
    order = [arm for k in range(a.pairs) for arm in (arms if k % 2 == 0 else arms[::-1])]
    for i in range(len(doc["runs"]), len(order)):
        row = run_arm(order[i], space, nets)
        doc["runs"].append(row)
        doc["summary"] = summary(doc["runs"])
        atomic_write_json(out, doc)
        print(f"{i + 1}/{len(order)} {row['arm']:<10} {row['date']} build {row['build_s']:.0f} s, networks/parts "
              f"{row['cal_ratio']:.3f}; error u {100 * row['uniform']['error']:.1f}% d "
              f"{100 * row['diverse']['error']:.1f}%, gap u {row['uniform']['gap']:+.3f} d "
              f"{row['diverse']['gap']:+.3f}", flush=True)
    print(json.dumps(doc["summary"], indent=1))


if __name__ == "__main__":
    main()
