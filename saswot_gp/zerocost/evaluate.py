"""Tables of zero-cost proxies on a benchmark: scores, rank correlations with bootstrap intervals, plots.

:func:`proxy_table` builds every architecture of a benchmark (weights seeded by ``seed``), scores it
with the registered measures (:mod:`.measures`) and with discovered proxy files
(``Proxy.load(path).score``) on one fixed batch, and returns one row per proxy with Kendall tau-b
and Spearman rho against the benchmark's target and seeded percentile-bootstrap 95% intervals.

The batch is :func:`saswot_gp.batches.default_batch`: ``batch_size`` seeded synthetic images with
smooth random labels at the space's input size, or at ``resolution`` (H, W) to save time.

Scores are cached per architecture in a JSON-lines file (one line per scored architecture, written
as soon as it is scored), so an interrupted run continues where it stopped. Each line carries a
context digest (space, space options, batch content, seed, sketch size); lines of another context
are ignored, and a proxy file is keyed by a hash of its tokens, so an edited file is rescored.

Why a score or a correlation is NaN is said once, in a row's ``note`` (:func:`row_note`): the failure
texts ``compute_measures`` (and a proxy file's scoring) give for an architecture (kept in the cache
with its scores), constant scores, and swap's saturation (:func:`.measures.swap_saturation`).
:func:`format_table` prints the notes under the table and :func:`write_csv` writes them.
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

from ..errors import NUMERICAL_ERRORS, SaswotError
from ..ranking import rank_correlations
from ..groundtruth.base import Benchmark
from .measures import compute_measures, get_measure, measure_names, swap_saturation

PathLike = Union[str, os.PathLike]
CACHE_VERSION = 1
PROXY_K = 256                       # sketch size used when scoring a discovered proxy file
CSV_COLUMNS = ("proxy", "kind", "n", "kendall", "kendall_lo", "kendall_hi", "spearman", "spearman_lo",
               "spearman_hi", "sec_per_arch", "note")
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
        self.errors: Dict[str, Dict[str, str]] = {}        # arch -> key -> why its score is NaN
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
                errs = rec.get("errors")
                if isinstance(errs, dict):
                    self.errors.setdefault(rec["arch"], {}).update({str(k): str(v) for k, v in errs.items()})

    def missing(self, arch: str, keys: Sequence[str]) -> List[str]:
        """The keys not yet scored for ``arch``."""
        have = self.scores.get(arch, {})
        return [k for k in keys if k not in have]

    def get(self, arch: str, key: str) -> float:
        """A cached score (NaN when it was non-finite)."""
        v = self.scores.get(arch, {}).get(key)
        return math.nan if v is None else float(v)

    def error(self, arch: str, key: str) -> Optional[str]:
        """Why the cached score of ``arch`` is NaN, when a failure text was recorded."""
        return self.errors.get(arch, {}).get(key)

    def put(self, arch: str, scores: Dict[str, float], seconds: Dict[str, float],
            errors: Optional[Dict[str, str]] = None) -> None:
        """Record scores of ``arch`` and the failure texts of its NaN ones (and append them to the file at once)."""
        clean = {k: (float(v) if math.isfinite(v) else None) for k, v in scores.items()}
        errs = {k: str(v) for k, v in (errors or {}).items() if clean.get(k, 0.0) is None}
        self.scores.setdefault(arch, {}).update(clean)
        self.seconds.setdefault(arch, {}).update({k: round(float(v), 4) for k, v in seconds.items()})
        mine = self.errors.setdefault(arch, {})
        for k in clean:
            mine.pop(k, None)
        mine.update(errs)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            rec = {"ctx": self.digest, "arch": arch, "scores": clean,
                   "seconds": {k: round(float(v), 4) for k, v in seconds.items()}}
            if errs:
                rec["errors"] = errs
            line = json.dumps(rec)
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
                        progress: Optional[Callable[[int, int, str, float], None]] = None,
                        errors: Optional[Dict[str, Dict[str, str]]] = None
                        ) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray], Dict[str, str]]:
    """Scores of every architecture: ({proxy: scores}, {proxy: seconds per arch}, {proxy: kind}).

    ``progress(i, n, arch, seconds)`` is called after each architecture (``seconds`` is 0 when it
    came entirely from the cache). ``errors`` (if given) receives {proxy: {arch: failure text}} for
    the NaN scores whose failure was recorded (``compute_measures``' ``errors``; kept in the cache).
    """
    from ..batches import default_batch
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
            errs: Dict[str, str] = {}
            got = (compute_measures(model, images, labels, names=todo_measures, seed=seed, times=secs, errors=errs)
                   if todo_measures else {})
            for n, p in files.items():
                if keys[n] not in todo:
                    continue
                t1 = time.perf_counter()
                try:
                    got[keys[n]] = float(p.score(model, images, labels, k=PROXY_K, seed=seed))
                except SaswotError:
                    raise
                except NUMERICAL_ERRORS as exc:
                    got[keys[n]] = math.nan
                    errs[keys[n]] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                secs[keys[n]] = time.perf_counter() - t1
            store.put(arch, got, secs, errs)
        if progress is not None:
            progress(i + 1, len(bench), arch, time.perf_counter() - t0 if todo else 0.0)
    scores = {n: np.array([store.get(a, keys[n]) for a in bench.archs]) for n in keys}
    seconds = {n: np.array([store.seconds.get(a, {}).get(keys[n], math.nan) for a in bench.archs]) for n in keys}
    if errors is not None:
        for n in keys:
            got_errs = {a: store.error(a, keys[n]) for a in bench.archs}
            errors[n] = {a: e for a, e in got_errs.items() if e is not None}
    return scores, seconds, kinds


# ---------------------------------------------------------------------------------- statistics

def row_note(proxy: str, kind: str, scores: Sequence[float], target: Sequence[float], batch_size: int,
             failures: Optional[Dict[str, str]] = None) -> str:
    """Why a proxy's correlation is NaN, or what else about its scores a reader should know ('' if nothing).

    A NaN correlation reads ``nan (<reason>)``: swap saturated at 2^batch_size patterns, all scores
    equal, a constant target, or fewer than 3 finite scores (with the failure text of the NaN scores
    when one was recorded). Otherwise the note names NaN scores and swap architectures at saturation.
    """
    s = np.asarray(scores, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    bad = ~np.isfinite(s)
    failed = ""
    if bad.any():
        texts = sorted(set((failures or {}).values()))
        failed = (f"{int(bad.sum())} of {len(s)} scores nan"
                  + (f": {texts[0]}" + (f" (and {len(texts) - 1} other failure texts)" if len(texts) > 1 else "")
                     if texts else ""))
    saturated = swap_saturation(s, batch_size) if proxy == "swap" and kind == "measure" else None
    ok = np.isfinite(s) & np.isfinite(t)
    reason = ""
    if ok.sum() < 3:
        reason = f"only {int(ok.sum())} finite scores, at least 3 needed"
    elif np.ptp(s[ok]) == 0:                      # when swap saturates, it is the reason the scores are equal
        reason, saturated = saturated or f"all {int(ok.sum())} scores equal {s[ok][0]:.6g}", None
    elif np.ptp(t[ok]) == 0:
        reason = f"the target is the same for all {int(ok.sum())} architectures"
    parts = [p for p in (reason, failed, saturated) if p]
    if reason:
        return f"nan ({'; '.join(parts)})"
    return "; ".join(parts)


def proxy_table(bench: Benchmark, names: Optional[Sequence[str]] = None, proxy_files: Sequence[PathLike] = (),
                resolution: Optional[Tuple[int, int]] = None, batch_size: int = 8, seed: int = 0,
                cache: Optional[PathLike] = None, progress: Optional[Callable[[int, int, str, float], None]] = None,
                n_boot: int = 1000) -> List[dict]:
    """One row per proxy: kind, n, Kendall/Spearman vs ``bench.target`` with 95% bootstrap bounds, seconds per arch.

    Each row also holds ``scores`` (aligned with ``bench.archs``) for plots; :func:`write_csv` leaves it out.
    ``note`` says why a correlation is NaN (:func:`row_note`; '' when there is nothing to say).
    """
    failures: Dict[str, Dict[str, str]] = {}
    scores, seconds, kinds = score_architectures(bench, names, proxy_files, resolution, batch_size, seed, cache, progress,
                                                 errors=failures)
    rows = []
    for n, s in scores.items():
        row = {"proxy": n, "kind": kinds[n]}
        row.update(rank_correlations(s, bench.target, n_boot=n_boot, seed=seed))
        sec = seconds[n][np.isfinite(seconds[n])]
        row["sec_per_arch"] = float(sec.mean()) if len(sec) else math.nan
        row["note"] = row_note(n, kinds[n], s, bench.target, batch_size, failures.get(n))
        row["scores"] = s
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------------- output

def _fmt(v, spec: str) -> str:
    return "nan" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def format_table(rows: Sequence[dict]) -> str:
    """Plain-text table of the rows (Kendall and Spearman with their 95% intervals), then the rows' notes."""
    head = f"{'proxy':<16}{'kind':<9}{'n':>5}{'kendall':>9}  {'95% CI':<16}{'spearman':>9}  {'95% CI':<16}{'s/arch':>8}"
    lines = [head, "-" * len(head)]
    for r in rows:
        ci_k = f"[{_fmt(r['kendall_lo'], '+.3f')}, {_fmt(r['kendall_hi'], '+.3f')}]"
        ci_s = f"[{_fmt(r['spearman_lo'], '+.3f')}, {_fmt(r['spearman_hi'], '+.3f')}]"
        lines.append(f"{r['proxy']:<16}{r['kind']:<9}{r['n']:>5}{_fmt(r['kendall'], '+.3f'):>9}  {ci_k:<16}"
                     f"{_fmt(r['spearman'], '+.3f'):>9}  {ci_s:<16}{_fmt(r['sec_per_arch'], '.3f'):>8}")
    notes = [f"  {r['proxy']}: {r['note']}" for r in rows if r.get("note")]
    if notes:
        lines += ["", "notes:"] + notes
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
                       [("" if math.isnan(r[c]) else f"{r[c]:.6g}") for c in CSV_COLUMNS[3:-1]] + [r.get("note", "")])
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


def scatter_figure(row: dict, target: Sequence[float], metric: str = "target", benchmark: Optional[str] = None):
    """The scatter of one proxy's scores against the target as a matplotlib ``Figure`` (Agg canvas, no pyplot).

    The title names the benchmark (when given), the proxy and the target metric, then Kendall tau,
    Spearman rho and n; it is wrapped to the figure's width. A row's ``note`` is written in the axes.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from ..viz import wrap_text
    s = np.asarray(row["scores"], dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    ok = np.isfinite(s) & np.isfinite(t)
    fig = Figure(figsize=(4.2, 3.6), dpi=100)
    FigureCanvasAgg(fig)
    renderer = fig.canvas.get_renderer()
    ax = fig.add_subplot(1, 1, 1)
    ax.scatter(s[ok], t[ok], s=10, alpha=0.6, edgecolors="none")
    ax.set_xlabel(f"{row['proxy']} score")
    ax.set_ylabel(metric)
    head = f"{row['proxy']} vs {metric}" if not benchmark else f"{benchmark}: {row['proxy']} vs {metric}"
    text = f"{head}\ntau {_fmt(row['kendall'], '+.3f')}, rho {_fmt(row['spearman'], '+.3f')} (n={int(ok.sum())})"
    title = ax.set_title("", fontsize=9)
    title.set_parse_math(False)
    width = fig.get_figwidth()
    wrap_text(title, text, width - 0.3, renderer, fig.dpi, max_lines=4, min_size=6.0)
    if row.get("note"):
        note = ax.text(0.02, 0.98, "", transform=ax.transAxes, ha="left", va="top", fontsize=7, color="0.25",
                       parse_math=False, bbox=dict(facecolor="white", alpha=0.8, edgecolor="none", pad=1.0))
        wrap_text(note, str(row["note"]), 2.9, renderer, fig.dpi, max_lines=6, min_size=5.0)
    fig.tight_layout()
    box = ax.get_position()                        # the title is centred on the axes: keep it inside the figure
    centre = (box.x0 + box.x1) / 2 * width
    room = 2 * min(centre, width - centre) - 0.1
    if title.get_window_extent(renderer).width / fig.dpi > room:
        title.set_fontsize(9)
        wrap_text(title, text, room, renderer, fig.dpi, max_lines=4, min_size=6.0)
        fig.tight_layout()
    return fig


def plot_scatter(row: dict, target: Sequence[float], path: PathLike, metric: str = "target",
                 benchmark: Optional[str] = None) -> Path:
    """Save :func:`scatter_figure` (one proxy's scores against the target of ``benchmark``) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    scatter_figure(row, target, metric=metric, benchmark=benchmark).savefig(path, dpi=100)
    return path


def scatter_name(proxy: str) -> str:
    """File name of a proxy's scatter plot: ``scatter_<name>.png`` with unsafe characters replaced."""
    return f"scatter_{_SAFE_NAME.sub('_', proxy)}.png"
