"""Per-layer statistics of any segmenter from one forward and one backward pass on one batch.

For every Conv2d, ConvTranspose2d and Linear layer: the weight W and its gradient G, the layer output
A and the gradient at that output AG, each sketched to at most ``k`` elements at aligned positions
(W with G, A with AG; activations keep the batch axis: the same positions in every sample), plus
per-layer scalars (params, FLOPs, output channels, output resolution) and the full element counts.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import SaswotError

LAYER_TYPES = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
LAYER_SCALARS = ("params", "flops", "channels", "resolution")


@dataclass
class ArchStats:
    """Sketched statistics of one architecture (numpy arrays; float32 values).

    ``w``/``g``: concatenated weight sketches, ``w_layer`` the layer of each element, ``w_numel`` the
    full weight size per layer. ``a``/``ag``: (rows, batch) activation sketches, ``a_layer`` the layer
    of each row, ``a_numel`` the full activation size (batch included) per layer. ``layer``: per-layer
    scalars; ``arch``: architecture scalars (params, flops).
    """

    w: np.ndarray
    g: np.ndarray
    w_layer: np.ndarray
    w_numel: np.ndarray
    a: np.ndarray
    ag: np.ndarray
    a_layer: np.ndarray
    a_numel: np.ndarray
    layer: Dict[str, np.ndarray]
    arch: Dict[str, float]
    meta: Dict[str, object] = field(default_factory=dict)

    @property
    def n_layers(self) -> int:
        """Number of recorded layers."""
        return len(self.w_numel)

    def to_arrays(self) -> Dict[str, np.ndarray]:
        """Flat dict of arrays for ``np.savez`` (no pickle needed to load)."""
        out = {k: getattr(self, k) for k in ("w", "g", "w_layer", "w_numel", "a", "ag", "a_layer", "a_numel")}
        out.update({f"layer_{k}": v for k, v in self.layer.items()})
        out.update({f"arch_{k}": np.asarray(v, dtype=np.float64) for k, v in self.arch.items()})
        return out

    @classmethod
    def from_arrays(cls, d) -> "ArchStats":
        """Inverse of :meth:`to_arrays`."""
        layer = {k[6:]: np.asarray(d[k]) for k in d if k.startswith("layer_")}
        arch = {k[5:]: float(np.asarray(d[k])) for k in d if k.startswith("arch_")}
        return cls(*(np.asarray(d[k]) for k in ("w", "g", "w_layer", "w_numel", "a", "ag", "a_layer", "a_numel")),
                   layer=layer, arch=arch)


def segmentation_loss(out, labels: torch.Tensor, ignore_index: int = 255) -> torch.Tensor:
    """Pixel-wise cross-entropy; logits are resized to the label size; dict outputs use ``'out'``."""
    if isinstance(out, dict):
        out = out["out"]
    if isinstance(out, (tuple, list)):
        out = out[0]
    if out.dim() != 4:
        raise SaswotError(f"segmenter output has shape {tuple(out.shape)}; expected (N, classes, H, W) logits")
    valid = labels[labels != ignore_index]
    if valid.numel() and (int(valid.max()) >= out.shape[1] or int(valid.min()) < 0):
        bad = int(valid.max()) if int(valid.max()) >= out.shape[1] else int(valid.min())
        raise SaswotError(f"labels contain class {bad} but the model outputs {out.shape[1]} classes "
                          f"(expected labels in [0, {out.shape[1] - 1}] or {ignore_index})")
    if out.shape[-2:] != labels.shape[-2:]:
        out = F.interpolate(out, size=labels.shape[-2:], mode="bilinear", align_corners=False)
    return F.cross_entropy(out, labels.long(), ignore_index=ignore_index)


@lru_cache(maxsize=8192)
def _cached_positions(seed: int, layer: int, tag: int, n: int, k: int) -> torch.Tensor:
    rng = np.random.default_rng([seed, layer, tag, n, k])
    # numpy's choice without replacement costs O(k) for k << n (torch.randperm costs O(n))
    return torch.from_numpy(np.sort(rng.choice(n, k, replace=False)))


def _positions(n: int, k: Optional[int], seed: int, layer: int, tag: int) -> Optional[torch.Tensor]:
    """Sorted sketch positions for the ``layer``-th layer's tensor (tag 0: activation, 1: weight).

    They depend only on (seed, layer index, tag, size, k), so networks sharing layer shapes share
    positions and repeated shapes are served from a cache.
    """
    if k is None or k >= n:
        return None  # keep everything
    return _cached_positions(seed, layer, tag, n, k)


def layer_macs(mod: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> int:
    """Multiply-accumulates per sample of one Conv2d, ConvTranspose2d or Linear call (bias not counted)."""
    n = out.shape[0]
    if isinstance(mod, nn.Conv2d):
        return out.numel() // n * (mod.in_channels // mod.groups) * mod.weight[0, 0].numel()
    if isinstance(mod, nn.ConvTranspose2d):
        return inp.numel() // n * (mod.out_channels // mod.groups) * mod.weight[0, 0].numel()
    return out.numel() // n * mod.in_features


@contextlib.contextmanager
def gradients_on(images: torch.Tensor, labels: torch.Tensor) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
    """Autograd on inside, even when the caller is in ``torch.no_grad()`` or ``torch.inference_mode()`` (whose
    tensors are copied to normal ones), so gradients are never silently missing: yields the batch."""
    with torch.inference_mode(False), torch.enable_grad():
        yield tuple(t.clone() if isinstance(t, torch.Tensor) and t.is_inference() else t for t in (images, labels))


def collect_stats(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, k: Optional[int] = 256,
                  seed: int = 0, ignore_index: int = 255, train_mode: bool = True) -> ArchStats:
    """Run one forward and one backward of the segmentation loss and return sketched per-layer stats.

    ``k=None`` keeps full tensors. Positions depend on (``seed``, layer index, tensor size, ``k``),
    so the same model, batch and seed give the same statistics. The model is left as it was: parameters,
    buffers (BatchNorm running statistics), gradients and train/eval mode; it works inside ``torch.no_grad()``.
    """
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    grads = [(p, p.grad) for p in model.parameters()]
    try:
        with gradients_on(images, labels) as (images, labels):
            return _collect_stats(model, images, labels, k, seed, ignore_index, train_mode)
    finally:
        with torch.no_grad():
            for b, saved in buffers:
                b.copy_(saved)
        for p, g in grads:
            p.grad = g


def _collect_stats(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, k: Optional[int], seed: int,
                   ignore_index: int, train_mode: bool) -> ArchStats:
    if images.dim() != 4 or labels.dim() != 3 or images.shape[0] != labels.shape[0]:
        raise SaswotError(f"batch shapes {tuple(images.shape)} / {tuple(labels.shape)}; expected images (N,3,H,W) and labels (N,H,W)")
    if k is not None and k < 1:
        raise SaswotError(f"sketch size k={k}; expected a positive integer or None (full tensors)")
    records, loss = _record_layers(model, images, labels, k, seed, ignore_index, train_mode)
    return _assemble(model, records, float(loss.item()), k, seed)


def _record_layers(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, k: Optional[int], seed: int,
                   ignore_index: int, train_mode: bool):
    """One forward and backward of the loss with hooks on the layers: per layer in call order, a record of
    its module, sketched output ``a`` and output gradient ``ag``, sketch positions and scalars; and the loss."""
    nb = images.shape[0]
    records: List[dict] = []
    seen = {}

    def fwd_hook(mod, inp, out):
        if not isinstance(out, torch.Tensor) or id(mod) in seen:
            return  # a module called twice (weight sharing) is recorded once
        seen[id(mod)] = True
        flat = out.detach().reshape(nb, -1)
        per_sample = flat.shape[1]
        kk = None if k is None else max(1, k // nb)
        pos = _positions(per_sample, kk, seed, len(records), 0)
        rec = {"mod": mod, "a": (flat.clone() if pos is None else flat[:, pos]), "pos": pos,
               "a_numel": out.numel(), "channels": out.shape[1],
               "resolution": int(np.prod(out.shape[2:])) if out.dim() > 2 else 1,
               "flops": layer_macs(mod, inp[0], out), "ag": None}
        wpos = _positions(mod.weight.numel(), k, seed, len(records), 1)
        rec["wpos"] = wpos
        records.append(rec)
        if out.requires_grad:
            def grad_hook(grad, rec=rec):
                gflat = grad.detach().reshape(nb, -1)
                rec["ag"] = gflat.clone() if rec["pos"] is None else gflat[:, rec["pos"]]
            out.register_hook(grad_hook)

    layers = [m for m in model.modules() if isinstance(m, LAYER_TYPES)]
    if not layers:
        raise SaswotError(f"model {type(model).__name__} has no Conv2d/ConvTranspose2d/Linear layer to measure")
    handles = [m.register_forward_hook(fwd_hook) for m in layers]
    was_training = model.training
    if was_training != train_mode:
        model.train(train_mode)
    model.zero_grad(set_to_none=True)
    try:
        loss = segmentation_loss(model(images), labels, ignore_index)
        if not torch.isfinite(loss):
            raise SaswotError(f"loss is {loss.item()} on this batch; statistics would be meaningless")
        loss.backward()
    finally:
        for h in handles:
            h.remove()
        if was_training != train_mode:
            model.train(was_training)
    if not records:
        raise SaswotError(f"model {type(model).__name__}: no Conv2d/ConvTranspose2d/Linear layer ran in the forward pass")
    return records, loss


def _assemble(model: nn.Module, records: List[dict], loss: float, k: Optional[int], seed: int) -> ArchStats:
    """The :class:`ArchStats` of the layer records (weights and their gradients read now), then clear the gradients."""
    ws, gs, wl, wn, as_, ags, al, an = [], [], [], [], [], [], [], []
    scal = {k_: [] for k_ in LAYER_SCALARS}
    for i, rec in enumerate(records):
        mod = rec["mod"]
        wflat = mod.weight.detach().reshape(-1)
        gflat = mod.weight.grad.reshape(-1) if mod.weight.grad is not None else torch.zeros_like(wflat)
        if rec["wpos"] is not None:
            wflat, gflat = wflat[rec["wpos"]], gflat[rec["wpos"]]
        ws.append(wflat.float()); gs.append(gflat.float())
        wl.append(np.full(wflat.numel(), i, dtype=np.int32)); wn.append(mod.weight.numel())
        ag = rec["ag"] if rec["ag"] is not None else torch.zeros_like(rec["a"])
        as_.append(rec["a"]); ags.append(ag)
        al.append(np.full(rec["a"].shape[1], i, dtype=np.int32)); an.append(rec["a_numel"])
        scal["params"].append(sum(p.numel() for p in mod.parameters(recurse=False)))
        scal["flops"].append(rec["flops"]); scal["channels"].append(rec["channels"]); scal["resolution"].append(rec["resolution"])
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    model.zero_grad(set_to_none=True)
    return ArchStats(
        w=torch.cat(ws).cpu().numpy(), g=torch.cat(gs).cpu().numpy(), w_layer=np.concatenate(wl), w_numel=np.asarray(wn, np.int64),
        # (batch, positions) per layer; one transpose at the end gives the (rows, batch) layout
        a=torch.cat(as_, 1).t().float().contiguous().cpu().numpy(), ag=torch.cat(ags, 1).t().float().contiguous().cpu().numpy(), a_layer=np.concatenate(al), a_numel=np.asarray(an, np.int64),
        layer={k_: np.asarray(v, np.float64) for k_, v in scal.items()},
        arch={"params": float(params), "flops": float(sum(scal["flops"]))},
        meta={"loss": loss, "k": k, "seed": seed},
    )
