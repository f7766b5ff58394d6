"""One resolver for what a user names a proxy, used by every command and by the Python API.

A spec is, in this order: a path to a proxy JSON file; the name of a proxy shipped with the package
(``saswot``); the name of a hand-designed proxy written in the proxy language (``snip_gp``, ``nwot_gp``, ...,
see :mod:`saswot_gp.handcrafted`); the name of a registered zero-cost measure computed on live models
(``snip``, ``nwot``, ``zen``, ...; see :mod:`saswot_gp.zerocost`); or a tree in functional notation
(``layers_sum(l2_w(G))``). A name means one thing everywhere: ``nwot`` is always the registry's live
measure, ``nwot_gp`` always its approximation in the proxy language. ``params`` and ``flops`` exist in both
and agree (the same counts, tested): they score live models by the registry's count and export as the tree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch

from .errors import SaswotError
from .proxy import Proxy

# what a numerical accident inside a tree's evaluation raises (the candidate then scores NaN, never crashes)
NUMERICAL_ERRORS = (RuntimeError, ValueError, FloatingPointError, OverflowError, ZeroDivisionError)


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
        if self.proxy is None:
            from .handcrafted import HANDCRAFTED
            alt = f"{self.spec}_gp"
            hint = f"; its proxy-language approximation is {alt!r}" if alt in HANDCRAFTED else ""
            raise SaswotError(f"{self.spec!r} is a registered zero-cost measure computed on live models, not a "
                              f"proxy-language tree{hint}")
        return self.proxy

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
    """Resolve a proxy spec (file, shipped name, proxy-language name, registered measure, functional notation)."""
    from .handcrafted import HANDCRAFTED
    from .proxy import shipped_proxy_path
    from .zerocost import get_measure, measure_names
    spec = str(spec)
    path = Path(spec)
    if path.is_file():
        p = Proxy.load(path)
        return ResolvedProxy(spec, "tree", p, None, f"{path.name} ({p.expression()})")
    if shipped_proxy_path(spec) is not None:
        p = Proxy.load(spec)
        return ResolvedProxy(spec, "tree", p, None, f"{spec} ({p.expression()})")
    tree = Proxy.parse(HANDCRAFTED[spec], name=spec) if spec in HANDCRAFTED else None
    if spec in measure_names():
        return ResolvedProxy(spec, "measure", tree, get_measure(spec), spec)
    if tree is not None:
        return ResolvedProxy(spec, "tree", tree, None, f"{spec} ({tree.expression()})")
    if spec.lower().endswith(".json"):
        raise SaswotError(f"proxy file {spec!r} not found; expected a JSON file written by saswot-gp")
    if "(" in spec:
        p = Proxy.parse(spec)
        return ResolvedProxy(spec, "tree", p, None, p.expression())
    raise SaswotError(f"unknown proxy {spec!r}: not a proxy JSON file, a shipped proxy (saswot), a proxy-language "
                      f"name ({', '.join(HANDCRAFTED)}), a registered measure ({', '.join(measure_names())}) or a "
                      f"tree such as layers_sum(l2_w(G))")
