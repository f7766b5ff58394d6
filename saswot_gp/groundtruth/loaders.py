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
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import SaswotError
from .base import Benchmark
from .safe_pickle import safe_load

PathLike = Union[str, os.PathLike]

FAILED_SCORE = -100000000.0          # NASLib's marker for a failed / not applicable proxy score
NBMR_METRICS = ("mIoU", "mAcc", "aAcc")
NBMR_REFERENCE = ("params", "flops")
TASK_METRICS = {
    "segmentsemantic": "pixel accuracy",
    "class_scene": "top-1 accuracy",
    "class_object": "top-1 accuracy",
    "jigsaw": "top-1 accuracy",
    "room_layout": "negative L2 loss",
    "autoencoder": "SSIM",
    "normal": "SSIM",
}
KNOWN_NAMES = {
    "transnas-micro": "transnas101/zc_transbench101_micro.json",
    "transnas-macro": "transnas101/zc_transbench101_macro.json",
    "transnas-micro-zen": "transnas101/zen_micro_segmentsemantic",
    "nbmr-seg": "nasbench_mr/seg_trainval.pkl",
    "nbmr-seg-4x": "nasbench_mr/seg-4x_trainval.pkl",
}
ENV_DATA = "SASWOT_BENCHDATA"
_RESERVED = ("arch", "space", "seed")
_KEY_RE = re.compile(r"^\s*\(\s*(\d+(?:\s*,\s*\d+)*)\s*,?\s*\)\s*$")


# ------------------------------------------------------------------------------------ helpers

def _score(value) -> float:
    """A proxy entry (``{"score": x}`` or a bare number) as float, NaN for failed/missing/non-finite."""
    if isinstance(value, dict):
        value = value.get("score")
    if value is None or isinstance(value, bool):
        return math.nan
    try:
        x = float(value)
    except (TypeError, ValueError):
        return math.nan
    return math.nan if (not math.isfinite(x) or x == FAILED_SCORE) else x


def _key_tuple(key, path: str) -> Tuple[int, ...]:
    m = _KEY_RE.match(str(key))
    if not m:
        raise SaswotError(f"{path}: architecture key {key!r} is not a tuple of integers like '(1, 2, 4, 2, 0, 0)'")
    return tuple(int(v) for v in re.split(r"\s*,\s*", m[1]))


def _detect_transnas_space(keys: Sequence[Tuple[int, ...]], path: str) -> str:
    """'transnas-micro' or 'transnas-macro' from the tuple keys (digit 4 or a non-macro shape decide), else the path."""
    def not_macro(k: Tuple[int, ...]) -> bool:  # macro keys: 4-6 digits in 1-4, then zero padding
        n = sum(1 for v in k if v != 0)
        return n < 4 or any(v == 0 for v in k[:n])  # too short, or a zero before a non-zero
    micro = any(not_macro(k) for k in keys)
    macro = any(4 in k for k in keys)
    if micro and macro:
        raise SaswotError(f"{path}: keys mix TransNAS micro (op codes 0-3) and macro (digits 1-4, zero-padded) architectures")
    if micro:
        return "transnas-micro"
    if macro:
        return "transnas-macro"
    name = "/".join(Path(path).resolve().parts[-2:]).lower()
    if "micro" in name and "macro" not in name:
        return "transnas-micro"
    if "macro" in name and "micro" not in name:
        return "transnas-macro"
    raise SaswotError(f"{path}: cannot tell TransNAS micro from macro architectures; put 'micro' or 'macro' in the file name")


def _to_arch(key: Tuple[int, ...], space: str) -> str:
    from ..spaces.transnas import naslib_key_to_arch
    return naslib_key_to_arch(key, space)


def _read_json(path: str):
    try:
        with open(path, "r", encoding="utf-8") as fh:
            return json.load(fh)
    except OSError as exc:
        raise SaswotError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise SaswotError(f"{path}: not valid JSON ({str(exc).splitlines()[0]})") from None


def _average(archs: Sequence[str], target: Sequence[float], reference: Dict[str, Sequence[float]]):
    """Group rows by arch (first-appearance order) and NaN-average target and reference columns."""
    order: Dict[str, List[int]] = {}
    for i, a in enumerate(archs):
        order.setdefault(a, []).append(i)
    t = np.asarray(target, dtype=np.float64)
    refs = {k: np.asarray(v, dtype=np.float64) for k, v in reference.items()}

    def mean(x: np.ndarray, idx: List[int]) -> float:
        vals = x[idx]
        vals = vals[~np.isnan(vals)]
        return float(vals.mean()) if len(vals) else math.nan

    out_archs = list(order)
    out_t = np.array([mean(t, order[a]) for a in out_archs])
    out_refs = {k: np.array([mean(v, order[a]) for a in out_archs]) for k, v in refs.items()}
    counts = np.array([len(order[a]) for a in out_archs])
    return out_archs, out_t, out_refs, counts


# ----------------------------------------------------------------------------- NASLib / Zen JSON

def load_naslib_zc(path: PathLike, task: str = "segmentsemantic") -> Benchmark:
    """Load one task of a NASLib zero-cost TransNAS-Bench-101 JSON: target val_accuracy, proxy scores as reference."""
    path = os.fspath(path)
    data = _read_json(path)
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise SaswotError(f"{path}: expected a NASLib zero-cost JSON object {{task: {{'(a, b, ...)': {{...}}}}}}")
    if task not in data:
        raise SaswotError(f"{path}: task {task!r} not in the file; expected one of {sorted(data)}")
    entries = data[task]
    if not entries:
        raise SaswotError(f"{path}: task {task!r} has no architectures")
    keys = [_key_tuple(k, path) for k in entries]
    space = _detect_transnas_space(keys, path)
    archs, target = [], []
    proxies: List[str] = []
    for rec in entries.values():
        for name, v in rec.items():
            if isinstance(v, dict) and "score" in v and name not in proxies:
                proxies.append(name)
    reference: Dict[str, List[float]] = {p: [] for p in proxies}
    for key, (raw, rec) in zip(keys, entries.items()):
        if not isinstance(rec, dict) or "val_accuracy" not in rec:
            raise SaswotError(f"{path}: entry {raw!r} of task {task!r} has no 'val_accuracy'")
        archs.append(_to_arch(key, space))
        target.append(_score(rec["val_accuracy"]))
        for p in proxies:
            reference[p].append(_score(rec.get(p)))
    archs, t, refs, _ = _average(archs, target, reference)
    keep = ~np.isnan(t)
    kind = space.split("-")[1]
    bench = Benchmark(
        name=f"transnas101-{kind}-{task}", space=space, archs=archs, target=t,
        metric=TASK_METRICS.get(task, "val_accuracy"), reference=refs,
        description=(f"TransNAS-Bench-101 {kind}, task {task}: val_accuracy ({TASK_METRICS.get(task, 'val_accuracy')}) "
                     f"of {len(archs)} architectures with NASLib zero-cost scores, from {path}"))
    return bench if keep.all() else bench.subset(np.flatnonzero(keep))


def _zen_files(path: str) -> List[str]:
    if os.path.isdir(path):
        files = sorted(str(p) for p in Path(path).glob("*.json"))
        if not files:
            raise SaswotError(f"{path}: folder has no .json files; expected Zen-score JSON lists")
        return files
    return [path]


def load_zen(path: PathLike) -> Benchmark:
    """Load Zen-score JSON lists (a folder of them or one file): target val_accuracy, reference column 'zen'."""
    path = os.fspath(path)
    records = []
    for f in _zen_files(path):
        data = _read_json(f)
        if not isinstance(data, list) or not all(isinstance(r, dict) and "arch" in r and "val_accuracy" in r for r in data):
            raise SaswotError(f"{f}: expected a JSON list of {{'arch', 'zen', 'val_accuracy'}} records")
        records += data
    if not records:
        raise SaswotError(f"{path}: no architectures")
    keys = [_key_tuple(r["arch"], path) for r in records]
    space = _detect_transnas_space(keys, path)
    archs = [_to_arch(k, space) for k in keys]
    archs, t, refs, _ = _average(archs, [_score(r["val_accuracy"]) for r in records],
                                 {"zen": [_score(r.get("zen")) for r in records]})
    kind = space.split("-")[1]
    task = "segmentsemantic" if "segmentsemantic" in path else "unknown task"
    bench = Benchmark(name=f"transnas101-{kind}-zen", space=space, archs=archs, target=t,
                      metric=TASK_METRICS.get(task, "val_accuracy"), reference=refs,
                      description=f"TransNAS-Bench-101 {kind} ({task}): val_accuracy and Zen-score of {len(archs)} architectures, from {path}")
    keep = ~np.isnan(t)
    return bench if keep.all() else bench.subset(np.flatnonzero(keep))


# ------------------------------------------------------------------------------ NAS-Bench-MR

def load_nbmr_pickle(path: PathLike, metric: str = "mIoU") -> Benchmark:
    """Load a NAS-Bench-MR segmentation pickle (restricted unpickler): target ``metric``, reference params and flops."""
    from ..spaces.nbmr import record_to_arch
    path = os.fspath(path)
    metric = metric or "mIoU"
    if metric not in NBMR_METRICS:
        raise SaswotError(f"{path}: metric {metric!r} not available; expected one of {list(NBMR_METRICS)}")
    data = safe_load(path)
    if not isinstance(data, list) or not data or not all(isinstance(r, dict) for r in data):
        raise SaswotError(f"{path}: expected a pickled list of NAS-Bench-MR record dicts")
    archs, target = [], []
    reference: Dict[str, List[float]] = {k: [] for k in NBMR_REFERENCE}
    for i, rec in enumerate(data):
        missing = [k for k in ("embedding", metric) if k not in rec]
        if missing:
            raise SaswotError(f"{path}: record {i} lacks {missing}; expected NAS-Bench-MR keys embedding, {', '.join(NBMR_METRICS)}, params, flops")
        try:
            archs.append(record_to_arch(rec))
        except SaswotError as exc:
            raise SaswotError(f"{path}: record {i}: {exc}") from None
        target.append(_score(rec[metric]))
        for k in NBMR_REFERENCE:
            reference[k].append(_score(rec.get(k)))
    archs, t, refs, _ = _average(archs, target, reference)
    stem = Path(path).name.split(".")[0].replace("_trainval", "")
    bench = Benchmark(name=f"nasbench-mr-{stem}", space="nbmr-seg", archs=archs, target=t, metric=metric,
                      reference=refs,
                      description=f"NAS-Bench-MR Cityscapes segmentation ({stem}): {metric} (%) of {len(archs)} architectures, from {path}")
    keep = ~np.isnan(t)
    return bench if keep.all() else bench.subset(np.flatnonzero(keep))


# -------------------------------------------------------------------------------------- CSV

def _float_cell(cell: str, path: str, line: int, column: str) -> float:
    cell = cell.strip()
    if cell == "" or cell.lower() in ("nan", "na", "none", "null"):
        return math.nan
    try:
        return float(cell)
    except ValueError:
        raise SaswotError(f"{path}: line {line}: column {column!r} value {cell!r} is not a number") from None


def parse_csv_header(lines: List[str]) -> Tuple[Dict[str, str], int]:
    """The ``# key: value`` settings lines (and blank lines) at the top of a benchmark CSV: (settings with
    lower-case keys, index of the first other line). The one reader of that header."""
    settings: Dict[str, str] = {}
    start = 0
    while start < len(lines) and (lines[start].startswith("#") or not lines[start].strip()):
        text = lines[start].lstrip("#").strip()
        if ":" in text:
            k, v = text.split(":", 1)
            settings[k.strip().lower()] = v.strip()
        start += 1
    return settings, start


def format_csv_header(settings: Dict[str, object]) -> str:
    """``# key: value`` lines for a benchmark CSV (values on one line). The one writer of that header."""
    return "".join(f"# {k}: {' '.join(str(v).split())}\n" for k, v in settings.items())


def load_csv(path: PathLike, metric: Optional[str] = None) -> Benchmark:
    """Load the project's CSV format (see module docstring); rows of one arch are averaged."""
    path = os.fspath(path)
    try:
        with open(path, "r", encoding="utf-8", newline="") as fh:
            lines = fh.read().splitlines()
    except OSError as exc:
        raise SaswotError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise SaswotError(f"{path}: not a UTF-8 text CSV file") from None
    settings, start = parse_csv_header(lines)
    rows = list(csv.reader(lines[start:]))
    if not rows:
        raise SaswotError(f"{path}: no header row; expected a CSV with columns 'arch', a target (e.g. 'mIoU') and optional others")
    header = [h.strip() for h in rows[0]]
    if "arch" not in header:
        raise SaswotError(f"{path}: no 'arch' column in header {header}; expected columns 'arch', a target (e.g. 'mIoU'), optional others")
    if len(set(header)) != len(header):
        raise SaswotError(f"{path}: duplicate column names in header {header}")
    col = {h: i for i, h in enumerate(header)}
    candidates = [h for h in header if h not in _RESERVED]
    metric = metric or settings.get("metric") or (candidates[0] if candidates else None)
    if metric not in col or metric in _RESERVED:
        raise SaswotError(f"{path}: target column {metric!r} not found; expected one of {candidates}")
    body = [(start + 2 + i, r) for i, r in enumerate(rows[1:]) if any(c.strip() for c in r)]
    for line, r in body:
        if len(r) != len(header):
            raise SaswotError(f"{path}: line {line} has {len(r)} cells; the header has {len(header)}")
    space = settings.get("space")
    if "space" in col:
        names = {r[col["space"]].strip() for _, r in body if r[col["space"]].strip()}
        if len(names) > 1:
            raise SaswotError(f"{path}: column 'space' names several spaces {sorted(names)}; expected one per file")
        if names:
            if space and space != next(iter(names)):
                raise SaswotError(f"{path}: header says space {space!r} but column 'space' says {next(iter(names))!r}")
            space = next(iter(names))
    if not space:
        raise SaswotError(f"{path}: no search space named; add a '# space: <name>' line or a 'space' column")
    space_kwargs: Dict[str, object] = {}
    if settings.get("space_kwargs"):
        try:
            space_kwargs = json.loads(settings["space_kwargs"])
        except ValueError:
            space_kwargs = None  # type: ignore[assignment]
        if not isinstance(space_kwargs, dict):
            raise SaswotError(f"{path}: '# space_kwargs:' must be a JSON object like {{\"num_classes\": 19}}")
    numeric = [h for h in header if h not in _RESERVED and h != metric]
    if settings.get("reference"):
        named = [h.strip() for h in settings["reference"].split(",") if h.strip()]
        missing = [h for h in named if h not in col]
        if missing:
            raise SaswotError(f"{path}: '# reference:' names column {missing[0]!r}, which is not in header {header}")
        numeric = [h for h in named if h in numeric]
    ref_cols = []
    for h in numeric:  # reference columns: numeric ones only (text columns such as notes are ignored)
        try:
            [_float_cell(r[col[h]], path, line, h) for line, r in body]
            ref_cols.append(h)
        except SaswotError:
            continue
    archs, target, reference = [], [], {h: [] for h in ref_cols}
    skipped = 0
    sp = _space_or_none(space, space_kwargs)
    for line, r in body:
        t = _float_cell(r[col[metric]], path, line, metric)
        if math.isnan(t):
            skipped += 1
            continue
        arch = r[col["arch"]].strip()
        if sp is not None:
            try:
                arch = sp.validate(arch)
            except SaswotError as exc:
                raise SaswotError(f"{path}: line {line}: {exc}") from None
        archs.append(arch)
        target.append(t)
        for h in ref_cols:
            reference[h].append(_float_cell(r[col[h]], path, line, h))
    if not archs:
        raise SaswotError(f"{path}: no rows with a {metric!r} value")
    archs, t_avg, refs, counts = _average(archs, target, reference)
    desc = settings.get("description") or f"{metric} of {len(archs)} architectures of {space}, from {path}"
    if counts.max() > 1:
        desc += f" (rows of one arch averaged: up to {int(counts.max())} per arch)"
    if skipped:
        desc += f" ({skipped} rows without {metric} skipped)"
    return Benchmark(name=settings.get("name") or Path(path).stem, space=space, archs=archs, target=t_avg, metric=metric,
                     reference=refs, description=desc, space_kwargs=space_kwargs, data=_declared_data(settings))


def _declared_data(settings: Dict[str, str]) -> Optional[str]:
    """The training data a CSV declares: ``# data: NAME``, or the ``data`` of its ``# training:`` JSON."""
    if settings.get("data"):
        return settings["data"]
    try:
        training = json.loads(settings.get("training") or "{}")
    except json.JSONDecodeError:
        return None
    return training.get("data") if isinstance(training, dict) else None


def _space_or_none(space: str, kwargs: Dict[str, object]):
    from ..spaces import get_space, space_names
    if space not in space_names():
        return None
    try:
        return get_space(space, **kwargs)
    except TypeError as exc:
        raise SaswotError(f"space {space!r} does not take space_kwargs {kwargs}: {exc}") from None


def _cell(x: float) -> str:
    return "" if math.isnan(x) else repr(float(x))


def save_csv(benchmark: Benchmark, path: PathLike) -> Path:
    """Write ``benchmark`` in the project's CSV format (one row per arch; NaN as an empty cell); return the path."""
    path = Path(path)
    metric = benchmark.metric or "target"
    if metric in _RESERVED:
        raise SaswotError(f"cannot save benchmark {benchmark.name!r}: metric name {metric!r} is a reserved column name")
    refs = [k for k in benchmark.reference if k != metric and k not in _RESERVED]
    for k in benchmark.reference:
        if k not in refs:
            raise SaswotError(f"cannot save benchmark {benchmark.name!r}: reference column {k!r} clashes with a reserved or target column name")
    path.parent.mkdir(parents=True, exist_ok=True)
    settings = {"space": benchmark.space, "metric": metric, "name": benchmark.name}
    if benchmark.description:
        settings["description"] = benchmark.description
    if benchmark.space_kwargs:
        settings["space_kwargs"] = json.dumps(benchmark.space_kwargs, sort_keys=True)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(format_csv_header(settings))
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["arch", metric] + refs)
        for i, arch in enumerate(benchmark.archs):
            w.writerow([arch, _cell(benchmark.target[i])] + [_cell(benchmark.reference[k][i]) for k in refs])
    return path


# --------------------------------------------------------------------------------- dispatch

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
            f"or one of the names {sorted(KNOWN_NAMES)}")
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



def resolve_benchmark(spec: str, metric: Optional[str] = None, cache_dir: Optional[str] = None) -> Benchmark:
    """A registered benchmark name, a path to a benchmark file, or 'synthetic' (the planted test stand-in)."""
    if spec == "synthetic":
        from .synthetic import planted_benchmark
        return planted_benchmark(n_archs=80, cache_dir=cache_dir)
    return load_benchmark(spec, metric=metric)
