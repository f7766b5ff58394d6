"""The Zen-score measure, as the published Zen-NAS code computes it, and this project's earlier variant.

A function ``fn(model, images, labels, **opts) -> float``, registered by :mod:`saswot_gp.zerocost.measures`.
"""

from __future__ import annotations

import copy
import math
from typing import List, Optional, Tuple

import torch
from torch import nn

from ..errors import SaswotError
from .passes import _logits

ZEN_BN_STATS = ("running_var", "batch_var")


def zen(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, seed: int = 0, mixup_gamma: float = 1e-2,
        repeat: int = 1, bn_stat: str = "running_var", **opts) -> float:
    """Zen-score (Lin et al. 2021), as the published Zen-NAS code computes it (``compute_zen_score.py``).

    Per repeat, on a copy in training mode: every ``nn.Conv2d`` and ``nn.Linear`` weight is redrawn
    from N(0, 1) and its bias zeroed, ``nn.BatchNorm2d`` / ``nn.GroupNorm`` affine set to 1 / 0 (other
    layers, e.g. ``nn.ConvTranspose2d``, keep the caller's weights and biases); Gaussian x, e of the
    batch's shape; ``f`` is the segmenter's logit map (Zen-NAS's pre-pooling feature). The score is
    ``log mean_n ||f(x) - f(x + mixup_gamma e)||_1 + sum over nn.BatchNorm2d of log sqrt(mean running_var)``,
    the running variances being those left by the two forwards (each layer's own momentum, 0.1 by
    default: ``0.9 * 1 + 0.1 * unbiased batch var`` after the first). No layer is skipped: a BN whose
    running variance is 0 (``momentum=None`` and only zeros seen) or identical outputs make the raw
    value -inf, which the registered measure reports as NaN; so does a BN without running statistics.
    ``repeat`` > 1 averages the per-repeat scores, running statistics carrying over between repeats
    as in the reference. The copy's BN running statistics start from their reset values (mean 0,
    var 1), as on the freshly built networks the reference scores. Draws come from a
    ``torch.Generator`` seeded with ``seed``: per repeat the weights in module order, then x, then e.

    ``bn_stat="batch_var"`` is this project's earlier definition (Spearman 0.916 against the
    reference): the BN term uses each ``_BatchNorm`` layer's biased mini-batch variance of its input on
    x, layers fed only zeros are skipped, and every ``_ConvNd`` (transposed convolutions too) is redrawn.
    """
    if bn_stat not in ZEN_BN_STATS:
        raise SaswotError(f"zen: unknown bn_stat {bn_stat!r}; expected one of {', '.join(ZEN_BN_STATS)}")
    repeat = int(repeat)
    if repeat < 1:
        raise SaswotError(f"zen: repeat must be >= 1; got {repeat}")
    legacy = bn_stat == "batch_var"
    gen = torch.Generator().manual_seed(int(seed))
    net = copy.deepcopy(model)
    net.train()
    if not legacy:
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d) and m.track_running_stats:
                m.reset_running_stats()
    scores: List[float] = []
    for _ in range(repeat):
        score = _zen_repeat(net, images, gen, mixup_gamma, legacy)
        if score is None:
            return math.nan          # no running statistics: the reference's term is undefined
        scores.append(score)
    return sum(scores) / len(scores)


def _zen_layers(legacy: bool) -> Tuple[tuple, tuple, tuple]:
    """Module types whose weights are redrawn, whose affine is set to 1 / 0, and whose statistics enter the score."""
    redrawn = (nn.modules.conv._ConvNd, nn.Linear) if legacy else (nn.Conv2d, nn.Linear)
    affine = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm) if legacy else (nn.BatchNorm2d, nn.GroupNorm)
    bn_layers = (nn.modules.batchnorm._BatchNorm,) if legacy else (nn.BatchNorm2d,)
    return redrawn, affine, bn_layers


def _zen_redraw(net: nn.Module, redrawn: tuple, affine: tuple, gen: torch.Generator) -> None:
    """Weights of ``redrawn`` layers from N(0, 1) (in module order, from ``gen``), their biases 0; affine 1 / 0."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, redrawn):
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen))
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, affine) and m.weight is not None:
                m.weight.fill_(1.0)
                m.bias.zero_()


def _zen_repeat(net: nn.Module, images: torch.Tensor, gen: torch.Generator, mixup_gamma: float,
                legacy: bool) -> Optional[float]:
    """One repeat of :func:`zen` on the training-mode copy ``net``; None when a BN has no running statistics."""
    redrawn, affine, bn_layers = _zen_layers(legacy)
    _zen_redraw(net, redrawn, affine, gen)
    x = torch.randn(images.shape, generator=gen).to(images.device, images.dtype)
    e = torch.randn(images.shape, generator=gen).to(images.device, images.dtype)
    log_bn: List[float] = []

    def hook(mod, inp, out):
        v = inp[0].detach().double()
        dims = [d for d in range(v.dim()) if d != 1]
        var = float(v.var(dim=dims, unbiased=False).mean())
        if var > 0:                  # a BN fed only zeros (a dead branch) carries no signal: skipped
            log_bn.append(0.5 * math.log(var))

    handles = ([m.register_forward_hook(hook) for m in net.modules() if isinstance(m, bn_layers)]
               if legacy else [])
    try:
        with torch.no_grad():
            out = _logits(net(x)).double()
    finally:
        for h in handles:
            h.remove()
    with torch.no_grad():
        out2 = _logits(net(x + mixup_gamma * e)).double()
    delta = (out - out2).abs().reshape(out.shape[0], -1).sum(1).mean()
    if not legacy:
        for m in net.modules():
            if isinstance(m, bn_layers):
                if m.running_var is None:
                    return None
                log_bn.append(float(torch.log(m.running_var.double().mean().sqrt())))
    return float(torch.log(delta)) + sum(log_bn)
