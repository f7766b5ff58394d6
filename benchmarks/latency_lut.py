"""How well the realtime latency lookup table predicts measured batch-1 latency.

Builds the LUT of the default realtime space at 64x64 with 1 thread (or checks the table given with
``--lut``), then measures 50 networks sampled uniformly (seed 0) with ``saswot_gp.latency.check_lut``, the
call ``saswot-gp latency check`` makes, with the same arguments (see ``check_step``; the JSON records the
equivalent command), and reports the Kendall tau
between predicted and measured latency (target >= 0.9), the median predicted/measured ratio and the
build time. Every network is measured twice, independently: the measured-vs-measured tau is the
ceiling that timing noise on this machine puts on any predictor. A second set of 50 networks drawn
with ``sample_diverse`` (wider range of latency) is checked the same way.

With ``--calibrate N`` the table is first calibrated (``saswot_gp.latency.calibrate_lut``, as
``saswot-gp latency calibrate``) on N networks drawn from ``--calibrate-seed`` (1000 and up, so never a check
network: the JSON records the overlap, 0), then both samples are checked with the calibrated table: each check
reports the calibrated and the plain-sum (raw) Kendall tau, median predicted/measured ratio and median absolute
relative error on the same measurements, next to the measured-vs-measured ceiling. Every calibration model
(``affine``, ``scale``, ``scale+overhead``) is also refitted on the same calibration measurements (no more
timing) and scored on the check measurements (``calibration.models`` in the JSON).

Usage (from the repository root)::

    python benchmarks/latency_lut.py [--out FILE.json] [--overwrite] [--lut TABLE.json] [--n 50] [--seed 0] \
        [--repeats 10] [--warmup 3] [--rounds 3] [--statistic median|min] [--runtime eager|onnxruntime] \
        [--calibrate 60] [--calibrate-seed 1000] [--model scale] [--sampler mixed] [--save-lut TABLE.json] \
        [--resolution 64] [--base-width 16] [--num-layers 10]

``--runtime onnxruntime`` times parts and networks in ONNX Runtime (exported to ONNX; see
``saswot_gp.latency.runtime``). ``--resolution``, ``--base-width`` and ``--num-layers`` set the space of a
table built here (defaults: the default realtime space at 64x64; smaller ones make a quick smoke run).

The JSON goes to ``--out``; without it, to a new file ``benchmarks/runs/latency_lut/latency_lut-<UTC
time>.json`` (untracked), so a run never replaces the recorded ``benchmarks/results/latency_lut.json``
unless you name that file. An existing file is refused (before anything is timed) unless
``--overwrite`` is given.

Timings depend on the machine and on its load; the JSON records the load average at start and end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

import torch

from saswot_gp.errors import SaswotError
from saswot_gp.io import atomic_write_json
from saswot_gp.latency import (DEFAULT_FEATURES, FEATURE_SETS, LatencyTable, agreement, build_lut, calibrate_lut,
                               check_lut, fit_calibration, kendall_tau)
from saswot_gp.spaces import get_space


def _load() -> list:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return []


DEFAULT_DIR = Path(__file__).resolve().parent / "runs" / "latency_lut"


def output_path(out: Optional[str], overwrite: bool = False, now: Optional[float] = None) -> Path:
    """Where the results go: ``out``, or a new time-stamped file under ``DEFAULT_DIR``.

    Raises ``FileExistsError`` when that file exists and ``overwrite`` is false.
    """
    if out:
        path = Path(out)
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(time.time() if now is None else now))
        path = DEFAULT_DIR / f"latency_lut-{stamp}.json"
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; give --overwrite to replace it, or another --out")
    return path


def check_step(lut, args, archs: Optional[list] = None) -> dict:
    """One check of ``lut``, exactly as ``saswot-gp latency check`` runs it: the same library call
    (:func:`saswot_gp.latency.check_lut`) with the same arguments (the table's device; ``--runtime`` or, when
    not given, the table's runtime), so the same table, seed and settings give the same figures."""
    device = lut.meta.get("device", "cpu")
    which = {"archs": archs} if archs is not None else {"n": args.n}
    return check_lut(lut, **which, seed=args.seed, warmup=args.warmup, repeats=args.repeats, rounds=args.rounds,
                     repeatability=True, progress=None, device=device, runtime=args.runtime)


def cli_equivalent(args, lut_path: str) -> str:
    """The ``saswot-gp latency check`` command that measures the uniform set the same way."""
    return (f"saswot-gp latency check --lut {lut_path} --n {args.n} --seed {args.seed} --repeats {args.repeats} "
            f"--warmup {args.warmup} --rounds {args.rounds} --repeatability"
            + (f" --runtime {args.runtime}" if args.runtime else ""))


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None,
                    help="results JSON (default: a new benchmarks/runs/latency_lut/latency_lut-<UTC time>.json)")
    ap.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    ap.add_argument("--lut", default=None, help="check this table (from `saswot-gp latency build`) instead of "
                                                "building one")
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--statistic", choices=["median", "min"], default="median",
                    help="summary of repeated timings, for the table and the networks alike (when building)")
    ap.add_argument("--runtime", choices=["eager", "onnxruntime"], default=None,
                    help="what runs the parts and networks (default: eager, or the --lut table's runtime)")
    ap.add_argument("--calibrate", type=int, default=0, help="calibrate the table on N networks first (0: no)")
    ap.add_argument("--calibrate-seed", type=int, default=1000, help="seeds the calibration networks (>= 1000)")
    ap.add_argument("--model", choices=list(FEATURE_SETS), default=DEFAULT_FEATURES,
                    help="the calibration model kept (default: the library's)")
    ap.add_argument("--sampler", choices=["mixed", "uniform", "diverse"], default="mixed",
                    help="how calibration networks are drawn")
    ap.add_argument("--save-lut", default=None, help="also write the (calibrated) table here")
    ap.add_argument("--checks-from", default=None,
                    help="no timing: refit --lut's calibration with --model on its stored calibration "
                         "measurements and rescore the uniform and diverse checks stored in this results JSON "
                         "(measured with that table)")
    ap.add_argument("--resolution", type=int, default=64, help="input side of a table built here")
    ap.add_argument("--base-width", type=int, default=16, help="base width of a table built here")
    ap.add_argument("--num-layers", type=int, default=10, help="layers of a table built here")
    return ap


def _table(args):
    """The table to check: ``--lut``, or one built now at 64x64 with 1 thread (and its build time)."""
    if args.lut:
        lut = LatencyTable.load(args.lut)
        return lut, lut.space(), float(lut.meta.get("build_s", float("nan")))
    res = int(args.resolution)
    space = get_space("realtime", input_size=res, base_width=args.base_width, num_layers=args.num_layers)
    t0 = time.perf_counter()
    lut = build_lut(space, (res, res), threads=1, repeats=args.repeats, warmup=args.warmup, rounds=args.rounds,
                    statistic=args.statistic, runtime=args.runtime or "eager")
    build_s = time.perf_counter() - t0
    print(f"LUT: {len(lut.entries)} entries, built in {build_s:.1f} s (1 thread, {res}x{res}, "
          f"{args.runtime or 'eager'}, {args.statistic} of {args.repeats} x {args.rounds} rounds)")
    return lut, space, build_s


def _calibrate(lut, args):
    """``lut`` calibrated on ``--calibrate`` networks as ``saswot-gp latency calibrate`` does, and its record."""
    t0 = time.perf_counter()
    lut = calibrate_lut(lut, n=args.calibrate, seed=args.calibrate_seed, warmup=args.warmup, repeats=args.repeats,
                        rounds=args.rounds, features=args.model, sampler=args.sampler)
    info = lut.calibration.info
    print(f"calibrated on {info['n']} networks (seed {args.calibrate_seed}, {args.sampler}, model {args.model}, "
          f"{info['n_coefficients']} coefficients) in {time.perf_counter() - t0:.1f} s")
    cli = (f"saswot-gp latency calibrate --lut LUT.json --n {args.calibrate} --calibrate-seed {args.calibrate_seed} "
           f"--repeats {args.repeats} --warmup {args.warmup} --rounds {args.rounds} --model {args.model} "
           f"--sampler {args.sampler} --out LUT.json")
    return lut, {"cli_equivalent": cli, **lut.calibration.to_json()}


def compare_models(lut, checks: dict) -> dict:
    """Every calibration model refitted on ``lut``'s calibration measurements (no timing) and scored on each
    check's measurements: Kendall tau (and against the second pass), median ratio, median |error|."""
    info = lut.calibration.info
    out = {}
    for name in FEATURE_SETS:
        try:
            model = fit_calibration(lut, info["archs"], info["measured_ms"], name)
        except SaswotError as exc:           # too few calibration networks for this model
            out[name] = {"skipped": str(exc)}
            continue
        out[name] = {"coefficients": dict(zip(model.calibration.features, model.calibration.coefficients))}
        for sample, res in checks.items():
            out[name][sample] = _scores([model.predict(r["arch"]) for r in res["rows"]], res["rows"])
    return out


def _scores(pred: list, rows: list) -> dict:
    """Predictions against a check's measured rows: :func:`agreement`, and Kendall tau against the second pass
    when the rows have one."""
    scores = agreement(pred, [r["measured_ms"] for r in rows])
    if "measured_ms_again" in rows[0]:
        scores["kendall_tau_second_pass"] = kendall_tau(pred, [r["measured_ms_again"] for r in rows])
    return scores


def rescore(lut, res: dict) -> dict:
    """A stored check (``res``, measured with ``lut``'s entries) scored again with ``lut``'s predictions: no
    timing, the same measurements."""
    rows = [dict(r, predicted_ms=lut.predict(r["arch"])) for r in res["rows"]]
    for r in rows:
        r["ratio"] = r["predicted_ms"] / r["measured_ms"]
    scores = _scores([r["predicted_ms"] for r in rows], rows)
    model = lut.calibration.info.get("model") if lut.calibration is not None else None
    return {**res, **scores, "rows": rows, "calibration_model": model}


def refit_main(args, out: Path) -> None:
    """``--checks-from``: refit, rescore and write; nothing is timed."""
    lut = LatencyTable.load(args.lut)
    stored = json.loads(Path(args.checks_from).read_text())
    if lut.calibration is None:
        raise SystemExit(f"--lut {args.lut}: the table has no calibration measurements to refit on")
    if stored.get("lut_meta", {}).get("date") != lut.meta.get("date"):
        raise SystemExit(f"--checks-from {args.checks_from} was not measured with the table {args.lut} "
                         f"(its lut_meta date differs)")
    info = lut.calibration.info
    refit = fit_calibration(lut, info["archs"], info["measured_ms"], args.model,
                            info={k: v for k, v in info.items() if k not in ("archs", "measured_ms")})
    checks = {name: rescore(refit, stored[name]) for name in ("uniform", "diverse")}
    for name, res in checks.items():
        _report(name, res)
    cal = refit.calibration.to_json()
    cal["models"] = compare_models(refit, checks)
    doc = {"what": f"{args.checks_from} rescored after refitting {args.lut}'s calibration as {args.model} on its "
                   f"stored calibration measurements; nothing timed",
           "cli_equivalent": f"python benchmarks/latency_lut.py --lut {args.lut} --checks-from {args.checks_from} "
                             f"--model {args.model}",
           "machine": stored.get("machine"), "lut_meta": lut.meta, **checks, "calibration": cal}
    atomic_write_json(out, doc)
    print(f"wrote {out}")


def _report(name: str, res: dict) -> None:
    raw, mae = res.get("raw"), res.get("median_abs_rel_error")
    print(f"{name:8s} {res['n']} networks: Kendall tau {res['kendall_tau']:.3f} (second pass "
          f"{res['kendall_tau_second_pass']:.3f}), measured-vs-measured tau {res['repeat_tau']:.3f}, "
          f"median predicted/measured {res['median_ratio']:.3f}, "
          + (f"median |error| {100 * mae:.1f}%, " if mae is not None else "")
          + f"measured {res['measured_ms_range'][0]:.2f}-{res['measured_ms_range'][1]:.2f} ms")
    if raw:
        print(f"{'':8s} plain sum (raw): Kendall tau {raw['kendall_tau']:.3f} (second pass "
              f"{raw['kendall_tau_second_pass']:.3f}), median predicted/measured {raw['median_ratio']:.3f}, "
              f"median |error| {100 * raw['median_abs_rel_error']:.1f}%; {res['calibration_overlap']} of these "
              f"networks were calibrated on")


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Build (or load), check and write the results JSON."""
    ap = _parser()
    args = ap.parse_args(argv)
    try:
        out = output_path(args.out, args.overwrite)
    except FileExistsError as exc:
        ap.error(str(exc))
    if args.checks_from:
        if not args.lut:
            ap.error("--checks-from needs --lut (the table the stored checks were measured with)")
        return refit_main(args, out)
    torch.set_num_threads(1)
    load_start = _load()
    lut, space, build_s = _table(args)
    calibration = None
    if args.calibrate:
        lut, calibration = _calibrate(lut, args)
    if args.save_lut:
        lut.save(args.save_lut)
    uniform = check_step(lut, args)
    rng = random.Random(args.seed + 1)
    diverse = check_step(lut, args, archs=[space.sample_diverse(rng) for _ in range(args.n)])
    load_end = _load()
    for name, res in (("uniform", uniform), ("diverse", diverse)):
        _report(name, res)
    print(f"load average: start {load_start}, end {load_end} on {os.cpu_count()} CPUs")
    if calibration is not None:
        calibration["check_overlap"] = {"uniform": uniform["calibration_overlap"],
                                        "diverse": diverse["calibration_overlap"]}
        calibration["models"] = compare_models(lut, {"uniform": uniform, "diverse": diverse})
    doc = {
        "what": "realtime latency LUT: predicted (sum of entries) vs measured (check_lut, as `saswot-gp latency check`)",
        "target": "Kendall tau >= 0.9",
        "note": (f"timings on a {os.cpu_count()}-CPU machine with a 1-minute load average of {load_start[:1]} at "
                 "start (each other CPU-bound job adds about 1; other jobs make timings noisy and inflated); "
                 "measured-vs-measured tau is the ceiling that noise puts on any predictor's tau in "
                 "this run. The LUT and the networks are timed minutes apart, so the ratio also absorbs load "
                 "drift; timed side by side, sum-of-parts / whole-network is about 0.9 (per-network Python "
                 "overhead not in any entry)."),
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
                    "torch": torch.__version__, "load_avg_start": load_start, "load_avg_end": load_end},
        "cli_equivalent": cli_equivalent(args, args.lut or "LUT.json"),
        "build_s": round(build_s, 2), "n_entries": len(lut.entries), "lut_meta": lut.meta,
        "uniform": {k: v for k, v in uniform.items() if k != "lut"},
        "diverse": {k: v for k, v in diverse.items() if k != "lut"},
    }
    if calibration is not None:
        doc["what"] += ("; calibrated (kendall_tau, median_ratio, median_abs_rel_error) vs plain sum ('raw') on the "
                        "same measurements")
        doc["calibration"] = calibration
    if out.exists() and not args.overwrite:          # written by someone else while this ran: keep both
        taken = out
        out = out.with_name(f"{out.stem}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}{out.suffix}")
        print(f"{taken} appeared while timing; writing to {out} instead", file=sys.stderr)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out, doc)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
