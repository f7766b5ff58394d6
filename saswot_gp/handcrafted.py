"""Hand-designed zero-cost proxies that the proxy language can express, as named trees.

These seed the initial population and appear beside the winners in every report. They follow the
published definitions as far as per-layer sketched statistics allow:

* ``snip``: sum over layers of sum |W * G| (Lee et al. 2019).
* ``grad_norm``: sum over layers of ||G||_2 (Abdelfattah et al. 2021).
* ``fisher``: Fisher-like, sum over layers of sum (A * AG)^2 (Theis et al. 2018 sum per channel
  over space first; with position sketches we square per position instead).
* ``synflow``: SynFlow-like, sum over layers of log ||W||_1, the log of SynFlow's score for a linear
  chain on an all-ones input (up to an additive constant).
* ``nwot``: NWOT (Mellor et al. 2021): log|K| of one batch kernel of the binary codes ``A > 0`` of all
  layers (per-layer kernels of the sketched positions, each weighted by full / sketched size). The codes
  are the conv outputs (the registry's ``nwot`` takes the ReLU inputs, after BN); on the benchmarks'
  held-out architectures the two rank within 0.03 Kendall of each other (benchmarks/RESULTS.md).
* ``nwot_layers``: the earlier per-layer variant, the sum over layers of each layer's log|K|.
* ``l2_norm``, ``plain`` (NASLib): sum of ||W||_2, and sum of W * G.
* ``params``, ``flops``.
"""

from __future__ import annotations

from typing import Dict

from .proxy import Proxy

HANDCRAFTED: Dict[str, str] = {
    "snip": "layers_sum(l1_w(mul_w(W, G)))",
    "grad_norm": "layers_sum(l2_w(G))",
    "fisher": "layers_sum(sum_a(square_a(mul_a(A, AG))))",
    "synflow": "layers_sum(log_l(l1_w(W)))",
    "nwot": "nwot_a(A)",
    "nwot_layers": "layers_sum(logdet_a(A))",
    "l2_norm": "layers_sum(l2_w(W))",
    "plain": "layers_sum(sum_w(mul_w(W, G)))",
    "params": "params",
    "flops": "flops",
}


def handcrafted_proxies() -> Dict[str, Proxy]:
    """The named hand-designed proxies as :class:`Proxy` objects."""
    return {name: Proxy.parse(expr, name=name) for name, expr in HANDCRAFTED.items()}


def resolve_proxy(spec: str) -> Proxy:
    """A proxy from a hand-designed name, a shipped proxy's name (``saswot``), a JSON file path, or functional notation."""
    from pathlib import Path
    from .proxy import shipped_proxy_path
    if spec in HANDCRAFTED:
        return Proxy.parse(HANDCRAFTED[spec], name=spec)
    if spec.endswith(".json") or Path(spec).is_file() or shipped_proxy_path(spec) is not None:
        return Proxy.load(spec)
    return Proxy.parse(spec)
