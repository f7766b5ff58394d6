"""Hand-designed zero-cost proxies that the proxy language can express, as named trees.

These seed the initial population and appear beside the winners in every report. They follow the
published definitions as far as per-layer sketched statistics allow, and so they are named apart from the
registry's live measures (:mod:`saswot_gp.zerocost`, which reproduce the reference code): ``snip_gp`` is the
proxy-language approximation of ``snip``, and so on. They differ from the live measures in two ways: every
Conv2d, ConvTranspose2d and Linear layer counts (the reference code skips ConvTranspose2d), and W, G, A, AG
are sketched to K positions per tensor (sums of signed values such as ``plain_gp`` are poorly estimated by a
sketch: Spearman -0.18 against the full-tensor value at K=256).

* ``snip_gp``: sum over layers of sum |W * G| (Lee et al. 2019).
* ``grad_norm_gp``: sum over layers of ||G||_2 (Abdelfattah et al. 2021).
* ``fisher_gp``: Fisher-like, sum over layers of sum (A * AG)^2 (Theis et al. 2018 sum per channel
  over space first; with position sketches we square per position instead).
* ``synflow_gp``: SynFlow-like, sum over layers of log ||W||_1, the log of SynFlow's score for a linear
  chain on an all-ones input (up to an additive constant).
* ``nwot_gp``: NWOT (Mellor et al. 2021): log|K| of one batch kernel of the binary codes ``A > 0`` of all
  layers (per-layer kernels of the sketched positions, each weighted by full / sketched size). The codes
  are the conv outputs (the registry's ``nwot`` takes the ReLU inputs, after BN); on the benchmarks'
  held-out architectures the two rank within 0.03 Kendall of each other (benchmarks/RESULTS.md).
* ``nwot_layers``: the earlier per-layer variant, the sum over layers of each layer's log|K|.
* ``l2_norm_gp``, ``plain_gp`` (NASLib): sum of ||W||_2, and sum of W * G.
* ``params``, ``flops``: the same counts as the registry's measures of those names.

The name -> expression table is ``saswot_gp.proxy.HANDCRAFTED``; names are resolved by ``Proxy.load`` and
:func:`saswot_gp.proxyspec.resolve_proxy`.
"""

from __future__ import annotations

from typing import Dict

from .proxy import HANDCRAFTED, Proxy  # noqa: F401  (HANDCRAFTED: the names, defined beside the language)

def handcrafted_proxies() -> Dict[str, Proxy]:
    """The named hand-designed proxies as :class:`Proxy` objects."""
    return {name: Proxy.parse(expr, name=name) for name, expr in HANDCRAFTED.items()}


def measure_proxies() -> Dict[str, Proxy]:
    """Each measure terminal as a one-node proxy named by its registered measure (``snip``: ``zc_snip``): the
    live measures themselves, in the proxy language."""
    from .primitives.types import MEASURE_TERMINALS, MEASURE_TOKENS
    return {m: Proxy([t], name=m) for m, t in zip(MEASURE_TERMINALS, MEASURE_TOKENS)}


def seed_proxies(terminals: str = "all") -> Dict[str, Proxy]:
    """The hand-designed proxies that seed evolution and stand beside its winners for terminal set ``terminals``:
    :func:`handcrafted_proxies`, and with a ``+measures`` set also :func:`measure_proxies`."""
    from .primitives.types import uses_measures
    return {**handcrafted_proxies(), **(measure_proxies() if uses_measures(terminals) else {})}
