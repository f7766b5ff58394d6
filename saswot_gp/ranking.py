"""Rank correlation of scores with targets: the one home of Kendall tau-b and Spearman rho (over finite pairs,
NaN where undefined) and of their seeded percentile-bootstrap intervals."""

from __future__ import annotations

import math
from typing import Dict, Sequence, Tuple

import numpy as np
from scipy import stats as sstats


def _pair(s: np.ndarray, t: np.ndarray) -> Tuple[float, float]:
    if len(s) < 3 or np.ptp(s) == 0 or np.ptp(t) == 0:
        return math.nan, math.nan
    return float(sstats.kendalltau(s, t).statistic), float(sstats.spearmanr(s, t).statistic)


def _finite(scores: Sequence[float], target: Sequence[float]) -> Tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    ok = np.isfinite(s) & np.isfinite(t)
    return s[ok], t[ok]


def correlations(scores: Sequence[float], target: Sequence[float]) -> Dict[str, float]:
    """Kendall tau-b and Spearman rho of ``scores`` with ``target`` over finite pairs (NaN with fewer than 3
    pairs or constant scores or targets)."""
    tau, rho = _pair(*_finite(scores, target))
    return {"kendall": tau, "spearman": rho}


def kendall(scores: Sequence[float], target: Sequence[float]) -> float:
    """Kendall tau-b over finite pairs (see :func:`correlations`)."""
    return correlations(scores, target)["kendall"]


def rank_correlations(scores: Sequence[float], target: Sequence[float], n_boot: int = 1000,
                      seed: int = 0) -> Dict[str, float]:
    """Kendall tau-b and Spearman rho over finite pairs, with percentile-bootstrap 95% intervals (seeded)."""
    s, t = _finite(scores, target)
    tau, rho = _pair(s, t)
    out = {"n": int(len(s)), "kendall": tau, "spearman": rho, "kendall_lo": math.nan, "kendall_hi": math.nan,
           "spearman_lo": math.nan, "spearman_hi": math.nan}
    if math.isnan(tau) or n_boot < 1:
        return out
    rng = np.random.default_rng(seed)
    boots = np.array([_pair(s[idx], t[idx]) for idx in rng.integers(0, len(s), size=(n_boot, len(s)))])
    for j, name in enumerate(("kendall", "spearman")):
        col = boots[:, j][np.isfinite(boots[:, j])]
        if len(col):
            out[f"{name}_lo"], out[f"{name}_hi"] = (float(v) for v in np.percentile(col, [2.5, 97.5]))
    return out
