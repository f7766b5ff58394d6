"""The hardware's own ceiling for running work in parallel: the serial work of ``dask_scale.py`` in 1 plain
Python process, then in N plain processes started at the same moment (no Dask, nothing shared).

Usage:
    python benchmarks/plain_ceiling.py fitness [--population 500] [--procs 2] [--repeats 3]
    python benchmarks/plain_ceiling.py stats --benchmark realtime-digits --archs 200 [--procs 2]

* ``fitness``: the ``--population`` random candidates ``dask_scale.py fitness`` draws for that population
  (seed 0, after the smaller populations it lists first: ``--after 64``), evaluated in turn on the training
  split of realtime-digits.
* ``stats``: statistics of the first ``--archs`` networks of ``--benchmark`` (batch of 8, K = 256, no cache).

Each process prepares its work, runs it once untimed, reports ready, and starts timing only when all are ready; it runs the work
``--repeats`` times and reports the median. The ceiling is the throughput ratio ``N x (time alone) / (mean
time of the N together)``: what N workers could gain over serial on this machine if scheduling cost nothing.
Below N it shows the cores sharing something (memory bandwidth, the 32 MiB L3 cache here). One torch thread
per process. Prints and writes benchmarks/results/plain_ceiling_<what>.json (or ``--out``).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent


def _fitness_work(a):
    from dask_scale import fitness_setup
    _d, ev, tb = fitness_setup("realtime-digits", a.input_size, Path(tempfile.mkdtemp()))
    for n in a.after:  # the draws dask_scale.py makes for the populations it measures first
        [[t.name for t in tb.individual()] for _ in range(n)]
    cands = [[t.name for t in tb.individual()] for _ in range(a.population)]
    return lambda: [ev(c) for c in cands]


def _stats_work(a):
    from dask_scale import stats_setup
    from saswot_gp.stats.cache import stats_for_archs
    _bench, sp, archs, x, y = stats_setup(a.benchmark, a.archs, a.input_size)
    return lambda: stats_for_archs(sp, archs, x, y, k=256, seed=0)


def child(a) -> None:
    """Prepare, say ready, wait for go, time the work ``a.repeats`` times, print the times as JSON."""
    torch.set_num_threads(1)
    work = {"fitness": _fitness_work, "stats": _stats_work}[a.what](a)
    work()  # warm-up: the first pass is slower (caches, first allocations)
    print("ready", flush=True)
    sys.stdin.readline()
    times = []
    for _ in range(a.repeats):
        t = time.perf_counter()
        work()
        times.append(time.perf_counter() - t)
    print(json.dumps(times), flush=True)


def together(argv, n: int) -> list:
    """Start ``n`` children, release them at once when all are ready; each one's list of times."""
    procs = [subprocess.Popen([sys.executable, __file__, *argv, "--child"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) for _ in range(n)]
    try:
        for p in procs:
            while p.stdout.readline().strip() != "ready":
                if p.poll() is not None:
                    raise SystemExit(f"a child process failed (exit {p.returncode})")
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        return [json.loads(p.stdout.readline()) for p in procs]
    finally:
        for p in procs:
            p.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=["fitness", "stats"])
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--population", type=int, default=500)
    ap.add_argument("--after", type=int, nargs="*", default=[64], help="fitness: populations drawn before")
    ap.add_argument("--benchmark", default="realtime-digits")
    ap.add_argument("--archs", type=int, default=200)
    ap.add_argument("--input-size", type=int, default=64)
    ap.add_argument("--out", default=None)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child(a)
    if a.procs < 2 or a.repeats < 1:
        ap.error("need --procs >= 2 and --repeats >= 1")
    argv = [arg for arg in sys.argv[1:] if arg != "--child"]
    load = list(os.getloadavg())
    alone = statistics.median(together(argv, 1)[0])
    each = [statistics.median(t) for t in together(argv, a.procs)]
    mean_together = statistics.mean(each)
    doc = {"what": a.what, "procs": a.procs, "repeats": a.repeats, "loadavg_at_start": load,
           "settings": {k: v for k, v in vars(a).items() if k not in ("child", "out")},
           "alone_s": alone, "together_s": each, "ceiling_speedup": a.procs * alone / mean_together,
           "note": "median of repeats per process; 1 torch thread per process; no Dask"}
    print(f"{a.what}: alone {alone:.2f} s; {a.procs} at once {', '.join(f'{t:.2f}' for t in each)} s; "
          f"ceiling x{doc['ceiling_speedup']:.2f}")
    from saswot_gp.io import atomic_write_json
    out = Path(a.out) if a.out else ROOT / "results" / f"plain_ceiling_{a.what}.json"
    atomic_write_json(out, doc)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
