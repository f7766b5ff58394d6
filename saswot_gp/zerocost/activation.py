"""Measures read from activations and input Jacobians: Jacobian covariance, NASWOT and SWAP (with
:func:`swap_saturation`, which says when swap scores of a batch cannot rank).

Functions ``fn(model, images, labels, **opts) -> float``, registered by :mod:`saswot_gp.zerocost.measures`.
"""

from __future__ import annotations

import math
from typing import List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from ..spaces.base import forward_with_hooks
from .passes import _logits, _shared, _train_copy

NWOT_LAYERS: Tuple[type, ...] = (nn.ReLU, nn.ReLU6, nn.LeakyReLU)   # NASLib hooks every '*ReLU*' module
SWAP_LAYERS: Tuple[type, ...] = (nn.ReLU, nn.ReLU6)                  # SWAP hooks nn.ReLU outputs
SWAP_ADVICE_BATCH = 32              # batch size suggested when swap saturates (2^32 patterns)


def jacov(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, **opts) -> float:
    """Jacobian covariance (Mellor et al. 2020, NASLib form): -sum(log(v + k) + 1/(v + k)), k = 1e-5.

    ``v`` are the eigenvalues of the correlation matrix of the per-sample input Jacobians of the
    summed output logits (training mode, as NASLib).
    """
    net = _train_copy(model, _shared(opts))
    x = images.detach().clone().requires_grad_(True)
    (jac,) = torch.autograd.grad(_logits(net(x)).sum(), x)
    j = jac.reshape(jac.shape[0], -1).double().cpu().numpy()
    if j.shape[0] < 2:
        return math.nan
    with np.errstate(all="ignore"):
        corr = np.corrcoef(j)
    if not np.all(np.isfinite(corr)):
        return math.nan
    v = np.linalg.eigvalsh(corr)
    k = 1e-5
    return float(-np.sum(np.log(v + k) + 1.0 / (v + k)))


def nwot(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, **opts) -> float:
    """NASWOT (Mellor et al. 2021, v2): log|K|, K_ij = number of equal bits of the ReLU binary codes of samples i, j.

    Codes are ``input > 0`` of every ReLU / ReLU6 / LeakyReLU module (NASLib hooks every '*ReLU*'
    module); K sums x x^T + (1 - x)(1 - x)^T over layers (N - Hamming distance).
    """
    net = _train_copy(model, _shared(opts))
    n = images.shape[0]
    kern = torch.zeros(n, n, dtype=torch.float64)

    def hook(mod, inp, out):
        x = (inp[0].detach().reshape(n, -1) > 0).double().cpu()
        kern.add_(x @ x.T).add_((1.0 - x) @ (1.0 - x).T)

    if not forward_with_hooks(net, images, NWOT_LAYERS, hook):
        return math.nan
    sign, logdet = np.linalg.slogdet(kern.numpy())
    return float(logdet) if sign != 0 else math.nan


def _pack_bits(bits: torch.Tensor) -> torch.Tensor:
    """(positions, N) booleans -> (positions, ceil(N / 62)) int64 codes (62 bits a word)."""
    n = bits.shape[1]
    words = []
    for start in range(0, n, 62):
        chunk = bits[:, start:start + 62].long()
        pw = torch.pow(2, torch.arange(chunk.shape[1], dtype=torch.int64, device=bits.device))
        words.append((chunk * pw).sum(1))
    return torch.stack(words, 1)


def swap(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, **opts) -> float:
    """SWAP (Peng et al. 2024): number of distinct sample-wise activation patterns.

    Each post-ReLU unit (every channel and position of every 4-D ReLU output) gives one binary
    vector ``out > 0`` over the N samples; the score counts the distinct vectors over all units.
    No parameter regularisation. The count is at most 2^N: with few images every network with
    enough units reaches it and the score no longer ranks anything (:func:`swap_saturation` says so;
    use a batch of 16 or more, 32 in this project's results). A network without a 4-D ReLU / ReLU6
    output has no patterns: ``ValueError`` (NaN from the registered measure, the reason in
    ``compute_measures``' ``errors``).
    """
    net = _train_copy(model, _shared(opts))
    n = images.shape[0]
    codes: List[torch.Tensor] = []

    def hook(mod, inp, out):
        if isinstance(out, torch.Tensor) and out.dim() == 4:
            bits = (out.detach().reshape(n, -1) > 0).T
            codes.append(torch.unique(_pack_bits(bits), dim=0))

    hooked = forward_with_hooks(net, images, SWAP_LAYERS, hook)
    if not codes:
        raise ValueError(f"no activation patterns: the network has {hooked} nn.ReLU / nn.ReLU6 modules "
                         f"and none gave a 4-D output")
    return float(torch.unique(torch.cat(codes), dim=0).shape[0])


def swap_saturation(scores, n_images: int) -> Optional[str]:
    """Why swap scores of a batch of ``n_images`` cannot rank, or None: how many reach the ceiling 2^n_images.

    ``scores`` is one swap score or several (NaN ones are left out). The text starts with
    'saturated:' and suggests a larger ``--batch-size``.
    """
    s = np.atleast_1d(np.asarray(scores, dtype=np.float64))
    s = s[np.isfinite(s)]
    ceiling = 2.0 ** int(n_images)
    at = int((s >= ceiling).sum())
    if at == 0:
        return None
    who = (f"all {at} architectures show" if at == len(s) and at > 1 else
           "the architecture shows" if at == len(s) else f"{at} of {len(s)} architectures show")
    return (f"saturated: {who} all {ceiling:.0f} = 2^{int(n_images)} activation patterns that {int(n_images)} "
            f"images allow; use --batch-size {SWAP_ADVICE_BATCH} or more")

