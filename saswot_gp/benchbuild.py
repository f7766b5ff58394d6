"""Build a ground-truth benchmark by training sampled architectures (``saswot-gp bench build``).

The output is the project's CSV format (see ``groundtruth.loaders``): ``#`` settings lines, then one
row per (architecture, seed). The file is append-only and every finished row is flushed and fsynced,
so an interrupted build resumes where it stopped: rows already present are skipped. The plan (which
architectures, which seeds) depends only on the arguments, never on what is already done.

Jobs run on the execution seam (:mod:`saswot_gp.execution`): serially in-process, or one Dask task per
(architecture, seed) on a cluster. The client alone writes the CSV, one row as each task finishes, so rows
may come in any order (resume is keyed by (architecture, seed)); a worker that dies mid-job has its job run
again on another worker, and a killed client resumes with the same command.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Tuple

from .errors import SaswotError
from .groundtruth.loaders import format_csv_header, parse_csv_header

if TYPE_CHECKING:  # pragma: no cover
    from .execution import Executor

COLUMNS = ["arch", "mIoU", "pixel_acc", "params", "flops", "latency_ms", "fps", "train_time_s", "final_loss", "seed"]


SAMPLERS = ("uniform", "diverse")


def plan(space, n: int, seeds: int, repeat: int, sample_seed: int = 0, sampler: str = "uniform") -> List[Tuple[str, int]]:
    """(arch, seed) jobs: ``n`` distinct sampled architectures; the first ``repeat`` get ``seeds`` seeds,
    the others seed 0 only; the repeated ones come first with their seeds back to back.

    ``sampler`` 'uniform' uses ``space.sample``; 'diverse' uses ``space.sample_diverse`` (per-architecture
    operator and width preferences, so the sample spans weak to strong architectures)."""
    if n < 1 or seeds < 1 or repeat < 0:
        raise SaswotError(f"--n {n} / --seeds {seeds} / --repeat {repeat}; expected n >= 1, seeds >= 1, repeat >= 0")
    if sampler not in SAMPLERS:
        raise SaswotError(f"sampler {sampler!r}; expected one of {list(SAMPLERS)}")
    if sampler == "diverse" and not hasattr(space, "sample_diverse"):
        raise SaswotError(f"space {space.name!r} has no diverse sampler; use sampler 'uniform'")
    draw = space.sample if sampler == "uniform" else space.sample_diverse
    rng = random.Random(sample_seed)
    archs: List[str] = []
    seen = set()
    tries = 0
    while len(archs) < n:
        a = draw(rng)
        tries += 1
        if a not in seen:
            seen.add(a)
            archs.append(a)
        if tries > 100 * n:
            raise SaswotError(f"space {space.name!r} yielded only {len(archs)} distinct architectures")
    # repeated architectures first, their seeds back to back: a partial build already measures the noise
    return [(a, s) for a in archs[:repeat] for s in range(seeds)] + [(a, 0) for a in archs[repeat:]]


def done_rows(path: Path) -> Dict[Tuple[str, int], dict]:
    """Rows already in the CSV, keyed by (arch, seed)."""
    if not path.exists():
        return {}
    rows = {}
    with open(path, encoding="utf-8") as fh:
        lines = [ln for ln in fh if not ln.startswith("#")]
    for r in csv.DictReader(lines):
        try:
            rows[(r["arch"], int(r["seed"]))] = r
        except (KeyError, ValueError):
            raise SaswotError(f"{path}: row {r} is not a benchmark-build row (arch, ..., seed)") from None
    return rows


def _header(path: Path, settings: dict) -> None:
    from .io import atomic_write_text
    atomic_write_text(path, format_csv_header(settings) + ",".join(COLUMNS) + "\n")


def read_header(path: Path) -> Dict[str, str]:
    """The ``# key: value`` settings lines at the top of a benchmark-build CSV, as strings."""
    with open(path, encoding="utf-8") as fh:
        return parse_csv_header(fh.read().splitlines())[0]


def _check_header(path: Path, settings: dict) -> None:
    from .io import check_same_settings
    keys = [k for k in ("space", "space_kwargs", "training") if k in settings]
    check_same_settings(read_header(path), {k: str(settings[k]) for k in keys}, keys, f"the build in {str(path)!r}")


def _train_job(args) -> dict:
    """One (architecture, seed) training job (a top-level function: it runs on Dask workers)."""
    arch, seed, space, space_kwargs, data, train_kw = args
    from .training import train_arch
    row = train_arch(arch, space=space, data=data, space_kwargs=space_kwargs, seed=seed, **train_kw)
    return row


def build(out: str, space: str = "realtime", data: str = "digits", n: int = 200, seeds: int = 2, repeat: int = 50,
          steps: int = 300, batch_size: int = 16, lr: Optional[float] = None, optimizer: str = "adamw",
          warmup: int = 0, sampler: str = "uniform", space_kwargs: Optional[dict] = None, data_seed: int = 0, sample_seed: int = 0,
          threads: int = 1, name: Optional[str] = None, data_root: Optional[str] = None,
          log: Callable[[str], None] = print, executor: Optional["Executor"] = None, device: str = "cpu",
          progress: Optional[Callable[..., None]] = None) -> Path:
    """Train the planned (arch, seed) jobs not yet in ``out`` and append their rows; return the path.

    ``name``: the benchmark's name in its header (default: the file name without extension), ``data_root``: the
    folder of a real data set (cityscapes, camvid). A start that fails before any row leaves no file behind.
    ``data_seed`` fixes the data set for every job (only initialisation and batch order vary with the
    seed), so seed-to-seed differences measure training noise. Every job trains with ``threads`` torch threads.

    ``executor`` (:func:`saswot_gp.execution.executor`; default: serial, in-process) runs one task per
    (architecture, seed); the caller owns it (and closes it). Rows are appended as tasks finish, in any order.
    ``device``: where each job trains and is timed (the header records training settings, not the device).
    ``progress(i, n, mIoU=...)`` (a :class:`saswot_gp.progress.Progress`) follows the jobs; without it each row
    is one ``log`` line.
    """
    from .datasets import DATASETS
    from .io import check_output_path
    from .spaces import get_space
    check_output_path(out, what="benchmark file")  # before any training
    if data not in DATASETS:
        raise SaswotError(f"data set {data!r}; expected one of {', '.join(DATASETS)}")
    if data != "digits" and not data_root:
        raise SaswotError(f"data set {data!r} needs --root pointing at your copy of it")
    sp = get_space(space, **(space_kwargs or {}))
    path = Path(out)
    training = {"steps": steps, "batch_size": batch_size, "optimizer": optimizer, "lr": lr, "data": data,
                "data_seed": data_seed, "threads": threads}
    if warmup:
        training["warmup_steps"] = warmup
    if sampler != "uniform":
        training["sampler"] = sampler
    settings = {"space": space, "metric": "mIoU", "name": name or path.stem, "reference": "params, flops",
                "description": f"{space} architectures trained on {data} ({steps} steps, batch {batch_size}, "
                               f"{optimizer}, lr {lr or 'default'}, warm-up {warmup}); mIoU on the validation split; latency at batch 1, 1 thread",
                "space_kwargs": json.dumps(space_kwargs or {}, sort_keys=True), "training": json.dumps(training, sort_keys=True)}
    if path.exists() and path.is_dir():
        raise SaswotError(f"--out {str(path)!r} is a folder; expected a CSV file name")
    if path.exists() and done_rows(path):
        _check_header(path, settings)
    else:  # new, or a header without rows (a failed start): nothing to keep, the header is (re)written
        _header(path, settings)
    jobs = plan(sp, n, seeds, repeat, sample_seed, sampler)
    done = done_rows(path)
    todo = [j for j in jobs if j not in done]
    if executor is None:
        from .execution import Executor
        executor = Executor(log=log)
    how = (f"on Dask ({executor.n_workers} worker(s), one task per job)" if executor.distributed
           else "serially, in-process")
    log(f"bench build: {len(jobs)} jobs ({n} architectures, {min(repeat, n)} with {seeds} seeds); "
        f"{len(jobs) - len(todo)} already in {path}, {len(todo)} to train {how}")
    train_kw = {"steps": steps, "batch_size": batch_size, "optimizer": optimizer, "lr": lr, "threads": threads,
                "data_kwargs": {"seed": data_seed} if data == "digits" else {}, "latency_threads": 1,
                "data_root": data_root, "device": device}
    if warmup:
        train_kw["warmup_steps"] = warmup
    args = [(a, s, space, space_kwargs or {}, data, train_kw) for a, s in todo]
    t0 = time.perf_counter()
    written = 0
    finished = executor.as_completed(_train_job, args)
    try:
        for i, (_, row) in enumerate(finished, 1):
            with open(path, "a", encoding="utf-8", newline="") as fh:
                csv.writer(fh, lineterminator="\n").writerow([_fmt(row.get(c)) for c in COLUMNS])
                fh.flush()
                os.fsync(fh.fileno())
            written += 1
            if progress is not None:
                progress(i, len(todo), mIoU=f"{row['mIoU']:.4f}")
                continue
            el = time.perf_counter() - t0
            log(f"  {i}/{len(todo)}  mIoU {row['mIoU']:.4f}  {row['train_time_s']:.1f}s  {row['arch']} (seed {row['seed']})"
                f"  eta {el / i * (len(todo) - i) / 60:.1f} min")
    except BaseException:
        if not done and not written and path.is_file():
            path.unlink()  # a failed start leaves nothing that would block a corrected retry
        raise
    finally:
        finished.close()  # on Dask: cancels the jobs not yet run
    return path


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return repr(round(v, 6)) if isinstance(v, float) else str(v)


def noise_ceiling(path: str) -> dict:
    """Seed-to-seed agreement of mIoU over architectures trained with two or more seeds (Kendall, Spearman)."""
    from .ranking import correlations
    rows = done_rows(Path(path))
    by_arch: Dict[str, Dict[int, float]] = {}
    for (a, s), r in rows.items():
        if r.get("mIoU") not in ("", None):
            by_arch.setdefault(a, {})[s] = float(r["mIoU"])
    pairs = [(v[0], v[1]) for v in by_arch.values() if 0 in v and 1 in v]
    if len(pairs) < 3:
        return {"n": len(pairs), "kendall": float("nan"), "spearman": float("nan")}
    x, y = zip(*pairs)
    return {"n": len(pairs), **correlations(x, y)}
