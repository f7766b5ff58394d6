"""The DEAP typed primitive set and the process-global ``creator`` classes (created once, guarded)."""

from __future__ import annotations

from typing import Iterable, Optional

from deap import base, creator, gp

from ..errors import SaswotError
from ..primitives import operators
from ..primitives.types import MEASURE_TOKENS, MEASURES_SUFFIX, TYPES, uses_measures  # noqa: F401 (re-exported)


def ensure_creator() -> None:
    """Create ``creator.ProxyFitness`` (max Kendall tau, then min size) and ``creator.ProxyIndividual`` once."""
    if not hasattr(creator, "ProxyFitness"):
        creator.create("ProxyFitness", base.Fitness, weights=(1.0, -1.0))
    if not hasattr(creator, "ProxyIndividual"):
        creator.create("ProxyIndividual", gp.PrimitiveTree, fitness=creator.ProxyFitness)


SIZE_TERMINALS = ("params_l", "flops_l", "channels_l", "resolution_l", "params", "flops")
STAT_TERMINALS = ("W", "G", "A", "AG")
BASE_TERMINAL_SETS = ("all", "stats", "sizes", "scalefree")
TERMINAL_SETS = BASE_TERMINAL_SETS + tuple(t + MEASURES_SUFFIX for t in BASE_TERMINAL_SETS)
ROOTS = ("plain", "rank")  # the root of every tree: a score, or the log-rank aggregate of 1 to 4 scores
# reductions and aggregations whose value grows with a layer's size or a network's depth
SIZE_DEPENDENT = tuple(f"{r}_{t}" for r in ("sum", "l1", "l2") for t in ("w", "a")) + ("layers_sum", "nwot_a")


def excluded_by(terminals: str) -> set:
    """Operator names a terminal set leaves out: 'stats' drops the size terminals, 'sizes' drops the network
    statistics and every operator on weight- or activation-shaped tensors, 'scalefree' is 'stats' without the
    reductions and aggregations that grow with layer size or depth (sum, l1, l2, layers_sum, nwot_a: what is left,
    per-element means, spreads, maxima and NWOT-like log-determinants averaged over layers, means the same
    on a narrow and a wide, a shallow and a deep network), 'all' drops nothing but the measure terminals. A set
    named ``<set>+measures`` keeps the measure terminals (``zc_snip`` ...: registered zero-cost measures of the live
    model, computed beside the statistics); the others drop them."""
    if terminals not in TERMINAL_SETS:
        raise SaswotError(f"terminal set {terminals!r}; expected one of {', '.join(TERMINAL_SETS)}")
    base = terminals[: -len(MEASURES_SUFFIX)] if uses_measures(terminals) else terminals
    out = set() if uses_measures(terminals) else set(MEASURE_TOKENS)
    if base == "stats":
        return out | set(SIZE_TERMINALS)
    if base == "scalefree":
        return out | set(SIZE_TERMINALS) | set(SIZE_DEPENDENT)
    if base == "sizes":
        return out | {op.name for op in operators() if {"W", "A"} & {*op.in_types, op.out_type}}
    return out


def build_pset(exclude: Optional[Iterable[str]] = None, terminals: str = "all",
               root: str = "plain") -> gp.PrimitiveSetTyped:
    """A typed primitive set with the registered operators of a terminal set (minus ``exclude``). ``root``: 'plain'
    (root type = score; the rank operators are left out, so the set is the one it was before they existed) or
    'rank' (root type = rank aggregate, made only by ``rank1`` .. ``rank4`` of score subtrees)."""
    if root not in ROOTS:
        raise SaswotError(f"root {root!r}; expected one of {', '.join(ROOTS)}")
    skip = set(exclude or ()) | excluded_by(terminals)
    pset = gp.PrimitiveSetTyped("proxy", [], TYPES["S" if root == "plain" else "R"])
    for op in operators():
        if op.name in skip or (op.out_type == "R" and root != "rank"):
            continue
        if op.is_terminal:
            pset.addTerminal(op.name, TYPES[op.out_type], name=op.name)
        else:
            pset.addPrimitive(op.fn, [TYPES[t] for t in op.in_types], TYPES[op.out_type], name=op.name)
    return pset
