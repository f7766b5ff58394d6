"""Scoring a benchmark's architectures with zero-cost proxies, resumable through a per-architecture cache.

:func:`score_architectures` builds every architecture of a benchmark (weights seeded by ``seed``) and
scores it with the registered measures (:mod:`.measures`) and with proxy-language trees
(``Proxy.load(path).score``; :func:`load_proxy_files`) on one fixed batch.

The batch is :func:`saswot_gp.batches.default_batch`: ``batch_size`` seeded synthetic images with
smooth random labels at the space's input size, or at ``resolution`` (H, W) to save time.

Scores are cached per architecture in a JSON-lines file (:class:`ScoreCache`; one line per scored
architecture, written as soon as it is scored), so an interrupted run continues where it stopped. Each
line carries a context digest (space, space options, batch content, seed, sketch size); lines of another
context are ignored, and a proxy file is keyed by a hash of its tokens, so an edited file is rescored.
The failure texts ``compute_measures`` (and a proxy file's scoring) give for a NaN score are kept in
the cache with the scores.
"""

from __future__ import annotations

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
from ..groundtruth.base import Benchmark
from .measures import compute_measures, get_measure, measure_names

PathLike = Union[str, os.PathLike]
CACHE_VERSION = 1
PROXY_K = 256                       # sketch size used when scoring a discovered proxy file
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_name(text: str) -> str:
    """``text`` with every run of characters other than letters, digits, ``_``, ``.`` and ``-`` replaced by ``_``."""
    return _SAFE_NAME.sub("_", text)


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
    from ..proxy import proxy_file
    from ..proxyspec import resolve_proxy
    out: Dict[str, object] = {}
    for p in paths:
        if proxy_file(p) is None:
            out[str(p)] = resolve_proxy(str(p)).tree()
            continue
        proxy = resolve_proxy(str(p)).tree()
        base = safe_name(Path(p).stem) or "proxy"
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

def score_one(arch: str, space, images, labels, measures: Sequence[str], trees: Dict[str, object], seed: int,
              device: str = "cpu") -> Tuple[Dict[str, float], Dict[str, float], Dict[str, str]]:
    """Scores of one architecture (weights from ``seed``) by registered ``measures`` and proxy ``trees``
    ({cache key: Proxy}), computed on ``device``: (scores, seconds, failure texts). One task of
    :func:`score_architectures`, in-process or on a Dask worker."""
    from ..stats import build_model
    model = build_model(space, arch, seed)
    if device != "cpu":
        model, images, labels = model.to(device), images.to(device), labels.to(device)
    secs: Dict[str, float] = {}
    errs: Dict[str, str] = {}
    got = compute_measures(model, images, labels, names=list(measures), seed=seed, times=secs,
                           errors=errs) if measures else {}
    for key, p in trees.items():
        t1 = time.perf_counter()
        try:
            got[key] = float(p.score(model, images, labels, k=PROXY_K, seed=seed))
        except SaswotError:
            raise
        except NUMERICAL_ERRORS as exc:
            got[key] = math.nan
            errs[key] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        secs[key] = time.perf_counter() - t1
    return got, secs, errs


def score_architectures(bench: Benchmark, names: Optional[Sequence[str]] = None,
                        proxy_files: Sequence[PathLike] = (), resolution: Optional[Tuple[int, int]] = None,
                        batch_size: int = 8, seed: int = 0, cache: Optional[PathLike] = None,
                        progress: Optional[Callable[[int, int, str, float], None]] = None,
                        errors: Optional[Dict[str, Dict[str, str]]] = None, executor=None, device: str = "cpu",
                        batch: str = "auto") -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray], Dict[str, str]]:
    """Scores of every architecture: ({proxy: scores}, {proxy: seconds per arch}, {proxy: kind}).

    ``progress(i, n, arch, seconds)`` is called after each architecture (``seconds`` is 0 when it
    came entirely from the cache). ``errors`` (if given) receives {proxy: {arch: failure text}} for
    the NaN scores whose failure was recorded (``compute_measures``' ``errors``; kept in the cache).
    Architectures still to score are one task each on ``executor`` (:mod:`saswot_gp.execution`; default
    serial); this process writes each result to the cache as it arrives, so a rerun resumes. A rank-aggregate
    tree (``rank2(...)``) is scored as its subtrees, each architecture on its own, then ranked within the
    benchmark's architectures (:func:`~saswot_gp.primitives.rank.log_rank_aggregate`; NaN where a subtree is).
    ``batch``: the kind of batch (:func:`saswot_gp.batches.default_batch`).
    """
    from ..batches import default_batch
    from ..execution import Executor
    from ..spaces import get_space
    from ..stats import batch_digest
    names = list(measure_names() if names is None else names)
    for n in names:
        get_measure(n)
    given = load_proxy_files(proxy_files)
    if not names and not given:
        raise SaswotError("no proxies to score; name measures or give --proxy files")
    files = {n: p for n, p in given.items() if not p.is_ranked}
    ranked = {n: [f"{n}#{j + 1}" for j in range(len(p.subtrees()))] for n, p in given.items() if p.is_ranked}
    for n, p in given.items():  # a rank aggregate: its subtrees are scored one architecture at a time
        if p.is_ranked:
            files.update(zip(ranked[n], p.subtrees()))
    sp = get_space(bench.space, **bench.space_kwargs)
    images, labels = default_batch(bench, n=batch_size, seed=seed, resolution=resolution, kind=batch)
    ctx = {"space": bench.space, "space_kwargs": sorted((str(k), str(v)) for k, v in bench.space_kwargs.items()),
           "batch": batch_digest(images, labels), "seed": int(seed), "proxy_k": PROXY_K}
    store = ScoreCache(cache, ctx)
    keys = {n: n for n in names}
    keys.update({n: _proxy_key(p) for n, p in files.items()})
    kinds = {n: "measure" for n in names}
    kinds.update({n: "file" for n in files})
    todo = {i: store.missing(a, list(keys.values())) for i, a in enumerate(bench.archs)}
    todo = {i: t for i, t in todo.items() if t}
    done = 0
    for i, arch in enumerate(bench.archs):  # cached architectures first
        if i not in todo:
            done += 1
            if progress is not None:
                progress(done, len(bench), arch, 0.0)
    ex = executor or Executor()
    imgs, labs = ex.scatter(images), ex.scatter(labels)
    order = sorted(todo)
    jobs = [(bench.archs[i], [n for n in names if keys[n] in todo[i]],
             {keys[n]: p for n, p in files.items() if keys[n] in todo[i]}) for i in order]
    t0 = time.perf_counter()
    for j, (got, secs, errs) in ex.as_completed(_score_job, jobs, sp, imgs, labs, seed, device):
        arch = bench.archs[order[j]]
        store.put(arch, got, secs, errs)
        done += 1
        if progress is not None:
            progress(done, len(bench), arch, sum(secs.values()) if secs else time.perf_counter() - t0)
    scores = {n: np.array([store.get(a, keys[n]) for a in bench.archs]) for n in keys}
    seconds = {n: np.array([store.seconds.get(a, {}).get(keys[n], math.nan) for a in bench.archs]) for n in keys}
    if errors is not None:
        for n in keys:
            got_errs = {a: store.error(a, keys[n]) for a in bench.archs}
            errors[n] = {a: e for a, e in got_errs.items() if e is not None}
    for n, parts in ranked.items():  # ranked within the benchmark's architectures
        from ..primitives.rank import log_rank_aggregate
        scores[n] = log_rank_aggregate(np.array([scores.pop(k) for k in parts], dtype=np.float64)).numpy()
        seconds[n] = sum(seconds.pop(k) for k in parts)
        kinds[n] = "file"
        for k in parts:
            kinds.pop(k)
            if errors is not None:
                for a, e in errors.pop(k).items():
                    errors.setdefault(n, {})[a] = e
        if errors is not None:
            errors.setdefault(n, {})
    return scores, seconds, kinds


def benchmark_measures(bench, measures: Sequence[str], batch_size: int, seed: int,
                       resolution: Optional[Tuple[int, int]], batch: str, cache, executor=None, device: str = "cpu",
                       progress=None) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray]]:
    """({measure: values}, {measure: seconds}) of every architecture of ``bench``, in its order, on the batch
    :func:`saswot_gp.batches.default_batch` gives for (``batch_size``, ``seed``, ``resolution``, ``batch``) and
    weights from ``seed``: the batch and weights of the statistics. Cached per architecture in ``cache`` (a
    JSON-lines file; a rerun resumes). ``progress(done, total)``: a :class:`saswot_gp.progress.Progress`."""
    tick = None if progress is None else (lambda i, n, arch, seconds: progress(i, n))
    scores, seconds, _ = score_architectures(bench, list(measures), (), resolution, batch_size, seed, cache=cache,
                                             progress=tick, executor=executor, device=device, batch=batch)
    return {m: scores[m] for m in measures}, {m: seconds[m] for m in measures}


def _score_job(job, space, images, labels, seed: int, device: str):
    arch, measures, trees = job
    return score_one(arch, space, images, labels, measures, trees, seed, device)
