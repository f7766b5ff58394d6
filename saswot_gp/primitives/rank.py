"""The rank-aggregation root (AZ-NAS): the log-rank aggregate of two to four score subtrees.

For a set of N architectures and subtree values s_1..s_k (one value per architecture each), the aggregate
score of architecture i is ``sum_j log(rank_j(i) / N)``, ``rank_j`` ascending 1..N with ties given their
average rank (as ``scipy.stats.rankdata(..., 'average')``). The score is relative to the set being ranked:
whatever set the values cover (a training split, a resampled subset, a held-out part, a search archive), the
ranks are taken within it. :func:`log_rank_aggregate` scores a whole set; :func:`log_rank_against` scores one
candidate against an archive (the candidate ranked among archive + candidate), and the two agree: scoring a set
at once equals scoring each member against the archive made of the others.
"""

from __future__ import annotations

from typing import Sequence, Union

import numpy as np
import torch

from .context import StatsContext

RANK_ARITIES = (1, 2, 3, 4)


def average_ranks(x: torch.Tensor) -> torch.Tensor:
    """Ascending ranks 1..N along the last axis, ties given their average rank (float64)."""
    x = x.to(torch.float64)
    s, _ = torch.sort(x, dim=-1)
    lo = torch.searchsorted(s.contiguous(), x.contiguous(), right=False)  # values strictly below
    hi = torch.searchsorted(s.contiguous(), x.contiguous(), right=True)   # values below or equal
    return (lo + 1 + hi).to(torch.float64) / 2.0


def log_rank_aggregate(parts: Union[torch.Tensor, np.ndarray]) -> torch.Tensor:
    """The aggregate ``sum_j log(rank_j / N)`` of a (k, N) matrix of subtree values over its N architectures. An
    architecture with a non-finite subtree value scores NaN, and the others are ranked among themselves."""
    p = torch.as_tensor(parts, dtype=torch.float64)
    if p.dim() == 1:
        p = p[None]
    ok = torch.isfinite(p).all(dim=0)
    if bool(ok.all()):
        return torch.log(average_ranks(p) / p.shape[-1]).sum(dim=0)
    out = torch.full((p.shape[-1],), float("nan"), dtype=torch.float64, device=p.device)
    if bool(ok.any()):
        out[ok] = torch.log(average_ranks(p[:, ok]) / int(ok.sum())).sum(dim=0)
    return out


def log_rank_against(archive: Union[np.ndarray, Sequence[Sequence[float]]], candidate: Sequence[float]) -> float:
    """The aggregate score of ``candidate`` (k subtree values) ranked among ``archive`` (M rows of k values, the
    architectures scored before) plus itself: ``sum_j log(rank_j / (M + 1))``; the first candidate (an empty
    archive) has rank 1 of 1 in every subtree, so its score is 0."""
    c = np.asarray(candidate, dtype=np.float64).reshape(-1)
    a = np.asarray(archive, dtype=np.float64).reshape(-1, len(c))
    n = len(a) + 1
    below = (a < c).sum(axis=0)
    equal_or_below = (a <= c).sum(axis=0) + 1  # the candidate itself
    ranks = (below + 1 + equal_or_below).astype(np.float64) / 2.0
    return float(torch.log(torch.as_tensor(ranks, dtype=torch.float64) / n).sum())


def rank_root(ctx: StatsContext, *parts: torch.Tensor) -> torch.Tensor:
    """The operator function of ``rank1`` .. ``rank4``: the aggregate over the architectures of ``ctx``."""
    return log_rank_aggregate(torch.stack([p.to(torch.float64) for p in parts]))
