"""The DEAP typed primitive set and the process-global ``creator`` classes (created once, guarded)."""

from __future__ import annotations

from typing import Iterable, Optional

from deap import base, creator, gp

from ..primitives import operators
from ..primitives.types import TYPES


def ensure_creator() -> None:
    """Create ``creator.ProxyFitness`` (max Kendall tau, then min size) and ``creator.ProxyIndividual`` once."""
    if not hasattr(creator, "ProxyFitness"):
        creator.create("ProxyFitness", base.Fitness, weights=(1.0, -1.0))
    if not hasattr(creator, "ProxyIndividual"):
        creator.create("ProxyIndividual", gp.PrimitiveTree, fitness=creator.ProxyFitness)


def build_pset(exclude: Optional[Iterable[str]] = None) -> gp.PrimitiveSetTyped:
    """A typed primitive set with every registered operator (minus ``exclude``), root type = score."""
    skip = set(exclude or ())
    pset = gp.PrimitiveSetTyped("proxy", [], TYPES["S"])
    for op in operators():
        if op.name in skip:
            continue
        if op.is_terminal:
            pset.addTerminal(op.name, TYPES[op.out_type], name=op.name)
        else:
            pset.addPrimitive(op.fn, [TYPES[t] for t in op.in_types], TYPES[op.out_type], name=op.name)
    return pset
