"""Tables of zero-cost proxies on a benchmark: scores, rank correlations with bootstrap intervals, plots.

:func:`proxy_table` builds every architecture of a benchmark (weights seeded by ``seed``), scores it
with the registered measures (:mod:`.measures`) and with discovered proxy files
(``Proxy.load(path).score``) on one fixed batch, and returns one row per proxy with Kendall tau-b
and Spearman rho against the benchmark's target and seeded percentile-bootstrap 95% intervals.

The batch is :func:`saswot_gp.pipeline.default_batch`: ``batch_size`` seeded synthetic images with
smooth random labels at the space's input size, or at ``resolution`` (H, W) to save time.

Scores are cached per architecture in a JSON-lines file (one line per scored architecture, written
as soon as it is scored), so an interrupted run continues where it stopped. Each line carries a
context digest (space, space options, batch content, seed, sketch size); lines of another context
are ignored, and a proxy file is keyed by a hash of its tokens, so an edited file is rescored.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import re
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from scipy import stats as sstats

from ..errors import SaswotError
from ..groundtruth.base import Benchmark
from .measures import compute_measures, get_measure, measure_names

PathLike = Union[str, os.PathLike]
CACHE_VERSION = 1
PROXY_K = 256                       # sketch size used when scoring a discovered proxy file
CSV_COLUMNS = ("proxy", "kind", "n", "kendall", "kendall_lo", "kendall_hi", "spearman", "spearman_lo",
               "spearman_hi", "sec_per_arch")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


# ------------------------------------------------------------------------------------ inputs

def sample_benchmark(bench: Benchmark, n: Optional[int], seed: int = 0) -> Benchmark:
    """A seeded random subset of ``n`` architectures (kept in benchmark order); all when n is None or larger."""
    if n is None or n >= len(bench):
        return bench
    if n < 3:
        raise SaswotError(f"--n {n}: need at least 3 architectures for rank correlations")
    idx = np.sort(np.random.default_rng(seed).choice(len(bench), size=n, replace=False))
    return bench.subset(idx)


def load_proxy_files(paths: Sequence[PathLike]) -> Dict[str, object]:
    """Proxy-language trees by display name (a file's stem, made unique; a name as given) from their specs
    (files, 'saswot', proxy-language names such as nwot_gp, functional notation; see ``proxyspec``)."""
    from ..proxyspec import resolve_proxy
    out: Dict[str, object] = {}
    for p in paths:
        if not Path(p).is_file():
            out[str(p)] = resolve_proxy(str(p)).tree()
            continue
        proxy = resolve_proxy(str(p)).tree()
        base = _SAFE_NAME.sub("_", Path(p).stem) or "proxy"
        name, i = base, 2
        while name in out or name in measure_names():
            name, i = f"{base}-{i}", i + 1
        out[name] = proxy
    return out


# ------------------------------------------------------------------------------------- cache

class ScoreCache:
    """Per-architecture scores in an append-only JSON-lines file; lines of another context are ignored."""

    def __init__(self, path: Optional[PathLike], context: dict):
        self.path = Path(path) if path else None
        self.digest = hashlib.sha256(json.dumps([CACHE_VERSION, context], sort_keys=True).encode()).hexdigest()[:16]
        self.scores: Dict[str, Dict[str, Optional[float]]] = {}
        self.seconds: Dict[str, Dict[str, float]] = {}
        self._newline = False           # the file ends in a line cut short: start a new line before appending
        if self.path is not None and self.path.is_file():
            with open(self.path, "r", encoding="utf-8") as fh:
                text = fh.read()
            self._newline = bool(text) and not text.endswith("\n")
            for line in text.splitlines():
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue                           # a line cut short by an interrupted run
                if not isinstance(rec, dict) or rec.get("ctx") != self.digest or "arch" not in rec:
                    continue
                self.scores.setdefault(rec["arch"], {}).update(rec.get("scores") or {})
                self.seconds.setdefault(rec["arch"], {}).update(rec.get("seconds") or {})

    def missing(self, arch: str, keys: Sequence[str]) -> List[str]:
        """The keys not yet scored for ``arch``."""
        have = self.scores.get(arch, {})
        return [k for k in keys if k not in have]

    def get(self, arch: str, key: str) -> float:
        """A cached score (NaN when it was non-finite)."""
        v = self.scores.get(arch, {}).get(key)
        return math.nan if v is None else float(v)

    def put(self, arch: str, scores: Dict[str, float], seconds: Dict[str, float]) -> None:
        """Record scores of ``arch`` (and append them to the file at once)."""
        clean = {k: (float(v) if math.isfinite(v) else None) for k, v in scores.items()}
        self.scores.setdefault(arch, {}).update(clean)
        self.seconds.setdefault(arch, {}).update({k: round(float(v), 4) for k, v in seconds.items()})
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            line = json.dumps({"ctx": self.digest, "arch": arch, "scores": clean,
                               "seconds": {k: round(float(v), 4) for k, v in seconds.items()}})
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(("\n" if self._newline else "") + line + "\n")
                fh.flush()
            self._newline = False


def _proxy_key(proxy) -> str:
    return "file:" + hashlib.sha256(json.dumps(list(proxy.tokens)).encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------ scoring

def score_architectures(bench: Benchmark, names: Optional[Sequence[str]] = None,
                        proxy_files: Sequence[PathLike] = (), resolution: Optional[Tuple[int, int]] = None,
                        batch_size: int = 8, seed: int = 0, cache: Optional[PathLike] = None,
                        progress: Optional[Callable[[int, int, str, float], None]] = None
                        ) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray], Dict[str, str]]:
    """Scores of every architecture: ({proxy: scores}, {proxy: seconds per arch}, {proxy: kind}).

    ``progress(i, n, arch, seconds)`` is called after each architecture (``seconds`` is 0 when it
    came entirely from the cache).
    """
    from ..pipeline import default_batch
    from ..spaces import get_space
    from ..stats import batch_digest, build_model
    names = list(measure_names() if names is None else names)
    for n in names:
        get_measure(n)
    files = load_proxy_files(proxy_files)
    if not names and not files:
        raise SaswotError("no proxies to score; name measures or give --proxy files")
    sp = get_space(bench.space, **bench.space_kwargs)
    images, labels = default_batch(bench, n=batch_size, seed=seed, resolution=resolution)
    ctx = {"space": bench.space, "space_kwargs": sorted((str(k), str(v)) for k, v in bench.space_kwargs.items()),
           "batch": batch_digest(images, labels), "seed": int(seed), "proxy_k": PROXY_K}
    store = ScoreCache(cache, ctx)
    keys = {n: n for n in names}
    keys.update({n: _proxy_key(p) for n, p in files.items()})
    kinds = {n: "measure" for n in names}
    kinds.update({n: "file" for n in files})
    for i, arch in enumerate(bench.archs):
        todo = store.missing(arch, list(keys.values()))
        t0 = time.perf_counter()
        if todo:
            model = build_model(sp, arch, seed)
            todo_measures = [n for n in names if keys[n] in todo]
            secs: Dict[str, float] = {}
            got = compute_measures(model, images, labels, names=todo_measures, seed=seed, times=secs) if todo_measures else {}
            for n, p in files.items():
                if keys[n] not in todo:
                    continue
                t1 = time.perf_counter()
                try:
                    got[keys[n]] = float(p.score(model, images, labels, k=PROXY_K, seed=seed))
                except SaswotError:
                    raise
                except (RuntimeError, ValueError, FloatingPointError, IndexError, ZeroDivisionError):
                    got[keys[n]] = math.nan
                secs[keys[n]] = time.perf_counter() - t1
            store.put(arch, got, secs)
        if progress is not None:
            progress(i + 1, len(bench), arch, time.perf_counter() - t0 if todo else 0.0)
    scores = {n: np.array([store.get(a, keys[n]) for a in bench.archs]) for n in keys}
    seconds = {n: np.array([store.seconds.get(a, {}).get(keys[n], math.nan) for a in bench.archs]) for n in keys}
    return scores, seconds, kinds


# ---------------------------------------------------------------------------------- statistics

def _corr_pair(s: np.ndarray, t: np.ndarray) -> Tuple[float, float]:
    if len(s) < 3 or np.ptp(s) == 0 or np.ptp(t) == 0:
        return math.nan, math.nan
    return float(sstats.kendalltau(s, t).statistic), float(sstats.spearmanr(s, t).statistic)


def rank_correlations(scores: Sequence[float], target: Sequence[float], n_boot: int = 1000,
                      seed: int = 0) -> Dict[str, float]:
    """Kendall tau-b and Spearman rho over finite pairs, with percentile-bootstrap 95% intervals (seeded)."""
    s = np.asarray(scores, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    ok = np.isfinite(s) & np.isfinite(t)
    s, t = s[ok], t[ok]
    tau, rho = _corr_pair(s, t)
    out = {"n": int(ok.sum()), "kendall": tau, "spearman": rho, "kendall_lo": math.nan, "kendall_hi": math.nan,
           "spearman_lo": math.nan, "spearman_hi": math.nan}
    if math.isnan(tau) or n_boot < 1:
        return out
    rng = np.random.default_rng(seed)
    boots = np.array([_corr_pair(s[idx], t[idx]) for idx in rng.integers(0, len(s), size=(n_boot, len(s)))])
    for j, name in enumerate(("kendall", "spearman")):
        col = boots[:, j][np.isfinite(boots[:, j])]
        if len(col):
            out[f"{name}_lo"], out[f"{name}_hi"] = (float(v) for v in np.percentile(col, [2.5, 97.5]))
    return out


def proxy_table(bench: Benchmark, names: Optional[Sequence[str]] = None, proxy_files: Sequence[PathLike] = (),
                resolution: Optional[Tuple[int, int]] = None, batch_size: int = 8, seed: int = 0,
                cache: Optional[PathLike] = None, progress: Optional[Callable[[int, int, str, float], None]] = None,
                n_boot: int = 1000) -> List[dict]:
    """One row per proxy: kind, n, Kendall/Spearman vs ``bench.target`` with 95% bootstrap bounds, seconds per arch.

    Each row also holds ``scores`` (aligned with ``bench.archs``) for plots; :func:`write_csv` leaves it out.
    """
    scores, seconds, kinds = score_architectures(bench, names, proxy_files, resolution, batch_size, seed, cache, progress)
    rows = []
    for n, s in scores.items():
        row = {"proxy": n, "kind": kinds[n]}
        row.update(rank_correlations(s, bench.target, n_boot=n_boot, seed=seed))
        sec = seconds[n][np.isfinite(seconds[n])]
        row["sec_per_arch"] = float(sec.mean()) if len(sec) else math.nan
        row["scores"] = s
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------------- output

def _fmt(v, spec: str) -> str:
    return "nan" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def format_table(rows: Sequence[dict]) -> str:
    """Plain-text table of the rows (Kendall and Spearman with their 95% intervals)."""
    head = f"{'proxy':<16}{'kind':<9}{'n':>5}{'kendall':>9}  {'95% CI':<16}{'spearman':>9}  {'95% CI':<16}{'s/arch':>8}"
    lines = [head, "-" * len(head)]
    for r in rows:
        ci_k = f"[{_fmt(r['kendall_lo'], '+.3f')}, {_fmt(r['kendall_hi'], '+.3f')}]"
        ci_s = f"[{_fmt(r['spearman_lo'], '+.3f')}, {_fmt(r['spearman_hi'], '+.3f')}]"
        lines.append(f"{r['proxy']:<16}{r['kind']:<9}{r['n']:>5}{_fmt(r['kendall'], '+.3f'):>9}  {ci_k:<16}"
                     f"{_fmt(r['spearman'], '+.3f'):>9}  {ci_s:<16}{_fmt(r['sec_per_arch'], '.3f'):>8}")
    return "\n".join(lines)


def write_csv(rows: Sequence[dict], path: PathLike) -> Path:
    """Write the table (one row per proxy, columns ``CSV_COLUMNS``) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(CSV_COLUMNS)
        for r in rows:
            w.writerow([r["proxy"], r["kind"], r["n"]] +
                       [("" if math.isnan(r[c]) else f"{r[c]:.6g}") for c in CSV_COLUMNS[3:]])
    return path


def write_scores_csv(bench: Benchmark, rows: Sequence[dict], path: PathLike) -> Path:
    """Write every architecture's target and proxy scores (one row per architecture) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["arch", bench.metric or "target"] + [r["proxy"] for r in rows])
        for i, a in enumerate(bench.archs):
            w.writerow([a, f"{bench.target[i]:.6g}"] +
                       [("" if math.isnan(r["scores"][i]) else f"{r['scores'][i]:.10g}") for r in rows])
    return path


def plot_scatter(row: dict, target: Sequence[float], path: PathLike, metric: str = "target") -> Path:
    """Scatter of one proxy's scores against the target (matplotlib Agg, no global pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    s = np.asarray(row["scores"], dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    ok = np.isfinite(s) & np.isfinite(t)
    fig = Figure(figsize=(4.2, 3.6))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.scatter(s[ok], t[ok], s=10, alpha=0.6, edgecolors="none")
    ax.set_xlabel(f"{row['proxy']} score")
    ax.set_ylabel(metric)
    ax.set_title(f"{row['proxy']}: tau {_fmt(row['kendall'], '+.3f')}, rho {_fmt(row['spearman'], '+.3f')} "
                 f"(n={int(ok.sum())})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def scatter_name(proxy: str) -> str:
    """File name of a proxy's scatter plot: ``scatter_<name>.png`` with unsafe characters replaced."""
    return f"scatter_{_SAFE_NAME.sub('_', proxy)}.png"
