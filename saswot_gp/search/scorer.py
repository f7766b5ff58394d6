"""The proxy a search scores with (a resolved spec that pickles to Dask workers) and its fixed batch."""

from __future__ import annotations

import dataclasses
import math
from typing import Dict, List, Optional, Tuple, Union

import torch

from ..errors import SaswotError

BATCH_KINDS = ("digits", "synthetic")


class ProxyScorer:
    """A proxy spec resolved by :func:`saswot_gp.proxyspec.resolve_proxy` (a discovered or named tree, or a
    registered zero-cost measure), with the sketch size, seed and device a search scores with."""

    def __init__(self, spec: str, k: Optional[int] = 256, seed: int = 0, device: str = "cpu"):
        from ..proxyspec import resolve_proxy
        self.spec, self.k, self.seed, self.device = str(spec), k, int(seed), device
        self.resolved = resolve_proxy(self.spec)
        self.proxy = self.resolved.proxy if self.resolved.kind == "tree" else None
        self.kind = "file" if self.proxy is not None else "measure"  # "file": a tree (kept for old checkpoints)
        need = self.proxy.measures() if self.proxy is not None else []
        self.label = self.resolved.label + (f" (computes the live measures {', '.join(need)})" if need else "")

    @property
    def ranked(self) -> bool:
        """True for a rank aggregate (``rank1`` .. ``rank4``): a candidate's score is its rank among the others."""
        return self.proxy is not None and self.proxy.is_ranked

    def __getstate__(self) -> Dict[str, object]:
        # a registered measure is a decorated function that does not pickle: it is looked up again by name where
        # the scorer is unpickled (a Dask worker); a tree travels as itself (its file need not exist there)
        state = dict(self.__dict__)
        if state["resolved"].measure is not None:
            state["resolved"] = dataclasses.replace(state["resolved"], measure=None)
        return state

    def __setstate__(self, state: Dict[str, object]) -> None:
        self.__dict__.update(state)
        if self.resolved.kind == "measure" and self.resolved.measure is None:
            from ..zerocost import get_measure
            self.resolved = dataclasses.replace(self.resolved, measure=get_measure(self.spec))

    def identity(self) -> Dict[str, object]:
        """What identifies the proxy in a checkpoint (a tree by its tokens, a measure by its name)."""
        if self.proxy is not None:
            return {"kind": "file", "tokens": list(self.proxy.tokens)}
        return {"kind": "measure", "name": self.spec}

    def __call__(self, model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
        """Score ``model`` on the batch (higher is better), on the scorer's device; NaN when the proxy fails
        numerically."""
        model, images, labels = self._on_device(model, images, labels)
        return self.resolved.score(model, images, labels, k=self.k, seed=self.seed)

    def _on_device(self, *tensors):
        """The model and batch on the scorer's device."""
        device = getattr(self, "device", "cpu")  # scorers pickled before devices existed
        return tensors if device == "cpu" else tuple(t.to(device) for t in tensors)

    def measure(self, model: torch.nn.Module, images: torch.Tensor,
                labels: torch.Tensor) -> Union[float, List[float]]:
        """What a search records of ``model``: its score (as calling the scorer), or for a rank aggregate its k
        subtree scores (NaN where the proxy fails numerically), which the search ranks against the archive."""
        if not self.ranked:
            return self(model, images, labels)
        model, images, labels = self._on_device(model, images, labels)
        from ..errors import NUMERICAL_ERRORS
        try:
            return self.proxy.score_parts(model, images, labels, k=self.k, seed=self.seed)
        except NUMERICAL_ERRORS:
            return [math.nan] * len(self.proxy.subtrees())


def search_batch(space, kind: str = "digits", n: int = 8) -> Tuple[torch.Tensor, torch.Tensor, str]:
    """The fixed scoring batch and its description: ``n`` digit scenes (train split, data seed 0) or the
    seeded synthetic batch (``synthetic_batch(seed=0)``), at the space's input size; refused (SaswotError) when
    it and the space's largest network would not fit in memory (:func:`saswot_gp.batches.check_memory`)."""
    from ..batches import check_memory
    h, w = space.input_size
    if kind in BATCH_KINDS:
        check_memory(space, (h, w), n, kind)
    if kind == "digits":
        from ..batches import digits_batch
        if space.num_classes < 11:
            raise SaswotError(f"digit scenes have 11 classes but the space has {space.num_classes}; "
                              f"use the synthetic batch")
        images, labels = digits_batch(n=n, size=(h, w), seed=0)
        return images, labels, f"{n} digit scenes (digits train split, data seed 0, {h}x{w})"
    if kind == "synthetic":
        from ..batches import synthetic_batch
        images, labels = synthetic_batch(n=n, size=(h, w), num_classes=space.num_classes, seed=0)
        return images, labels, f"seeded synthetic batch of {n} images (seed 0, {h}x{w}, {space.num_classes} classes)"
    raise SaswotError(f"unknown batch {kind!r}; expected one of {list(BATCH_KINDS)}")


# ------------------------------------------------------------------------------ the search
