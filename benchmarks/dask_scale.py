"""Dask scaling: bench build jobs per hour and search architectures per second, serial vs a local Dask cluster.

Usage:
    python benchmarks/dask_scale.py bench  [--jobs 20] [--steps 50] [--workers 2] [--repeats 3] [--out PATH]
    python benchmarks/dask_scale.py search [--budget 60] [--proxy snip] [--workers 2] [--repeats 3] [--out PATH]

* ``bench``: ``--jobs`` short training jobs (``realtime`` space, digits, ``--steps`` steps, batch
  ``--batch-size``, ``--input-size``, ``--base-width``; one seed each) built into a fresh CSV by
  ``benchbuild.build``, serially in this process and on a local Dask cluster of ``--workers`` single-thread
  workers (one task per job). Jobs per hour = jobs / build wall time; the ratio is Dask over serial. The
  rows of both builds are compared (architecture, seed, mIoU, pixel accuracy, params, FLOPs, final loss).
* ``search``: ``run_search`` with ``--budget`` architectures (proxy ``--proxy``, population 10, tournament 3,
  the digit batch of 8, latency budget the median predicted latency of 200 random architectures, about half
  the space), serially and asynchronously on the cluster (twice as many candidates in flight as workers).
  Architectures per second = scored / the search's own wall time (``wall_s``: no LUT, batch or cluster
  start-up). The asynchronous run scores other architectures than the serial one (see ``saswot_gp.search``),
  so the median per-architecture scoring time of each run is reported next to the rates.

Both first run each mode once untimed (a 1-step build, a search of 2 x workers architectures: imports and
first builds in every process), then every mode ``--repeats`` times, alternating serial and Dask, and report
medians and the ratio of the medians, all measured in this one run. Every process uses 1 torch thread (this one and each worker);
the cluster is started once, before the timed runs (its start-up time is reported apart), and shut down
at the end. The load average at the start is recorded: on a machine with busy cores the ratio is lower
than on idle ones. Figures are printed and written to benchmarks/results/dask_scale_<bench|search>.json
(or ``--out``).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent
OWN = {"bench": ("jobs", "steps", "batch_size", "input_size", "base_width", "seed"),
       "search": ("budget", "proxy", "input_size", "base_width", "seed")}
KEEP = ("arch", "seed", "mIoU", "pixel_acc", "params", "flops", "final_loss")


def _machine() -> dict:
    return {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "cpus": os.cpu_count(), "loadavg_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "torch_threads_per_process": 1}


def _rows(path: Path) -> list:
    with open(path) as fh:
        body = [ln for ln in fh if not ln.startswith("#")]
    return list(csv.DictReader(body))


def _median(xs):
    return statistics.median(xs) if xs else float("nan")


def bench(a, ex, tmp: Path) -> dict:
    """Serial vs Dask builds of the same ``a.jobs`` jobs, alternating, ``a.repeats`` times each."""
    from saswot_gp.benchbuild import build
    kw = dict(space="realtime", n=a.jobs, seeds=1, repeat=0, steps=a.steps, batch_size=a.batch_size,
              space_kwargs={"input_size": a.input_size, "base_width": a.base_width}, sample_seed=a.seed)
    for mode in ("serial", "dask"):  # warm-up, untimed: imports and first builds in every process
        build(str(tmp / f"warmup-{mode}.csv"), log=lambda m: None, executor=ex if mode == "dask" else None,
              **{**kw, "n": max(2, ex.n_workers), "steps": 1, "sample_seed": kw["sample_seed"] + 1})
    runs = {"serial": [], "dask": []}
    per_job = {"serial": [], "dask": []}
    rows = {}
    for r in range(a.repeats):
        for mode in ("serial", "dask"):
            out = tmp / f"{mode}-{r}.csv"
            t = time.perf_counter()
            build(str(out), log=lambda m: None, executor=ex if mode == "dask" else None, **kw)
            wall = time.perf_counter() - t
            got = _rows(out)
            runs[mode].append(wall)
            per_job[mode] += [float(x["train_time_s"]) for x in got]
            rows[mode] = sorted(tuple(x[k] for k in KEEP) for x in got)
            print(f"  {mode:6s} repeat {r + 1}/{a.repeats}: {a.jobs} jobs in {wall:.1f} s "
                  f"({a.jobs / wall * 3600:.0f} jobs/h)", flush=True)
    med = {m: _median(v) for m, v in runs.items()}
    jph = {m: a.jobs / med[m] * 3600 for m in med}
    return {"jobs": a.jobs, "wall_s": runs, "median_wall_s": med, "jobs_per_hour": jph,
            "ratio_jobs_per_hour": jph["dask"] / jph["serial"],
            "median_train_time_s_per_job": {m: _median(v) for m, v in per_job.items()},
            "rows_identical": rows["serial"] == rows["dask"]}


def search(a, ex, tmp: Path) -> dict:
    """Serial vs asynchronous Dask searches of ``a.budget`` architectures, alternating, ``a.repeats`` times each."""
    from saswot_gp.latency import build_lut
    from saswot_gp.search import run_search
    from saswot_gp.spaces import get_space
    space = get_space("realtime", input_size=a.input_size, base_width=a.base_width)
    lut = build_lut(space, repeats=1, warmup=0)
    rng = random.Random(0)
    limit = statistics.median(lut.predict(space.sample(rng)) for _ in range(200))
    settings = dict(top_k=5, population=10, sample_size=3, batch_size=8, seed=a.seed, checkpoint_every=10)
    for mode in ("serial", "dask"):  # warm-up, untimed: imports and first builds in every process
        run_search(space, a.proxy, lut, limit, 2 * ex.n_workers, tmp / f"warmup-{mode}",
                   executor=ex if mode == "dask" else None, **{**settings, "seed": a.seed + 1})
    rates = {"serial": [], "dask": []}
    score_s = {"serial": [], "dask": []}
    for r in range(a.repeats):
        for mode in ("serial", "dask"):
            s = run_search(space, a.proxy, lut, limit, a.budget, tmp / f"{mode}-{r}",
                           executor=ex if mode == "dask" else None, **settings)
            hist = json.loads((tmp / f"{mode}-{r}" / "checkpoint.json").read_text())["history"]
            rates[mode].append(s["archs_per_s"])
            score_s[mode].append(_median([h["score_s"] for h in hist]))
            print(f"  {mode:6s} repeat {r + 1}/{a.repeats}: {s['scored']} architectures in {s['wall_s']:.1f} s "
                  f"({s['archs_per_s']:.2f}/s)", flush=True)
    med = {m: _median(v) for m, v in rates.items()}
    return {"budget": a.budget, "proxy": a.proxy, "latency_budget_ms": limit, "archs_per_s": rates,
            "median_archs_per_s": med, "ratio_archs_per_s": med["dask"] / med["serial"],
            "median_score_s_per_arch": {m: _median(v) for m, v in score_s.items()},
            "in_flight": 2 * ex.n_workers}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=["bench", "search"])
    ap.add_argument("--workers", type=int, default=2, help="local Dask workers (single-thread processes)")
    ap.add_argument("--repeats", type=int, default=3, help="runs of each mode (medians reported)")
    ap.add_argument("--jobs", type=int, default=20, help="bench: training jobs per build")
    ap.add_argument("--steps", type=int, default=50, help="bench: training steps per job")
    ap.add_argument("--batch-size", type=int, default=8, help="bench: training batch size")
    ap.add_argument("--budget", type=int, default=60, help="search: architectures scored per search")
    ap.add_argument("--proxy", default="snip", help="search: proxy spec")
    ap.add_argument("--input-size", type=int, default=64)
    ap.add_argument("--base-width", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="JSON file (default: benchmarks/results/dask_scale_<what>.json)")
    a = ap.parse_args()
    if a.workers < 2 or a.repeats < 1:
        ap.error("need --workers >= 2 and --repeats >= 1")
    torch.set_num_threads(1)
    from saswot_gp.execution import executor
    from saswot_gp.io import atomic_write_json
    machine = _machine()
    out = Path(a.out) if a.out else ROOT / "results" / f"dask_scale_{a.what}.json"
    t = time.perf_counter()
    with executor(a.workers, log=print) as ex, tempfile.TemporaryDirectory() as tmp:
        startup = time.perf_counter() - t
        print(f"{a.what}: serial vs {a.workers} Dask workers, {a.repeats} repeat(s) each; cluster start-up "
              f"{startup:.1f} s (not timed below)", flush=True)
        result = (bench if a.what == "bench" else search)(a, ex, Path(tmp))
    doc = {"what": a.what, "workers": a.workers, "repeats": a.repeats, "cluster_startup_s": startup,
           "settings": {k: v for k, v in vars(a).items() if k in OWN[a.what]}, "machine": machine, **result,
           "note": "medians and ratios measured in this one run; 1 torch thread per process (client and workers)"}
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out, doc)
    if a.what == "bench":
        j = result["jobs_per_hour"]
        print(f"jobs/hour: serial {j['serial']:.0f}, dask x{a.workers} {j['dask']:.0f}; ratio "
              f"{result['ratio_jobs_per_hour']:.2f}; rows identical: {result['rows_identical']}")
    else:
        r = result["median_archs_per_s"]
        print(f"architectures/s: serial {r['serial']:.2f}, dask x{a.workers} {r['dask']:.2f}; ratio "
              f"{result['ratio_archs_per_s']:.2f}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
