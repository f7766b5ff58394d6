"""Load measured benchmarks (ground truth) from their original files or from the project's CSV format.

Supported inputs (``load_benchmark`` picks by file type and content):

* NASLib zero-cost JSON (``zc_transbench101_micro.json`` / ``_macro.json``):
  ``{task: {"(a, b, ...)": {"val_accuracy": .., <proxy>: {"score", "time"}}}}``. One task is kept
  (``segmentsemantic`` by default); target ``val_accuracy`` (for segmentsemantic the best validation
  pixel accuracy, %); every proxy score becomes a reference column, ``-1e8`` (failed) -> NaN. The
  space (``transnas-micro`` / ``transnas-macro``) is detected from the keys (else the file name).
* Zen-score JSON lists (``zen_micro_segmentsemantic/*.json``, a directory or one file):
  ``[{"arch": "(a, ...)", "zen": {"score", ..}, "val_accuracy": ..}]``; target ``val_accuracy``,
  reference column ``zen``.
* NAS-Bench-MR pickles (``seg_trainval.pkl``, ``seg-4x_trainval.pkl``): a list of dicts read with a
  restricted unpickler (no class is ever looked up); target ``mIoU`` (default), ``mAcc`` or ``aAcc``;
  reference columns ``params`` and ``flops``; space ``nbmr-seg``.
* The project's CSV format, written by :func:`save_csv`::

      # space: nbmr-seg
      # metric: mIoU
      # name: my-benchmark
      # description: free text
      # space_kwargs: {"num_classes": 19}
      arch,mIoU,params,flops,seed
      16_16-1_1_16-...-48,71.2,1.29,0.77,0
      16_16-1_1_16-...-48,71.6,1.29,0.77,1

  Lines starting with ``#`` before the header are ``key: value`` settings (``space`` required unless
  a ``space`` column names it; ``space_kwargs`` is a JSON object). Column ``arch`` is required.
  The target is the column named by ``metric=`` (argument), else by ``# metric:``, else the first
  column after ``arch`` that is not ``space`` or ``seed``. Every other numeric column becomes a
  reference column, unless a ``# reference: params, flops`` line names the only reference columns
  (other columns, such as training outcomes, are then kept out of proxy tables); ``seed`` only groups rows. Rows of the same arch (e.g. several seeds) are
  averaged (NaN-aware); empty cells are NaN; rows with an empty target are skipped. Archs are
  checked (and canonicalised) by the named space when it is registered.

Names instead of paths: ``transnas-micro``, ``transnas-macro``, ``transnas-micro-zen``, ``nbmr-seg``,
``nbmr-seg-4x`` are looked up under the folder in ``$SASWOT_BENCHDATA`` (the benchmark files in
their original layout), and ``<name>.csv`` in the package's ``resources`` folder.

Each format has its own module (:mod:`.naslib`, :mod:`.nbmr`, :mod:`.csvfile`, shared pieces in
:mod:`.common`); this one picks among them and re-exports their public names.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import List, Optional

from ..errors import SaswotError
from .base import Benchmark
from .common import FAILED_SCORE, PathLike  # noqa: F401
from .csvfile import format_csv_header, load_csv, parse_csv_header, save_csv  # noqa: F401
from .naslib import TASK_METRICS, load_naslib_zc, load_zen  # noqa: F401
from .nbmr import NBMR_METRICS, NBMR_REFERENCE, load_nbmr_pickle  # noqa: F401

KNOWN_NAMES = {
    "transnas-micro": "transnas101/zc_transbench101_micro.json",
    "transnas-macro": "transnas101/zc_transbench101_macro.json",
    "transnas-micro-zen": "transnas101/zen_micro_segmentsemantic",
    "nbmr-seg": "nasbench_mr/seg_trainval.pkl",
    "nbmr-seg-4x": "nasbench_mr/seg-4x_trainval.pkl",
}
ENV_DATA = "SASWOT_BENCHDATA"

__all__ = ["ENV_DATA", "FAILED_SCORE", "KNOWN_NAMES", "NBMR_METRICS", "NBMR_REFERENCE", "PathLike", "TASK_METRICS",
           "format_csv_header", "load_benchmark", "load_csv", "load_naslib_zc", "load_nbmr_pickle", "load_zen",
           "benchmark_names", "parse_csv_header", "resolve_benchmark", "save_csv", "split_task"]


# --------------------------------------------------------------------------------- dispatch

def benchmark_names() -> List[str]:
    """Every benchmark name a command accepts besides a path: shipped with the package (``realtime-digits``),
    found under $SASWOT_BENCHDATA (:data:`KNOWN_NAMES`), and ``synthetic`` (the planted stand-in)."""
    shipped = [p.stem for p in (Path(__file__).resolve().parent.parent / "resources").glob("*.csv")]
    return sorted(shipped) + sorted(KNOWN_NAMES) + ["synthetic"]


def _resolve(path_or_name: PathLike) -> str:
    """An existing path, or a known benchmark name resolved under $SASWOT_BENCHDATA or the package resources."""
    p = os.fspath(path_or_name)
    if os.path.exists(p):
        return p
    name = str(p)
    if name in KNOWN_NAMES and os.environ.get(ENV_DATA):
        cand = os.path.join(os.environ[ENV_DATA], KNOWN_NAMES[name])
        if os.path.exists(cand):
            return cand
    res = Path(__file__).resolve().parent.parent / "resources" / f"{name}.csv"
    if re.fullmatch(r"[A-Za-z0-9_.-]+", name) and res.is_file():
        return str(res)
    hint = (f"; set ${ENV_DATA} to the folder holding the benchmark files" if name in KNOWN_NAMES else
            f"; expected a .json (NASLib zero-cost or Zen lists), .pkl (NAS-Bench-MR), .csv file or folder, "
            f"or one of the names {', '.join(benchmark_names())}")
    raise SaswotError(f"benchmark {name!r} not found{hint}")


def _json_kind(path: str) -> str:
    with open(path, "rb") as fh:
        head = fh.read(4096).lstrip()
    if head.startswith(b"["):
        return "zen"
    if head.startswith(b"{"):
        return "naslib"
    raise SaswotError(f"{path}: JSON file is neither a NASLib zero-cost object nor a Zen-score list")


def load_benchmark(path_or_name: PathLike, metric: Optional[str] = None, task: str = "segmentsemantic") -> Benchmark:
    """Load a benchmark from a path (JSON, folder of JSON, pickle, CSV) or a known name; SaswotError if missing or unknown."""
    if path_or_name == "synthetic" and not os.path.exists("synthetic"):
        return resolve_benchmark("synthetic", metric)
    path = _resolve(path_or_name)
    if os.path.isdir(path):
        if not any(Path(path).glob("*.json")):
            raise SaswotError(f"{path}: folder has no .json files; expected a folder of Zen-score JSON lists")
        kind = "zen"
    else:
        suffix = Path(path).suffix.lower()
        if suffix == ".csv":
            return load_csv(path, metric)
        if suffix in (".pkl", ".pickle"):
            return load_nbmr_pickle(path, metric or "mIoU")
        if suffix != ".json":
            raise SaswotError(f"{path}: unknown benchmark file type {suffix or '(none)'!r}; expected .json, .pkl, .csv or a folder")
        try:
            kind = _json_kind(path)
        except OSError as exc:
            raise SaswotError(f"{path}: cannot read ({exc.strerror or exc})") from None
    bench = load_zen(path) if kind == "zen" else load_naslib_zc(path, task)
    if metric is not None and metric not in ("val_accuracy", bench.metric):
        raise SaswotError(f"{path}: metric {metric!r} not available; TransNAS files have one target, 'val_accuracy' ({bench.metric})")
    return bench


def split_task(spec: str) -> tuple:
    """``'transnas-micro@class_scene'`` -> ``('transnas-micro', 'class_scene')``; a spec without ``@`` (or an
    existing path that contains one) -> ``(spec, None)``."""
    spec = os.fspath(spec)
    if "@" not in spec or os.path.exists(spec):
        return spec, None
    base, task = spec.rsplit("@", 1)
    if task not in TASK_METRICS:
        raise SaswotError(f"benchmark {spec!r}: unknown TransNAS-Bench-101 task {task!r}; expected one of "
                          f"{', '.join(sorted(TASK_METRICS))}")
    return base, task


def resolve_benchmark(spec: str, metric: Optional[str] = None, cache_dir: Optional[str] = None) -> Benchmark:
    """A registered benchmark name, a path to a benchmark file, or 'synthetic' (the planted test stand-in).
    ``<TransNAS name or file>@<task>`` picks another task of a TransNAS-Bench-101 file (default segmentsemantic):
    the same architectures and statistics, that task's ``val_accuracy`` as the target."""
    if spec == "synthetic":
        from .synthetic import planted_benchmark
        return planted_benchmark(n_archs=80, cache_dir=cache_dir)
    base, task = split_task(spec)
    if task is None:
        return load_benchmark(spec, metric=metric)
    path = _resolve(base)
    if os.path.isdir(path) or Path(path).suffix.lower() != ".json" or _json_kind(path) != "naslib":
        raise SaswotError(f"benchmark {spec!r}: only a TransNAS-Bench-101 NASLib zero-cost JSON has tasks; "
                          f"expected <transnas-micro|transnas-macro|file.json>@<task>")
    return load_benchmark(path, metric=metric, task=task)
