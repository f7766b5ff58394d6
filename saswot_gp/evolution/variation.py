"""Typed generation and variation of proxy trees: the DEAP toolbox (generation, crossover, mutation, selection)."""

from __future__ import annotations

import functools
import random
from typing import Callable, Optional

from deap import base, gp, tools

from ..proxy import Proxy
from .config import EvolutionConfig
from .pset import build_pset, ensure_creator


def gen_typed(pset, min_: int, max_: int, type_=None, full: Optional[bool] = None,
              dist: Optional[dict] = None) -> list:
    """Ramped half-and-half generation of a typed tree (as DEAP's ``genHalfAndHalf``) for primitive sets in
    which some type has no terminal (``--terminals stats``: no layer-scalar or score terminal).

    Where DEAP would need a terminal of such a type it places the primitive closest to the leaves (one
    whose inputs all have terminals, e.g. a reduction of ``W``), so trees may end one or two levels below
    ``max_``; the static limits still apply to every offspring. ``dist``: :func:`_leaf_distance` of ``pset``
    (computed here when not given; the toolbox passes it once).
    """
    type_ = pset.ret if type_ is None else type_
    full = random.random() < 0.5 if full is None else full
    dist = _leaf_distance(pset) if dist is None else dist
    height = random.randint(min_, max_)
    expr, stack = [], [(0, type_)]
    while stack:
        depth, t = stack.pop()
        terms, prims = pset.terminals[t], pset.primitives[t]
        stop = depth >= height or (not full and depth >= min_ and random.random() < pset.terminalRatio)
        if terms and (stop or not prims):
            expr.append(random.choice(terms))
            continue
        choices = prims
        if stop:  # head for the leaves by the shortest way
            need = min(max(dist[a] for a in p.args) for p in prims)
            choices = [p for p in prims if max(dist[a] for a in p.args) == need]
        prim = random.choice(choices)
        expr.append(prim)
        for a in reversed(prim.args):
            stack.append((depth + 1, a))
    return expr


def _leaf_distance(pset) -> dict:
    """Per type, the fewest primitive levels needed before a terminal can be placed (0: it has terminals)."""
    types = set(pset.primitives) | set(pset.terminals) | {pset.ret}
    dist = {t: (0 if pset.terminals[t] else float("inf")) for t in types}
    for _ in range(len(types)):
        for t in types:
            for p in pset.primitives[t]:
                dist[t] = min(dist[t], 1 + max(dist[a] for a in p.args))
    return dist


def _has_all_terminals(pset) -> bool:
    return all(pset.terminals[t] for t in list(pset.primitives) + [pset.ret])


def _mutate_any(individual, pset, expr, can_insert: bool = True):
    op = random.randrange(4)
    if op == 3 and not can_insert:
        op = 1  # insertion needs a terminal of every argument type; node replacement instead
    if op == 0:
        return gp.mutUniform(individual, expr=expr, pset=pset)
    if op == 1:
        return gp.mutNodeReplacement(individual, pset=pset)
    if op == 2:
        return gp.mutShrink(individual)
    return gp.mutInsert(individual, pset=pset)


def cx_one_point(ind1, ind2):
    """Typed subtree crossover (as DEAP's cxOnePoint, but the shared type is drawn from a sorted list:
    DEAP draws it from a set of classes, whose order depends on memory addresses, so seeded runs would
    differ from process to process)."""
    if len(ind1) < 2 or len(ind2) < 2:
        return ind1, ind2
    at1, at2 = {}, {}
    for i, node in enumerate(ind1[1:], 1):
        at1.setdefault(node.ret, []).append(i)
    for i, node in enumerate(ind2[1:], 1):
        at2.setdefault(node.ret, []).append(i)
    common = sorted(set(at1) & set(at2), key=lambda t: t.__name__)
    if common:
        t = random.choice(common)
        s1 = ind1.searchSubtree(random.choice(at1[t]))
        s2 = ind2.searchSubtree(random.choice(at2[t]))
        ind1[s1], ind2[s2] = ind2[s2], ind1[s1]
    return ind1, ind2


def make_toolbox(cfg: EvolutionConfig, pset=None, map_fn: Callable = map) -> base.Toolbox:
    """The DEAP toolbox: ramped half-and-half, tournament, subtree crossover, four mutations, limits."""
    ensure_creator()
    from deap import creator
    pset = pset or build_pset(terminals=cfg.terminals, root=cfg.root)
    tb = base.Toolbox()
    tb.pset = pset
    complete = _has_all_terminals(pset)  # DEAP's generators need a terminal of every type
    typed = None if complete else functools.partial(gen_typed, dist=_leaf_distance(pset))
    tb.register("expr", gp.genHalfAndHalf if complete else typed, pset=pset, min_=cfg.init_min, max_=cfg.init_max)
    tb.register("individual", tools.initIterate, creator.ProxyIndividual, tb.expr)
    tb.register("select", tools.selTournament, tournsize=cfg.tournament)
    tb.register("mate", cx_one_point)
    tb.register("expr_mut", gp.genFull if complete else functools.partial(typed, full=True), min_=0, max_=2)
    # insertion needs a terminal of every argument type; a rank root (no terminal of its own) is never below an
    # inserted node, and DEAP leaves the tree unchanged when it draws the root
    insertable = complete or (cfg.root == "rank" and all(pset.terminals[t] for t in pset.primitives if t is not pset.ret))
    tb.register("mutate", _mutate_any, pset=pset, expr=tb.expr_mut, can_insert=insertable)
    for name in ("mate", "mutate"):
        tb.decorate(name, gp.staticLimit(key=lambda ind: ind.height, max_value=cfg.max_height))
        tb.decorate(name, gp.staticLimit(key=len, max_value=cfg.max_size))
    tb.register("map", map_fn)
    return tb


def _new_individual(tb, cfg: EvolutionConfig):
    """A ramped half-and-half tree within the size and height limits."""
    while True:
        ind = tb.individual()
        if len(ind) <= cfg.max_size and ind.height <= cfg.max_height:
            return ind


def _key(ind):
    """Canonical key of ``ind``, recomputed (sympy) only when its tokens changed since the last time."""
    toks = tuple(n.name for n in ind)
    if getattr(ind, "key_tokens", None) != toks:
        ind.key = Proxy(list(toks)).canonical_key()
        ind.key_tokens = toks
    return ind.key


def _diversify(pop, tb, cfg: EvolutionConfig, tries: int = 3) -> None:
    """Replace offspring whose canonical form already occurs in the population (clones waste evaluations)."""
    seen = set()
    for i, ind in enumerate(pop):
        k = _key(ind)
        n = 0
        while k in seen and n < tries:
            ind = tb.clone(ind) if n < tries - 1 else _new_individual(tb, cfg)
            if n < tries - 1:
                ind, = tb.mutate(ind)
            del ind.fitness.values
            k = _key(ind)
            n += 1
        pop[i] = ind
        seen.add(k)
