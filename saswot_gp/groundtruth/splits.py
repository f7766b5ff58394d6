"""The committed splits: every benchmark's architectures split once into training, validation and held-out parts.

``saswot_gp/resources/splits.json`` (written by ``benchmarks/make_splits.py``) holds, per family of benchmarks
that share architectures (NAS-Bench-MR seg and seg-4x are one family), the architecture strings of each part
and of what was removed before splitting (invalid cells and isomorphic duplicates of TransNAS micro). Evolution
fits on ``train``, chooses its final proxy on ``val`` and reports ``heldout``; nothing is ever chosen on
``heldout``.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..errors import SaswotError
from .base import Benchmark

SPLITS_FORMAT = "saswot-gp-splits"
SPLIT_PARTS = ("train", "val", "heldout")
HELDOUT_FRAC = 0.3   # of the usable architectures
VAL_FRAC = 0.25      # of the training part


def usable_archs(bench: Benchmark) -> Tuple[List[int], Dict[str, List[str]]]:
    """Indices of the architectures to split (file order) and what was removed, by reason: TransNAS micro
    cells that are invalid or compute the same function as an earlier cell of the file; nothing elsewhere."""
    if bench.space != "transnas-micro":
        return list(range(len(bench))), {}
    from ..spaces.transnas_cells import micro_cell_class
    keep, seen, removed = [], set(), {"invalid": [], "duplicate": []}
    for i, arch in enumerate(bench.archs):
        cls = micro_cell_class(arch)
        if cls is None:
            removed["invalid"].append(arch)
        elif cls in seen:
            removed["duplicate"].append(arch)
        else:
            seen.add(cls)
            keep.append(i)
    return keep, removed


def make_split(bench: Benchmark, seed: int = 0, heldout_frac: float = HELDOUT_FRAC,
               val_frac: float = VAL_FRAC) -> dict:
    """A seeded split of every usable architecture: a held-out fraction, and a validation fraction of the rest."""
    keep, removed = usable_archs(bench)
    perm = np.random.default_rng(seed).permutation(len(keep))
    n_held = int(round(heldout_frac * len(keep)))
    n_val = int(round(val_frac * (len(keep) - n_held)))
    archs = [bench.archs[keep[i]] for i in perm]
    return {"n_file": len(bench), "digest": arch_digest(bench.archs), "seed": seed, "heldout_frac": heldout_frac,
            "val_frac": val_frac, "removed": removed, "heldout": archs[:n_held], "val": archs[n_held:n_held + n_val],
            "train": archs[n_held + n_val:]}


def arch_digest(archs) -> str:
    """A short digest of a set of architecture strings (order-free)."""
    return hashlib.sha256("\n".join(sorted(archs)).encode()).hexdigest()[:16]


def load_splits(path: Optional[str] = None) -> dict:
    """The committed split file (or the one at ``path``), checked for its format."""
    from ..io import read_json
    doc = _committed() if path is None else read_json(path, f"split file {path!r}",
                                                         "expected a split file written by make_splits.py")
    if not isinstance(doc, dict) or doc.get("format") != SPLITS_FORMAT or not isinstance(doc.get("splits"), dict):
        raise SaswotError(f"split file {path or 'splits.json'!r} is not a {SPLITS_FORMAT!r} file")
    return doc


@lru_cache(maxsize=1)
def _committed() -> dict:
    return json.loads((Path(__file__).resolve().parent.parent / "resources" / "splits.json").read_text())


def committed_split(bench: Benchmark, doc: Optional[dict] = None) -> Optional[dict]:
    """The committed split of ``bench`` (by name, and only if it covers exactly the benchmark's architectures),
    or None when the split file has none for it."""
    doc = load_splits() if doc is None else doc
    task = re.fullmatch(r"(transnas101-(?:micro|macro))-(\w+)", bench.name)
    if task and task.group(2) != "segmentsemantic":  # another task of the same file: its segmentation split
        return _task_split(bench, f"{task.group(1)}-segmentsemantic", doc)
    for entry in doc["splits"].values():
        if bench.name in entry.get("benchmarks", ()):
            if entry.get("digest") != arch_digest(bench.archs):
                raise SaswotError(f"benchmark {bench.name!r} ({len(bench)} architectures) is not the one the committed "
                                  f"split was made for ({entry.get('n_file')} architectures); expected the same file, "
                                  f"or use a seeded random split")
            return entry
    return None


def _task_split(bench: Benchmark, sibling: str, doc: dict) -> Optional[dict]:
    """The committed split of the segmentation task ``sibling``, restricted to ``bench``'s architectures (the other
    TransNAS-Bench-101 tasks train the same cells, some tasks fewer of them): no architecture held out or used
    for validation on segmentation lands in another task's training part."""
    for entry in doc["splits"].values():
        if sibling in entry.get("benchmarks", ()):
            have = set(bench.archs)
            known = {a for part in SPLIT_PARTS for a in entry[part]} | {a for v in entry.get("removed", {}).values()
                                                                        for a in v}
            if not have <= known:
                raise SaswotError(f"benchmark {bench.name!r}: {len(have - known)} of its architectures are not in the "
                                  f"committed split of {sibling!r}; expected the same TransNAS-Bench-101 file")
            return dict(entry, benchmarks=[bench.name],
                        **{part: [a for a in entry[part] if a in have] for part in SPLIT_PARTS})
    return None


def apply_split(bench: Benchmark, entry: dict, train_size: Optional[int] = None,
                heldout_size: Optional[int] = None) -> Tuple[Benchmark, Benchmark, Benchmark]:
    """(train, validation, held-out) of ``bench`` as the committed ``entry`` says; ``train_size`` and
    ``heldout_size`` keep only the first architectures of those parts (in the split's order)."""
    pos = {a: i for i, a in enumerate(bench.archs)}
    parts = []
    for part, cap in zip(SPLIT_PARTS, (train_size, None, heldout_size)):
        archs = entry[part][:cap] if cap is not None else entry[part]
        parts.append(bench.subset([pos[a] for a in archs]))
    return parts[0], parts[1], parts[2]
