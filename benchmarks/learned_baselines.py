"""Learned combinations of hand-designed proxies: the baseline a user with a few dozen trained networks would fit.

Ridge regression on the proxies' ranks, and gradient boosting (depth 2) on the same ranks, fitted on exactly the
training architectures an evolution sees, their one setting (ridge alpha, number of boosting rounds) chosen on
the validation part, reported on the held-out part. Features are ranks scaled to [0, 1] within each part (a
proxy that fails on an architecture ranks it last); the target is the training part's rank-scaled ground truth,
so several benchmarks pool (LOBO: ranks taken within each benchmark). Used by ``generalise.py``'s reports.
"""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np

RIDGE_ALPHAS = (0.01, 0.1, 1.0, 10.0, 100.0)
GBM_ROUNDS = (25, 50, 100, 200)


def rank_features(cols: Sequence[np.ndarray]) -> np.ndarray:
    """(n, proxies) ranks scaled to [0, 1] within the part; NaN and infinities rank lowest."""
    from scipy.stats import rankdata
    out = []
    for c in cols:
        c = np.asarray(c, dtype=float)
        r = rankdata(np.where(np.isfinite(c), c, -np.inf))
        out.append((r - 1) / max(len(c) - 1, 1))
    return np.stack(out, axis=1)


def _target(t: np.ndarray) -> np.ndarray:
    return rank_features([t])[:, 0]


def _model(kind: str, setting):
    if kind == "ridge":
        from sklearn.linear_model import Ridge
        return Ridge(alpha=setting)
    from sklearn.ensemble import GradientBoostingRegressor
    return GradientBoostingRegressor(max_depth=2, n_estimators=setting, learning_rate=0.05, subsample=0.8,
                                     random_state=0)


def fit_choose(kind: str, train: List[Tuple[np.ndarray, np.ndarray]], val: List[Tuple[np.ndarray, np.ndarray]]):
    """Fit ``kind`` ('ridge' or 'gbm') on the pooled ``train`` parts ((features, target) per benchmark) for every
    setting; return (model, setting, mean validation Kendall over the ``val`` parts) of the best setting."""
    from saswot_gp.ranking import kendall
    X = np.concatenate([x for x, _ in train])
    y = np.concatenate([_target(t) for _, t in train])
    best = None
    for setting in (RIDGE_ALPHAS if kind == "ridge" else GBM_ROUNDS):
        m = _model(kind, setting).fit(X, y)
        v = float(np.mean([kendall(m.predict(x), t) for x, t in val]))
        if best is None or v > best[2]:
            best = (m, setting, v)
    return best


def learned_rows(train, val, test: Tuple[np.ndarray, np.ndarray]) -> Dict[str, dict]:
    """Held-out Kendall of ridge and gradient boosting, each with its setting chosen on validation."""
    from saswot_gp.ranking import kendall
    out = {}
    for kind in ("ridge", "gbm"):
        m, setting, v = fit_choose(kind, train, val)
        out[kind] = {"setting": setting, "val_kendall": v, "heldout_kendall": float(kendall(m.predict(test[0]), test[1]))}
    return out
