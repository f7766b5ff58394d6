"""The registry of zero-cost measures: :func:`register_measure` (NaN-safe wrapping), :func:`measure_names`
(registration order) and :func:`get_measure`."""

from __future__ import annotations

import functools
import math
from typing import Callable, Dict, List

import torch
from torch import nn

from ..errors import NUMERICAL_ERRORS, SaswotError
from ..stats.collect import gradients_on

MeasureFn = Callable[..., float]
_MEASURES: Dict[str, MeasureFn] = {}
_RAW: Dict[str, MeasureFn] = {}


def _finite(value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError, OverflowError):
        return math.nan
    return v if math.isfinite(v) else math.nan


def register_measure(name: str) -> Callable[[MeasureFn], MeasureFn]:
    """Decorator registering ``fn(model, images, labels, **opts) -> float`` under ``name`` (NaN-safe)."""
    def deco(fn: MeasureFn) -> MeasureFn:
        if name in _MEASURES:
            raise ValueError(f"zero-cost measure {name!r} is already registered")

        @functools.wraps(fn)
        def safe(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, **opts) -> float:
            try:
                with gradients_on(images, labels) as (x, y):
                    return _finite(fn(model, x, y, **opts))
            except SaswotError:
                raise
            except NUMERICAL_ERRORS:
                return math.nan

        safe.raw = fn  # type: ignore[attr-defined]
        _MEASURES[name] = safe
        _RAW[name] = fn
        return safe
    return deco


def measure_names() -> List[str]:
    """Names of all registered measures, in registration order."""
    return list(_MEASURES)


def get_measure(name: str) -> MeasureFn:
    """The NaN-safe registered measure ``name`` (SaswotError listing the known names if unknown)."""
    if name not in _MEASURES:
        raise SaswotError(f"unknown zero-cost measure {name!r}; expected one of {', '.join(_MEASURES)}")
    return _MEASURES[name]

