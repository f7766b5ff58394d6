"""The typed-GP evolution loop (DEAP ``algorithms.py`` style: a plain function over a toolbox).

Variation, selection and evaluation are toolbox entries; ``toolbox.map`` is the single point of
parallelism. Every generation is appended to ``log.jsonl`` and checkpointed atomically to
``checkpoint.json`` (proxies as token lists, never pickles) so that a killed run resumes.
"""

from __future__ import annotations

import functools
import json
import random
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from deap import base, gp, tools

from ..errors import SaswotError
from ..io import append_jsonl, atomic_write_json, check_same_settings, read_checkpoint, rng_from_json, rng_to_json
from ..proxy import Proxy
from .fitness import INVALID, FitnessCache
from .pset import TERMINAL_SETS, build_pset, ensure_creator

CHECKPOINT = "checkpoint.json"
CHECKPOINT_FORMAT = "saswot-gp-checkpoint"
CHECKPOINT_KEYS = ("config", "generation", "run", "population", "cache", "hall_of_fame", "best_by_size", "history",
                   "stats", "random_state")
LOG = "log.jsonl"


@dataclass
class EvolutionConfig:
    """Hyper-parameters of one run (all recorded in the checkpoint)."""

    population: int = 64
    generations: int = 20
    seed: int = 0
    tournament: int = 7
    cxpb: float = 0.5
    mutpb: float = 0.4
    elite: int = 2
    hof_size: int = 20
    init_min: int = 2
    init_max: int = 5
    max_height: int = 7
    max_size: int = 30
    local_search: int = 12  # node-replacement neighbours tried around each elite per generation
    immigrants: float = 0.0  # fraction of each generation replaced by fresh random trees
    terminals: str = "all"  # terminal set: all, stats (network statistics only) or sizes (layer sizes only)

    def check(self) -> None:
        """Raise SaswotError on a nonsensical setting."""
        if self.population < 4:
            raise SaswotError(f"population {self.population}; expected at least 4")
        if self.generations < 0:
            raise SaswotError(f"generations {self.generations}; expected >= 0")
        if not 0 <= self.elite < self.population:
            raise SaswotError(f"elite {self.elite}; expected 0 <= elite < population")
        if not (0 <= self.cxpb <= 1 and 0 <= self.mutpb <= 1):
            raise SaswotError(f"cxpb {self.cxpb} / mutpb {self.mutpb}; expected probabilities in [0, 1]")
        if self.terminals not in TERMINAL_SETS:
            raise SaswotError(f"terminal set {self.terminals!r}; expected one of {', '.join(TERMINAL_SETS)}")
        if self.tournament < 1:
            raise SaswotError(f"tournament size {self.tournament}; expected >= 1")


@dataclass
class EvolutionResult:
    """What a run leaves: hall of fame, best per size, per-generation log, cache statistics."""

    hall_of_fame: List[dict]
    best_by_size: List[dict]
    history: List[dict]
    cache_hits: int = 0
    evaluations: int = 0
    config: dict = field(default_factory=dict)

    @property
    def best(self) -> Proxy:
        """The best proxy found (highest training Kendall tau, then smallest)."""
        return Proxy(self.hall_of_fame[0]["tokens"], name="best")


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
    pset = pset or build_pset(terminals=cfg.terminals)
    tb = base.Toolbox()
    tb.pset = pset
    complete = _has_all_terminals(pset)  # DEAP's generators need a terminal of every type
    typed = None if complete else functools.partial(gen_typed, dist=_leaf_distance(pset))
    tb.register("expr", gp.genHalfAndHalf if complete else typed, pset=pset, min_=cfg.init_min, max_=cfg.init_max)
    tb.register("individual", tools.initIterate, creator.ProxyIndividual, tb.expr)
    tb.register("select", tools.selTournament, tournsize=cfg.tournament)
    tb.register("mate", cx_one_point)
    tb.register("expr_mut", gp.genFull if complete else functools.partial(typed, full=True), min_=0, max_=2)
    tb.register("mutate", _mutate_any, pset=pset, expr=tb.expr_mut, can_insert=complete)
    for name in ("mate", "mutate"):
        tb.decorate(name, gp.staticLimit(key=lambda ind: ind.height, max_value=cfg.max_height))
        tb.decorate(name, gp.staticLimit(key=len, max_value=cfg.max_size))
    tb.register("map", map_fn)
    return tb


class _Archive:
    """Hall of fame (unique canonical forms) and the best proxy of every size (PySR-style table)."""

    def __init__(self, size: int):
        self.size = size
        self.hof: Dict[str, dict] = {}
        self.by_size: Dict[int, dict] = {}

    def update(self, ind) -> None:
        tau = ind.fitness.values[0]
        if tau <= INVALID:
            return
        key = f"{ind.key[1]}|{ind.key[0]}"
        entry = {"tokens": [n.name for n in ind], "train_kendall": tau, "size": len(ind), "key": key}
        old = self.hof.get(key)
        if old is None or entry["size"] < old["size"]:
            core = Proxy(entry["tokens"]).rank_core().tokens  # drop rank-preserving root operators
            entry = dict(entry, tokens=core, size=len(core))
            self.hof[key] = entry
            ranked = sorted(self.hof.values(), key=lambda e: (-e["train_kendall"], e["size"], e["tokens"]))
            self.hof = {e["key"]: e for e in ranked[: self.size]}
        b = self.by_size.get(len(ind))
        if b is None or tau > b["train_kendall"] or (tau == b["train_kendall"] and entry["tokens"] < b["tokens"]):
            self.by_size[len(ind)] = entry

    def ranked(self) -> List[dict]:
        return sorted(self.hof.values(), key=lambda e: (-e["train_kendall"], e["size"], e["tokens"]))

    def pareto(self) -> List[dict]:
        front, best = [], -float("inf")
        for s in sorted(self.by_size):
            e = self.by_size[s]
            if e["train_kendall"] > best:
                front.append(e)
                best = e["train_kendall"]
        return front


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


def _local_search(pop, tb, cfg: EvolutionConfig, evaluator, cache: FitnessCache, stats: dict) -> None:
    """Memetic step: try node-replacement neighbours of each elite; improvements replace the worst."""
    elites = tools.selBest(pop, cfg.elite)
    neighbours = []
    for e in elites:
        for _ in range(cfg.local_search):
            n, = gp.mutNodeReplacement(tb.clone(e), pset=tb.pset)
            del n.fitness.values
            neighbours.append(n)
    _evaluate(neighbours, tb, evaluator, cache, stats)
    better = sorted((n for n in neighbours if n.fitness > min(e.fitness for e in elites)),
                    key=lambda n: n.fitness, reverse=True)
    keys = {_key(i) for i in pop}
    chosen = []
    for n in better:
        if _key(n) not in keys:
            keys.add(_key(n))
            chosen.append(n)
        if len(chosen) >= cfg.elite:
            break
    if chosen:
        worst = sorted(range(len(pop)), key=lambda i: pop[i].fitness)[: len(chosen)]
        for i, n in zip(worst, chosen):
            pop[i] = n


def _evaluate(inds, tb, evaluator, cache: FitnessCache, stats: dict) -> None:
    pending: Dict[str, list] = {}
    for ind in inds:
        if ind.fitness.valid:
            continue
        key, sign = _key(ind)
        hit = cache.lookup(key, sign)
        if hit is not None:
            ind.fitness.values = (round(hit[0], 6), len(ind))
            stats["hits"] += 1
        else:
            pending.setdefault(key, []).append(ind)
    keys = list(pending)
    results = list(tb.map(evaluator, [[n.name for n in pending[k][0]] for k in keys]))
    stats["evals"] += len(keys)
    for k, (tau, valid, _reason) in zip(keys, results):
        cache.store(k, pending[k][0].key[1], tau, valid)
        for ind in pending[k]:
            t, _ = cache.lookup(k, ind.key[1])
            ind.fitness.values = (round(t, 6), len(ind))


def _ind_from_json(rec, tb):
    from deap import creator
    ind = creator.ProxyIndividual(Proxy(rec["tokens"]).to_deap(tb.pset))
    ind.fitness.values = tuple(rec["fitness"])
    ind.key = (rec["key"], rec["sign"])
    ind.key_tokens = tuple(rec["tokens"])
    return ind


def _log_gen(line: str) -> float:
    try:
        return float(json.loads(line)["gen"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        return float("inf")


def evolve(evaluator: Callable, cfg: EvolutionConfig, seeds: Sequence[Proxy] = (), out_dir: Optional[str] = None,
           resume: bool = False, map_fn: Callable = map, progress: Optional[Callable[[dict], None]] = None,
           run_info: Optional[dict] = None) -> EvolutionResult:
    """Run typed-GP evolution of proxies; ``evaluator(tokens) -> (tau, valid, reason)``.

    ``seeds`` are inserted into the initial population. With ``out_dir`` every generation is logged
    and checkpointed; ``resume=True`` continues from ``out_dir/checkpoint.json``.
    """
    cfg.check()
    tb = make_toolbox(cfg, map_fn=map_fn)
    out = Path(out_dir) if out_dir else None
    cache = FitnessCache()
    archive = _Archive(cfg.hof_size * 3)  # spare entries: the report drops rank-identical forms
    history: List[dict] = []
    stats = {"hits": 0, "evals": 0}
    ckpt_path = out / CHECKPOINT if out else None
    if resume:
        if ckpt_path is None:
            raise SaswotError("cannot resume: no output folder given")
        ck = read_checkpoint(ckpt_path, CHECKPOINT_FORMAT, CHECKPOINT_KEYS)
        now = asdict(cfg)  # settings added later count as their default in older checkpoints
        check_same_settings(dict(ck["config"]), now, [k for k in now if k != "generations"], f"{str(out)!r}",
                            prefix="--", defaults=asdict(EvolutionConfig()))
        try:
            pop = [_ind_from_json(r, tb) for r in ck["population"]]
            cache = FitnessCache.from_json(ck["cache"])
            archive.hof = {e["key"]: e for e in ck["hall_of_fame"]}
            archive.by_size = {int(e["size"]): e for e in ck["best_by_size"]}
            history = list(ck["history"])
            stats = dict(ck["stats"])
            random.setstate(rng_from_json(ck["random_state"]))
            start = int(ck["generation"]) + 1
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise SaswotError(f"cannot resume: checkpoint {str(ckpt_path)!r} is damaged "
                              f"({type(exc).__name__}: {exc}); start again with --overwrite") from None
        if out is not None and (out / LOG).exists():  # drop log lines written after the checkpoint
            lines = [ln for ln in (out / LOG).read_text().splitlines() if ln.strip()]
            keep = [ln for ln in lines if _log_gen(ln) < start]  # a line cut by a kill is dropped too
            (out / LOG).write_text("".join(ln + "\n" for ln in keep))
    else:
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            if (out / LOG).exists():
                (out / LOG).unlink()
        random.seed(cfg.seed)
        from deap import creator
        usable = [p for p in seeds if all(t in tb.pset.mapping for t in p.tokens)]  # seeds of this terminal set
        pop = [creator.ProxyIndividual(p.to_deap(tb.pset)) for p in usable[: cfg.population]]
        while len(pop) < cfg.population:
            pop.append(_new_individual(tb, cfg))
        start = 0

    for gen in range(start, cfg.generations + 1):
        t0 = time.perf_counter()
        before = dict(stats)
        if gen > 0:
            elites = tools.selBest(pop, cfg.elite) if cfg.elite else []
            offspring = [tb.clone(i) for i in tb.select(pop, len(pop) - cfg.elite)]
            for i in range(1, len(offspring), 2):
                if random.random() < cfg.cxpb:
                    offspring[i - 1], offspring[i] = tb.mate(offspring[i - 1], offspring[i])
                    del offspring[i - 1].fitness.values, offspring[i].fitness.values
            for i in range(len(offspring)):
                if random.random() < cfg.mutpb:
                    offspring[i], = tb.mutate(offspring[i])
                    del offspring[i].fitness.values
            n_imm = int(round(cfg.immigrants * len(offspring)))
            if n_imm:
                offspring[-n_imm:] = [_new_individual(tb, cfg) for _ in range(n_imm)]
            pop = [tb.clone(e) for e in elites] + offspring
            _diversify(pop, tb, cfg)
        _evaluate(pop, tb, evaluator, cache, stats)
        if cfg.local_search and cfg.elite:
            _local_search(pop, tb, cfg, evaluator, cache, stats)
        for ind in pop:
            archive.update(ind)
        fits = [ind.fitness.values[0] for ind in pop]
        valid = [f for f in fits if f > INVALID]
        top = archive.ranked()[0] if archive.hof else None
        rec = {"gen": gen, "best": max(fits), "median": statistics.median(fits),
               "median_valid": statistics.median(valid) if valid else None,
               "invalid": len(fits) - len(valid), "mean_size": sum(len(i) for i in pop) / len(pop),
               "evals": stats["evals"] - before["evals"], "cache_hits": stats["hits"] - before["hits"],
               "seconds": round(time.perf_counter() - t0, 4),
               "best_ever": top["train_kendall"] if top else None,
               "best_expression": Proxy(top["tokens"]).expression() if top else None}
        history.append(rec)
        if out is not None:
            append_jsonl(out / LOG, rec)
            atomic_write_json(ckpt_path, {
                "format": CHECKPOINT_FORMAT, "version": 1, "config": asdict(cfg), "generation": gen,
                "run": run_info or {},
                "population": [{"tokens": [n.name for n in i], "fitness": list(i.fitness.values),
                                "key": i.key[0], "sign": i.key[1]} for i in pop],
                "hall_of_fame": archive.ranked(), "best_by_size": list(archive.by_size.values()),
                "cache": cache.to_json(), "stats": stats, "history": history,
                "random_state": rng_to_json(random.getstate())})
        if progress:
            progress(rec)
    if not archive.hof:
        raise SaswotError("evolution found no valid proxy (every candidate was invalid); check the benchmark targets")
    return EvolutionResult(archive.ranked(), archive.pareto(), history, stats["hits"], stats["evals"], asdict(cfg))
