"""Statistics of many architectures of a space, cached on disk as ``.npz`` (loaded without pickle).

The cache key is a hash of (space, architecture, batch contents, K, seed, format version).
"""

from __future__ import annotations

import hashlib
import json
import sys
import zipfile
import zlib
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..io import atomic_write
from .collect import ArchStats, collect_stats

CACHE_VERSION = 1


def batch_digest(images: torch.Tensor, labels: torch.Tensor) -> str:
    """Short content hash of a batch."""
    h = hashlib.sha256()
    for t in (images, labels):
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def cache_key(space_id: str, arch: str, digest: str, k: Optional[int], seed: int) -> str:
    """Hex key of one architecture's statistics."""
    blob = json.dumps([CACHE_VERSION, space_id, arch, digest, k, seed])
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def build_model(space, arch: str, seed: int) -> torch.nn.Module:
    """Build ``arch`` with weights initialised from ``seed`` without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return space.build(arch)


def _savez(path: str, arrays) -> None:
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def collect_arch(arch: str, space, images: torch.Tensor, labels: torch.Tensor, k: Optional[int] = 256,
                 seed: int = 0, device: str = "cpu") -> ArchStats:
    """Statistics of one architecture built with weights from ``seed``, computed on ``device`` (one task of
    :func:`stats_for_archs`; runs on a Dask worker as well as in-process)."""
    model = build_model(space, arch, seed)
    if device != "cpu":
        model, images, labels = model.to(device), images.to(device), labels.to(device)
    return collect_stats(model, images, labels, k=k, seed=seed)


def _load_cached(path: Optional[Path]) -> Tuple[Optional[ArchStats], Optional[str]]:
    """The cached statistics at ``path`` (None if absent), and why an entry that exists is unreadable (or None)."""
    if path is None or not path.exists():
        return None, None
    try:
        with np.load(path, allow_pickle=False) as d:
            return ArchStats.from_arrays(d), None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'empty'}"


def stats_for_archs(space, archs: Sequence[str], images: torch.Tensor, labels: torch.Tensor,
                    k: Optional[int] = 256, seed: int = 0, cache_dir: Optional[str] = None,
                    progress: Optional[Callable[..., None]] = None, space_id: Optional[str] = None,
                    executor=None, device: str = "cpu", log: Optional[Callable[[str], None]] = None) -> List[ArchStats]:
    """Collect (or load from ``cache_dir``) statistics for every architecture, in order.

    A damaged cache entry (empty, truncated, not an ``.npz``) is recomputed and replaced, and one line to ``log``
    (default: standard error) says how many and why.

    Missing ones are computed one task per architecture on ``executor`` (:mod:`saswot_gp.execution`; default
    serial in-process) and written to the cache by this process as each finishes, so a restarted run keeps
    them. The same seeds give the same statistics, bit for bit, serially or on any number of workers.
    ``progress(done, total, cached=n)`` (a :class:`saswot_gp.progress.Progress`) is called once for the ``n``
    architectures found in the cache, then after each computed one.
    """
    from ..execution import Executor
    digest = batch_digest(images, labels)
    sid = space_id or getattr(space, "cache_id", None) or getattr(space, "name", type(space).__name__)
    cdir = Path(cache_dir) if cache_dir else None
    paths = [cdir / f"{cache_key(sid, arch, digest, k, seed)}.npz" if cdir else None for arch in archs]
    loaded = [_load_cached(p) for p in paths]
    out: List[Optional[ArchStats]] = [st for st, _ in loaded]
    damaged = [(p, why) for p, (_, why) in zip(paths, loaded) if why]
    if damaged:
        say = log or (lambda msg: print(msg, file=sys.stderr))
        say(f"statistics cache {str(cdir)!r}: {len(damaged)} damaged entr{'y' if len(damaged) == 1 else 'ies'} "
            f"recomputed ({damaged[0][0].name}: {damaged[0][1]})")
    missing = [i for i, st in enumerate(out) if st is None]
    done = cached = len(archs) - len(missing)
    if progress and done:
        progress(done, len(archs), cached=cached)
    ex = executor or Executor()
    imgs, labs = ex.scatter(images), ex.scatter(labels)
    for j, st in ex.as_completed(collect_arch, [archs[i] for i in missing], space, imgs, labs, k, seed, device):
        i = missing[j]
        out[i] = st
        if paths[i] is not None:
            arrays = st.to_arrays()
            atomic_write(paths[i], lambda tmp: _savez(tmp, arrays))
        done += 1
        if progress:
            progress(done, len(archs), cached=cached)
    return out  # type: ignore[return-value]


def stats_and_targets(bench, images: torch.Tensor, labels: torch.Tensor, k: Optional[int] = 256, seed: int = 0,
                      cache_dir: Optional[str] = None, progress: Optional[Callable[..., None]] = None,
                      executor=None, device: str = "cpu", log: Optional[Callable[[str], None]] = None):
    """Packed statistics of every architecture of the benchmark ``bench`` and its aligned targets
    (``executor``, ``device``, ``log``: see :func:`stats_for_archs`)."""
    from ..spaces import get_space
    from .pack import pack
    sp = get_space(bench.space, **bench.space_kwargs)
    sid = f"{bench.space}:{sorted(bench.space_kwargs.items())}"
    st = stats_for_archs(sp, bench.archs, images, labels, k=k, seed=seed, cache_dir=cache_dir,
                         progress=progress, space_id=sid, executor=executor, device=device, log=log)
    return pack(st), bench.target
