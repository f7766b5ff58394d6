"""One resolver for what a user names a proxy, used by every command and by the Python API.

A spec is, in this order: a path to a proxy JSON file; the name of a registered zero-cost measure computed on
live models (``snip``, ``nwot``, ``zen``, ...; see :mod:`saswot_gp.zerocost`); the name of a proxy shipped with
the package (``saswot``); the name of a hand-designed proxy written in the proxy language (``snip_gp``,
``nwot_gp``, ..., see :mod:`saswot_gp.handcrafted`); or a tree in functional notation (``layers_sum(l2_w(G))``).
Trees are read by :meth:`saswot_gp.proxy.Proxy.load`, which accepts the same specs except live measures. A
name means one thing everywhere: ``nwot`` is always the registry's live measure, ``nwot_gp`` always its
approximation in the proxy language. ``params`` and ``flops`` exist in both and agree (the same counts,
tested): they score live models by the registry's count and export as the tree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from .errors import NUMERICAL_ERRORS
from .proxy import HANDCRAFTED, Proxy, proxy_file



@dataclass
class ResolvedProxy:
    """A resolved proxy spec: a proxy-language tree (``kind='tree'``) or a registered live measure (``'measure'``;
    ``params`` and ``flops`` also carry their equal tree)."""

    spec: str
    kind: str
    proxy: Optional[Proxy]
    measure: Optional[Callable[..., float]]
    label: str

    def tree(self) -> Proxy:
        """The proxy-language tree (for export, draw, evolution); a live measure has none (one-line error)."""
        return self.proxy if self.proxy is not None else Proxy.load(self.spec)

    def score(self, model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, k: Optional[int] = 256,
              seed: int = 0) -> float:
        """Score a live model on the batch (higher is better); NaN when a tree fails numerically."""
        if self.measure is not None:
            return float(self.measure(model, images, labels))
        try:
            return float(self.proxy.score(model, images, labels, k=k, seed=seed))
        except NUMERICAL_ERRORS:
            return math.nan


def resolve_proxy(spec: str) -> ResolvedProxy:
    """Resolve a proxy spec (file, registered measure, shipped name, proxy-language name, functional notation)."""
    from .zerocost import get_measure, measure_names
    spec = str(spec)
    file = proxy_file(spec)
    if file is None and spec in measure_names():
        tree = Proxy.load(spec) if spec in HANDCRAFTED else None
        return ResolvedProxy(spec, "measure", tree, get_measure(spec), spec)
    p = Proxy.load(spec)
    name = file.name if file is not None else spec
    return ResolvedProxy(spec, "tree", p, None, p.expression() if "(" in spec else f"{name} ({p.expression()})")
