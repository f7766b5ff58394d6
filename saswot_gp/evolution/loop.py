"""The typed-GP evolution loop (DEAP ``algorithms.py`` style: a plain function over a toolbox).

Variation, selection and evaluation are toolbox entries; ``toolbox.map`` is the single point of
parallelism. Every generation is appended to ``log.jsonl`` and checkpointed atomically to
``checkpoint.json`` (proxies as token lists, never pickles) so that a killed run resumes.
"""

from __future__ import annotations

import json
import math
import random
import statistics
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from deap import gp, tools

from ..errors import SaswotError
from ..io import append_jsonl, atomic_write_json, check_same_settings, read_checkpoint, rng_from_json, rng_to_json
from ..proxy import Proxy
from .config import EvolutionConfig, EvolutionResult
from .fitness import INVALID, FitnessCache, Resampler
from .variation import _diversify, _key, _new_individual, make_toolbox

CHECKPOINT = "checkpoint.json"
CHECKPOINT_FORMAT = "saswot-gp-checkpoint"
CHECKPOINT_KEYS = ("config", "generation", "run", "population", "cache", "hall_of_fame", "best_by_size", "history",
                   "stats", "random_state")
LOG = "log.jsonl"


class _Archive:
    """Hall of fame (unique canonical forms) and the best proxy of every size (PySR-style table)."""

    def __init__(self, size: int):
        self.size = size
        self.hof: Dict[str, dict] = {}
        self.by_size: Dict[int, dict] = {}

    def update(self, ind, tau: float) -> None:
        """Consider ``ind``, whose training Kendall tau (on the whole training split) is ``tau``."""
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


def _local_search(pop, tb, cfg: EvolutionConfig, score: "_Scoring") -> None:
    """Memetic step: try node-replacement neighbours of each elite; improvements replace the worst."""
    elites = tools.selBest(pop, cfg.elite)
    neighbours = []
    for e in elites:
        for _ in range(cfg.local_search):
            n, = gp.mutNodeReplacement(tb.clone(e), pset=tb.pset)
            del n.fitness.values
            neighbours.append(n)
    _evaluate(neighbours, tb, score)
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


class _Scoring:
    """How one generation scores individuals: the evaluator, the run's fitness cache and counters, and the
    generation (with a :class:`Resampler`, fitness is the Kendall tau on that generation's subsets)."""

    def __init__(self, evaluator, state: "_RunState", cfg: EvolutionConfig, resampler: Optional[Resampler], gen: int):
        self.evaluator, self.cache, self.stats = evaluator, state.cache, state.stats
        self.parsimony, self.resampler, self.gen = cfg.parsimony, resampler, gen

    def assign(self, ind) -> None:
        """Set ``ind``'s selection fitness from the cache: (tau - parsimony * size, size)."""
        key, sign = ind.key
        tau, valid = self.cache.lookup(key, sign)
        if valid and self.resampler is not None:
            scores = self.cache.scores.get(key)  # missing only if a refill failed: judged invalid, never a crash
            t = self.resampler.fitness(scores, self.gen) if scores is not None else math.nan
            tau, valid = (sign * t, True) if math.isfinite(t) else (INVALID, False)
        value = tau - self.parsimony * len(ind) if valid else INVALID
        ind.fitness.values = (round(value, 6), len(ind))

    def ready(self, key: str) -> bool:
        """The cache holds what fitness needs for ``key``."""
        e = self.cache.entries.get(key)
        return e is not None and (self.resampler is None or not e[1] or key in self.cache.scores)


def _evaluate(inds, tb, score: _Scoring) -> None:
    cache, stats = score.cache, score.stats
    pending: Dict[str, list] = {}
    for ind in inds:
        if ind.fitness.valid:
            continue
        key, _sign = _key(ind)
        if score.ready(key):
            score.assign(ind)
            stats["hits"] += 1
        else:
            pending.setdefault(key, []).append(ind)
    keys = list(pending)
    # a key already cached lacks only its scores (after a resume): they are refilled from the form evaluated first
    forms = [cache.forms.get(k) or ([n.name for n in pending[k][0]], pending[k][0].key[1]) for k in keys]
    results = list(tb.map(score.evaluator, [tokens for tokens, _ in forms]))
    stats["evals"] += sum(k not in cache.entries for k in keys)  # scores refilled after a resume are not new
    for k, (tokens, sign), res in zip(keys, forms, results):
        if k not in cache.entries:
            cache.store(k, sign, res[0], res[1])
        if len(res) > 3 and res[3] is not None:
            cache.scores[k] = {name: v * sign for name, v in res[3].items()}  # stored for the sign-+1 form
            cache.forms[k] = (tokens, sign)
        for ind in pending[k]:
            score.assign(ind)


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


class _RunState:
    """What a generation changes and a checkpoint keeps: population, fitness cache, archive, log, counters."""

    def __init__(self, cfg: EvolutionConfig):
        self.pop: list = []
        self.cache = FitnessCache()
        self.archive = _Archive(cfg.hof_size * 3)  # spare entries: the report drops rank-identical forms
        self.history: List[dict] = []
        self.stats = {"hits": 0, "evals": 0}
        self.start = 0

    def to_json(self, cfg: EvolutionConfig, gen: int, run_info: Optional[dict]) -> dict:
        """The checkpoint document after generation ``gen``."""
        return {"format": CHECKPOINT_FORMAT, "version": 1, "config": asdict(cfg), "generation": gen,
                "run": run_info or {},
                "population": [{"tokens": [n.name for n in i], "fitness": list(i.fitness.values),
                                "key": i.key[0], "sign": i.key[1]} for i in self.pop],
                "hall_of_fame": self.archive.ranked(), "best_by_size": list(self.archive.by_size.values()),
                "cache": self.cache.to_json(), "stats": self.stats, "history": self.history,
                "random_state": rng_to_json(random.getstate())}


def _restore(state: _RunState, out: Optional[Path], cfg: EvolutionConfig, tb) -> None:
    """Load ``out/checkpoint.json`` into ``state`` (settings must match, except generations) and trim the log."""
    if out is None:
        raise SaswotError("cannot resume: no output folder given")
    ckpt_path = out / CHECKPOINT
    ck = read_checkpoint(ckpt_path, CHECKPOINT_FORMAT, CHECKPOINT_KEYS)
    now = asdict(cfg)  # settings added later count as their default in older checkpoints
    check_same_settings(dict(ck["config"]), now, [k for k in now if k != "generations"], f"{str(out)!r}",
                        prefix="--", defaults=asdict(EvolutionConfig()))
    try:
        state.pop = [_ind_from_json(r, tb) for r in ck["population"]]
        state.cache = FitnessCache.from_json(ck["cache"])
        state.archive.hof = {e["key"]: e for e in ck["hall_of_fame"]}
        state.archive.by_size = {int(e["size"]): e for e in ck["best_by_size"]}
        state.history = list(ck["history"])
        state.stats = dict(ck["stats"])
        random.setstate(rng_from_json(ck["random_state"]))
        state.start = int(ck["generation"]) + 1
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise SaswotError(f"cannot resume: checkpoint {str(ckpt_path)!r} is damaged "
                          f"({type(exc).__name__}: {exc}); start again with --overwrite") from None
    if (out / LOG).exists():  # drop log lines written after the checkpoint
        lines = [ln for ln in (out / LOG).read_text().splitlines() if ln.strip()]
        keep = [ln for ln in lines if _log_gen(ln) < state.start]  # a line cut by a kill is dropped too
        (out / LOG).write_text("".join(ln + "\n" for ln in keep))


def _initial(state: _RunState, out: Optional[Path], cfg: EvolutionConfig, tb, seeds: Sequence[Proxy]) -> None:
    """A fresh population: the seeds this terminal set can express, then random trees."""
    from deap import creator
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        if (out / LOG).exists():
            (out / LOG).unlink()
    random.seed(cfg.seed)
    if cfg.root == "rank":  # a plain seed enters as the ranking it makes (rank1), so it stays expressible
        seeds = [p if p.is_ranked else Proxy(["rank1"] + p.tokens, name=p.name) for p in seeds]
    usable = [p for p in seeds if all(t in tb.pset.mapping for t in p.tokens)]
    state.pop = [creator.ProxyIndividual(p.to_deap(tb.pset)) for p in usable[: cfg.population]]
    while len(state.pop) < cfg.population:
        state.pop.append(_new_individual(tb, cfg))


def _offspring(pop: list, tb, cfg: EvolutionConfig) -> list:
    """The next generation before evaluation: elites, then tournament-selected crossover/mutation children and
    immigrants, made unique by :func:`_diversify`."""
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
    return pop


def _record(gen: int, state: _RunState, before: dict, t0: float) -> dict:
    fits = [ind.fitness.values[0] for ind in state.pop]
    valid = [f for f in fits if f > INVALID]
    top = state.archive.ranked()[0] if state.archive.hof else None
    return {"gen": gen, "best": max(fits), "median": statistics.median(fits),
            "median_valid": statistics.median(valid) if valid else None,
            "invalid": len(fits) - len(valid), "mean_size": sum(len(i) for i in state.pop) / len(state.pop),
            "evals": state.stats["evals"] - before["evals"], "cache_hits": state.stats["hits"] - before["hits"],
            "seconds": round(time.perf_counter() - t0, 4),
            "best_ever": top["train_kendall"] if top else None,
            "best_expression": Proxy(top["tokens"]).expression() if top else None}


def evolve(evaluator: Callable, cfg: EvolutionConfig, seeds: Sequence[Proxy] = (), out_dir: Optional[str] = None,
           resume: bool = False, map_fn: Callable = map, progress: Optional[Callable[[dict], None]] = None,
           run_info: Optional[dict] = None, resampler: Optional[Resampler] = None) -> EvolutionResult:
    """Run typed-GP evolution of proxies; ``evaluator(tokens) -> (tau, valid, reason[, scores])``.

    ``seeds`` are inserted into the initial population. With ``out_dir`` every generation is logged
    and checkpointed; ``resume=True`` continues from ``out_dir/checkpoint.json``. ``resampler``: selection
    fitness on fresh training subsets every generation (the evaluator must return its scores); the hall of
    fame still ranks by the Kendall tau on the whole training split.
    """
    cfg.check()
    tb = make_toolbox(cfg, map_fn=map_fn)
    out = Path(out_dir) if out_dir else None
    state = _RunState(cfg)
    if resume:
        _restore(state, out, cfg, tb)
    else:
        _initial(state, out, cfg, tb, seeds)
    for gen in range(state.start, cfg.generations + 1):
        t0 = time.perf_counter()
        before = dict(state.stats)
        if gen > 0:
            state.pop = _offspring(state.pop, tb, cfg)
        score = _Scoring(evaluator, state, cfg, resampler, gen)
        if resampler is not None:  # everyone is judged on this generation's subsets
            for ind in state.pop:
                del ind.fitness.values
        _evaluate(state.pop, tb, score)
        if cfg.local_search and cfg.elite:
            _local_search(state.pop, tb, cfg, score)
        for ind in state.pop:
            state.archive.update(ind, state.cache.lookup(*ind.key)[0])
        rec = _record(gen, state, before, t0)
        state.history.append(rec)
        if out is not None:
            append_jsonl(out / LOG, {**rec, "run_id": run_info["run_id"]} if (run_info or {}).get("run_id") else rec)
            atomic_write_json(out / CHECKPOINT, state.to_json(cfg, gen, run_info))
        if progress:
            progress(rec)
    if not state.archive.hof:
        raise SaswotError("evolution found no valid proxy (every candidate was invalid); check the benchmark targets")
    return EvolutionResult(state.archive.ranked(), state.archive.pareto(), state.history, state.stats["hits"],
                           state.stats["evals"], asdict(cfg))
