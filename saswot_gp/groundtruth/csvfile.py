"""The project's benchmark CSV format: its ``# key: value`` header (the one reader and the one writer),
:func:`load_csv` and :func:`save_csv`. See :mod:`saswot_gp.groundtruth.loaders` for the format."""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from ..errors import SaswotError
from .base import Benchmark
from .common import PathLike, _average

_RESERVED = ("arch", "space", "seed")

Row = Tuple[int, List[str]]          # (line number in the file, cells)


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


# ------------------------------------------------------------------------------------ load_csv

def _read_lines(path: str) -> List[str]:
    try:
        with open(path, "r", encoding="utf-8", newline="") as fh:
            return fh.read().splitlines()
    except OSError as exc:
        raise SaswotError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise SaswotError(f"{path}: not a UTF-8 text CSV file") from None


def _csv_header(path: str, rows: List[List[str]]) -> List[str]:
    """The checked column names (first row): an ``arch`` column, no duplicates."""
    if not rows:
        raise SaswotError(f"{path}: no header row; expected a CSV with columns 'arch', a target (e.g. 'mIoU') and optional others")
    header = [h.strip() for h in rows[0]]
    if "arch" not in header:
        raise SaswotError(f"{path}: no 'arch' column in header {header}; expected columns 'arch', a target (e.g. 'mIoU'), optional others")
    if len(set(header)) != len(header):
        raise SaswotError(f"{path}: duplicate column names in header {header}")
    return header


def _target_column(path: str, header: List[str], metric: Optional[str], settings: Dict[str, str]) -> str:
    """The target: ``metric``, else ``# metric:``, else the first column that is not arch, space or seed."""
    candidates = [h for h in header if h not in _RESERVED]
    metric = metric or settings.get("metric") or (candidates[0] if candidates else None)
    if metric not in header or metric in _RESERVED:
        raise SaswotError(f"{path}: target column {metric!r} not found; expected one of {candidates}")
    return metric


def _csv_body(path: str, rows: List[List[str]], start: int, width: int) -> List[Row]:
    """The non-blank rows after the header with their line numbers; each must have ``width`` cells."""
    body = [(start + 2 + i, r) for i, r in enumerate(rows[1:]) if any(c.strip() for c in r)]
    for line, r in body:
        if len(r) != width:
            raise SaswotError(f"{path}: line {line} has {len(r)} cells; the header has {width}")
    return body


def _csv_space(path: str, settings: Dict[str, str], col: Dict[str, int], body: List[Row]) -> str:
    """The space named by ``# space:`` and/or a ``space`` column (one per file, and they must agree)."""
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
    return space


def _space_kwargs(path: str, settings: Dict[str, str]) -> Dict[str, object]:
    """The JSON object of ``# space_kwargs:`` (empty without one)."""
    space_kwargs: Dict[str, object] = {}
    if settings.get("space_kwargs"):
        try:
            space_kwargs = json.loads(settings["space_kwargs"])
        except ValueError:
            space_kwargs = None  # type: ignore[assignment]
        if not isinstance(space_kwargs, dict):
            raise SaswotError(f"{path}: '# space_kwargs:' must be a JSON object like {{\"num_classes\": 19}}")
    return space_kwargs


def _reference_columns(path: str, header: List[str], col: Dict[str, int], metric: str,
                       settings: Dict[str, str], body: List[Row]) -> List[str]:
    """The numeric columns besides the target (only those ``# reference:`` names, when it is given)."""
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
    return ref_cols


def _csv_rows(path: str, body: List[Row], col: Dict[str, int], metric: str, ref_cols: List[str], sp):
    """Archs (checked by space ``sp`` unless None), target and reference values of the rows with a
    target value, and the arch cells of the rows without one: ``(archs, target, reference, skipped)``."""
    archs, target, reference = [], [], {h: [] for h in ref_cols}
    skipped: List[str] = []
    for line, r in body:
        t = _float_cell(r[col[metric]], path, line, metric)
        if math.isnan(t):
            skipped.append(r[col["arch"]].strip())
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
    return archs, target, reference, skipped


def load_csv(path: PathLike, metric: Optional[str] = None) -> Benchmark:
    """Load the project's CSV format (see :mod:`saswot_gp.groundtruth.loaders`); rows of one arch are averaged."""
    path = os.fspath(path)
    lines = _read_lines(path)
    settings, start = parse_csv_header(lines)
    rows = list(csv.reader(lines[start:]))
    header = _csv_header(path, rows)
    col = {h: i for i, h in enumerate(header)}
    metric = _target_column(path, header, metric, settings)
    body = _csv_body(path, rows, start, len(header))
    space = _csv_space(path, settings, col, body)
    space_kwargs = _space_kwargs(path, settings)
    ref_cols = _reference_columns(path, header, col, metric, settings, body)
    sp = _space_or_none(space, space_kwargs)
    archs, target, reference, skipped = _csv_rows(path, body, col, metric, ref_cols, sp)
    archs, t_avg, refs, counts = _average(archs, target, reference)
    desc = settings.get("description") or f"{metric} of {len(archs)} architectures of {space}, from {path}"
    if counts.max() > 1:
        desc += f" (rows of one arch averaged: up to {int(counts.max())} per arch)"
    notes = [_skipped_note(path, metric, skipped, archs, sp)] if skipped else []
    if skipped:
        desc += f" ({len(skipped)} rows without {metric} skipped)"
    return Benchmark(name=settings.get("name") or Path(path).stem, space=space, archs=archs, target=t_avg, metric=metric,
                     reference=refs, description=desc, space_kwargs=space_kwargs, data=_declared_data(settings),
                     notes=notes)


def _skipped_note(path: str, metric: str, skipped: List[str], kept: List[str], sp) -> str:
    """What the rows without a target cost: how many rows, and which architectures have no value left."""
    def canon(a: str) -> str:
        try:
            return sp.validate(a) if sp is not None else a
        except SaswotError:
            return a
    lost = sorted({canon(a) for a in skipped} - set(kept))
    shown = ", ".join(lost[:3]) + (", ..." if len(lost) > 3 else "")
    return (f"{path}: {len(skipped)} row(s) without a {metric!r} value (empty or NaN) skipped; "
            + (f"{len(lost)} architecture(s) have no value and are left out ({shown})" if lost else
               "every architecture still has a value"))


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


# ------------------------------------------------------------------------------------ save_csv

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
