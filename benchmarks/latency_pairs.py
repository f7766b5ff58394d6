"""Do timed pairs of neighbouring layers explain what a per-part latency table misses? (issue 14)

Usage (from the repository root)::

    python benchmarks/latency_pairs.py [--runtime eager|onnxruntime] [--out FILE.json] [--from FILE.json]

Builds a table as ``latency build`` does by default (64x64, 1 thread, minimum of 20 repeats over 5 rounds),
draws the networks a calibration uses (60, seed 1000, half uniform and half diverse) and validation networks
(50 uniform from seed 2000, 50 diverse from seed 2001: neither calibration networks nor the reported checks of
seed 0), and times every pair of neighbouring parts of those networks (stem + first layer, layer + next layer) as
one module, the two parts in sequence, with the table's timing (warm-up 5, 20 repeats, 5 interleaved rounds,
minimum). It then measures the calibration networks once and the validation networks twice (``measure_archs``,
the procedure of ``latency check``). A pair's *delta* is its time minus its two parts' entries. On the
validation networks it reports the gap to the noise ceiling (measured-vs-re-measured Kendall tau minus the mean
tau of the predictions against each measurement; lower is better) and the median absolute error of:

* ``raw`` and ``raw+pairs``: the plain sum of entries, and that sum plus the deltas of the network's pairs;
* models fitted on the calibration networks (non-negative least squares on relative errors, as ``latency
  calibrate``): ``scale+macs`` (the default), ``+delta`` (the sum of deltas as one more feature) and
  ``chained`` (each group's ms corrected by the deltas of the pairs that end in it, the same 11 coefficients);
* the same models fitted on 60 validation networks and scored on the other 40, over 40 seeded splits, and
  fitted and scored on all 100 (an in-sample bound, not a result).

``--from FILE`` scores a stored result again without timing anything. Use 1 torch thread on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
import torch
from torch import nn

from saswot_gp.io import atomic_write_json
from saswot_gp.latency import LatencyTable, build_lut, kendall_tau
from saswot_gp.latency.build import time_module
from saswot_gp.latency.calibrate import RECOMMENDED_TIMING, sample_archs
from saswot_gp.latency.check import measure_archs
from saswot_gp.latency.keys import part_key
from saswot_gp.latency.model import FEATURE_SETS, design_row, nnls_relative, part_group
from saswot_gp.latency.runtime import OrtTimer
from saswot_gp.spaces import get_space
from saswot_gp.training import speed

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
from latency_model_selection import gap  # noqa: E402  (one home for the gap to the ceiling)

BASE = FEATURE_SETS["scale+macs"]
MODES = ("scale+macs", "+delta", "chained")


def networks(space) -> Dict[str, List[str]]:
    """The calibration sample and the two validation samples (see the module's docstring)."""
    rng_u, rng_d = random.Random(2000), random.Random(2001)
    return {"calibration": sample_archs(space, 60, 1000, "mixed"),
            "uniform": [space.sample(rng_u) for _ in range(50)],
            "diverse": [space.sample_diverse(rng_d) for _ in range(50)]}


def pair_modules(space, archs: Sequence[str], runtime: str) -> Dict[str, object]:
    """Per pair key ('KEY_A|KEY_B'): an eager (module, input) or an exported ONNX Runtime timer, weights seed 0."""
    pairs = {}
    for arch in archs:
        parts = space.walk(arch)
        for p, q in zip(parts[:-1], parts[1:]):
            if q.kind == "layer":
                pairs.setdefault(part_key(space, p) + "|" + part_key(space, q), (p, q))
    out: Dict[str, object] = {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for key, (p, q) in pairs.items():
            module, x = nn.Sequential(space.part_module(p), space.part_module(q)).eval(), space.part_input(p)
            if runtime == "onnxruntime":
                timer = OrtTimer(module, x, 1)
                timer.prepare()
                out[key] = timer
            else:
                out[key] = (module, x)
    return out


def time_pairs(pairs: Dict[str, object], log) -> Dict[str, float]:
    """Each pair's time (ms): the table's timing, rounds interleaved over all pairs, minimum."""
    t = RECOMMENDED_TIMING
    times: Dict[str, List[float]] = {k: [] for k in pairs}
    for r in range(t["rounds"]):
        for key, p in pairs.items():
            if isinstance(p, OrtTimer):
                times[key].append(speed.summarise_ms(p(warmup=t["warmup"], repeats=t["repeats"]), "min"))
            else:
                times[key].append(time_module(p[0], p[1], warmup=t["warmup"], repeats=t["repeats"], statistic="min"))
        log(f"pairs: round {r + 1} of {t['rounds']}")
    return {k: min(v) for k, v in times.items()}


def measure(runtime: str, log) -> dict:
    """Build, time the pairs, measure the networks; everything the scoring needs, JSON-friendly."""
    space = get_space("realtime")
    t = RECOMMENDED_TIMING
    t0 = time.perf_counter()
    table = build_lut(space, threads=1, repeats=t["repeats"], warmup=t["warmup"], rounds=t["rounds"],
                      statistic=t["statistic"], runtime=runtime)
    log(f"table: {len(table.entries)} parts in {time.perf_counter() - t0:.0f} s")
    nets = networks(space)
    pairs = pair_modules(space, [a for archs in nets.values() for a in archs], runtime)
    log(f"pairs: {len(pairs)} built")
    pair_ms = time_pairs(pairs, log)
    kw = dict(warmup=t["warmup"], repeats=t["repeats"], rounds=t["rounds"])
    doc = {"runtime": runtime, "table": table.to_json(), "pair_ms": pair_ms,
           "calibration": {"archs": nets["calibration"],
                           "ms": measure_archs(table, nets["calibration"], seed=1000, **kw)}}
    log("calibration networks measured")
    for name in ("uniform", "diverse"):
        first = measure_archs(table, nets[name], seed=2000, **kw)
        doc[name] = {"archs": nets[name], "ms": first, "ms_again": measure_archs(table, nets[name], seed=2000, **kw)}
        log(f"{name} validation networks measured twice")
    doc["measure_s"] = round(time.perf_counter() - t0, 1)
    return doc


class Features:
    """The design rows of the three models for one table and its pair times."""

    def __init__(self, table: LatencyTable, pair_ms: Dict[str, float]):
        self.table, self.pair_ms = table, pair_ms

    def deltas(self, arch: str) -> List[tuple]:
        """(group of the pair's second part, delta ms) of each timed pair of ``arch``."""
        parts = self.table.parts(arch)
        return [(part_group(kb), self.pair_ms[ka + "|" + kb] - ma - mb)
                for (ka, ma, _), (kb, mb, _) in zip(parts[:-1], parts[1:]) if ka + "|" + kb in self.pair_ms]

    def row(self, arch: str, mode: str) -> List[float]:
        """The features of ``arch`` under ``mode`` (one of :data:`MODES`)."""
        row = design_row(BASE, self.table.parts(arch))
        if mode == "+delta":
            return row + [sum(d for _, d in self.deltas(arch))]
        if mode == "chained":
            by_group: Dict[str, float] = {}
            for g, d in self.deltas(arch):
                by_group[g] = by_group.get(g, 0.0) + d
            return [v + by_group.get(f.split(":", 1)[1], 0.0) if f.startswith("ms:") else v for f, v in zip(BASE, row)]
        return row

    def fit_predict(self, train: Sequence[str], measured: Sequence[float], test: Sequence[str], mode: str):
        """Non-negative least squares on relative errors (``latency calibrate``'s solver, columns zero in every
        training row left at 0); predictions for ``test``."""
        x = np.array([self.row(a, mode) for a in train])
        present, solution = nnls_relative(x, measured)
        coef = np.zeros(x.shape[1])
        coef[present] = solution
        return np.array([self.row(a, mode) for a in test]) @ coef, coef


def median_error(pred: Sequence[float], meas: Sequence[float]) -> float:
    """Median |predicted / measured - 1|."""
    return float(statistics.median(abs(p / m - 1.0) for p, m in zip(pred, meas)))


def score(doc: dict) -> dict:
    """Every figure of the module's docstring from a stored measurement."""
    table = LatencyTable.from_json(doc["table"])
    feats = Features(table, doc["pair_ms"])
    out: Dict[str, dict] = {"ceiling": {s: kendall_tau(doc[s]["ms"], doc[s]["ms_again"]) for s in ("uniform", "diverse")}}
    for s in ("uniform", "diverse"):
        archs, first, second = doc[s]["archs"], doc[s]["ms"], doc[s]["ms_again"]
        raw = [table.predict_raw(a) for a in archs]
        paired = [r + sum(d for _, d in feats.deltas(a)) for r, a in zip(raw, archs)]
        out.setdefault("raw", {})[s] = {"gap": gap(raw, first, second), "error": median_error(raw, first)}
        out.setdefault("raw+pairs", {})[s] = {"gap": gap(paired, first, second), "error": median_error(paired, first)}
    archs = doc["uniform"]["archs"] + doc["diverse"]["archs"]
    first, second = doc["uniform"]["ms"] + doc["diverse"]["ms"], doc["uniform"]["ms_again"] + doc["diverse"]["ms_again"]
    mean = [0.5 * (a + b) for a, b in zip(first, second)]
    for mode in MODES:
        res: Dict[str, object] = {}
        for s in ("uniform", "diverse"):
            pred, coef = feats.fit_predict(doc["calibration"]["archs"], doc["calibration"]["ms"], doc[s]["archs"], mode)
            res[s] = {"gap": gap(pred, doc[s]["ms"], doc[s]["ms_again"]), "error": median_error(pred, doc[s]["ms"])}
        res["coefficients"] = dict(zip(list(BASE) + (["pair_delta"] if mode == "+delta" else []), coef.tolist()))
        rng, gaps = random.Random(0), []
        for _ in range(40):
            order = list(range(len(archs)))
            rng.shuffle(order)
            tr, te = order[:60], order[60:]
            pred, _ = feats.fit_predict([archs[i] for i in tr], [mean[i] for i in tr], [archs[i] for i in te], mode)
            gaps.append(gap(pred, [first[i] for i in te], [second[i] for i in te]))
        res["splits"] = statistics.mean(gaps)
        res["in_sample"] = gap(feats.fit_predict(archs, mean, archs, mode)[0], first, second)
        out[mode] = res
    deltas = [d for a in archs for _, d in feats.deltas(a)]
    out["deltas_ms"] = {"median": statistics.median(deltas), "min": min(deltas), "max": max(deltas)}
    return out


def report(res: dict) -> None:
    """Print the scores."""
    c = res["ceiling"]
    print(f"ceiling (measured vs re-measured): uniform {c['uniform']:.3f}, diverse {c['diverse']:.3f}; pair deltas "
          f"median {res['deltas_ms']['median']:+.4f} ms (range {res['deltas_ms']['min']:+.4f} to "
          f"{res['deltas_ms']['max']:+.4f})")
    print("gap to the ceiling (median |error|), uniform / diverse:")
    for name in ("raw", "raw+pairs") + MODES:
        r = res[name]
        line = (f"  {name:11s} {r['uniform']['gap']:+.3f} ({100 * r['uniform']['error']:.1f}%) / "
                f"{r['diverse']['gap']:+.3f} ({100 * r['diverse']['error']:.1f}%)")
        if "splits" in r:
            line += f"   splits {r['splits']:+.3f}, in-sample {r['in_sample']:+.3f}"
        print(line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runtime", choices=["eager", "onnxruntime"], default="eager")
    ap.add_argument("--out", default=None, help="where the JSON goes (default results/latency_pairs_RUNTIME.json)")
    ap.add_argument("--from", dest="source", default=None, help="score this stored result again; nothing is timed")
    a = ap.parse_args()
    if a.source:
        doc = json.loads(Path(a.source).read_text())
    else:
        torch.set_num_threads(1)
        doc = measure(a.runtime, lambda msg: print(msg, flush=True))
    doc["scores"] = score(doc)
    report(doc["scores"])
    out = Path(a.out or a.source or ROOT / "results" / f"latency_pairs_{doc['runtime']}.json")
    atomic_write_json(out, doc)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
