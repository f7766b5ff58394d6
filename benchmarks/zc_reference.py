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
import math
import platform
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from scipy import stats as sstats

from saswot_gp.groundtruth.loaders import load_benchmark
from saswot_gp.io import atomic_write_json, atomic_write_text, read_json
from saswot_gp.ranking import rank_correlations
from saswot_gp.spaces.base import parse_resolution
from saswot_gp.zerocost import measure_names
from saswot_gp.zerocost.scoring import sample_benchmark, score_architectures

ROOT = Path(__file__).resolve().parents[1]
FILES = {"micro": "zc_transbench101_micro.json", "macro": "zc_transbench101_macro.json"}
NASLIB_PROXIES = ("flops", "params", "snip", "grasp", "fisher", "grad_norm", "l2_norm", "plain", "nwot", "jacov")
N_BOOT = 1000  # bootstrap resamples of the 95% intervals (seeded by --seed)


def spearman(a, b) -> Dict[str, float]:
    """Spearman over finite pairs (NaN when fewer than 3 or constant), with the number of those pairs."""
    r = rank_correlations(a, b, n_boot=0)
    return {"n": r["n"], "spearman": r["spearman"]}


def clean(obj: Any) -> Any:
    """JSON-safe copy (NaN -> None, numpy -> Python, floats rounded to 6 digits to keep the recorded file small);
    the library has no such helper (``atomic_write_json`` writes what it is given)."""
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


# ------------------------------------------------------------------------------------------------ report

def _how_lines(s: dict) -> List[str]:
    """The command line and the 'how it was measured' list."""
    L = [f"Command: `{s['command']}` ({s['started']}, torch {s['torch']}, {s['threads']} torch thread(s), "
         f"CPU `{s['cpu']}`, 2 cores shared with other jobs, so timings are inflated and noisy).", "",
         "How it was measured:",
         f"- Architectures: a seeded sample (numpy `default_rng({s['seed']})`, without replacement) of {s['n']} "
         "architectures from each NASLib zero-cost file (task segmentsemantic; target `val_accuracy`, best "
         "validation pixel accuracy %). Networks: `saswot_gp` TransNAS spaces (parameter counts match the "
         f"benchmark exactly, see param_match.md), weights initialised from `torch.manual_seed({s['seed']})`.",
         f"- Batch: `default_batch`: {s['batch_size']} seeded synthetic images (seed {s['seed']}, smooth Gaussian "
         f"fields, zero mean / unit variance) with spatially coherent random labels in 17 classes, at "
         f"**{s['resolution'][0]}x{s['resolution'][1]}** (the networks were trained at 256x256; the input is reduced "
         "to make ~240 architectures affordable on 2 shared CPU cores). NASLib used real Taskonomy images, a "
         "different batch size and 256x256: scores that depend on data and batch cannot match exactly.",
         "- Measures: `saswot_gp.zerocost.compute_measures` (training-mode gradients of pixel-wise cross-entropy, "
         "weight layers Conv2d + Linear, NASLib's sum-over-layers aggregation; synflow as log). flops here are "
         "MACs at the reduced input (ranks equal those at 256x256), params are trainable parameters.",
         "- Correlations: Spearman over architectures where both values are finite (NASLib's failed scores are NaN); "
         "95% intervals: percentile bootstrap, 1000 resamples of architectures, seeded.",
         "- Scores are read from the per-architecture cache (`--cache-dir`, JSON lines) when present, so a resumed or "
         "repeated run reuses them: seconds per architecture are those recorded when each score was computed, and "
         "the wall time at the end covers the last invocation only."]
    if s.get("note"):
        L.append(f"- {s['note']}")
    L.append("")
    return L


def _agreement_lines(res: dict) -> List[str]:
    """One paragraph: which of NASLib's proxies our scores agree with, per space."""
    s = res["settings"]
    kinds = [k for k in FILES if k in res]
    if not kinds:
        return []

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
    return [f"Summary at {s['resolution'][0]}x{s['resolution'][1]}, Spearman between our scores and NASLib's. "
            + ". ".join(parts) + ". "
            "Data-free or nearly data-free proxies agree; gradient proxies depend on the batch (real Taskonomy images "
            "vs synthetic, batch size, resolution), and the signed sums plain and grasp depend on it most. The "
            "sensitivity section shows how much of the gap the reduced input explains.", ""]


def _space_lines(kind: str, r: dict) -> List[str]:
    """The table of one space: our scores against NASLib's and against the ground truth, and the timing."""
    L = [f"### TransNAS-Bench-101 {kind}: {r['n_archs']} architectures", "",
         "| proxy | rho(ours, NASLib) | n | ours vs val_acc: Spearman [95% CI] | Kendall | NASLib's vs val_acc: Spearman | Kendall |",
         "|---|---:|---:|---:|---:|---:|---:|"]
    for name in measure_names():
        g = r["vs_truth"].get(name, {})
        ref = r["vs_naslib"].get(name)
        nref = r["naslib_vs_truth"].get(name, {})
        ci = f"[{f3(g.get('spearman_lo'))}, {f3(g.get('spearman_hi'))}]"
        L.append(f"| {name} | {f3(ref['spearman']) if ref else '(not in file)'} | {ref['n'] if ref else ''} | "
                 f"{f3(g.get('spearman'))} {ci} | {f3(g.get('kendall'))} | {f3(nref.get('spearman'))} | "
                 f"{f3(nref.get('kendall'))} |")
    t = r["timing"]
    L += ["", f"Seconds per architecture (all {len(measure_names())} measures, build excluded): mean "
          f"{t['total_mean']:.2f}, median {t['total_median']:.2f}; NASLib's ten only: mean {t['naslib_mean']:.2f}. "
          "Per measure (mean): " + ", ".join(f"{k} {v:.2f}" for k, v in t["per_measure_mean"].items()) + ".", ""]
    return L


def _larger_resolution_lines(kind: str, r: dict, a: list, b: list) -> List[str]:
    """The table of one space at the larger resolution ``b`` beside the reduced one ``a``."""
    L = [f"#### {kind} at {b[0]}x{b[1]} vs {a[0]}x{a[1]}: {r['n_archs']} architectures", "",
         f"| proxy | rho(ours, NASLib) {a[0]} | {b[0]} | ours vs val_acc: Spearman {a[0]} | {b[0]} [95% CI] | "
         f"Kendall {b[0]} | NASLib's vs val_acc: Spearman |",
         "|---|---:|---:|---:|---:|---:|---:|"]
    for name in measure_names():
        g, gl = r["vs_truth"][name], r["vs_truth_lo"][name]
        ref, refl = r["vs_naslib"].get(name), r["vs_naslib_lo"].get(name)
        nref = r["naslib_vs_truth"].get(name, {})
        L.append(f"| {name} | {f3(refl['spearman']) if refl else '-'} | {f3(ref['spearman']) if ref else '-'} | "
                 f"{f3(gl['spearman'])} | {f3(g['spearman'])} [{f3(g['spearman_lo'])}, {f3(g['spearman_hi'])}] | "
                 f"{f3(g['kendall'])} | {f3(nref.get('spearman'))} |")
    L.append("")
    return L


def _sensitivity_lines(sens: dict, s: dict) -> List[str]:
    """The resolution-sensitivity section."""
    a, b = s["resolution"], s["sens_resolution"]
    which = (f"all {s['n']} sampled architectures of each space" if s["sens_n"] >= s["n"] else
             f"{s['sens_n']} seeded architectures per space (`default_rng({s['seed'] + 1})` out of the sample)")
    L = [f"### Resolution sensitivity: {a[0]}x{a[1]} vs {b[0]}x{b[1]}", "",
         f"Spearman between our scores at {a[0]}x{a[1]} and at {b[0]}x{b[1]} (same architectures, weights, batch "
         f"seed and size; the {b[0]}x{b[1]} batch is `default_batch` at that size), {which}.", "",
         "| proxy | " + " | ".join(f"{k} (n)" for k in sens["per_space"]) + " | pooled |",
         "|---|" + "---:|" * (len(sens["per_space"]) + 1)]
    for name in measure_names():
        cells = [f"{f3(v[name]['spearman'])} ({v[name]['n']})" for v in sens["per_space"].values()]
        L.append(f"| {name} | " + " | ".join(cells) + f" | {f3(sens['pooled'][name]['spearman'])} |")
    L += ["", "Seconds per architecture at the larger resolution: " +
          ", ".join(f"{k} mean {v:.2f}" for k, v in sens["seconds_mean"].items()) + ".", ""]
    for kind, r in sens.get("at_larger_resolution", {}).items():
        L += _larger_resolution_lines(kind, r, a, b)
    return L


def _swap_lines(res: dict) -> List[str]:
    """The section on swap with the larger batch."""
    s, sw = res["settings"], res["swap_large_batch"]
    cap = 2 ** s["batch_size"]
    at_cap = sum(int(np.sum(np.asarray(res[k]["scores"]["swap"], float) == cap)) for k in FILES if k in res)
    n_all = sum(res[k]["n_archs"] for k in FILES if k in res)
    L = [f"### swap with a batch of {s['swap_batch']}", "",
         f"With {s['batch_size']} images swap can count at most 2^{s['batch_size']} = {cap} patterns; "
         f"{at_cap} of the {n_all} sampled networks reach that bound. A forward-only extra pass with "
         f"`default_batch` of {s['swap_batch']} images (same seed and resolution):", "",
         "| space | Spearman vs val_acc [95% CI] | Kendall | distinct scores | s/arch |",
         "|---|---:|---:|---:|---:|"]
    for kind, row in sw.items():
        L.append(f"| {kind} | {f3(row['spearman'])} [{f3(row['spearman_lo'])}, {f3(row['spearman_hi'])}] | "
                 f"{f3(row['kendall'])} | {row['distinct_scores']} of {row['n']} | {row['sec_mean']:.2f} |")
    L.append("")
    return L


def write_report(res: dict, out: Path) -> None:
    """zc_reference.json and zc_reference.md from the results gathered so far."""
    atomic_write_json(out / "zc_reference.json", clean(res))
    L: List[str] = ["## Our zero-cost measures vs NASLib's precomputed TransNAS-Bench-101 scores", ""]
    L += _how_lines(res["settings"])
    L += _agreement_lines(res)
    for kind in ("micro", "macro"):
        if res.get(kind):
            L += _space_lines(kind, res[kind])
    if res.get("sensitivity"):
        L += _sensitivity_lines(res["sensitivity"], res["settings"])
    if res.get("swap_large_batch"):
        L += _swap_lines(res)
    L.append(f"Finished phases: {', '.join(res['done'])}; total wall time {res['wall_s']:.0f} s.")
    atomic_write_text(out / "zc_reference.md", "\n".join(L) + "\n")


# ------------------------------------------------------------------------------------------------ phases

def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def progress(label: str):
    """A ``score_architectures`` progress callback that logs each architecture under ``label``."""
    def cb(i, n, arch, sec):
        log(f"{label} {i}/{n} {arch} {sec:.1f}s")
    return cb


def space_result(sub, scores: dict, secs: dict, seed: int) -> dict:
    """One space at the reduced resolution: ours vs NASLib's scores, both vs the ground truth, timing, scores."""
    r = {"n_archs": len(sub), "archs": sub.archs, "vs_naslib": {}, "vs_truth": {}, "naslib_vs_truth": {}}
    for name in measure_names():
        r["vs_truth"][name] = rank_correlations(scores[name], sub.target, n_boot=N_BOOT, seed=seed)
        if name in sub.reference and name in NASLIB_PROXIES:
            r["vs_naslib"][name] = spearman(scores[name], sub.reference[name])
            r["naslib_vs_truth"][name] = rank_correlations(sub.reference[name], sub.target, n_boot=0)
    total = sum(np.nan_to_num(v) for v in secs.values())
    nas = sum(np.nan_to_num(secs[k]) for k in NASLIB_PROXIES)
    r["timing"] = {"total_mean": float(np.mean(total)), "total_median": float(np.median(total)),
                   "naslib_mean": float(np.mean(nas)),
                   "per_measure_mean": {k: float(np.nanmean(v)) for k, v in secs.items()}}
    r["scores"] = {k: v.tolist() for k, v in scores.items()}
    return r


def larger_resolution_result(s_sub, lo: dict, hi: dict, seed: int) -> dict:
    """The sensitivity subset at the larger resolution, beside the reduced one: vs NASLib's and vs the truth."""
    naslib = [n for n in NASLIB_PROXIES if n in s_sub.reference]
    return {"n_archs": len(s_sub),
            "vs_naslib": {n: spearman(hi[n], s_sub.reference[n]) for n in naslib},
            "vs_naslib_lo": {n: spearman(lo[n], s_sub.reference[n]) for n in naslib},
            "vs_truth": {n: rank_correlations(hi[n], s_sub.target, n_boot=N_BOOT, seed=seed) for n in measure_names()},
            "vs_truth_lo": {n: rank_correlations(lo[n], s_sub.target, n_boot=0) for n in measure_names()},
            "naslib_vs_truth": {n: rank_correlations(s_sub.reference[n], s_sub.target, n_boot=0) for n in naslib}}


class Run:
    """The phases of one invocation (reduced resolution, swap with a larger batch, resolution sensitivity);
    each finished phase is recorded in ``res['done']`` and rewrites the report."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.lo, self.hi = parse_resolution(args.resolution), parse_resolution(args.sens_resolution)
        self.out, self.cdir = Path(args.out), Path(args.cache_dir)
        self.cdir.mkdir(parents=True, exist_ok=True)
        self.t_start = time.time()
        self.samples: Dict[str, Any] = {}
        cmd = "python benchmarks/zc_reference.py " + " ".join(sys.argv[1:])
        self.res: dict = {"settings": {"command": cmd.strip(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                                       "torch": torch.__version__, "threads": args.threads,
                                       "cpu": platform.processor() or platform.machine(),
                                       "n": args.n, "seed": args.seed, "resolution": list(self.lo),
                                       "batch_size": args.batch_size, "sens_n": args.sens_n,
                                       "swap_batch": args.swap_batch, "note": args.note,
                                       "sens_resolution": list(self.hi), "measures": measure_names()},
                          "done": [], "wall_s": 0.0}

    def finish(self, phase: str) -> None:
        self.res["done"].append(phase)
        self.res["wall_s"] = time.time() - self.t_start
        write_report(self.res, self.out)

    def cache(self, kind: str, size, batch: Optional[int] = None) -> Path:
        return self.cdir / f"{kind}_{size[0]}x{size[1]}{'' if batch is None else f'_b{batch}'}.jsonl"

    def score(self, sub, names, size, kind: str, batch: Optional[int] = None, label: Optional[str] = None):
        """``score_architectures`` at ``size`` with the cache of (kind, size, batch); progress logged if ``label``."""
        return score_architectures(sub, names, resolution=size, batch_size=batch or self.args.batch_size,
                                   seed=self.args.seed, cache=self.cache(kind, size, batch),
                                   progress=progress(label) if label else None)

    def reduced(self) -> None:
        """Every measure on the seeded sample of each space at the reduced resolution."""
        a, lo = self.args, self.lo
        for kind, fname in FILES.items():
            path = Path(a.data) / fname
            if not path.is_file():
                log(f"skip {kind}: {path} not found")
                continue
            sub = sample_benchmark(load_benchmark(str(path)), a.n, seed=a.seed)
            self.samples[kind] = sub
            scores, secs, _ = self.score(sub, measure_names(), lo, kind, label=f"{kind} {lo[0]}x{lo[1]}")
            self.res[kind] = space_result(sub, scores, secs, a.seed)
            self.finish(f"{kind} {lo[0]}x{lo[1]}")
            log(f"{kind}: wrote report")

    def swap(self) -> None:
        """swap again with a batch of --swap-batch images (forward only)."""
        a, b = self.args, self.args.swap_batch
        self.res["swap_large_batch"] = {}
        for kind, sub in self.samples.items():
            sc, ss, _ = self.score(sub, ["swap"], self.lo, kind, batch=b, label=f"{kind} swap batch {b}")
            row = rank_correlations(sc["swap"], sub.target, n_boot=N_BOOT, seed=a.seed)
            row["distinct_scores"] = int(len(np.unique(sc["swap"][np.isfinite(sc["swap"])])))
            row["max_possible"] = 2 ** b
            row["sec_mean"] = float(np.nanmean(ss["swap"]))
            self.res["swap_large_batch"][kind] = row
            self.finish(f"swap batch {b} {kind}")

    def sensitivity(self) -> None:
        """Our scores at --resolution vs --sens-resolution on a seeded subset of each space's sample."""
        a, hi = self.args, self.hi
        per_space, seconds, sens_archs, at_hi = {}, {}, {}, {}
        pooled_lo = {n: [] for n in measure_names()}
        pooled_hi = {n: [] for n in measure_names()}
        for kind, sub in self.samples.items():
            idx = np.sort(np.random.default_rng(a.seed + 1).choice(len(sub), size=min(a.sens_n, len(sub)), replace=False))
            s_sub = sub.subset(idx)
            lo, _, _ = self.score(s_sub, measure_names(), self.lo, kind)
            hi_scores, hs, _ = self.score(s_sub, measure_names(), hi, kind, label=f"{kind} {hi[0]}x{hi[1]}")
            per_space[kind] = {n: spearman(lo[n], hi_scores[n]) for n in measure_names()}
            at_hi[kind] = larger_resolution_result(s_sub, lo, hi_scores, a.seed)
            for n in measure_names():
                # pool ranks taken within each space, so the two spaces' scales do not dominate
                ok = np.isfinite(lo[n]) & np.isfinite(hi_scores[n])
                if ok.sum():
                    pooled_lo[n] += list(sstats.rankdata(lo[n][ok]) / ok.sum())
                    pooled_hi[n] += list(sstats.rankdata(hi_scores[n][ok]) / ok.sum())
            sens_archs[kind] = s_sub.archs
            seconds[kind] = float(np.mean(sum(np.nan_to_num(v) for v in hs.values())))
            self.res["sensitivity"] = {"per_space": per_space, "seconds_mean": seconds,
                                       "pooled": {n: spearman(pooled_lo[n], pooled_hi[n]) for n in measure_names()},
                                       "archs": sens_archs, "at_larger_resolution": at_hi}
            self.finish(f"sensitivity {kind} {hi[0]}x{hi[1]}")
            log(f"sensitivity {kind}: wrote report")


def parse_args(argv=None) -> argparse.Namespace:
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
    return ap.parse_args(argv)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    if args.report_only:
        res = read_json(Path(args.out) / "zc_reference.json", "zc_reference.json", "run without --report-only first")
        if args.note:
            res["settings"]["note"] = args.note
        write_report(res, Path(args.out))
        return
    run = Run(args)
    run.reduced()
    if args.swap_batch > 0 and run.samples:
        run.swap()
    if args.sens_n > 0 and run.samples:
        run.sensitivity()
    log("done")


if __name__ == "__main__":
    main()
