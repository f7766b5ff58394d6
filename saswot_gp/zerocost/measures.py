"""Hand-designed zero-cost proxies computed on a live segmenter and one batch, registered by name.

Every measure is ``fn(model, images, labels, **opts) -> float`` registered with
:func:`register_measure` (the NASLib / Samsung "foresight" convention). The model is never changed:
a measure that runs the network in training mode, changes weights or hooks modules works on a
``copy.deepcopy``; the others only read it. Conventions (NASLib's, where it has the measure):

* weight layers are ``nn.Conv2d`` and ``nn.Linear`` (NASLib's ``get_layer_metric_array``; transposed
  convolutions are not included), and a per-weight score is aggregated as the sum over layers of
  its sum over the layer's elements;
* gradients come from one forward and one backward of :func:`segmentation_loss` (pixel-wise
  cross-entropy, ignore 255) on the whole batch in training mode (batch-statistics BatchNorm);
* ``synflow`` is reported as ``log`` of the SynFlow sum, as NASLib's ``ZeroCost`` predictor does.

Registered: ``snip grasp synflow fisher grad_norm jacov nwot zen zico swap l2_norm plain params flops``.
A measure that fails numerically (NaN, inf, singular kernel, linear-algebra error) returns NaN;
a user error (labels outside the model's classes) raises :class:`SaswotError`.

The measures live in modules by what they read (:mod:`.gradient`, :mod:`.activation`, :mod:`.zen`,
:mod:`.size`; shared passes in :mod:`.passes`, the registry in :mod:`.registry`); this module registers
them in one place, in a fixed order (the order of :func:`measure_names` and of result tables), and
runs them together (:func:`compute_measures`).
"""

from __future__ import annotations

import math
import time
from typing import Dict, Optional, Sequence

import torch
from torch import nn

from ..errors import NUMERICAL_ERRORS, SaswotError
from ..stats.collect import gradients_on
from .activation import NWOT_LAYERS, SWAP_ADVICE_BATCH, SWAP_LAYERS, swap_saturation
from .activation import jacov as _jacov, nwot as _nwot, swap as _swap
from .gradient import (fisher as _fisher, grad_norm as _grad_norm, grasp as _grasp, plain as _plain, snip as _snip,
                       synflow as _synflow, zico as _zico)
from .passes import WEIGHT_LAYERS, _check_batch
from .registry import _RAW, MeasureFn, _finite, get_measure, measure_names, register_measure
from .size import flops as _flops, l2_norm as _l2_norm, params as _params
from .zen import ZEN_BN_STATS
from .zen import zen as _zen

__all__ = ["MeasureFn", "NWOT_LAYERS", "SWAP_ADVICE_BATCH", "SWAP_LAYERS", "WEIGHT_LAYERS", "ZEN_BN_STATS",
           "compute_measures", "fisher", "flops", "get_measure", "grad_norm", "grasp", "jacov", "l2_norm",
           "measure_names", "nwot", "params", "plain", "register_measure", "snip", "swap", "swap_saturation",
           "synflow", "zen", "zico"]

# ------------------------------------------------------------------- registration (order matters)

snip = register_measure("snip")(_snip)
grad_norm = register_measure("grad_norm")(_grad_norm)
plain = register_measure("plain")(_plain)
fisher = register_measure("fisher")(_fisher)
grasp = register_measure("grasp")(_grasp)
synflow = register_measure("synflow")(_synflow)
jacov = register_measure("jacov")(_jacov)
nwot = register_measure("nwot")(_nwot)
swap = register_measure("swap")(_swap)
zico = register_measure("zico")(_zico)
zen = register_measure("zen")(_zen)
l2_norm = register_measure("l2_norm")(_l2_norm)
params = register_measure("params")(_params)
flops = register_measure("flops")(_flops)


# ---------------------------------------------------------------------------------------- driver

def compute_measures(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                     names: Optional[Sequence[str]] = None, seed: int = 0,
                     times: Optional[Dict[str, float]] = None,
                     errors: Optional[Dict[str, str]] = None) -> Dict[str, float]:
    """Several measures (all registered by default) on one model and batch; NaN where one fails.

    Measures share one training-mode copy of the model and one gradient pass (snip, grad_norm, plain,
    fisher). ``times`` (if given) receives seconds per measure (a shared pass counts for the first
    measure that needs it); ``errors`` receives the exception text of measures that failed.
    """
    names = list(measure_names() if names is None else names)
    for n in names:
        get_measure(n)
    _check_batch(images, labels)
    shared: dict = {}
    out: Dict[str, float] = {}
    with torch.random.fork_rng(devices=[]), gradients_on(images, labels) as (images, labels):
        torch.manual_seed(int(seed))
        for n in names:
            t0 = time.perf_counter()
            try:
                out[n] = _finite(_RAW[n](model, images, labels, seed=int(seed), _shared=shared))
            except SaswotError:
                raise
            except NUMERICAL_ERRORS as exc:
                out[n] = math.nan
                if errors is not None:
                    errors[n] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            if times is not None:
                times[n] = time.perf_counter() - t0
    return out
