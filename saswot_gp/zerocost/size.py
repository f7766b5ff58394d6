"""Measures of size, without gradients: weight norm (NASLib's l2_norm), parameters and MACs.

Functions ``fn(model, images, labels, **opts) -> float``, registered by :mod:`saswot_gp.zerocost.measures`.
"""

from __future__ import annotations

import torch
from torch import nn

from ..spaces.base import count_flops, count_params
from .passes import _layer_sum, _weight_layers


def l2_norm(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, **opts) -> float:
    """L2 norm (NASLib): sum over layers of ||W||_2 (no forward pass)."""
    return _layer_sum(m.weight.detach().double().norm() for m in _weight_layers(model))


def params(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, **opts) -> float:
    """Number of trainable parameters (``count_params``)."""
    return float(count_params(model))


def flops(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, **opts) -> float:
    """Multiply-accumulates of conv and linear layers for one image of the batch's size (``count_flops``)."""
    return float(count_flops(model, images[:1]))

