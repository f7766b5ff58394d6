"""Check that our TransNAS-Bench-101 and NAS-Bench-MR networks reproduce the benchmarks' recorded sizes.

For EVERY architecture of each ground-truth file, build the network (on PyTorch's meta device: shapes
only, no memory, no initialisation) and compare its trainable parameter count with the recorded
``params`` (millions; a match is a relative error <= 0.5%). FLOPs are informative: our
multiply-accumulates of Conv2d/ConvTranspose2d/Linear layers (``saswot_gp.spaces.count_flops``) from a
shape-only forward pass at the space's nominal input, against the recorded ``flops`` (Spearman and the
median recorded/ours ratio), plus the variants that explain the recorded counters.

Usage (from the repository root)::

    python benchmarks/param_match.py [--data ../shared/benchdata] [--out benchmarks/results] [--limit N]

Writes ``param_match.json`` and ``param_match.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from typing import Dict, Tuple

import numpy as np
import torch
from torch import nn

from saswot_gp.groundtruth.loaders import load_benchmark
from saswot_gp.io import atomic_write_json, atomic_write_text
from saswot_gp.ranking import correlations
from saswot_gp.spaces import count_params, get_space
from saswot_gp.stats.collect import LAYER_TYPES, layer_macs

ROOT = Path(__file__).resolve().parents[1]

TOL = 0.005
FILES = {
    "transnas-micro (zc_transbench101_micro.json, segmentsemantic)": "transnas101/zc_transbench101_micro.json",
    "transnas-macro (zc_transbench101_macro.json, segmentsemantic)": "transnas101/zc_transbench101_macro.json",
    "nbmr-seg (seg_trainval.pkl)": "nasbench_mr/seg_trainval.pkl",
    "nbmr-seg-4x (seg-4x_trainval.pkl)": "nasbench_mr/seg-4x_trainval.pkl",
}


def macs_by_type(model: nn.Module, size: Tuple[int, int]) -> Dict[str, int]:
    """MACs of Conv2d, ConvTranspose2d and Linear layers (``layer_macs``, as count_flops counts them), by type, one
    meta pass. By type because the benchmarks' recorded counters leave some types out (see the markdown)."""
    tot = {"conv": 0, "deconv": 0, "linear": 0}

    def hook(mod, inp, out):
        kind = "deconv" if isinstance(mod, nn.ConvTranspose2d) else "conv" if isinstance(mod, nn.Conv2d) else "linear"
        tot[kind] += layer_macs(mod, inp[0], out)

    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, LAYER_TYPES)]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, *size, device="meta"))
    for h in hs:
        h.remove()
    tot["total"] = tot["conv"] + tot["deconv"] + tot["linear"]
    return tot


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rho over finite pairs (``saswot_gp.ranking``; NaN with fewer than 3 or constant values)."""
    return correlations(a, b)["spearman"]


def measure(space, arch: str, extra: Dict[str, Tuple[int, int]], classes50: bool) -> Dict[str, float]:
    """Params and MACs of one architecture (meta device)."""
    with torch.device("meta"):
        model = space.build(arch)
        out = {"params": count_params(model)}
        if classes50:
            out["params_50cls"] = count_params(space.build(arch, num_classes=50))
    m = macs_by_type(model, space.input_size)
    out["macs"], out["macs_conv2d_only"] = m["total"], m["conv"]
    for name, size in extra.items():
        out[name] = macs_by_type(model, size)["total"]
    return out


def measure_rows(bench, space, n: int, cache: Dict[Tuple[str, str], Dict[str, float]], nbmr: bool) -> list:
    """Params and MACs of the first ``n`` architectures of ``bench`` (memoised in ``cache`` across files)."""
    extra = {"macs_128": (128, 128)} if nbmr else {}
    rows = []
    for i in range(n):
        arch = bench.archs[i]
        key = (bench.space, arch)
        if key not in cache:
            cache[key] = measure(space, arch, extra, classes50=nbmr)
        rows.append(cache[key])
    return rows


def param_summary(bench, rows: list, rec_p: np.ndarray) -> Dict:
    """How our parameter counts match the recorded ones (``rec_p``, parameters)."""
    ours_p = np.array([r["params"] for r in rows], dtype=float)
    rel_err = np.abs(ours_p - rec_p) / rec_p
    match = rel_err <= TOL
    return {"param_match_rate": float(match.mean()), "n_match": int(match.sum()),
            "param_exact_rate": float((np.round(rec_p) == ours_p).mean()),
            "param_median_rel_error": float(np.median(rel_err)), "param_max_rel_error": float(rel_err.max()),
            "mismatches": [{"arch": bench.archs[i], "ours": int(ours_p[i]), "recorded": int(round(rec_p[i])),
                            "rel_error": float(rel_err[i])} for i in np.flatnonzero(~match)[:25]]}


def ratio_summary(ours: np.ndarray, rec_f: np.ndarray) -> Dict:
    """Spearman, median and 5-95% range of recorded / ours for one FLOP-counting variant."""
    return {"spearman": spearman(ours, rec_f), "median_ratio_recorded_over_ours": float(np.median(rec_f / ours)),
            "ratio_p5_p95": [float(np.percentile(rec_f / ours, q)) for q in (5, 95)]}


def flops_summary(space, rows: list, rec_f: np.ndarray, nbmr: bool) -> Dict:
    """Our MACs against the recorded FLOPs, plus the variant that explains the recorded counter."""
    ours_f = np.array([r["macs"] for r in rows], dtype=float)
    res = {"input_size": list(space.input_size),
           "ours": "MACs of Conv2d + ConvTranspose2d + Linear layers (saswot_gp.spaces.count_flops)",
           "recorded_units": "MFLOPs (NASLib zero-cost 'flops')" if not nbmr else "GFLOPs (thop, as recorded)",
           "spearman": spearman(ours_f, rec_f),
           "median_ratio_recorded_over_ours": float(np.median(rec_f / (ours_f / (1e6 if not nbmr else 1e9))))}
    if nbmr:
        res["at_128x128"] = ratio_summary(np.array([r["macs_128"] for r in rows], dtype=float) / 1e9, rec_f)
    else:
        res["conv2d_only_excluding_transposed_convs"] = ratio_summary(
            np.array([r["macs_conv2d_only"] for r in rows], dtype=float) / 1e6, rec_f)
    return res


def check_file(data: Path, rel: str, limit, cache: Dict[Tuple[str, str], Dict[str, float]]) -> Dict:
    """The parameter and FLOP check of one ground-truth file (its first ``limit`` architectures, or all)."""
    t0 = time.time()
    bench = load_benchmark(data / rel)
    space = get_space(bench.space)
    nbmr = bench.space == "nbmr-seg"
    n = len(bench) if limit is None else min(limit, len(bench))
    rows = measure_rows(bench, space, n, cache, nbmr)
    rec_p = bench.reference["params"][:n] * 1e6
    res = {"file": rel, "space": bench.space, "n_archs": int(n), **param_summary(bench, rows, rec_p),
           "flops": flops_summary(space, rows, bench.reference["flops"][:n], nbmr)}
    if nbmr:
        p50 = np.array([r["params_50cls"] for r in rows], dtype=float)
        res["param_exact_rate_with_50_class_classifier"] = float((np.round(rec_p) == p50).mean())
    res["seconds"] = round(time.time() - t0, 1)
    return res


def run_meta(limit, seconds: float) -> Dict:
    """The command, versions and method description stored beside the results."""
    cmd = "python benchmarks/param_match.py" + (f" --limit {limit}" if limit else "")
    return {"command": cmd, "tolerance": TOL, "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "torch": torch.__version__, "python": platform.python_version(), "seconds": seconds,
            "method": ("every architecture of each file is built with saswot_gp's space (get_space(bench.space).build) "
                       "on the meta device; trainable parameters (requires_grad) are counted and compared with the recorded "
                       "'params' (millions); a match is |ours - recorded| / recorded <= 0.5%. FLOPs: MACs from forward hooks "
                       "in a shape-only pass at the space's input_size (transnas 256x256, nbmr 224x224).")}


def main(argv=None) -> int:
    """Run the check and write the JSON and markdown results."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "benchdata"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--limit", type=int, default=None, help="only the first N architectures of each file (for a quick look)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    data, out_dir = Path(args.data), Path(args.out)
    if not data.is_dir():
        print(f"benchmark data folder {data} not found; pass --data", file=sys.stderr)
        return 2
    t_start = time.time()
    cache: Dict[Tuple[str, str], Dict[str, float]] = {}
    results = {}
    for label, rel in FILES.items():
        res = results[label] = check_file(data, rel, args.limit, cache)
        print(f"{label}: params match {res['n_match']}/{res['n_archs']} = {res['param_match_rate']:.4f} "
              f"(exact {res['param_exact_rate']:.4f}, median rel err {res['param_median_rel_error']:.2e}); "
              f"FLOPs Spearman {res['flops']['spearman']:.4f}, median ratio {res['flops']['median_ratio_recorded_over_ours']:.4f} "
              f"[{res['seconds']} s]", flush=True)
    meta = run_meta(args.limit, round(time.time() - t_start, 1))
    atomic_write_json(out_dir / "param_match.json", {"meta": meta, "files": results})
    atomic_write_text(out_dir / "param_match.md", markdown(meta, results))
    print(f"wrote {out_dir / 'param_match.json'} and {out_dir / 'param_match.md'} in {meta['seconds']} s")
    return 0


def markdown(meta: Dict, results: Dict) -> str:
    """The results as a markdown snippet."""
    lines = ["## Parameter and FLOP match with the benchmarks' recorded values", "",
             f"Command: `{meta['command']}` (torch {meta['torch']}, {meta['seconds']} s on CPU, {meta['date']}).", "",
             f"How: {meta['method']}", "",
             "| file | space | archs | params within 0.5% | exact | median rel. error | FLOPs Spearman | median recorded/ours FLOPs |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for label, r in results.items():
        lines.append(f"| `{r['file']}` | {r['space']} | {r['n_archs']} | {100 * r['param_match_rate']:.2f}% ({r['n_match']}) | "
                     f"{100 * r['param_exact_rate']:.2f}% | {r['param_median_rel_error']:.2e} | {r['flops']['spearman']:.4f} | "
                     f"{r['flops']['median_ratio_recorded_over_ours']:.4f} |")
    lines.append("")
    for label, r in results.items():
        f = r["flops"]
        if "param_exact_rate_with_50_class_classifier" in r:
            lines.append(f"- {label}: with a 50-way instead of 19-way classifier our count equals the recorded params exactly "
                         f"for {100 * r['param_exact_rate_with_50_class_classifier']:.2f}% of archs (the record counts "
                         f"31 x (last + 1) more parameters); recorded FLOPs vs our MACs at 128x128: median ratio "
                         f"{f['at_128x128']['median_ratio_recorded_over_ours']:.4f}, Spearman {f['at_128x128']['spearman']:.4f}.")
        if "conv2d_only_excluding_transposed_convs" in f:
            v = f["conv2d_only_excluding_transposed_convs"]
            lines.append(f"- {label}: recorded FLOPs vs our Conv2d-only MACs at 256x256 (transposed convs left out): median ratio "
                         f"{v['median_ratio_recorded_over_ours']:.4f} (5-95%: {v['ratio_p5_p95'][0]:.4f}-{v['ratio_p5_p95'][1]:.4f}), "
                         f"Spearman {v['spearman']:.4f}.")
        if r["mismatches"]:
            worst = max(r["mismatches"], key=lambda m: m["rel_error"])
            lines.append(f"  Largest mismatch: `{worst['arch']}` ours {worst['ours']} vs recorded {worst['recorded']} "
                         f"({100 * worst['rel_error']:.2f}%).")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
