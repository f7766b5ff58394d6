"""Run the GPU paths end to end and record what they give: statistics of 50 realtime networks on the CPU and on
the GPU (largest difference), a short ``evolve`` (also on 2 Dask workers, each on its own GPU when there are
several), ``proxies``, ``search``, ``train`` and ``latency build`` with
``--device``. Writes ``benchmarks/results/gpu.json`` (``--out`` to change).

    python benchmarks/gpu_check.py                       # on a machine with a GPU (device cuda)
    python benchmarks/gpu_check.py --device cpu --tiny   # the same code paths on the CPU, small (a dry run)

One torch thread per process. Nothing here is needed by the tests or CI.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path
from typing import Callable, Dict

import numpy as np
import torch

from saswot_gp.batches import synthetic_batch
from saswot_gp.execution import check_device
from saswot_gp.io import atomic_write_json
from saswot_gp.spaces import get_space
from saswot_gp.stats.cache import stats_for_archs
from saswot_gp.training.speed import device_name

ROOT = Path(__file__).resolve().parent


def _timed(fn: Callable[[], object]) -> Dict[str, object]:
    t = time.perf_counter()
    try:
        out = fn()
        return {"ok": True, "seconds": round(time.perf_counter() - t, 3), "result": out}
    except Exception as exc:  # a benchmark records every failure instead of stopping at the first
        return {"ok": False, "seconds": round(time.perf_counter() - t, 3), "error": f"{type(exc).__name__}: {exc}"}


def statistics_cpu_vs_device(device: str, n: int, size: int) -> dict:
    """Largest absolute and relative difference of every statistic, CPU against ``device``."""
    sp = get_space("realtime", input_size=size)
    rng = random.Random(0)
    archs = [sp.sample(rng) for _ in range(n)]
    x, y = synthetic_batch(n=8, size=(size, size), num_classes=sp.num_classes, seed=0)
    t = time.perf_counter()
    cpu = stats_for_archs(sp, archs, x, y, k=256, seed=0)
    t_cpu = time.perf_counter() - t
    t = time.perf_counter()
    dev = stats_for_archs(sp, archs, x, y, k=256, seed=0, device=device)
    t_dev = time.perf_counter() - t
    worst_abs, worst_rel = 0.0, 0.0
    for a, b in zip(cpu, dev):
        for name, arr in a.to_arrays().items():
            other = b.to_arrays()[name]
            if arr.dtype.kind != "f":
                assert np.array_equal(arr, other), name
                continue
            d = np.abs(arr - other)
            worst_abs = max(worst_abs, float(d.max(initial=0.0)))
            worst_rel = max(worst_rel, float((d / np.maximum(np.abs(arr), 1e-6)).max(initial=0.0)))
    return {"networks": n, "resolution": size, "max_abs_diff": worst_abs, "max_rel_diff": worst_rel,
            "cpu_s": round(t_cpu, 2), "device_s": round(t_dev, 2)}


def cli(args: list) -> dict:
    from click.testing import CliRunner
    from saswot_gp.cli import main
    res = CliRunner().invoke(main, [str(a) for a in args])
    if res.exit_code != 0:
        raise RuntimeError(res.output[-500:])
    return {"last_lines": res.output.strip().splitlines()[-3:]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tiny", action="store_true", help="small settings (a dry run of the code paths)")
    ap.add_argument("--out", default=str(ROOT / "results" / "gpu.json"))
    ap.add_argument("--work", default=str(ROOT / "runs" / "gpu_check"), help="scratch folder for the runs")
    a = ap.parse_args()
    torch.set_num_threads(1)
    dev = check_device(a.device)
    work = Path(a.work)
    n, size, gens, steps = (6, 32, 1, 3) if a.tiny else (50, 64, 5, 200)
    res: Dict[str, object] = {"device": dev, "device_name": device_name(dev), "torch": torch.__version__,
                              "tiny": a.tiny}
    res["statistics"] = _timed(lambda: statistics_cpu_vs_device(dev, n, size))
    res["evolve"] = _timed(lambda: cli(["evolve", "--population", 8 if a.tiny else 32, "--generations", gens,
                                        "--train-size", 20 if a.tiny else 100, "--device", dev, "--overwrite",
                                        "--out", work / "evolve"]))
    res["evolve_on_workers"] = _timed(lambda: cli(["evolve", "--population", 8 if a.tiny else 32, "--generations", 1,
                                                   "--train-size", 20 if a.tiny else 100, "--device", dev,
                                                   "--workers", 2, "--overwrite", "--out", work / "evolve_workers"]))
    res["proxies"] = _timed(lambda: cli(["proxies", "--benchmark", "realtime-digits", "--n", n,
                                         "--measures", "snip,grad_norm,nwot,params", "--bootstrap", 0, "--device", dev,
                                         "--out", work / "proxies"]))
    res["latency_build"] = _timed(lambda: cli(["latency", "build", "--resolution", f"{size}x{size}", "--repeats",
                                               2 if a.tiny else 20, "--device", dev, "--out", work / "lut.json"]))
    res["search"] = _timed(lambda: cli(["search", "--proxy", "snip", "--lut", work / "lut.json", "--min-fps", 50,
                                        "--budget", n, "--device", dev, "--overwrite", "--out", work / "search"]))
    arch = get_space("realtime").sample(random.Random(1))
    res["train"] = _timed(lambda: cli(["train", arch, "--steps", steps, "--device", dev]))
    atomic_write_json(a.out, res)
    for k, v in res.items():
        print(f"{k}: {v if not isinstance(v, dict) else {kk: vv for kk, vv in v.items() if kk != 'result'}}")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
