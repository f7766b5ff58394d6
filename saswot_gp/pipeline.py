"""Glue between benchmarks, statistics and evolution: the library side of ``saswot-gp evolve``."""

from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple

import numpy as np
import torch

from .batches import digits_batch, synthetic_batch
from .groundtruth.base import Benchmark
from .stats import PackedStats, pack, stats_for_archs


def batch_source(bench: Benchmark) -> str:
    """'digits' for a benchmark trained on the embedded digit scenes (its name says so), else 'synthetic'."""
    return "digits" if bench.space == "realtime" and "digits" in bench.name else "synthetic"


def default_batch(bench: Benchmark, n: int = 8, seed: int = 0, resolution: Optional[Tuple[int, int]] = None):
    """The fixed batch used for a benchmark's statistics: ``(images, labels)``.

    For a benchmark trained on the embedded digit scenes (:func:`batch_source`), the first ``n`` training
    scenes generated with data seed ``seed`` (the build's own data when ``seed`` is 0); otherwise seeded
    synthetic images with spatially coherent random labels (real images of the public benchmarks are not
    available offline).
    """
    from .spaces import get_space
    sp = get_space(bench.space, **bench.space_kwargs)
    size = tuple(resolution or sp.input_size)
    if batch_source(bench) == "digits":
        return digits_batch(n=n, size=size, seed=seed)
    return synthetic_batch(n=n, size=size, num_classes=sp.num_classes, seed=seed)


def describe_batch(bench: Benchmark, images: torch.Tensor, seed: int) -> str:
    """One line saying what :func:`default_batch` gave (printed by the commands that use it)."""
    if batch_source(bench) == "digits":
        return f"the first {images.shape[0]} training digit scenes (data seed {seed}), {tuple(images.shape)}"
    return f"seeded synthetic images {tuple(images.shape)} with smooth random labels (seed {seed})"


def stats_and_targets(bench: Benchmark, images: torch.Tensor, labels: torch.Tensor, k: Optional[int] = 256,
                      seed: int = 0, cache_dir: Optional[str] = None,
                      progress: Optional[Callable[[int, int], None]] = None) -> Tuple[PackedStats, np.ndarray]:
    """Packed statistics of every architecture of ``bench`` and the aligned targets."""
    from .spaces import get_space
    sp = get_space(bench.space, **bench.space_kwargs)
    sid = f"{bench.space}:{sorted(bench.space_kwargs.items())}"
    st = stats_for_archs(sp, bench.archs, images, labels, k=k, seed=seed, cache_dir=cache_dir,
                         progress=progress, space_id=sid)
    return pack(st), bench.target


def evaluate_proxies(proxies: Dict[str, "object"], packed: PackedStats, target) -> Dict[str, Dict[str, float]]:
    """Kendall and Spearman of each named proxy's scores against ``target``."""
    from .evolution import correlations
    out = {}
    with torch.no_grad():
        for name, p in proxies.items():
            try:
                s = p.evaluate(packed).numpy()
            except (RuntimeError, ValueError) as exc:
                out[name] = {"kendall": float("nan"), "spearman": float("nan"), "error": str(exc)}
                continue
            out[name] = correlations(s, target)
    return out


# ---------------------------------------------------------------------------------------------- evolve


def resolve_benchmark(spec: str, metric: Optional[str] = None, cache_dir: Optional[str] = None) -> Benchmark:
    """A registered benchmark name or a path to a benchmark file (see ``groundtruth.loaders``)."""
    if spec == "synthetic":
        from .groundtruth.synthetic import planted_benchmark
        return planted_benchmark(n_archs=80, cache_dir=cache_dir)
    from .groundtruth.loaders import load_benchmark
    return load_benchmark(spec, metric=metric)


def _safe_simplify(expr, seconds: int = 3):
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


def run_evolve(benchmark: str = "realtime-digits", metric: Optional[str] = None, out_dir: str = "runs/evolve",
               population: int = 64, generations: int = 20, seed: int = 0, k: Optional[int] = 256,
               train_size: int = 200, batch_size: int = 8, workers: int = 0, resume: bool = False,
               resolution: Optional[Tuple[int, int]] = None, top: int = 5, heldout_size: Optional[int] = None,
               log: Callable[[str], None] = print) -> dict:
    """Evolve proxies on a benchmark's training split and report held-out correlations.

    Writes ``best_proxy.json``, ``hall_of_fame.json``, ``log.jsonl``, ``checkpoint.json``, ``proxy.png``,
    ``evolution.png`` and ``summary.json`` into ``out_dir``; returns the summary dict.
    """
    import json
    import time
    from pathlib import Path
    from .errors import SaswotError
    from .evolution import EvolutionConfig, ProxyEvaluator, evolve, make_map
    from .handcrafted import handcrafted_proxies
    from .io import atomic_write_json
    from .proxy import Proxy
    from .viz import draw_proxy, plot_evolution

    out = Path(out_dir)
    run = {"benchmark": benchmark, "metric": metric, "k": k, "train_size": train_size, "batch_size": batch_size,
           "resolution": list(resolution) if resolution else None, "heldout_size": heldout_size}
    if resume:
        ck = out / "checkpoint.json"
        if not ck.is_file():
            raise SaswotError(f"cannot resume: {str(ck)!r} not found")
        saved = json.loads(ck.read_text())
        run = saved.get("run") or run
        cfgd = saved["config"]
        population, seed = cfgd["population"], cfgd["seed"]
        benchmark, metric, k = run["benchmark"], run["metric"], run["k"]
        train_size, batch_size = run["train_size"], run["batch_size"]
        resolution = tuple(run["resolution"]) if run.get("resolution") else None
        heldout_size = run.get("heldout_size")
        log(f"resuming {str(out)!r} at generation {saved['generation'] + 1} of {generations}")
    out.mkdir(parents=True, exist_ok=True)
    cache_dir = str(out / "stats_cache")
    t0 = time.perf_counter()
    bench = resolve_benchmark(benchmark, metric, cache_dir=cache_dir)
    train, test = bench.split(train_size, seed=seed, max_eval=heldout_size)
    images, labels = default_batch(bench, n=batch_size, seed=seed, resolution=resolution)
    log(f"benchmark {bench.name}: {len(bench)} architectures of space {bench.space!r}, target {bench.metric}; "
        f"{len(train)} train / {len(test)} held out (split seed {seed})")
    log(f"statistics batch: {describe_batch(bench, images, seed)}; sketch K={'full' if k is None else k}")

    def bar(label):
        step = [0]

        def cb(i, n):
            if i * 10 // n > step[0] or i == n:
                step[0] = i * 10 // n
                log(f"  {label} statistics {i}/{n}")
        return cb

    ptrain, _ = stats_and_targets(train, images, labels, k=k, seed=seed, cache_dir=cache_dir, progress=bar("train"))
    ptest, _ = stats_and_targets(test, images, labels, k=k, seed=seed, cache_dir=cache_dir, progress=bar("held-out"))
    t_stats = time.perf_counter() - t0
    evaluator = ProxyEvaluator(ptrain, train.target)
    map_fn, close, fn = make_map(evaluator, workers)
    cfg = EvolutionConfig(population=population, generations=generations, seed=seed)
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

    def metrics(p: Proxy) -> dict:
        tr = evaluate_proxies({"p": p}, ptrain, train.target)["p"]
        te = evaluate_proxies({"p": p}, ptest, test.target)["p"]
        return {"train_kendall": tr["kendall"], "train_spearman": tr["spearman"],
                "heldout_kendall": te["kendall"], "heldout_spearman": te["spearman"]}

    rows = []
    for i, e in enumerate(res.hall_of_fame):
        p = Proxy(e["tokens"], name=f"evolved-{i + 1}")
        row = {"name": p.name, "tokens": p.tokens, "expression": p.expression(), "size": p.size,
               "sympy": str(_safe_simplify(p.sympy())) if i < top else str(p.sympy())}
        row.update(metrics(p))
        rows.append(row)
    hand = []
    for name, p in handcrafted_proxies().items():
        row = {"name": name, "tokens": p.tokens, "expression": p.expression(), "size": p.size, "sympy": str(p.sympy())}
        row.update(metrics(p))
        hand.append(row)
    from .evolution import correlations
    reference = []
    for col, vals in sorted(test.reference.items()):
        c = correlations(vals, test.target)
        if np.isfinite(vals).sum() >= 3 and np.isfinite(c["kendall"]):
            reference.append({"name": f"{col} (file)", "heldout_kendall": c["kendall"], "heldout_spearman": c["spearman"],
                              "n": int(np.isfinite(vals).sum())})
    best = Proxy(rows[0]["tokens"], name="best", meta={
        "benchmark": bench.name, "metric": bench.metric, "n_train": len(train), "n_heldout": len(test),
        "k": k, "seed": seed, **{m: rows[0][m] for m in ("train_kendall", "train_spearman", "heldout_kendall", "heldout_spearman")}})
    best.save(out / "best_proxy.json")
    pareto = [{"tokens": e["tokens"], "expression": Proxy(e["tokens"]).expression(), "size": e["size"],
               "train_kendall": e["train_kendall"]} for e in res.best_by_size]
    atomic_write_json(out / "hall_of_fame.json", {"format": "saswot-gp-hall-of-fame", "version": 1,
                                                  "benchmark": bench.name, "evolved": rows, "pareto_by_size": pareto,
                                                  "handcrafted": hand})
    draw_proxy(best.tokens, out / "proxy.png", title=f"best proxy: {rows[0]['sympy']}")
    plot_evolution(res.history, out / "evolution.png", title=f"{bench.name}: pop {population}, seed {seed}")
    summary = {"benchmark": bench.name, "description": bench.description, "space": bench.space, "metric": bench.metric,
               "n_train": len(train), "n_heldout": len(test), "k": k, "seed": seed, "population": population,
               "generations": generations, "evaluations": res.evaluations, "cache_hits": res.cache_hits,
               "stats_seconds": round(t_stats, 2), "evolution_seconds": round(t_evo, 2),
               "evolved": rows[:top], "handcrafted": hand, "reference": reference}
    atomic_write_json(out / "summary.json", summary)
    return summary


def format_table(summary: dict) -> str:
    """Plain-text table of the best evolved proxies beside the hand-designed ones."""
    head = f"{'proxy':<14}{'size':>5}{'train tau':>11}{'train rho':>11}{'held tau':>10}{'held rho':>10}  expression"
    lines = [head, "-" * len(head)]
    for r in summary["evolved"] + summary["handcrafted"]:
        lines.append(f"{r['name']:<14}{r['size']:>5}{r['train_kendall']:>11.3f}{r['train_spearman']:>11.3f}"
                     f"{r['heldout_kendall']:>10.3f}{r['heldout_spearman']:>10.3f}  {r['sympy']}")
    if summary.get("reference"):
        lines.append("precomputed scores shipped with the benchmark file, same held-out architectures:")
        for r in summary["reference"]:
            lines.append(f"{r['name']:<21}{'':>20}{r['heldout_kendall']:>10.3f}{r['heldout_spearman']:>10.3f}  (n={r['n']})")
    return "\n".join(lines)
