"""NAS-Bench-MR segmentation ground truth: its pickled record lists, read with the restricted unpickler."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List

import numpy as np

from ..errors import SaswotError
from .base import Benchmark
from .common import PathLike, _average, _score
from .safe_pickle import safe_load

NBMR_METRICS = ("mIoU", "mAcc", "aAcc")
NBMR_REFERENCE = ("params", "flops")


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

