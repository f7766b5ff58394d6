"""Choose a latency table's calibration model on validation networks only (nothing is timed here).

Usage:
    python benchmarks/latency_model_selection.py TABLE.json VALIDATION.json [TABLE.json VALIDATION.json ...] \
        [--splits 40] [--train 60] [--out benchmarks/results/latency_model_selection.json]

Each TABLE is a calibrated table and each VALIDATION a ``latency_lut.py`` result measured with that table on
networks that are neither its calibration networks nor a reported check (seed 2000 here), each network measured
twice. For every model of ``saswot_gp.latency.FEATURE_SETS``:

* ``calibration->validation``: the model refitted on the table's stored calibration measurements (as
  ``latency calibrate`` fits it: non-negative least squares on relative errors), scored on the uniform and
  diverse validation samples;
* ``splits``: fitted on ``--train`` of the 100 validation networks (the mean of their two measurements) and
  scored on the others, averaged over ``--splits`` seeded random splits.

The score is the gap to the noise ceiling: measured-vs-re-measured Kendall tau minus the mean of the
model's tau against the first and against the second measurement (lower is better; the target is <= 0.02).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
from pathlib import Path

from saswot_gp.errors import SaswotError
from saswot_gp.io import atomic_write_json
from saswot_gp.latency import FEATURE_SETS, LatencyTable, fit_calibration, kendall_tau

ROOT = Path(__file__).resolve().parent


def gap(predicted, first, second) -> float:
    """Ceiling (tau of the two measurements) minus the mean tau of the predictions against each."""
    return kendall_tau(first, second) - 0.5 * (kendall_tau(predicted, first) + kendall_tau(predicted, second))


def select(table: LatencyTable, validation: dict, splits: int, train: int) -> dict:
    """Every model's gaps on one table's validation networks (see the module's docstring)."""
    info = table.calibration.info
    rows = validation["uniform"]["rows"] + validation["diverse"]["rows"]
    archs = [r["arch"] for r in rows]
    first, second = [r["measured_ms"] for r in rows], [r["measured_ms_again"] for r in rows]
    mean = [0.5 * (a + b) for a, b in zip(first, second)]
    out = {}
    for name in FEATURE_SETS:
        try:
            fitted = fit_calibration(table, info["archs"], info["measured_ms"], name)
        except SaswotError as exc:
            out[name] = {"skipped": str(exc)}
            continue
        res = {}
        for sample in ("uniform", "diverse"):
            r = validation[sample]["rows"]
            res[sample] = gap([fitted.predict(x["arch"]) for x in r], [x["measured_ms"] for x in r],
                              [x["measured_ms_again"] for x in r])
        rng, gaps = random.Random(0), []
        try:
            for _ in range(splits):
                order = list(range(len(rows)))
                rng.shuffle(order)
                fit_on, test_on = order[:train], order[train:]
                model = fit_calibration(table, [archs[i] for i in fit_on], [mean[i] for i in fit_on], name)
                gaps.append(gap([model.predict(archs[i]) for i in test_on], [first[i] for i in test_on],
                                [second[i] for i in test_on]))
        except SaswotError:  # too few training networks for this model's coefficients
            gaps = []
        res["splits"] = statistics.mean(gaps) if gaps else None
        out[name] = res
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pairs", nargs="+", help="TABLE.json VALIDATION.json, one pair per table")
    ap.add_argument("--splits", type=int, default=40)
    ap.add_argument("--train", type=int, default=60)
    ap.add_argument("--out", default=str(ROOT / "results" / "latency_model_selection.json"))
    a = ap.parse_args()
    if len(a.pairs) % 2:
        ap.error("give TABLE.json VALIDATION.json pairs")
    doc = {"what": __doc__.splitlines()[0], "splits": a.splits, "train": a.train, "tables": {}}
    for tpath, vpath in zip(a.pairs[::2], a.pairs[1::2]):
        table, validation = LatencyTable.load(tpath), json.loads(Path(vpath).read_text())
        if table.calibration is None:
            ap.error(f"{tpath}: not a calibrated table")
        if validation.get("lut_meta", {}).get("date") != table.meta.get("date"):
            ap.error(f"{vpath} was not measured with {tpath} (its lut_meta date differs)")
        res = select(table, validation, a.splits, a.train)
        doc["tables"][f"{tpath} | {vpath}"] = {"runtime": table.runtime, "models": res}
        print(f"{tpath} ({table.runtime}) on {vpath}: gap to the ceiling, calibration->validation uniform / "
              f"diverse, and over {a.splits} splits")
        for name, r in res.items():
            if "skipped" in r:
                print(f"  {name:15s} skipped: {r['skipped']}")
            else:
                split = "too few networks" if r["splits"] is None else f"{r['splits']:+.3f}"
                print(f"  {name:15s} {r['uniform']:+.3f} / {r['diverse']:+.3f}   splits {split}")
    atomic_write_json(Path(a.out), doc)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
