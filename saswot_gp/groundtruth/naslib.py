"""TransNAS-Bench-101 ground truth in NASLib's files: the zero-cost JSON (one task, proxy scores as
reference columns) and the Zen-score JSON lists. See :mod:`saswot_gp.groundtruth.loaders` for the formats."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

from ..errors import SaswotError
from .base import Benchmark
from .common import PathLike, _average, _score

TASK_METRICS = {
    "segmentsemantic": "pixel accuracy",
    "class_scene": "top-1 accuracy",
    "class_object": "top-1 accuracy",
    "jigsaw": "top-1 accuracy",
    "room_layout": "negative L2 loss",
    "autoencoder": "SSIM",
    "normal": "SSIM",
}
_KEY_RE = re.compile(r"^\s*\(\s*(\d+(?:\s*,\s*\d+)*)\s*,?\s*\)\s*$")


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

