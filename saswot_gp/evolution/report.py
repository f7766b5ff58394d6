"""The report of an evolve run: figures of evolved and hand-designed proxies on every split of every benchmark,
the hall of fame without rank-identical forms, and the files a run writes (summary.json, hall_of_fame.json, ...)."""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from scipy import stats as sstats

from ..errors import NUMERICAL_ERRORS
from ..stats import PackedStats
from .data import BenchmarkData


# packed statistics -> {proxy tokens: scores}: an entry lives as long as its packed statistics do, so a memo
# can never serve scores of statistics that are gone (weak keys; no clearing needed)
_SCORE_MEMO: "weakref.WeakKeyDictionary[PackedStats, Dict[tuple, Optional[np.ndarray]]]" = weakref.WeakKeyDictionary()
MEMO_PER_PACK = 10_000  # proxies remembered per packed statistics


def _scores(proxy, packed: PackedStats) -> Tuple[Optional[np.ndarray], Optional[str]]:
    try:
        with torch.no_grad():
            return proxy.evaluate(packed).numpy(), None
    except NUMERICAL_ERRORS as exc:
        return None, str(exc)


def proxy_scores(proxy, packed: PackedStats) -> Optional[np.ndarray]:
    """The proxy's scores on packed statistics, or None after a numerical accident (memoised while ``packed``
    lives)."""
    memo = _SCORE_MEMO.setdefault(packed, {})
    key = tuple(proxy.tokens)
    if key in memo:
        return memo[key]
    out = _scores(proxy, packed)[0]
    if len(memo) < MEMO_PER_PACK:
        memo[key] = out
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


def dedupe_by_ranking(entries: Sequence[dict], data: Sequence[BenchmarkData]) -> List[dict]:
    """Keep the first of every group of hall-of-fame entries that rank all architectures identically."""
    from ..proxy import Proxy
    seen, out = set(), []
    for e in entries:
        sig = rank_signature(Proxy(e["tokens"]), data)
        if sig is None or sig in seen:
            continue
        seen.add(sig)
        out.append(e)
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


def best_handcrafted(data: Sequence[BenchmarkData], terminals: str = "all") -> Dict[str, dict]:
    """Per benchmark: every hand-designed proxy of the proxy language (with a ``+measures`` terminal set, the live
    measures too) and every precomputed score of the benchmark file on the held-out architectures, and the best of
    them by held-out Kendall."""
    from ..handcrafted import seed_proxies
    out = {}
    for d in data:
        cands = {}
        for name, p in seed_proxies(terminals).items():
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
    except (TimeoutError, RecursionError, ValueError, TypeError):  # sympy gives up on some forms
        return expr
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def sympy_text(proxy, simplify: bool = False) -> str:
    """The proxy's sympy form as text (simplified within a time limit when asked); its functional notation
    when sympy cannot build the form. A report never fails on sympy."""
    try:
        expr = proxy.sympy()
    except (ValueError, TypeError, RecursionError):
        return proxy.expression()
    return str(safe_simplify(expr) if simplify else expr)


def format_table(summary: dict) -> str:
    """Plain-text tables: the best evolved proxies beside the hand-designed ones (aggregated over benchmarks),
    then every benchmark's figures for the chosen proxy beside its best hand-designed proxy."""
    has_val = any("val_kendall" in r for r in summary["evolved"])
    head = (f"{'proxy':<14}{'size':>5}{'train tau':>11}{'train rho':>11}" + (f"{'val tau':>9}" if has_val else "")
            + f"{'held tau':>10}{'held rho':>10}  expression")
    lines = [head, "-" * len(head)]
    for r in summary["evolved"] + summary["handcrafted"]:
        val = f"{r.get('val_kendall', float('nan')):>9.3f}" if has_val else ""
        origin = r.get("origin", "evolved")
        name = r["name"] if origin == "evolved" else f"{origin.split(': ')[-1]}*"
        lines.append(f"{name:<14}{r['size']:>5}{r.get('train_kendall', float('nan')):>11.3f}"
                     f"{r.get('train_spearman', float('nan')):>11.3f}{val}{r.get('heldout_kendall', float('nan')):>10.3f}"
                     f"{r.get('heldout_spearman', float('nan')):>10.3f}  {r['sympy']}")
    if any(r.get("origin", "evolved") != "evolved" for r in summary["evolved"]):
        lines.append("* a hand-designed seed that competed with the evolved proxies in the choice on validation")
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


def rank_pairs(seeds: Dict[str, "object"]) -> Dict[str, "object"]:
    """``rank2`` of every pair of the hand-designed ``seeds`` (name -> Proxy), named ``'a + b'``: the rank ensembles
    a user could build from them, which compete in the choice on validation of a rank-root run."""
    from itertools import combinations
    from ..proxy import Proxy
    return {f"{a} + {b}": Proxy(["rank2"] + seeds[a].tokens + seeds[b].tokens, name=f"{a} + {b}")
            for a, b in combinations(sorted(seeds), 2)}


def _evolved_rows(hall_of_fame: Sequence[dict], data: Sequence[BenchmarkData], fitness: str, select: str,
                  top: int, seeds: Optional[Dict[str, "object"]] = None) -> List[dict]:
    """The whole hall of fame as report rows (rank-identical forms dropped), ordered by the selection rule. With
    ``select='val'`` every hand-designed ``seed`` (name -> Proxy) that ranks unlike all evolved entries competes
    too: the chosen proxy never validates worse than the best of them (a row's ``origin`` says which seed it
    is, else 'evolved')."""
    from ..proxy import Proxy
    entries = [dict(e, origin="evolved") for e in hall_of_fame]
    if select == "val":
        entries += [{"tokens": p.tokens, "origin": f"seed: {name}"} for name, p in (seeds or {}).items()]
    rows = []
    for i, e in enumerate(dedupe_by_ranking(entries, data)):
        p = Proxy(e["tokens"], name=f"evolved-{i + 1}")
        row = {"name": p.name, "tokens": p.tokens, "expression": p.expression(), "size": p.size, "origin": e["origin"]}
        rows.append(_with_aggregates(row, proxy_figures(p, data), fitness))
    if select == "val":
        order = sorted(range(len(rows)), key=lambda i: (-np.nan_to_num(rows[i].get("val_kendall", np.nan), nan=-9.0),
                                                         rows[i]["size"], i))
        rows = [rows[i] for i in order]
    for i, row in enumerate(rows):
        row["name"] = f"evolved-{i + 1}"
        p = Proxy(row["tokens"])
        row["sympy"] = sympy_text(p, simplify=i < top)
    return rows


def _handcrafted_rows(data: Sequence[BenchmarkData], fitness: str, terminals: str = "all") -> List[dict]:
    from ..handcrafted import seed_proxies
    hand = []
    for name, p in seed_proxies(terminals).items():
        row = {"name": name, "tokens": p.tokens, "expression": p.expression(), "size": p.size, "sympy": sympy_text(p)}
        hand.append(_with_aggregates(row, proxy_figures(p, data), fitness))
    return hand


def write_report(out: Path, res, data: Sequence[BenchmarkData], settings: dict, top: int,
                 seconds: Dict[str, float]) -> dict:
    """Write best_proxy.json, hall_of_fame.json, proxy.png, evolution.png and summary.json for a finished
    evolution ``res`` (an ``EvolutionResult``) on ``data``; return the summary. ``settings``: the run's
    fitness, terminals, select, val_frac, batch, k, seed, data_seed, population, generations and metric."""
    from ..io import atomic_write_json
    from ..proxy import Proxy
    from ..viz import draw_proxy, plot_evolution
    s = settings
    from ..handcrafted import seed_proxies
    from .pset import excluded_by
    skip = excluded_by(s["terminals"])
    seeds = {n: p for n, p in seed_proxies(s["terminals"]).items() if not skip & set(p.tokens)}
    if s.get("root") == "rank":
        seeds.update(rank_pairs(seeds))
    rows = _evolved_rows(res.hall_of_fame, data, s["fitness"], s["select"], top, seeds)
    hand = _handcrafted_rows(data, s["fitness"], s["terminals"])
    best_hand = best_handcrafted(data, s["terminals"])
    names = [d.name for d in data]
    per_bench = [{"name": d.name, "spec": d.spec, "space": d.bench.space, "metric": d.bench.metric,
                  "description": d.bench.description, "batch": d.batch, "n_train": len(d.train),
                  "n_val": len(d.val) if d.val is not None else 0, "n_heldout": len(d.test),
                  "best": rows[0]["per_benchmark"][d.name], "best_handcrafted": best_hand[d.name]["best"],
                  "best_handcrafted_heldout_kendall": best_hand[d.name]["best_heldout_kendall"]} for d in data]
    common = {k: s[k] for k in ("fitness", "terminals", "select", "val_frac", "batch", "k", "seed", "data_seed",
                                "population", "generations")}
    meta = {"benchmarks": names, "metric": s["metric"], **common,
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
    plot_evolution(res.history, out / "evolution.png", title=f"{label}: pop {s['population']}, seed {s['seed']}")
    summary = {"benchmark": label, "benchmarks": per_bench, "description": "; ".join(d.bench.description for d in data),
               "space": ",".join(d.bench.space for d in data), "metric": ",".join(d.bench.metric for d in data),
               "n_train": sum(len(d.train) for d in data), "n_val": sum(len(d.val) for d in data if d.val is not None),
               "n_heldout": sum(len(d.test) for d in data), "k": s["k"], "seed": s["seed"], "data_seed": s["data_seed"],
               "population": s["population"], "generations": s["generations"], "fitness": s["fitness"],
               "terminals": s["terminals"], "select": s["select"], "val_frac": s["val_frac"], "batch": s["batch"],
               "evaluations": res.evaluations, "cache_hits": res.cache_hits,
               "stats_seconds": round(seconds["stats"], 2), "evolution_seconds": round(seconds["evolution"], 2),
               "evolved": rows[:top], "handcrafted": hand, "reference": [r for d in data for r in reference_figures(d)],
               "best_handcrafted": {n: {"best": v["best"], "heldout_kendall": v["best_heldout_kendall"]}
                                    for n, v in best_hand.items()}}
    if s.get("run_id"):
        summary["run_id"] = s["run_id"]
    atomic_write_json(out / "summary.json", summary)
    return summary
