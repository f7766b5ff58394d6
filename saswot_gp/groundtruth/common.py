"""Pieces every benchmark reader shares: score cells as floats (NaN for failed or missing) and the
NaN-aware averaging of the rows of one architecture."""

from __future__ import annotations

import math
import os
from typing import Dict, List, Sequence, Union

import numpy as np

PathLike = Union[str, os.PathLike]

FAILED_SCORE = -100000000.0          # NASLib's marker for a failed / not applicable proxy score


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
