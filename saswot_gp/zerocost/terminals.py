"""Measure terminals: registered zero-cost measures as scalar terminals of the proxy language.

A measure terminal (``zc_snip``, ``zc_nwot`` ...; the names are
:data:`saswot_gp.primitives.types.MEASURE_TERMINALS`) is the value of the registered measure of that name
(:mod:`.measures`) on the live model and the batch the statistics come from. Packed statistics carry these values
as architecture scalars (``ctx.arch['zc_snip']``): :func:`attach_measures` puts them there, computed once per
architecture by :func:`.scoring.benchmark_measures` (cached per architecture in a JSON-lines score cache, computed
on the executor) or, for one live model, by
:meth:`saswot_gp.proxy.Proxy.score`, which calls :func:`compute_measures` with the measures a tree needs.
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Sequence

import numpy as np
import torch

from ..primitives.types import MEASURE_PREFIX, MEASURE_TERMINALS, MEASURE_TOKENS


def terminal_of(measure: str) -> str:
    """The proxy-language token of a measure (``snip`` -> ``zc_snip``)."""
    return MEASURE_PREFIX + measure


def measures_in(tokens: Iterable[str]) -> List[str]:
    """The measures a proxy's tokens read, in the registry's order (``['snip', 'nwot']``)."""
    used = set(tokens)
    return [m for m, t in zip(MEASURE_TERMINALS, MEASURE_TOKENS) if t in used]


def attach_measures(packed, values: Dict[str, Sequence[float]]) -> None:
    """Store each measure's values (one per architecture of ``packed``, in its order) as the architecture scalar
    its terminal reads; NaN stays NaN (a tree that reads it scores NaN there)."""
    for m, v in values.items():
        if m not in MEASURE_TERMINALS:
            raise ValueError(f"measure {m!r} is not a measure terminal; expected one of {', '.join(MEASURE_TERMINALS)}")
        t = torch.as_tensor(np.asarray(v, dtype=np.float64))
        if t.shape != (packed.n_archs,):
            raise ValueError(f"measure {m!r}: {tuple(t.shape)} values for {packed.n_archs} architectures")
        packed.arch[terminal_of(m)] = t
