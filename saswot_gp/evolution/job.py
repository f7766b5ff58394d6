"""The ``saswot-gp evolve`` job: one or several benchmarks, each with its own statistics, batch and split.

Every benchmark is split (seeded) into training, optional validation and held-out architectures.
Fitness aggregates the per-benchmark training Kendall tau (:class:`MultiEvaluator`, mean or min); the
final proxy is chosen among the hall of fame on training or on validation data (``select``), never on
held-out data. The report gives every benchmark's train, validation and held-out figures and, for each
benchmark, the best hand-designed proxy on the same held-out architectures.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from scipy import stats as sstats

from ..errors import NUMERICAL_ERRORS, SaswotError
from ..groundtruth.base import Benchmark
from ..stats import PackedStats

SELECT_RULES = ("train", "val")


@dataclass
class BenchmarkData:
    """One benchmark prepared for evolution: its splits, their packed statistics and the batch used."""

    spec: str
    bench: Benchmark
    train: Benchmark
    val: Optional[Benchmark]
    test: Benchmark
    ptrain: PackedStats
    pval: Optional[PackedStats]
    ptest: PackedStats
    batch: str

    @property
    def name(self) -> str:
        """The benchmark's name."""
        return self.bench.name


def split_three(bench: Benchmark, train_size: int, seed: int, heldout_size: Optional[int],
                val_frac: float) -> Tuple[Benchmark, Optional[Benchmark], Benchmark]:
    """(train, validation or None, held-out): ``Benchmark.split`` then the last ``val_frac`` of the training split.

    The held-out architectures are exactly those of ``bench.split(train_size, seed, heldout_size)`` whatever
    ``val_frac`` is, so runs with and without validation report on the same architectures.
    """
    try:
        train, test = bench.split(train_size, seed=seed, max_eval=heldout_size)
    except ValueError as exc:
        raise SaswotError(str(exc)) from None
    if not 0 <= val_frac < 1:
        raise SaswotError(f"validation fraction {val_frac}; expected 0 <= fraction < 1")
    n_val = int(round(val_frac * len(train)))
    if n_val == 0:
        return train, None, test
    if len(train) - n_val < 4 or n_val < 4:
        raise SaswotError(f"benchmark {bench.name!r}: {len(train)} training architectures are too few to keep "
                          f"{n_val} for validation (need at least 4 on each side)")
    idx = np.arange(len(train))
    return train.subset(idx[: len(train) - n_val]), train.subset(idx[len(train) - n_val:]), test


def prepare_benchmark(spec: str, metric: Optional[str] = None, seed: int = 0, train_size: int = 200,
                      heldout_size: Optional[int] = None, val_frac: float = 0.0, batch_size: int = 8,
                      resolution: Optional[Tuple[int, int]] = None, k: Optional[int] = 256, batch: str = "auto",
                      cache_dir: Optional[str] = None, log: Callable[[str], None] = print,
                      shared: Optional[dict] = None) -> BenchmarkData:
    """Load, split and collect (or load cached) statistics of one benchmark; ``seed`` sets split, batch and weights.

    ``shared``: a dict kept across calls; splits with the same space, architectures and batch (NAS-Bench-MR
    seg and seg-4x share their architectures) then share one packed-statistics object, which
    :class:`MultiEvaluator` scores once.
    """
    from ..batches import default_batch, describe_batch
    from ..groundtruth.loaders import resolve_benchmark
    from ..stats.cache import stats_and_targets
    bench = resolve_benchmark(spec, metric, cache_dir=cache_dir)
    train, val, test = split_three(bench, train_size, seed, heldout_size, val_frac)
    images, labels = default_batch(bench, n=batch_size, seed=seed, resolution=resolution, kind=batch)
    desc = describe_batch(bench, images, seed, kind=batch)
    log(f"benchmark {bench.name}: {len(bench)} architectures of space {bench.space!r}, target {bench.metric}; "
        f"{len(train)} train / {len(val) if val is not None else 0} validation / {len(test)} held out (split seed {seed})")
    log(f"  statistics batch: {desc}; sketch K={'full' if k is None else k}")

    def bar(label):
        from ..progress import Progress
        return Progress(f"  {bench.name} {label} statistics", unit="net")

    from ..stats.cache import batch_digest
    digest = batch_digest(images, labels)

    def packed(part, label):
        key = (part.space, json.dumps(part.space_kwargs, sort_keys=True), tuple(part.archs), digest, k, seed)
        if shared is not None and key in shared:
            return shared[key]
        p = stats_and_targets(part, images, labels, k=k, seed=seed, cache_dir=cache_dir, progress=bar(label))[0]
        if shared is not None:
            shared[key] = p
        return p

    ptrain = packed(train, "train")
    pval = packed(val, "validation") if val is not None else None
    ptest = packed(test, "held-out")
    return BenchmarkData(spec, bench, train, val, test, ptrain, pval, ptest, desc)


_SCORE_MEMO: Dict[tuple, Optional[np.ndarray]] = {}  # (tokens, id(packed)) -> scores, within one report


def _scores(proxy, packed: PackedStats) -> Tuple[Optional[np.ndarray], Optional[str]]:
    try:
        with torch.no_grad():
            return proxy.evaluate(packed).numpy(), None
    except NUMERICAL_ERRORS as exc:
        return None, str(exc)


def proxy_scores(proxy, packed: PackedStats) -> Optional[np.ndarray]:
    """The proxy's scores on packed statistics, or None after a numerical accident (memoised within a report)."""
    key = (tuple(proxy.tokens), id(packed))
    if key in _SCORE_MEMO:
        return _SCORE_MEMO[key]
    out = _scores(proxy, packed)[0]
    if len(_SCORE_MEMO) < 10_000:
        _SCORE_MEMO[key] = out
    return out


def evaluate_proxies(proxies: Dict[str, "object"], packed: PackedStats, target) -> Dict[str, Dict[str, float]]:
    """Kendall and Spearman of each named proxy's scores against ``target`` (NaN and the error after a
    numerical accident)."""
    out = {}
    for name, p in proxies.items():
        s, err = _scores(p, packed)
        out[name] = _corr(s, np.asarray(target))
        if err is not None:
            out[name]["error"] = err
    return out


def _corr(scores: Optional[np.ndarray], target: np.ndarray) -> Dict[str, float]:
    from ..ranking import correlations
    if scores is None:
        return {"kendall": float("nan"), "spearman": float("nan")}
    return correlations(scores, target)


def proxy_figures(proxy, data: Sequence[BenchmarkData]) -> Dict[str, Dict[str, float]]:
    """Per benchmark: Kendall and Spearman of ``proxy`` on the train, validation and held-out splits."""
    out = {}
    for d in data:
        row = {}
        for part, packed, bench in (("train", d.ptrain, d.train), ("val", d.pval, d.val), ("heldout", d.ptest, d.test)):
            if packed is None:
                continue
            c = _corr(proxy_scores(proxy, packed), bench.target)
            row[f"{part}_kendall"], row[f"{part}_spearman"] = c["kendall"], c["spearman"]
        out[d.name] = row
    return out


def aggregate(values: Sequence[float], how: str) -> float:
    """Mean or minimum of per-benchmark figures (NaN if any is NaN)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0 or not np.all(np.isfinite(v)):
        return float("nan")
    return float(v.mean() if how == "mean" else v.min())


def _with_aggregates(row: dict, per: Dict[str, Dict[str, float]], how: str) -> dict:
    row["per_benchmark"] = per
    for key in ("train_kendall", "train_spearman", "val_kendall", "val_spearman", "heldout_kendall", "heldout_spearman"):
        vals = [p[key] for p in per.values() if key in p]
        if len(vals) == len(per):
            row[key] = aggregate(vals, how)
    return row


def rank_signature(proxy, data: Sequence[BenchmarkData]) -> Optional[tuple]:
    """The proxy's rankings on every split of every benchmark: equal signatures rank everything identically."""
    sig = []
    for d in data:
        for packed in (d.ptrain, d.pval, d.ptest):
            if packed is None:
                continue
            s = proxy_scores(proxy, packed)
            if s is None:
                return None
            sig.append(tuple(sstats.rankdata(s, method="min").astype(int)))
    return tuple(sig)


def dedupe_by_ranking(entries: Sequence[dict], data: Sequence[BenchmarkData], limit: int) -> List[dict]:
    """Keep the first of every group of hall-of-fame entries that rank all architectures identically."""
    from ..proxy import Proxy
    seen, out = set(), []
    for e in entries:
        sig = rank_signature(Proxy(e["tokens"]), data)
        if sig is None or sig in seen:
            continue
        seen.add(sig)
        out.append(e)
        if len(out) >= limit:
            break
    return out


def reference_figures(d: BenchmarkData) -> List[dict]:
    """Held-out Kendall and Spearman of every precomputed score column of the benchmark file (at least 3 finite values)."""
    from ..ranking import correlations
    out = []
    for col, vals in sorted(d.test.reference.items()):
        n = int(np.isfinite(vals).sum())
        c = correlations(vals, d.test.target)
        if n >= 3 and np.isfinite(c["kendall"]):
            out.append({"name": f"{col} (file)", "benchmark": d.name, "heldout_kendall": c["kendall"],
                        "heldout_spearman": c["spearman"], "n": n})
    return out


def best_handcrafted(data: Sequence[BenchmarkData]) -> Dict[str, dict]:
    """Per benchmark: every hand-designed proxy of the proxy language and every precomputed score of the
    benchmark file on the held-out architectures, and the best of them by held-out Kendall."""
    from ..handcrafted import handcrafted_proxies
    out = {}
    for d in data:
        cands = {}
        for name, p in handcrafted_proxies().items():
            cands[name] = _corr(proxy_scores(p, d.ptest), d.test.target)
        for r in reference_figures(d):
            cands[r["name"]] = {"kendall": r["heldout_kendall"], "spearman": r["heldout_spearman"]}
        finite = {n: c for n, c in cands.items() if np.isfinite(c["kendall"])}
        best = max(finite, key=lambda n: finite[n]["kendall"]) if finite else None
        out[d.name] = {"all": cands, "best": best,
                       "best_heldout_kendall": finite[best]["kendall"] if best else float("nan")}
    return out


def safe_simplify(expr, seconds: int = 3):
    """``sympy.simplify`` with a time limit (falls back to the constructed form)."""
    import signal
    import threading
    import sympy
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGALRM"):
        return expr

    def _raise(*_):
        raise TimeoutError

    old = signal.signal(signal.SIGALRM, _raise)
    signal.alarm(seconds)
    try:
        return sympy.simplify(expr)
    except (TimeoutError, RecursionError):
        return expr
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _read_checkpoint_run(out: Path) -> dict:
    from ..io import read_checkpoint
    from .loop import CHECKPOINT, CHECKPOINT_FORMAT, CHECKPOINT_KEYS
    ck = read_checkpoint(out / CHECKPOINT, CHECKPOINT_FORMAT, CHECKPOINT_KEYS)
    if not isinstance(ck["config"], dict) or not isinstance(ck["run"], dict) or not isinstance(ck["generation"], int) \
            or not all(k in ck["config"] for k in ("population", "seed")):
        raise SaswotError(f"cannot resume: checkpoint in {str(out)!r} is damaged (config, run or generation malformed)")
    return ck


# every file a run writes into its folder: an existing one marks the folder as holding a run
RUN_FILES = ("checkpoint.json", "summary.json", "best_proxy.json", "hall_of_fame.json", "log.jsonl", "proxy.png",
             "evolution.png")


def run_evolve(benchmark="realtime-digits", metric: Optional[str] = None, out_dir: str = "runs/evolve",
               population: int = 64, generations: Optional[int] = None, seed: int = 0, k: Optional[int] = 256,
               train_size: int = 200, batch_size: int = 8, workers: int = 0, resume: bool = False,
               resolution: Optional[Tuple[int, int]] = None, top: int = 5, heldout_size: Optional[int] = None,
               fitness: str = "mean", terminals: str = "all", select: str = "train", val_frac: Optional[float] = None,
               batch: str = "auto", data_seed: Optional[int] = None, cache_dir: Optional[str] = None,
               overwrite: bool = False, log: Callable[[str], None] = print) -> dict:
    """Evolve proxies on the training splits of one or several benchmarks and report every split.

    ``benchmark``: a name or path, or a list of them. ``fitness``: 'mean' or 'min' of the per-benchmark
    training Kendall tau. ``terminals``: 'all', 'stats' or 'sizes'. ``select``: choose the final proxy
    among the hall of fame by aggregated training ('train') or validation ('val', needs ``val_frac`` > 0)
    Kendall; ``val_frac`` defaults to 0.25 with 'val', else 0). ``data_seed`` (default ``seed``) sets splits, batches
    and network weights, ``seed`` the evolution. ``generations``: 20 for a new run; on ``resume`` the checkpoint's
    unless given (then it may only extend the run). A folder that holds a run is refused unless ``resume`` or
    ``overwrite``. Writes ``best_proxy.json``, ``hall_of_fame.json``, ``log.jsonl``, ``checkpoint.json``,
    ``proxy.png``, ``evolution.png`` and ``summary.json`` into ``out_dir``; returns the summary dict.
    """
    from ..handcrafted import handcrafted_proxies
    from ..io import atomic_write_json, prepare_run_dir
    from ..proxy import Proxy
    from ..viz import draw_proxy, plot_evolution
    from . import EvolutionConfig, evolve, make_map
    from .fitness import FITNESS_AGGREGATES, MultiEvaluator, ProxyEvaluator

    out = Path(out_dir)
    if val_frac is None:
        val_frac = 0.25 if select == "val" else 0.0
    specs = [benchmark] if isinstance(benchmark, str) else list(benchmark)
    run = {"benchmarks": specs, "metric": metric, "k": k, "train_size": train_size, "batch_size": batch_size,
           "resolution": list(resolution) if resolution else None, "heldout_size": heldout_size, "fitness": fitness,
           "select": select, "val_frac": val_frac, "batch": batch, "data_seed": data_seed}
    if resume:
        saved = _read_checkpoint_run(out)
        old = saved["run"]
        run = dict(run, **old)
        if "benchmarks" not in old and "benchmark" in old:  # checkpoints written before multi-benchmark runs
            run["benchmarks"] = [old["benchmark"]]
            run.pop("benchmark", None)
        population, seed = saved["config"]["population"], saved["config"]["seed"]
        terminals = saved["config"].get("terminals", "all")  # checkpoints of earlier versions: all terminals
        specs, metric, k = run["benchmarks"], run["metric"], run["k"]
        train_size, batch_size, heldout_size = run["train_size"], run["batch_size"], run.get("heldout_size")
        resolution = tuple(run["resolution"]) if run.get("resolution") else None
        fitness, select, val_frac = run.get("fitness", "mean"), run.get("select", "train"), run.get("val_frac", 0.0)
        batch, data_seed = run.get("batch", "auto"), run.get("data_seed")
        done_gen = saved["generation"]
        was = saved["config"].get("generations", done_gen)
        if generations is None:
            generations = was
        elif generations < done_gen:
            raise SaswotError(f"cannot resume {str(out)!r} with --generations {generations}: the checkpoint has finished "
                              f"generation {done_gen}; expected at least {done_gen}")
        log(f"resuming {str(out)!r} at generation {done_gen + 1} of {generations}"
            + ("" if generations == was else f" (extended from {was})"))
    elif generations is None:
        generations = 20
    if fitness not in FITNESS_AGGREGATES:
        raise SaswotError(f"fitness {fitness!r}; expected one of {', '.join(FITNESS_AGGREGATES)}")
    if select not in SELECT_RULES:
        raise SaswotError(f"select {select!r}; expected one of {', '.join(SELECT_RULES)}")
    if select == "val" and val_frac <= 0:
        raise SaswotError("--select val needs a validation split: give --val-frac > 0")
    if len(set(specs)) != len(specs):
        raise SaswotError(f"benchmark given twice in {specs}; expected distinct benchmarks")
    dseed = seed if data_seed is None else data_seed
    prepare_run_dir(out, RUN_FILES, resume, overwrite, f"--resume {out}")
    cache_dir = cache_dir or str(out / "stats_cache")
    t0 = time.perf_counter()
    shared: dict = {}
    data = [prepare_benchmark(s, metric, dseed, train_size, heldout_size, val_frac, batch_size, resolution, k, batch,
                              cache_dir, log, shared) for s in specs]
    names = [d.name for d in data]
    if len(set(names)) != len(names):
        raise SaswotError(f"two benchmarks have the same name in {names}; expected distinct benchmarks")
    t_stats = time.perf_counter() - t0
    evaluator = MultiEvaluator({d.name: ProxyEvaluator(d.ptrain, d.train.target) for d in data}, how=fitness)
    map_fn, close, fn = make_map(evaluator, workers)
    cfg = EvolutionConfig(population=population, generations=generations, seed=seed, terminals=terminals)
    seeds = list(handcrafted_proxies().values())

    def progress(rec):
        log(f"gen {rec['gen']:3d}/{generations}  best {rec['best']:+.4f}  median {rec['median']:+.4f}  "
            f"invalid {rec['invalid']:3d}  evals {rec['evals']:3d}  cache hits {rec['cache_hits']:3d}  "
            f"{rec['seconds']:.2f}s  {rec['best_expression']}")

    t1 = time.perf_counter()
    try:
        res = evolve(fn, cfg, seeds=seeds, out_dir=str(out), resume=resume, map_fn=map_fn, progress=progress,
                     run_info=run)
    finally:
        close()
    t_evo = time.perf_counter() - t1

    _SCORE_MEMO.clear()  # the packed statistics below stay alive until the report is written
    hof = dedupe_by_ranking(res.hall_of_fame, data, cfg.hof_size)
    rows = []
    for i, e in enumerate(hof):
        p = Proxy(e["tokens"], name=f"evolved-{i + 1}")
        row = {"name": p.name, "tokens": p.tokens, "expression": p.expression(), "size": p.size}
        rows.append(_with_aggregates(row, proxy_figures(p, data), fitness))
    if select == "val":
        order = sorted(range(len(rows)), key=lambda i: (-np.nan_to_num(rows[i].get("val_kendall", np.nan), nan=-9.0),
                                                         rows[i]["size"], i))
        rows = [rows[i] for i in order]
    for i, row in enumerate(rows):
        row["name"] = f"evolved-{i + 1}"
        p = Proxy(row["tokens"])
        row["sympy"] = str(safe_simplify(p.sympy())) if i < top else str(p.sympy())
    hand = []
    for name, p in handcrafted_proxies().items():
        row = {"name": name, "tokens": p.tokens, "expression": p.expression(), "size": p.size, "sympy": str(p.sympy())}
        hand.append(_with_aggregates(row, proxy_figures(p, data), fitness))
    reference = [r for d in data for r in reference_figures(d)]
    best_hand = best_handcrafted(data)
    per_bench = []
    for d in data:
        per_bench.append({
            "name": d.name, "spec": d.spec, "space": d.bench.space, "metric": d.bench.metric,
            "description": d.bench.description, "batch": d.batch, "n_train": len(d.train),
            "n_val": len(d.val) if d.val is not None else 0, "n_heldout": len(d.test),
            "best": rows[0]["per_benchmark"][d.name], "best_handcrafted": best_hand[d.name]["best"],
            "best_handcrafted_heldout_kendall": best_hand[d.name]["best_heldout_kendall"]})
    meta = {"benchmarks": names, "metric": metric, "fitness": fitness, "terminals": terminals, "select": select,
            "val_frac": val_frac, "batch": batch, "k": k, "seed": seed, "data_seed": dseed,
            "population": population, "generations": generations,
            **{m: rows[0][m] for m in ("train_kendall", "train_spearman", "val_kendall", "heldout_kendall",
                                       "heldout_spearman") if m in rows[0]},
            "per_benchmark": rows[0]["per_benchmark"]}
    if len(data) == 1:
        meta.update(benchmark=names[0], metric=data[0].bench.metric, n_train=len(data[0].train),
                    n_heldout=len(data[0].test))
    best = Proxy(rows[0]["tokens"], name="best", meta=meta)
    best.save(out / "best_proxy.json")
    pareto = [{"tokens": e["tokens"], "expression": Proxy(e["tokens"]).expression(), "size": e["size"],
               "train_kendall": e["train_kendall"]} for e in res.best_by_size]
    label = " + ".join(names)
    atomic_write_json(out / "hall_of_fame.json", {"format": "saswot-gp-hall-of-fame", "version": 1,
                                                  "benchmark": label, "benchmarks": names, "evolved": rows,
                                                  "pareto_by_size": pareto, "handcrafted": hand})
    draw_proxy(best.tokens, out / "proxy.png", title=f"best proxy: {rows[0]['sympy']}")
    plot_evolution(res.history, out / "evolution.png", title=f"{label}: pop {population}, seed {seed}")
    summary = {"benchmark": label, "benchmarks": per_bench, "description": "; ".join(d.bench.description for d in data),
               "space": ",".join(d.bench.space for d in data), "metric": ",".join(d.bench.metric for d in data),
               "n_train": sum(len(d.train) for d in data), "n_val": sum(len(d.val) for d in data if d.val is not None),
               "n_heldout": sum(len(d.test) for d in data), "k": k, "seed": seed, "data_seed": dseed,
               "population": population, "generations": generations, "fitness": fitness, "terminals": terminals,
               "select": select, "val_frac": val_frac, "batch": batch, "evaluations": res.evaluations,
               "cache_hits": res.cache_hits, "stats_seconds": round(t_stats, 2), "evolution_seconds": round(t_evo, 2),
               "evolved": rows[:top], "handcrafted": hand, "reference": reference,
               "best_handcrafted": {n: {"best": v["best"], "heldout_kendall": v["best_heldout_kendall"]}
                                    for n, v in best_hand.items()}}
    atomic_write_json(out / "summary.json", summary)
    _SCORE_MEMO.clear()
    return summary


def format_table(summary: dict) -> str:
    """Plain-text tables: the best evolved proxies beside the hand-designed ones (aggregated over benchmarks),
    then every benchmark's figures for the chosen proxy beside its best hand-designed proxy."""
    has_val = any("val_kendall" in r for r in summary["evolved"])
    head = (f"{'proxy':<14}{'size':>5}{'train tau':>11}{'train rho':>11}" + (f"{'val tau':>9}" if has_val else "")
            + f"{'held tau':>10}{'held rho':>10}  expression")
    lines = [head, "-" * len(head)]
    for r in summary["evolved"] + summary["handcrafted"]:
        val = f"{r.get('val_kendall', float('nan')):>9.3f}" if has_val else ""
        lines.append(f"{r['name']:<14}{r['size']:>5}{r.get('train_kendall', float('nan')):>11.3f}"
                     f"{r.get('train_spearman', float('nan')):>11.3f}{val}{r.get('heldout_kendall', float('nan')):>10.3f}"
                     f"{r.get('heldout_spearman', float('nan')):>10.3f}  {r['sympy']}")
    if summary.get("reference"):
        lines.append("precomputed scores shipped with the benchmark file, same held-out architectures:")
        for r in summary["reference"]:
            lines.append(f"{r['name']:<21}{'':>20}{r['heldout_kendall']:>10.3f}{r['heldout_spearman']:>10.3f}  "
                         f"(n={r['n']}, {r.get('benchmark', '')})")
    per = summary.get("benchmarks") or []
    if len(per) > 1:
        lines.append(f"\nper benchmark, chosen proxy (evolved-1) vs the best hand-designed proxy on the same held-out "
                     f"architectures (fitness: {summary.get('fitness')} of training Kendall):")
        h2 = f"{'benchmark':<36}{'train':>7}{'val':>7}{'held':>7}  {'best hand-designed':<24}{'held':>7}"
        lines += [h2, "-" * len(h2)]
        for b in per:
            f = b["best"]
            lines.append(f"{b['name']:<36}{f.get('train_kendall', float('nan')):>7.3f}{f.get('val_kendall', float('nan')):>7.3f}"
                         f"{f.get('heldout_kendall', float('nan')):>7.3f}  {str(b['best_handcrafted']):<24}"
                         f"{b['best_handcrafted_heldout_kendall']:>7.3f}")
    return "\n".join(lines)
