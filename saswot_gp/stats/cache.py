"""Statistics of many architectures of a space, cached on disk as ``.npz`` (loaded without pickle).

The cache key is a hash of (space, architecture, batch contents, K, seed, format version).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable, List, Optional, Sequence

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


def stats_for_archs(space, archs: Sequence[str], images: torch.Tensor, labels: torch.Tensor,
                    k: Optional[int] = 256, seed: int = 0, cache_dir: Optional[str] = None,
                    progress: Optional[Callable[[int, int], None]] = None, space_id: Optional[str] = None) -> List[ArchStats]:
    """Collect (or load from ``cache_dir``) statistics for every architecture, in order."""
    digest = batch_digest(images, labels)
    sid = space_id or getattr(space, "cache_id", None) or getattr(space, "name", type(space).__name__)
    cdir = Path(cache_dir) if cache_dir else None
    out = []
    for i, arch in enumerate(archs):
        path = cdir / f"{cache_key(sid, arch, digest, k, seed)}.npz" if cdir else None
        st = None
        if path is not None and path.exists():
            try:
                with np.load(path, allow_pickle=False) as d:
                    st = ArchStats.from_arrays(d)
            except (OSError, ValueError, KeyError):
                st = None  # unreadable cache entry: recompute
        if st is None:
            st = collect_stats(build_model(space, arch, seed), images, labels, k=k, seed=seed)
            if path is not None:
                arrays = st.to_arrays()
                atomic_write(path, lambda tmp: _savez(tmp, arrays))
        out.append(st)
        if progress:
            progress(i + 1, len(archs))
    return out


def stats_and_targets(bench, images: torch.Tensor, labels: torch.Tensor, k: Optional[int] = 256, seed: int = 0,
                      cache_dir: Optional[str] = None, progress: Optional[Callable[[int, int], None]] = None):
    """Packed statistics of every architecture of the benchmark ``bench`` and its aligned targets."""
    from ..spaces import get_space
    from .pack import pack
    sp = get_space(bench.space, **bench.space_kwargs)
    sid = f"{bench.space}:{sorted(bench.space_kwargs.items())}"
    st = stats_for_archs(sp, bench.archs, images, labels, k=k, seed=seed, cache_dir=cache_dir,
                         progress=progress, space_id=sid)
    return pack(st), bench.target
