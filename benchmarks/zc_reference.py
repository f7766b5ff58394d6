"""Compare our zero-cost measures with NASLib's precomputed TransNAS-Bench-101 scores, and with the ground truth.

For a seeded sample of ``--n`` architectures of each NASLib zero-cost file (micro and macro,
task segmentsemantic), build each network (weights seeded by ``--seed``), compute every registered
measure (``saswot_gp.zerocost``) on one seeded synthetic batch (``saswot_gp.batches.default_batch``:
``--batch-size`` images at ``--resolution``), and report

* for every proxy NASLib precomputed (flops, params, snip, grasp, fisher, grad_norm, l2_norm, plain,
  nwot, jacov): Spearman between our scores and NASLib's on the same architectures;
* for every measure: Kendall and Spearman against ``val_accuracy`` (with NASLib's own scores' values
  on the same architectures beside them);
* resolution sensitivity: on a seeded ``--sens-n`` of the sampled architectures per space, Spearman
  between our scores at ``--resolution`` and at ``--sens-resolution``;
* swap again with a ``--swap-batch`` batch (with 8 images it can count at most 2^8 patterns);
* seconds per architecture.

Scores are cached per architecture (``--cache-dir``, JSON lines), so a killed run resumes. Usage::

    python benchmarks/zc_reference.py [--data ../shared/benchdata/transnas101] [--n 120] [--seed 0]
        [--resolution 64x64] [--batch-size 8] [--sens-n 25] [--sens-resolution 128x128] [--swap-batch 32]
        [--threads 1]

Writes ``zc_reference.json`` and ``zc_reference.md`` to ``--out`` (after each phase, so partial
results are readable while it runs).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from scipy import stats as sstats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from saswot_gp.groundtruth.loaders import load_benchmark  # noqa: E402
from saswot_gp.io import atomic_write_json, atomic_write_text  # noqa: E402
from saswot_gp.zerocost import measure_names  # noqa: E402
from saswot_gp.spaces.base import parse_resolution  # noqa: E402
from saswot_gp.ranking import rank_correlations  # noqa: E402
from saswot_gp.zerocost.evaluate import (sample_benchmark,  # noqa: E402
                                         score_architectures)

FILES = {"micro": "zc_transbench101_micro.json", "macro": "zc_transbench101_macro.json"}
NASLIB_PROXIES = ("flops", "params", "snip", "grasp", "fisher", "grad_norm", "l2_norm", "plain", "nwot", "jacov")


def spearman(a: Sequence[float], b: Sequence[float]) -> Dict[str, float]:
    """Spearman over finite pairs (NaN when fewer than 3 or constant)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.ptp(a[ok]) == 0 or np.ptp(b[ok]) == 0:
        return {"n": int(ok.sum()), "spearman": math.nan}
    return {"n": int(ok.sum()), "spearman": float(sstats.spearmanr(a[ok], b[ok]).statistic)}


def clean(obj: Any) -> Any:
    """JSON-safe copy (NaN -> None, numpy -> Python)."""
    if isinstance(obj, dict):
        return {k: clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return None if not math.isfinite(float(obj)) else round(float(obj), 6)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def f3(v: Optional[float]) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:+.3f}"


def write_report(res: dict, out: Path) -> None:
    """zc_reference.json and zc_reference.md from the results gathered so far."""
    atomic_write_json(out / "zc_reference.json", clean(res))
    s = res["settings"]
    L: List[str] = ["## Our zero-cost measures vs NASLib's precomputed TransNAS-Bench-101 scores", ""]
    L.append(f"Command: `{s['command']}` ({s['started']}, torch {s['torch']}, {s['threads']} torch thread(s), "
             f"CPU `{s['cpu']}`, 2 cores shared with other jobs, so timings are inflated and noisy).")
    L.append("")
    L.append("How it was measured:")
    L.append(f"- Architectures: a seeded sample (numpy `default_rng({s['seed']})`, without replacement) of {s['n']} "
             "architectures from each NASLib zero-cost file (task segmentsemantic; target `val_accuracy`, best "
             "validation pixel accuracy %). Networks: `saswot_gp` TransNAS spaces (parameter counts match the "
             f"benchmark exactly, see param_match.md), weights initialised from `torch.manual_seed({s['seed']})`.")
    L.append(f"- Batch: `default_batch`: {s['batch_size']} seeded synthetic images (seed {s['seed']}, smooth Gaussian "
             f"fields, zero mean / unit variance) with spatially coherent random labels in 17 classes, at "
             f"**{s['resolution'][0]}x{s['resolution'][1]}** (the networks were trained at 256x256; the input is reduced "
             "to make ~240 architectures affordable on 2 shared CPU cores). NASLib used real Taskonomy images, a "
             "different batch size and 256x256: scores that depend on data and batch cannot match exactly.")
    L.append("- Measures: `saswot_gp.zerocost.compute_measures` (training-mode gradients of pixel-wise cross-entropy, "
             "weight layers Conv2d + Linear, NASLib's sum-over-layers aggregation; synflow as log). flops here are "
             "MACs at the reduced input (ranks equal those at 256x256), params are trainable parameters.")
    L.append("- Correlations: Spearman over architectures where both values are finite (NASLib's failed scores are NaN); "
             "95% intervals: percentile bootstrap, 1000 resamples of architectures, seeded.")
    L.append("- Scores are read from the per-architecture cache (`--cache-dir`, JSON lines) when present, so a resumed or "
             "repeated run reuses them: seconds per architecture are those recorded when each score was computed, and "
             "the wall time at the end covers the last invocation only.")
    if s.get("note"):
        L.append(f"- {s['note']}")
    L.append("")
    kinds = [k for k in FILES if k in res]
    if kinds:
        def rho(k, n):
            v = res[k]["vs_naslib"].get(n)
            return v["spearman"] if v and v["spearman"] is not None else float("nan")
        parts = []
        for k in kinds:
            close = [n for n in NASLIB_PROXIES if rho(k, n) >= 0.95]
            mid = [n for n in NASLIB_PROXIES if 0.5 <= rho(k, n) < 0.95]
            far = [n for n in NASLIB_PROXIES if not rho(k, n) >= 0.5]
            parts.append(f"{k}: >= 0.95 for {', '.join(close) or 'none'}; 0.5 to 0.95 for {', '.join(mid) or 'none'}; "
                         f"below 0.5 for {', '.join(far) or 'none'}")
        L.append(f"Summary at {s['resolution'][0]}x{s['resolution'][1]}, Spearman between our scores and NASLib's. "
                 + ". ".join(parts) + ". "
                 "Data-free or nearly data-free proxies agree; gradient proxies depend on the batch (real Taskonomy images "
                 "vs synthetic, batch size, resolution), and the signed sums plain and grasp depend on it most. The "
                 "sensitivity section shows how much of the gap the reduced input explains.")
        L.append("")
    for kind in ("micro", "macro"):
        r = res.get(kind)
        if not r:
            continue
        L.append(f"### TransNAS-Bench-101 {kind}: {r['n_archs']} architectures")
        L.append("")
        L.append("| proxy | rho(ours, NASLib) | n | ours vs val_acc: Spearman [95% CI] | Kendall | NASLib's vs val_acc: Spearman | Kendall |")
        L.append("|---|---:|---:|---:|---:|---:|---:|")
        for name in measure_names():
            g = r["vs_truth"].get(name, {})
            ref = r["vs_naslib"].get(name)
            nref = r["naslib_vs_truth"].get(name, {})
            ci = f"[{f3(g.get('spearman_lo'))}, {f3(g.get('spearman_hi'))}]"
            L.append(f"| {name} | {f3(ref['spearman']) if ref else '(not in file)'} | {ref['n'] if ref else ''} | "
                     f"{f3(g.get('spearman'))} {ci} | {f3(g.get('kendall'))} | {f3(nref.get('spearman'))} | "
                     f"{f3(nref.get('kendall'))} |")
        t = r["timing"]
        L.append("")
        L.append(f"Seconds per architecture (all {len(measure_names())} measures, build excluded): mean "
                 f"{t['total_mean']:.2f}, median {t['total_median']:.2f}; NASLib's ten only: mean {t['naslib_mean']:.2f}. "
                 "Per measure (mean): " + ", ".join(f"{k} {v:.2f}" for k, v in t["per_measure_mean"].items()) + ".")
        L.append("")
    sens = res.get("sensitivity")
    if sens:
        a, b = s["resolution"], s["sens_resolution"]
        L.append(f"### Resolution sensitivity: {a[0]}x{a[1]} vs {b[0]}x{b[1]}")
        L.append("")
        which = (f"all {s['n']} sampled architectures of each space" if s["sens_n"] >= s["n"] else
                 f"{s['sens_n']} seeded architectures per space (`default_rng({s['seed'] + 1})` out of the sample)")
        L.append(f"Spearman between our scores at {a[0]}x{a[1]} and at {b[0]}x{b[1]} (same architectures, weights, batch "
                 f"seed and size; the {b[0]}x{b[1]} batch is `default_batch` at that size), {which}.")
        L.append("")
        L.append("| proxy | " + " | ".join(f"{k} (n)" for k in sens["per_space"]) + " | pooled |")
        L.append("|---|" + "---:|" * (len(sens["per_space"]) + 1))
        for name in measure_names():
            cells = [f"{f3(v[name]['spearman'])} ({v[name]['n']})" for v in sens["per_space"].values()]
            L.append(f"| {name} | " + " | ".join(cells) + f" | {f3(sens['pooled'][name]['spearman'])} |")
        L.append("")
        L.append("Seconds per architecture at the larger resolution: " +
                 ", ".join(f"{k} mean {v:.2f}" for k, v in sens["seconds_mean"].items()) + ".")
        L.append("")
        for kind, r in sens.get("at_larger_resolution", {}).items():
            L.append(f"#### {kind} at {b[0]}x{b[1]} vs {a[0]}x{a[1]}: {r['n_archs']} architectures")
            L.append("")
            L.append(f"| proxy | rho(ours, NASLib) {a[0]} | {b[0]} | ours vs val_acc: Spearman {a[0]} | {b[0]} [95% CI] | "
                     f"Kendall {b[0]} | NASLib's vs val_acc: Spearman |")
            L.append("|---|---:|---:|---:|---:|---:|---:|")
            for name in measure_names():
                g, gl = r["vs_truth"][name], r["vs_truth_lo"][name]
                ref, refl = r["vs_naslib"].get(name), r["vs_naslib_lo"].get(name)
                nref = r["naslib_vs_truth"].get(name, {})
                L.append(f"| {name} | {f3(refl['spearman']) if refl else '-'} | {f3(ref['spearman']) if ref else '-'} | "
                         f"{f3(gl['spearman'])} | {f3(g['spearman'])} [{f3(g['spearman_lo'])}, {f3(g['spearman_hi'])}] | "
                         f"{f3(g['kendall'])} | {f3(nref.get('spearman'))} |")
            L.append("")
    sw = res.get("swap_large_batch")
    if sw:
        L.append(f"### swap with a batch of {s['swap_batch']}")
        L.append("")
        cap = 2 ** s["batch_size"]
        at_cap = sum(int(np.sum(np.asarray(res[k]["scores"]["swap"], float) == cap)) for k in FILES if k in res)
        n_all = sum(res[k]["n_archs"] for k in FILES if k in res)
        L.append(f"With {s['batch_size']} images swap can count at most 2^{s['batch_size']} = {cap} patterns; "
                 f"{at_cap} of the {n_all} sampled networks reach that bound. A forward-only extra pass with "
                 f"`default_batch` of {s['swap_batch']} images (same seed and resolution):")
        L.append("")
        L.append("| space | Spearman vs val_acc [95% CI] | Kendall | distinct scores | s/arch |")
        L.append("|---|---:|---:|---:|---:|")
        for kind, row in sw.items():
            L.append(f"| {kind} | {f3(row['spearman'])} [{f3(row['spearman_lo'])}, {f3(row['spearman_hi'])}] | "
                     f"{f3(row['kendall'])} | {row['distinct_scores']} of {row['n']} | {row['sec_mean']:.2f} |")
        L.append("")
    L.append(f"Finished phases: {', '.join(res['done'])}; total wall time {res['wall_s']:.0f} s.")
    atomic_write_text(out / "zc_reference.md", "\n".join(L) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "benchdata" / "transnas101"))
    ap.add_argument("--n", type=int, default=120)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resolution", default="64x64")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--sens-n", type=int, default=25)
    ap.add_argument("--sens-resolution", default="128x128")
    ap.add_argument("--swap-batch", type=int, default=32, help="batch size of an extra swap-only pass (0: skip)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--note", default="", help="a sentence added to the report's 'how it was measured' list")
    ap.add_argument("--report-only", action="store_true", help="rewrite the .md from the existing .json (no scoring)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--cache-dir", default=str(ROOT / "runs" / "zc_reference"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.report_only:
        res = json.loads((Path(args.out) / "zc_reference.json").read_text())
        if args.note:
            res["settings"]["note"] = args.note
        write_report(res, Path(args.out))
        return
    res_lo, res_hi = parse_resolution(args.resolution), parse_resolution(args.sens_resolution)
    out, cdir = Path(args.out), Path(args.cache_dir)
    cdir.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    cmd = "python benchmarks/zc_reference.py " + " ".join(sys.argv[1:])
    res: dict = {"settings": {"command": cmd.strip(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                              "torch": torch.__version__, "threads": args.threads, "cpu": platform.processor() or platform.machine(),
                              "n": args.n, "seed": args.seed, "resolution": list(res_lo), "batch_size": args.batch_size,
                              "sens_n": args.sens_n, "swap_batch": args.swap_batch, "note": args.note, "sens_resolution": list(res_hi), "measures": measure_names()},
                 "done": [], "wall_s": 0.0}

    def log(msg: str) -> None:
        print(time.strftime("%H:%M:%S"), msg, flush=True)

    def progress(label):
        def cb(i, n, arch, sec):
            log(f"{label} {i}/{n} {arch} {sec:.1f}s")
        return cb

    samples = {}
    for kind, fname in FILES.items():
        path = Path(args.data) / fname
        if not path.is_file():
            log(f"skip {kind}: {path} not found")
            continue
        bench = load_benchmark(str(path))
        sub = sample_benchmark(bench, args.n, seed=args.seed)
        samples[kind] = sub
        scores, secs, _ = score_architectures(sub, measure_names(), resolution=res_lo, batch_size=args.batch_size,
                                              seed=args.seed, cache=cdir / f"{kind}_{res_lo[0]}x{res_lo[1]}.jsonl",
                                              progress=progress(f"{kind} {res_lo[0]}x{res_lo[1]}"))
        r = {"n_archs": len(sub), "archs": sub.archs, "vs_naslib": {}, "vs_truth": {}, "naslib_vs_truth": {}}
        for name in measure_names():
            row = rank_correlations(scores[name], sub.target, n_boot=1000, seed=args.seed)
            r["vs_truth"][name] = row
            if name in sub.reference and name in NASLIB_PROXIES:
                r["vs_naslib"][name] = spearman(scores[name], sub.reference[name])
                nr = rank_correlations(sub.reference[name], sub.target, n_boot=0)
                r["naslib_vs_truth"][name] = nr
        total = sum(np.nan_to_num(v) for v in secs.values())
        nas = sum(np.nan_to_num(secs[k]) for k in NASLIB_PROXIES)
        r["timing"] = {"total_mean": float(np.mean(total)), "total_median": float(np.median(total)),
                       "naslib_mean": float(np.mean(nas)),
                       "per_measure_mean": {k: float(np.nanmean(v)) for k, v in secs.items()}}
        r["scores"] = {k: v.tolist() for k, v in scores.items()}
        res[kind] = r
        res["done"].append(f"{kind} {res_lo[0]}x{res_lo[1]}")
        res["wall_s"] = time.time() - t_start
        write_report(res, out)
        log(f"{kind}: wrote report")

    if args.swap_batch > 0 and samples:
        res["swap_large_batch"] = {}
        for kind, sub in samples.items():
            sc, ss, _ = score_architectures(sub, ["swap"], resolution=res_lo, batch_size=args.swap_batch, seed=args.seed,
                                            cache=cdir / f"{kind}_{res_lo[0]}x{res_lo[1]}_b{args.swap_batch}.jsonl",
                                            progress=progress(f"{kind} swap batch {args.swap_batch}"))
            row = rank_correlations(sc["swap"], sub.target, n_boot=1000, seed=args.seed)
            row["distinct_scores"] = int(len(np.unique(sc["swap"][np.isfinite(sc["swap"])])))
            row["max_possible"] = 2 ** args.swap_batch
            row["sec_mean"] = float(np.nanmean(ss["swap"]))
            res["swap_large_batch"][kind] = row
            res["done"].append(f"swap batch {args.swap_batch} {kind}")
            res["wall_s"] = time.time() - t_start
            write_report(res, out)
    if args.sens_n > 0 and samples:
        per_space, seconds, sens_archs, at_hi = {}, {}, {}, {}
        pooled_lo = {n: [] for n in measure_names()}
        pooled_hi = {n: [] for n in measure_names()}
        for kind, sub in samples.items():
            idx = np.sort(np.random.default_rng(args.seed + 1).choice(len(sub), size=min(args.sens_n, len(sub)), replace=False))
            s_sub = sub.subset(idx)
            lo, _, _ = score_architectures(s_sub, measure_names(), resolution=res_lo, batch_size=args.batch_size,
                                           seed=args.seed, cache=cdir / f"{kind}_{res_lo[0]}x{res_lo[1]}.jsonl")
            hi, hs, _ = score_architectures(s_sub, measure_names(), resolution=res_hi, batch_size=args.batch_size,
                                            seed=args.seed, cache=cdir / f"{kind}_{res_hi[0]}x{res_hi[1]}.jsonl",
                                            progress=progress(f"{kind} {res_hi[0]}x{res_hi[1]}"))
            per_space[kind] = {n: spearman(lo[n], hi[n]) for n in measure_names()}
            at_hi[kind] = {"n_archs": len(s_sub),
                           "vs_naslib": {n: spearman(hi[n], s_sub.reference[n]) for n in NASLIB_PROXIES if n in s_sub.reference},
                           "vs_naslib_lo": {n: spearman(lo[n], s_sub.reference[n]) for n in NASLIB_PROXIES if n in s_sub.reference},
                           "vs_truth": {n: rank_correlations(hi[n], s_sub.target, n_boot=1000, seed=args.seed) for n in measure_names()},
                           "vs_truth_lo": {n: rank_correlations(lo[n], s_sub.target, n_boot=0) for n in measure_names()},
                           "naslib_vs_truth": {n: rank_correlations(s_sub.reference[n], s_sub.target, n_boot=0)
                                               for n in NASLIB_PROXIES if n in s_sub.reference}}
            for n in measure_names():
                # pool ranks taken within each space, so the two spaces' scales do not dominate
                ok = np.isfinite(lo[n]) & np.isfinite(hi[n])
                if ok.sum():
                    pooled_lo[n] += list(sstats.rankdata(lo[n][ok]) / ok.sum())
                    pooled_hi[n] += list(sstats.rankdata(hi[n][ok]) / ok.sum())
            sens_archs[kind] = s_sub.archs
            seconds[kind] = float(np.mean(sum(np.nan_to_num(v) for v in hs.values())))
            res["sensitivity"] = {"per_space": per_space, "seconds_mean": seconds,
                                  "pooled": {n: spearman(pooled_lo[n], pooled_hi[n]) for n in measure_names()},
                                  "archs": sens_archs, "at_larger_resolution": at_hi}
            res["done"].append(f"sensitivity {kind} {res_hi[0]}x{res_hi[1]}")
            res["wall_s"] = time.time() - t_start
            write_report(res, out)
            log(f"sensitivity {kind}: wrote report")
    log("done")


if __name__ == "__main__":
    main()
