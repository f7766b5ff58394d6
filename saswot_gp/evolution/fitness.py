"""Rank-correlation fitness of proxies on packed statistics, with a cache keyed by canonical sympy form."""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from scipy.stats import rankdata

from ..errors import NUMERICAL_ERRORS
from ..primitives.rank import log_rank_aggregate
from ..proxy import Proxy
from ..ranking import kendall

INVALID = -1.0


MIN_SPREAD = 1e-3  # robust relative spread below which scores count as near-constant (see relative_spread)
MIN_UNIQUE_FRAC = 0.5  # fewer distinct scores than this fraction of the architectures: too many ties


def relative_spread(scores) -> float:
    """Robust relative spread of scores: (q95 - q5) / max(|q5|, |q95|), in [0, 2]; 0 for constant scores.

    A proxy whose scores differ by less than ``MIN_SPREAD`` of their magnitude between the 5th and 95th
    percentile is a large constant plus a small term: its ranking hangs on the small term and on float
    rounding, and during a search nearly all candidates look the same.
    """
    s = np.asarray(scores, dtype=np.float64)
    lo, hi = np.percentile(s, [5.0, 95.0])
    mag = max(abs(lo), abs(hi))
    return 0.0 if mag == 0.0 else float((hi - lo) / mag)


def score_problem(scores, min_unique_frac: float = MIN_UNIQUE_FRAC, min_spread: float = MIN_SPREAD) -> str:
    """Why ``scores`` cannot rank (non-finite, constant, near-constant: :func:`relative_spread` below
    ``min_spread``, or ties: fewer distinct values than ``min_unique_frac``), or '' when they can."""
    s = np.asarray(scores, dtype=np.float64)
    if not np.all(np.isfinite(s)):
        return "non-finite"
    if np.ptp(s) <= 1e-12 * max(1.0, float(np.abs(s).max())):
        return "constant"
    if relative_spread(s) < min_spread:
        return "near-constant"
    if len(np.unique(s)) < min_unique_frac * len(s):
        return "ties"
    return ""


def rank_quality(scores, target, min_unique_frac: float = MIN_UNIQUE_FRAC,
                 min_spread: float = MIN_SPREAD) -> Tuple[float, bool, str]:
    """(Kendall tau-b, valid, reason): invalid for non-finite, constant or near-constant scores
    (:func:`relative_spread` below ``min_spread``), or fewer distinct values than ``min_unique_frac``. A (k, N)
    matrix is a rank aggregate's k subtree scores: invalid when any subtree is, else judged by their
    :func:`~saswot_gp.primitives.rank.log_rank_aggregate` over the N architectures."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim == 2:
        if s.shape[1:] != np.shape(target):
            return INVALID, False, "shape"
        for j, row in enumerate(s):
            problem = score_problem(row, min_unique_frac, min_spread)
            if problem:
                return INVALID, False, f"subtree {j + 1}: {problem}"
        s = log_rank_aggregate(s).numpy()
    if s.shape != np.shape(target):
        return INVALID, False, "shape"
    problem = score_problem(s, min_unique_frac, min_spread)
    if problem:
        return INVALID, False, problem
    tau = kendall(s, target)
    if not math.isfinite(tau):
        return INVALID, False, "nan-tau"
    return float(tau), True, ""


class ProxyEvaluator:
    """Scores token lists on one packed split and returns rank quality (picklable: Dask workers hold a copy)."""

    def __init__(self, packed, target: Sequence[float], min_unique_frac: float = MIN_UNIQUE_FRAC):
        self.packed = packed
        self.target = np.asarray(target, dtype=np.float64)
        self.min_unique_frac = min_unique_frac

    def scores(self, tokens: Sequence[str]) -> np.ndarray:
        """Raw scores of the proxy for every packed architecture (a rank aggregate: over the whole split)."""
        with torch.no_grad():
            return Proxy(tokens).evaluate(self.packed).numpy()

    def values(self, tokens: Sequence[str]) -> np.ndarray:
        """What fixes the proxy's ranking of any subset of the split: its scores, or for a rank aggregate the
        (k, N) matrix of its subtrees' scores (aggregated where the set ranked is known: :meth:`judge`,
        :meth:`Resampler.fitness`)."""
        with torch.no_grad():
            p = Proxy(tokens)
            return p.evaluate_parts(self.packed).numpy() if p.is_ranked else p.evaluate(self.packed).numpy()

    def judge(self, scores) -> Tuple[float, bool, str]:
        """Rank quality of precomputed scores (or a rank aggregate's subtree scores) against this split's target."""
        return rank_quality(scores, self.target, self.min_unique_frac)

    def __call__(self, tokens: Sequence[str]) -> Tuple[float, bool, str]:
        try:
            s = self.values(tokens)
        except NUMERICAL_ERRORS as exc:
            return INVALID, False, f"error: {type(exc).__name__}"
        return self.judge(s)


FITNESS_AGGREGATES = ("mean", "min")


class MultiEvaluator:
    """Fitness over several benchmarks: the mean or the minimum of their training Kendall tau.

    ``evaluators`` maps a benchmark name to its :class:`ProxyEvaluator` (each with its own statistics,
    batch and split). A candidate invalid on any benchmark is invalid (the reason names the benchmark).
    """

    def __init__(self, evaluators: Dict[str, "ProxyEvaluator"], how: str = "mean", keep_scores: bool = False):
        if how not in FITNESS_AGGREGATES:
            raise ValueError(f"fitness aggregate {how!r}; expected one of {FITNESS_AGGREGATES}")
        if not evaluators:
            raise ValueError("MultiEvaluator needs at least one benchmark")
        self.evaluators = dict(evaluators)
        self.how = how
        self.keep_scores = keep_scores  # also return every benchmark's scores (for a Resampler)

    def per_benchmark(self, tokens: Sequence[str]) -> Dict[str, Tuple[float, bool, str]]:
        """(tau, valid, reason) of ``tokens`` on every benchmark."""
        return {name: ev(tokens) for name, ev in self.evaluators.items()}

    def __call__(self, tokens: Sequence[str]) -> tuple:
        """(aggregated training tau, valid, reason), and with ``keep_scores`` a fourth item: {benchmark: the ranks
        of the scores} as float32 (None when invalid); for a rank aggregate, the ranks of each subtree's scores, a
        (k, N) matrix, so that a subset is ranked by the aggregate recomputed on it."""
        out = self._judge(tokens)
        return out if self.keep_scores else out[:3]

    def _judge(self, tokens: Sequence[str]) -> tuple:
        taus, scored = [], {}
        for name, ev in self.evaluators.items():
            key = id(ev.packed)  # benchmarks that share architectures and batch share statistics: score once
            if key not in scored:
                try:
                    scored[key] = ev.values(tokens)
                except NUMERICAL_ERRORS as exc:
                    return INVALID, False, f"{name}: error: {type(exc).__name__}", None
            tau, valid, reason = ev.judge(scored[key])
            if not valid:
                return INVALID, False, f"{name}: {reason}", None
            taus.append(tau)
        tau = float(np.mean(taus)) if self.how == "mean" else float(np.min(taus))
        if not self.keep_scores:
            return tau, True, "", None
        ranks = {key: rankdata(v, axis=-1).astype(np.float32) for key, v in scored.items()}  # exact in float32, unlike scores
        return tau, True, "", {name: ranks[id(ev.packed)] for name, ev in self.evaluators.items()}


class Resampler:
    """EZNAS-style fitness: every generation, each benchmark's Kendall tau on a fresh random subset of its
    training architectures (a fraction ``frac``; the draw depends only on ``seed`` and the generation, so a
    resumed run draws what the uninterrupted one drew), aggregated across benchmarks (mean or min). A proxy
    that only fits the quirks of a few architectures cannot stay on top for long."""

    def __init__(self, targets: Dict[str, Sequence[float]], frac: float, seed: int, how: str = "mean"):
        if not 0 < frac <= 1:
            raise ValueError(f"resampled fraction {frac}; expected 0 < fraction <= 1")
        self.targets = {k: np.asarray(v, dtype=np.float64) for k, v in targets.items()}
        self.frac, self.seed, self.how = frac, seed, how
        self._gen: Optional[int] = None
        self._subsets: Dict[str, np.ndarray] = {}

    def subsets(self, gen: int) -> Dict[str, np.ndarray]:
        """Per benchmark, the sorted indices of the training architectures that generation ``gen`` scores on."""
        if gen != self._gen:
            out = {}
            for i, (name, t) in enumerate(self.targets.items()):
                rng = np.random.default_rng([self.seed, gen, i])
                n = max(4, int(round(self.frac * len(t))))
                out[name] = np.sort(rng.choice(len(t), size=min(n, len(t)), replace=False))
            self._gen, self._subsets = gen, out
        return self._subsets

    def fitness(self, scores: Dict[str, np.ndarray], gen: int) -> float:
        """The aggregated Kendall tau of ``scores`` on generation ``gen``'s subsets (NaN if undefined). A (k, N)
        matrix (a rank aggregate's subtree scores or ranks) is aggregated over each subset itself: ranks are
        taken within the subset, not sliced from the whole split's aggregate."""
        taus = []
        for name, idx in self.subsets(gen).items():
            s = np.asarray(scores[name])
            sub = log_rank_aggregate(s[:, idx]).numpy() if s.ndim == 2 else s[idx]
            tau = kendall(sub, self.targets[name][idx])
            if not math.isfinite(tau):
                return math.nan
            taus.append(tau)
        return float(np.mean(taus)) if self.how == "mean" else float(np.min(taus))


class FitnessCache:
    """Fitness by canonical key: algebraically equal or rank-equivalent proxies are evaluated once.

    Stored tau is for sign +1 of the key; a proxy with sign -1 gets -tau.
    """

    def __init__(self):
        self.entries: Dict[str, Tuple[float, bool]] = {}
        self.scores: Dict[str, dict] = {}  # key -> {benchmark: scores of the sign-+1 form}; memory only
        # key -> (tokens, sign) of the form that was evaluated, kept when scores are: a resumed run refills its
        # scores from that very form (another form of the key may fail numerically where it did not)
        self.forms: Dict[str, Tuple[List[str], int]] = {}

    def lookup(self, key: str, sign: int) -> Optional[Tuple[float, bool]]:
        """Cached (tau, valid) for a key and sign, or None."""
        e = self.entries.get(key)
        if e is None:
            return None
        tau, valid = e
        return (sign * tau if valid else INVALID), valid

    def store(self, key: str, sign: int, tau: float, valid: bool) -> None:
        """Record the tau measured for a proxy whose key has ``sign``."""
        self.entries[key] = ((sign * tau) if valid else INVALID, valid)

    def to_json(self) -> List:
        """Serializable form for checkpoints."""
        return [[k, v[0], v[1], *self.forms.get(k, ())] for k, v in self.entries.items()]

    @classmethod
    def from_json(cls, rows) -> "FitnessCache":
        """Inverse of :meth:`to_json`."""
        c = cls()
        c.entries = {str(r[0]): (float(r[1]), bool(r[2])) for r in rows}
        c.forms = {str(r[0]): ([str(t) for t in r[3]], int(r[4])) for r in rows if len(r) == 5}
        return c
