"""What the measures share: the weight layers, a training-mode copy of the model and the one gradient pass
(with Fisher terms) that several measures read, layer sums, and gradient-free forwards with hooks."""

from __future__ import annotations

import copy
from typing import Dict, Iterable, List, Tuple

import torch
from torch import nn

from ..errors import SaswotError
from ..stats import segmentation_loss

WEIGHT_LAYERS: Tuple[type, ...] = (nn.Conv2d, nn.Linear)


def _logits(out) -> torch.Tensor:
    if isinstance(out, dict):
        out = out["out"]
    if isinstance(out, (tuple, list)):
        out = out[0]
    return out


def _check_batch(images: torch.Tensor, labels: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        raise SaswotError(f"images must be a (N, C, H, W) tensor; got {getattr(images, 'shape', type(images))}")
    if not isinstance(labels, torch.Tensor) or labels.dim() != 3 or labels.shape[0] != images.shape[0]:
        raise SaswotError(f"labels must be a (N, H, W) tensor with N = {images.shape[0]}; "
                          f"got {getattr(labels, 'shape', type(labels))}")


def _shared(opts: dict) -> dict:
    """The per-call scratch space ``compute_measures`` shares between measures (a fresh one otherwise)."""
    s = opts.get("_shared")
    return s if isinstance(s, dict) else {}


def _train_copy(model: nn.Module, shared: dict) -> nn.Module:
    """A deepcopy of ``model`` in training mode with cleared gradients (shared by gradient measures)."""
    net = shared.get("train_copy")
    if net is None:
        net = copy.deepcopy(model)
        net.train()
        shared["train_copy"] = net
    net.zero_grad(set_to_none=True)
    return net


def _weight_layers(net: nn.Module) -> List[nn.Module]:
    return [m for m in net.modules() if isinstance(m, WEIGHT_LAYERS) and m.weight.requires_grad]


def _grad_pass(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, shared: dict) -> List[dict]:
    """One forward + backward of the loss in training mode: per weight layer W, dL/dW and Fisher terms.

    The Fisher term of output channel k is 0.5 * mean_n (sum_hw a * dL/da)^2 (Theis et al. 2018, as
    NASLib), obtained as the gradient of a per-(sample, channel) scale s = 1 put on the layer output.
    """
    if "grad_pass" in shared:
        return shared["grad_pass"]
    net = _train_copy(model, shared)
    layers = _weight_layers(net)
    probes: Dict[int, List[torch.Tensor]] = {}

    def hook(mod, inp, out):
        if not isinstance(out, torch.Tensor) or out.dim() < 2:
            return None
        s = torch.ones(out.shape[0], out.shape[1], *([1] * (out.dim() - 2)), dtype=out.dtype,
                       device=out.device, requires_grad=True)
        probes.setdefault(id(mod), []).append(s)
        return out * s

    handles = [m.register_forward_hook(hook) for m in layers]
    try:
        segmentation_loss(net(images), labels).backward()
    finally:
        for h in handles:
            h.remove()
    res = []
    for m in layers:
        w = m.weight.detach()
        g = m.weight.grad.detach().clone() if m.weight.grad is not None else torch.zeros_like(w)
        fisher = torch.zeros(w.shape[0], dtype=torch.float64, device=w.device)
        for s in probes.get(id(m), []):
            if s.grad is not None:
                fisher += 0.5 * s.grad.detach().reshape(s.shape[0], -1).double().pow(2).mean(0)
        res.append({"w": w, "g": g, "fisher": fisher})
    net.zero_grad(set_to_none=True)
    shared["grad_pass"] = res
    return res


def _layer_sum(values: Iterable[torch.Tensor]) -> float:
    """Sum over layers of the sum of each layer's tensor (NASLib's ``sum_arr``), in double precision."""
    total = 0.0
    for v in values:
        total += float(v.double().sum())
    return total

