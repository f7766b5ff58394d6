"""Measures read from weight gradients: SNIP, gradient norm, plain, Fisher, GraSP, SynFlow and ZiCo.

Functions ``fn(model, images, labels, **opts) -> float``, registered by :mod:`saswot_gp.zerocost.measures`.
"""

from __future__ import annotations

import copy
import math
from typing import List

import numpy as np
import torch
from torch import nn

from ..stats import segmentation_loss
from .passes import _grad_pass, _layer_sum, _logits, _shared, _train_copy, _weight_layers


def snip(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, **opts) -> float:
    """SNIP (Lee et al. 2019): sum over layers of sum |W * dL/dW|."""
    return _layer_sum((r["w"] * r["g"]).abs() for r in _grad_pass(model, images, labels, _shared(opts)))


def grad_norm(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, **opts) -> float:
    """Gradient norm (Abdelfattah et al. 2021): sum over layers of ||dL/dW||_2."""
    return _layer_sum(r["g"].double().norm() for r in _grad_pass(model, images, labels, _shared(opts)))


def plain(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, **opts) -> float:
    """Plain (NASLib / Mozer & Smolensky): sum over layers of sum W * dL/dW (signed)."""
    return _layer_sum(r["w"] * r["g"] for r in _grad_pass(model, images, labels, _shared(opts)))


def fisher(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, **opts) -> float:
    """Fisher (Theis et al. 2018): per output channel 0.5 * mean_n (sum_hw a * dL/da)^2 of each layer output.

    As NASLib, each channel's value is broadcast to the channel's weights before summing, i.e. it is
    weighted by the layer's fan-in (``prod(weight.shape[1:])``).
    """
    total = 0.0
    for r in _grad_pass(model, images, labels, _shared(opts)):
        total += float(r["fisher"].sum()) * int(np.prod(r["w"].shape[1:]))
    return total


def grasp(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, **opts) -> float:
    """GraSP (Wang et al. 2020): sum over layers of sum -W * (H g), H g the Hessian-gradient product."""
    net = _train_copy(model, _shared(opts))
    weights = [m.weight for m in _weight_layers(net)]
    g = torch.autograd.grad(segmentation_loss(net(images), labels), weights, allow_unused=True)
    gf = torch.autograd.grad(segmentation_loss(net(images), labels), weights, create_graph=True, allow_unused=True)
    terms = [(a.detach() * b).sum() for a, b in zip(g, gf) if a is not None and b is not None]
    if not terms:
        return math.nan
    hg = torch.autograd.grad(torch.stack(terms).sum(), weights, allow_unused=True)
    return _layer_sum(-w.detach() * h for w, h in zip(weights, hg) if h is not None)


def synflow(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, **opts) -> float:
    """log SynFlow (Tanaka et al. 2020): log sum |W * dR/dW|, R = sum of the output of |W| on an all-ones input.

    As NASLib: a copy with every parameter and buffer made absolute, BatchNorm bypassed (identity),
    double precision, one all-ones image of the batch's shape; the log is NASLib's reported form.
    """
    net = copy.deepcopy(model)
    for mod in list(net.modules()):
        for name, child in list(mod._modules.items()):
            if isinstance(child, nn.modules.batchnorm._BatchNorm):
                mod._modules[name] = nn.Identity()
    net = net.double().eval()
    with torch.no_grad():
        for t in list(net.parameters()) + list(net.buffers()):
            if t.is_floating_point():
                t.abs_()
    x = torch.ones((1,) + tuple(images.shape[1:]), dtype=torch.float64, device=images.device)
    _logits(net(x)).sum().backward()
    s = _layer_sum((m.weight.detach() * m.weight.grad).abs() for m in _weight_layers(net) if m.weight.grad is not None)
    return math.log(s) if s > 0 else math.nan


def zico(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, splits: int = 2, **opts) -> float:
    """ZiCo (Li et al. 2023): sum over layers of log sum_theta mean_b|g_b| / std_b(g_b).

    ``g_b`` is the weight gradient on mini-batch ``b``; the batch is split into ``splits`` (>= 2)
    mini-batches; weights whose gradient has zero deviation are skipped, as in the official code.
    """
    n = images.shape[0]
    splits = int(splits)
    if splits < 2 or n < splits:
        return math.nan
    net = _train_copy(model, _shared(opts))
    layers = _weight_layers(net)
    grads: List[List[torch.Tensor]] = [[] for _ in layers]
    for idx in torch.tensor_split(torch.arange(n), splits):
        net.zero_grad(set_to_none=True)
        segmentation_loss(net(images[idx]), labels[idx]).backward()
        for i, m in enumerate(layers):
            g = m.weight.grad
            grads[i].append(g.detach().reshape(-1).double().clone() if g is not None else torch.zeros(m.weight.numel(), dtype=torch.float64))
    net.zero_grad(set_to_none=True)
    total = 0.0
    for gl in grads:
        mean = sum(gl) / len(gl)
        std = (sum((g - mean).square() for g in gl) / len(gl)).sqrt()   # row-wise ops: fast on CPU
        mean_abs = sum(g.abs() for g in gl) / len(gl)
        nz = std > 0
        s = float((mean_abs[nz] / std[nz]).sum())
        if s > 0:
            total += math.log(s)
    return total

