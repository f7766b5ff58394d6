"""How much faster ONNX Runtime runs the networks our searches found than PyTorch eager does.

Usage:
    python benchmarks/runtime_ratio.py [--tops benchmarks/results/compare*/search_*/top.json] [--rounds 5]

The networks: every architecture in the given search results (``top.json`` of ``saswot-gp search``, default
all committed ones), each once. Each is measured with :func:`saswot_gp.latency.measure_archs`, the procedure
of ``latency check``, at batch 1, 64x64, 1 thread, weights from seed 0: eager and ONNX Runtime alternate
round by round (``--rounds``; each round is ``--repeats`` runs after ``--warmup``), and each runtime's
latency of a network is the minimum over its rounds. The ONNX export of each network happens once, untimed.
Reported: per network both latencies and eager/ONNX Runtime (above 1: ONNX Runtime is faster), their
median, and the Kendall tau between the two runtimes' latencies (does the ranking carry over?). Prints and
writes benchmarks/results/runtime_ratio.json (or ``--out``).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import glob  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent
DEFAULT_TOPS = str(ROOT / "results" / "compare*" / "search_*" / "top.json")


def _archs(paths, space_kwargs) -> list:
    """Distinct architectures of the search results, in file order; all must be searched in one space."""
    out = []
    for p in paths:
        doc = json.loads(Path(p).read_text())
        if doc["settings"]["space_kwargs"] != space_kwargs:
            raise SystemExit(f"{p}: searched in {doc['settings']['space_kwargs']}, not the table's {space_kwargs}")
        out += [r["arch"] for r in doc["top"] if r["arch"] not in out]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tops", nargs="+", default=None, help="search results (top.json files)")
    ap.add_argument("--lut", default=str(ROOT / "results" / "compare" / "latency_lut.json"),
                    help="a latency table of the searches' space (only its settings are used: space, threads)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "results" / "runtime_ratio.json"))
    a = ap.parse_args()
    torch.set_num_threads(1)
    from saswot_gp.io import atomic_write_json
    from saswot_gp.latency import LatencyTable, kendall_tau, measure_archs
    from saswot_gp.latency.runtime import runtime_version
    doc = json.loads(Path(a.lut).read_text())
    doc["meta"]["statistic"] = "min"  # of each round's repeats; the rounds are combined with min below as well
    table = LatencyTable.from_json(doc, where=a.lut)
    tops = a.tops or sorted(glob.glob(DEFAULT_TOPS))
    archs = _archs(tops, table.space_kwargs)
    load = list(os.getloadavg())
    print(f"{len(archs)} searched networks from {len(tops)} searches; {a.rounds} rounds, eager and ONNX Runtime "
          f"alternating", flush=True)
    t0 = time.perf_counter()
    times = {"eager": [], "onnxruntime": []}
    for r in range(a.rounds):
        for runtime in times:
            times[runtime].append(measure_archs(table, archs, warmup=a.warmup, repeats=a.repeats, runtime=runtime))
        print(f"  round {r + 1}/{a.rounds} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    best = {rt: [min(col) for col in zip(*runs)] for rt, runs in times.items()}
    rows = [{"arch": arch, "eager_ms": e, "onnxruntime_ms": o, "eager_over_ort": e / o}
            for arch, e, o in zip(archs, best["eager"], best["onnxruntime"])]
    ratios = [r["eager_over_ort"] for r in rows]
    out = {"networks": len(rows), "tops": [os.path.relpath(Path(p).resolve(), ROOT.parent) for p in tops],
           "median_eager_over_ort": statistics.median(ratios), "min_ratio": min(ratios), "max_ratio": max(ratios),
           "kendall_eager_vs_ort": kendall_tau(best["eager"], best["onnxruntime"]),
           "median_eager_ms": statistics.median(best["eager"]),
           "median_onnxruntime_ms": statistics.median(best["onnxruntime"]),
           "settings": {"rounds": a.rounds, "repeats": a.repeats, "warmup": a.warmup, "threads": table.threads,
                        "resolution": list(table.resolution), "batch": 1, "statistic": "min over rounds of min",
                        "space_kwargs": table.space_kwargs},
           "versions": {"torch": torch.__version__, "onnxruntime": runtime_version("onnxruntime")},
           "loadavg_at_start": load, "wall_s": time.perf_counter() - t0, "rows": rows}
    atomic_write_json(Path(a.out), out)
    print(f"eager / ONNX Runtime: median {out['median_eager_over_ort']:.2f} (range {out['min_ratio']:.2f}-"
          f"{out['max_ratio']:.2f}); median latency eager {out['median_eager_ms']:.3f} ms, ONNX Runtime "
          f"{out['median_onnxruntime_ms']:.3f} ms; Kendall between runtimes {out['kendall_eager_vs_ort']:.3f}")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
