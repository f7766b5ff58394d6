"""Dask scaling: bench build jobs per hour and search architectures per second, serial vs a local Dask cluster.

Usage:
    python benchmarks/dask_scale.py bench  [--jobs 20] [--steps 50] [--workers 2] [--repeats 3] [--out PATH]
    python benchmarks/dask_scale.py search [--budget 200] [--proxy snip] [--workers 2] [--repeats 3] [--out PATH]
    python benchmarks/dask_scale.py stats --benchmark realtime-digits --archs 200 [--input-size 64]
    python benchmarks/dask_scale.py stats --benchmark transnas-macro --archs 200 --input-size 64
    python benchmarks/dask_scale.py fitness --populations 64 500 [--benchmark realtime-digits]

* ``stats``: statistics of the first ``--archs`` networks of ``--benchmark`` (or, with ``--sample-seed S``,
  of ``--archs`` networks drawn from its space with seed S: others, to choose a setting on) (8-image batch at
  ``--input-size``, K = 256, no cache), serially and on the cluster (``Executor.as_completed``: one network
  per task, or a few per task where each takes under 250 ms); the arrays of the two are compared bit for bit.
  Its warm-up is a whole first pass of each mode, reported apart (``first_pass_s``): every process, the
  client and each worker, runs its first ~50 networks about 0.4 s slower.
* ``fitness``: one generation of random candidates of each ``--populations`` size evaluated on the
  benchmark's training split, serially and on the cluster (evaluator scattered once, candidates in batches).

* ``bench``: ``--jobs`` short training jobs (``realtime`` space, digits, ``--steps`` steps, batch
  ``--batch-size``, ``--input-size``, ``--base-width``; one seed each) built into a fresh CSV by
  ``benchbuild.build``, serially in this process and on a local Dask cluster of ``--workers`` single-thread
  workers (one task per job). Jobs per hour = jobs / build wall time; the ratio is Dask over serial. The
  rows of both builds are compared (architecture, seed, mIoU, pixel accuracy, params, FLOPs, final loss).
* ``search``: ``run_search`` with ``--budget`` architectures (proxy ``--proxy``, population 10, tournament 3,
  the digit batch of 8, latency budget the median predicted latency of 200 random architectures, about half
  the space), serially and asynchronously on the cluster (twice as many tasks in flight as workers, each
  of as many candidates as make about 100 ms: ``tasks.chunk_size``).
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
from typing import Optional  # noqa: E402

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent
OWN = {"bench": ("jobs", "steps", "batch_size", "input_size", "base_width", "seed"),
       "search": ("budget", "proxy", "input_size", "base_width", "seed"),
       "stats": ("benchmark", "archs", "input_size"), "fitness": ("benchmark", "populations", "input_size")}
KEEP = ("arch", "seed", "mIoU", "pixel_acc", "params", "flops", "final_loss")


def _machine() -> dict:
    return {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "cpus": os.cpu_count(), "loadavg_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "torch_threads_per_process": 1}


def _rows(path: Path) -> list:
    with open(path) as fh:
        body = [ln for ln in fh if not ln.startswith("#")]
    return list(csv.DictReader(body))


def _cpu_seconds() -> dict:
    """CPU seconds so far of this process (with a local cluster: client, scheduler and nannies) and of its
    child processes (the workers)."""
    import psutil
    me = psutil.Process()
    kids = me.children(recursive=True)
    busy = lambda p: sum(p.cpu_times()[:2])  # noqa: E731 - user + system
    return {"client_process": busy(me), "workers": sum(busy(k) for k in kids)}


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
    best = {"serial": [], "dask": []}  # the best proxy score each search found (its quality, not its speed)
    for r in range(a.repeats):
        for mode in ("serial", "dask"):
            s = run_search(space, a.proxy, lut, limit, a.budget, tmp / f"{mode}-{r}",
                           executor=ex if mode == "dask" else None, **settings)
            hist = json.loads((tmp / f"{mode}-{r}" / "checkpoint.json").read_text())["history"]
            rates[mode].append(s["archs_per_s"])
            score_s[mode].append(_median([h["score_s"] for h in hist]))
            best[mode].append(max(h["score"] for h in hist if h["score"] is not None))
            print(f"  {mode:6s} repeat {r + 1}/{a.repeats}: {s['scored']} architectures in {s['wall_s']:.1f} s "
                  f"({s['archs_per_s']:.2f}/s)", flush=True)
    med = {m: _median(v) for m, v in rates.items()}
    return {"budget": a.budget, "proxy": a.proxy, "latency_budget_ms": limit, "archs_per_s": rates,
            "median_archs_per_s": med, "ratio_archs_per_s": med["dask"] / med["serial"],
            "median_score_s_per_arch": {m: _median(v) for m, v in score_s.items()}, "best_score": best,
            "in_flight_tasks": 2 * ex.n_workers, "candidates_per_task": "auto: about 100 ms (tasks.chunk_size)"}


def stats_setup(benchmark: str, n_archs: int, input_size: int, sample_seed: Optional[int] = None):
    """The benchmark, its space, its first ``n_archs`` architectures (or, with ``sample_seed``, ``n_archs`` drawn
    from its space with ``random.Random(sample_seed)``: other networks, to choose a setting on) and the 8-image
    batch at ``input_size``."""
    from saswot_gp.batches import default_batch
    from saswot_gp.groundtruth.loaders import resolve_benchmark
    from saswot_gp.spaces import get_space
    bench = resolve_benchmark(benchmark)
    x, y = default_batch(bench, n=8, seed=0, resolution=(input_size, input_size))
    space = get_space(bench.space, **bench.space_kwargs)
    if sample_seed is not None:
        rng = random.Random(sample_seed)
        return bench, space, [space.sample(rng) for _ in range(n_archs)], x, y
    return bench, space, bench.archs[:n_archs], x, y


def fitness_setup(benchmark: str, input_size: int, tmp: Path):
    """The benchmark's data (200 training architectures), its fitness evaluator and a GP toolbox; the global RNG
    seeded with 0, from which the candidates are then drawn."""
    from saswot_gp.evolution import EvolutionConfig
    from saswot_gp.evolution.data import prepare_benchmark
    from saswot_gp.evolution.fitness import ProxyEvaluator
    from saswot_gp.evolution.variation import make_toolbox
    d = prepare_benchmark(benchmark, None, 0, 200, 10, 0.0, 8, (input_size, input_size), 256, "auto",
                          str(tmp / "cache"), lambda m: None)
    ev, tb = ProxyEvaluator(d.ptrain, d.train.target), make_toolbox(EvolutionConfig())
    random.seed(0)
    return d, ev, tb


def stats(a, ex, tmp: Path) -> dict:
    """Statistics of ``a.archs`` networks of a benchmark (no cache), serial vs Dask; the arrays are compared."""
    import numpy as np
    from saswot_gp.stats.cache import stats_for_archs
    bench, sp, archs, x, y = stats_setup(a.benchmark, a.archs, a.input_size, a.sample_seed)
    first = {}
    for mode in ("serial", "dask"):  # warm-up: the whole workload once, reported apart (each process's first pass
        t = time.perf_counter()     # pays its one-off set-up, about 0.4 s, on its first ~50 networks)
        stats_for_archs(sp, archs, x, y, executor=ex if mode == "dask" else None)
        first[mode] = time.perf_counter() - t
        print(f"  {mode:6s} first pass (untimed warm-up): {len(archs)} networks in {first[mode]:.1f} s", flush=True)
    runs = {"serial": [], "dask": []}
    out = {}
    cpu = []  # CPU seconds of the client process (client, scheduler, nannies) and of the workers, per Dask repeat
    for r in range(a.repeats):
        for mode in ("serial", "dask"):
            t, c = time.perf_counter(), _cpu_seconds()
            out[mode] = stats_for_archs(sp, archs, x, y, k=256, seed=0, executor=ex if mode == "dask" else None)
            runs[mode].append(time.perf_counter() - t)
            if mode == "dask":
                cpu.append({k: v - c[k] for k, v in _cpu_seconds().items()})
            print(f"  {mode:6s} repeat {r + 1}/{a.repeats}: {len(archs)} networks in {runs[mode][-1]:.1f} s", flush=True)
    same = all(np.array_equal(v, b.to_arrays()[k]) for s_, b in zip(out["serial"], out["dask"])
               for k, v in s_.to_arrays().items())
    med = {m: _median(v) for m, v in runs.items()}
    return {"benchmark": bench.name, "networks": len(archs), "sample_seed": a.sample_seed,
            "resolution": a.input_size, "wall_s": runs,
            "median_wall_s": med, "ratio_speed": med["serial"] / med["dask"], "bit_identical": same,
            "first_pass_s": first, "first_pass_ratio": first["serial"] / first["dask"], "dask_cpu_s": cpu,
            "tasks_per_pass": ex.tasks_submitted / (a.repeats + 1)}


def fitness(a, ex, tmp: Path) -> dict:
    """Fitness of one generation-sized batch of random candidates, serial vs Dask (the evaluator scattered once,
    candidates in batches), for each population size in ``a.populations``."""
    from saswot_gp.evolution import make_map
    d, ev, tb = fitness_setup(a.benchmark, a.input_size, tmp)
    res = {}
    dmap = make_map(ev, ex)
    for pop in a.populations:
        cands = [[n.name for n in tb.individual()] for _ in range(pop)]
        list(map(ev, cands[:4])), list(dmap(ev, cands[:4]))  # warm-up
        runs = {"serial": [], "dask": []}
        for _ in range(a.repeats):
            for mode, m in (("serial", map), ("dask", dmap)):
                t = time.perf_counter()
                got = list(m(ev, cands))
                runs[mode].append(time.perf_counter() - t)
        med = {m: _median(v) for m, v in runs.items()}
        res[str(pop)] = {"wall_s": runs, "median_wall_s": med, "ratio_speed": med["serial"] / med["dask"],
                         "same_results": got == [ev(c) for c in cands]}
        print(f"  population {pop}: serial {med['serial']:.2f} s, dask {med['dask']:.2f} s "
              f"(x{res[str(pop)]['ratio_speed']:.2f})", flush=True)
    return {"benchmark": d.name, "populations": res}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=["bench", "search", "stats", "fitness"])
    ap.add_argument("--benchmark", default="realtime-digits", help="stats/fitness: the benchmark")
    ap.add_argument("--archs", type=int, default=200, help="stats: networks")
    ap.add_argument("--sample-seed", type=int, default=None,
                    help="stats: draw the networks from the benchmark's space with this seed instead of taking its "
                         "first --archs (other networks than the reported ones, to choose a setting on)")
    ap.add_argument("--populations", type=int, nargs="+", default=[64, 500], help="fitness: candidates per generation")
    ap.add_argument("--workers", type=int, default=2, help="local Dask workers (single-thread processes)")
    ap.add_argument("--repeats", type=int, default=3, help="runs of each mode (medians reported)")
    ap.add_argument("--jobs", type=int, default=20, help="bench: training jobs per build")
    ap.add_argument("--steps", type=int, default=50, help="bench: training steps per job")
    ap.add_argument("--batch-size", type=int, default=8, help="bench: training batch size")
    ap.add_argument("--budget", type=int, default=200, help="search: architectures scored per search")
    ap.add_argument("--proxy", default="snip", help="search: proxy spec")
    ap.add_argument("--input-size", type=int, default=64)
    ap.add_argument("--base-width", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--min-task-s", type=float, default=None,
                    help="stats/search: seconds of items per Dask task (default: the library's, tasks.MIN_TASK_S "
                         "0.25 for stats and tasks.SEARCH_TASK_S 0.1 for the search; 0: one per task)")
    ap.add_argument("--out", default=None, help="JSON file (default: benchmarks/results/dask_scale_<what>.json)")
    a = ap.parse_args()
    if a.workers < 2 or a.repeats < 1:
        ap.error("need --workers >= 2 and --repeats >= 1")
    torch.set_num_threads(1)
    from saswot_gp import tasks
    from saswot_gp.execution import executor
    if a.min_task_s is not None:
        tasks.MIN_TASK_S = tasks.SEARCH_TASK_S = a.min_task_s
    from saswot_gp.io import atomic_write_json
    machine = _machine()
    out = Path(a.out) if a.out else ROOT / "results" / f"dask_scale_{a.what}.json"
    t = time.perf_counter()
    with executor(a.workers, log=print) as ex, tempfile.TemporaryDirectory() as tmp:
        startup = time.perf_counter() - t
        print(f"{a.what}: serial vs {a.workers} Dask workers, {a.repeats} repeat(s) each; cluster start-up "
              f"{startup:.1f} s (not timed below)", flush=True)
        result = {"bench": bench, "search": search, "stats": stats, "fitness": fitness}[a.what](a, ex, Path(tmp))
    doc = {"what": a.what, "workers": a.workers, "repeats": a.repeats, "cluster_startup_s": startup,
           "min_task_s": tasks.MIN_TASK_S, "search_task_s": tasks.SEARCH_TASK_S,
           "settings": {k: v for k, v in vars(a).items() if k in OWN[a.what]}, "machine": machine, **result,
           "note": "medians and ratios measured in this one run; 1 torch thread per process (client and workers)"}
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out, doc)
    if a.what in ("stats", "fitness"):
        print(json.dumps({k: v for k, v in result.items() if k != "wall_s"}, indent=1))
    elif a.what == "bench":
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
