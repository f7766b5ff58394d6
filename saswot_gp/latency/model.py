"""The calibration of a latency table: a small linear model that turns an arch's table entries into its latency.

The plain prediction is the sum of the entries of an arch's parts (stem, one per layer, head), each timed alone.
A whole network runs slower than that sum (its own forward overhead; caches that a part timed alone keeps warm;
operators that suffer more than others), so a calibration fitted on measured whole networks
(:func:`saswot_gp.latency.calibrate.calibrate_lut`) predicts::

    latency_ms = sum_f coefficient_f * feature_f(arch)

with features computed from the arch's LUT entries only (no timing at prediction time):

* ``1``: the intercept, a per-network overhead in ms;
* ``ms:GROUP``: the sum of the entry ms of the arch's parts in GROUP (its coefficient is a scale);
* ``ms:all``: the sum of all the arch's entries (the plain prediction);
* ``n:GROUP``: how many of the arch's parts are in GROUP (its coefficient is an overhead in ms per part);
* ``gmacs``: the arch's multiply-accumulates in billions, summed from its entries (its coefficient is ms per
  GMAC that the whole network costs beyond its parts timed alone: with ONNX Runtime, networks heavy in compute
  ran slower than their parts suggest, benchmarks/RESULTS.md).

Each part is in exactly one group (:func:`part_group`, from its key): ``ends`` (the stem and the head; the
stem is the same in every network of a table), ``down`` (a layer with stride 2, whatever its operator: one or two
per network) or the operator of a stride-1 layer (``c3``, ``c33``, ``zc``, ``dc``, ``dw``, ``ir``, ``sk``).
The coefficients are non-negative (non-negative least squares on relative errors); the model is stored in the
table's JSON under ``"calibration"`` with the features by name, so nothing in a file is executed.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple

from ..errors import SaswotError
from ..spaces.realtime_ops import OPS

GROUPS: Tuple[str, ...] = ("ends",) + tuple(OPS) + ("down",)
LAYER_GROUPS: Tuple[str, ...] = tuple(OPS) + ("down",)
# the models calibrate_lut can fit, by name; "scale" is the default
FEATURE_SETS: Dict[str, Tuple[str, ...]] = {
    "affine": ("1", "ms:all"),                                                      # 2 coefficients
    "scale": ("1",) + tuple(f"ms:{g}" for g in GROUPS),                              # 10 coefficients
    "scale+overhead": tuple(f"ms:{g}" for g in GROUPS) + tuple(f"n:{g}" for g in LAYER_GROUPS),  # 17
    "scale+macs": ("1",) + tuple(f"ms:{g}" for g in GROUPS) + ("gmacs",),            # 11
}
# chosen on validation networks (seed 2000), never on the reported checks (seed 0): benchmarks/RESULTS.md
DEFAULT_FEATURES = "scale+macs"

Parts = Sequence[Tuple[str, float, float]]  # (LUT key, entry ms, entry MACs) of each part of an arch, in order


def part_group(key: str) -> str:
    """The group of a LUT key: 'ends' (stem, head), 'down' (a stride-2 layer) or a stride-1 layer's operator."""
    kind = key.split(":", 1)[0]
    if kind in ("stem", "head"):
        return "ends"
    fields = key.split(":")
    if kind != "layer" or len(fields) != 6:
        raise SaswotError(f"latency table key {key!r} is not a stem, layer or head key")
    return "down" if fields[4] == "2" else fields[1]


def check_feature(name: object) -> str:
    """``name`` if it is a feature this module computes, else a one-line SaswotError."""
    if name in ("1", "ms:all", "gmacs"):
        return str(name)
    if isinstance(name, str) and ":" in name:
        kind, group = name.split(":", 1)
        if kind in ("ms", "n") and group in GROUPS:
            return name
    raise SaswotError(f"unknown calibration feature {name!r}; expected '1', 'ms:all', 'gmacs', 'ms:GROUP' or "
                      f"'n:GROUP' with GROUP in {list(GROUPS)}")


def feature_set(name: str) -> Tuple[str, ...]:
    """The features of the named model (:data:`FEATURE_SETS`), or a one-line SaswotError."""
    try:
        return FEATURE_SETS[name]
    except KeyError:
        raise SaswotError(f"unknown calibration model {name!r}; expected one of {list(FEATURE_SETS)}") from None


def design_row(features: Sequence[str], parts: Parts) -> List[float]:
    """The value of each feature for an arch whose parts are ``parts``."""
    ms: Dict[str, float] = {}
    count: Dict[str, int] = {}
    macs = 0.0
    for key, value, part_macs in parts:
        g = part_group(key)
        ms[g] = ms.get(g, 0.0) + float(value)
        count[g] = count.get(g, 0) + 1
        macs += float(part_macs)
    row = []
    for f in features:
        if f == "1":
            row.append(1.0)
        elif f == "gmacs":
            row.append(macs / 1e9)
        elif f == "ms:all":
            row.append(float(sum(ms.values())))
        else:
            kind, group = f.split(":", 1)
            row.append(float(ms.get(group, 0.0) if kind == "ms" else count.get(group, 0)))
    return row


def neutral(feature: str) -> float:
    """The coefficient that leaves a feature as the plain sum has it: 1 for a sum of ms, 0 for the rest."""
    return 1.0 if feature.startswith("ms:") else 0.0


def fit(features: Sequence[str], rows: Sequence[Parts], measured: Sequence[float]) -> Tuple[List[float], List[str]]:
    """Non-negative least squares of ``measured`` on the features of ``rows``, each residual relative to its
    measurement (the fit minimises the sum of squared relative errors).

    Returns (coefficients, unfitted): a feature that is zero in every row cannot be fitted; it keeps its
    :func:`neutral` coefficient and is listed in ``unfitted``."""
    import numpy as np
    features = [check_feature(f) for f in features]
    y = np.asarray(measured, dtype=float)
    if len(rows) != len(y) or len(y) < len(features) + 2:
        raise SaswotError(f"a calibration with {len(features)} coefficients needs at least {len(features) + 2} "
                          f"measured networks, got {len(y)}")
    if not np.all(np.isfinite(y)) or np.any(y <= 0):
        raise SaswotError("calibration needs positive, finite measured latencies")
    x = np.asarray([design_row(features, parts) for parts in rows], dtype=float)
    present, solution = nnls_relative(x, y)
    coef = [neutral(f) for f in features]
    for j, c in zip(present, solution):
        coef[j] = float(c)
    return coef, [features[j] for j in range(len(features)) if j not in present]


def nnls_relative(x, y) -> Tuple[List[int], List[float]]:
    """Non-negative least squares of ``y`` on the columns of the design matrix ``x`` that are not zero in every
    row, each residual relative to its ``y`` (the solver of :func:`fit`): (those columns, their coefficients)."""
    import numpy as np
    from scipy.optimize import nnls
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    present = [j for j in range(x.shape[1]) if np.any(x[:, j] != 0)]
    w = 1.0 / y
    solution, _ = nnls(x[:, present] * w[:, None], y * w)
    return present, [float(c) for c in solution]


class Calibration:
    """A fitted linear model of whole-network latency over LUT features (see the module's docstring).

    ``info`` holds what documents the fit (sample, seed, residuals, ...); only ``features`` and ``coefficients``
    take part in predictions."""

    def __init__(self, features: Sequence[str], coefficients: Sequence[float],
                 info: Optional[Dict[str, object]] = None):
        self.features = [check_feature(f) for f in features]
        self.coefficients = [float(c) for c in coefficients]
        if len(self.features) != len(self.coefficients):
            raise SaswotError(f"calibration has {len(self.features)} features but {len(self.coefficients)} "
                              f"coefficients")
        self.info: Dict[str, object] = dict(info or {})

    def predict(self, parts: Parts) -> float:
        """Predicted latency (ms) of an arch whose parts are ``parts``."""
        return float(sum(c * v for c, v in zip(self.coefficients, design_row(self.features, parts))))

    def model(self) -> Dict[str, object]:
        """What predictions depend on: features and coefficients."""
        return {"features": list(self.features), "coefficients": list(self.coefficients)}

    def to_json(self) -> Dict[str, object]:
        """The JSON object stored under the table's ``"calibration"``."""
        doc = dict(self.info)
        doc.update(self.model())
        return doc

    @classmethod
    def from_json(cls, doc: object, where: str = "latency table") -> "Calibration":
        """Validate a stored calibration (one-line SaswotError naming what is wrong)."""
        if not isinstance(doc, dict):
            raise SaswotError(f"{where}: 'calibration' is not an object")
        feats, coefs = doc.get("features"), doc.get("coefficients")
        if not isinstance(feats, list) or not isinstance(coefs, list) or not feats:
            raise SaswotError(f"{where}: calibration needs lists 'features' and 'coefficients'")
        for c in coefs:
            if isinstance(c, bool) or not isinstance(c, (int, float)) or not math.isfinite(c):
                raise SaswotError(f"{where}: calibration coefficient {c!r} is not a finite number")
        try:
            return cls(feats, coefs, {k: v for k, v in doc.items() if k not in ("features", "coefficients")})
        except SaswotError as exc:
            raise SaswotError(f"{where}: {exc}") from None
