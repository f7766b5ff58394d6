"""The in-memory ground-truth benchmark: architectures, their measured target, reference columns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np


@dataclass
class Benchmark:
    """Architectures of one search space with a measured target (e.g. mIoU) per architecture.

    ``archs`` are architecture strings understood by the space named ``space``; ``target`` is a
    float array aligned with ``archs``; ``reference`` holds optional extra columns aligned with
    ``archs`` (precomputed proxy scores, params, ...) where NaN marks a missing value.
    """

    name: str
    space: str
    archs: List[str]
    target: np.ndarray
    metric: str = "mIoU"
    reference: Dict[str, np.ndarray] = field(default_factory=dict)
    description: str = ""
    space_kwargs: Dict[str, object] = field(default_factory=dict)
    data: Optional[str] = None  # the data set the targets were trained on, as the benchmark file declares it
    notes: List[str] = field(default_factory=list)  # what loading left out and why, for the commands to say

    def __post_init__(self):
        self.target = np.asarray(self.target, dtype=np.float64)
        if len(self.archs) != len(self.target):
            raise ValueError(f"benchmark {self.name!r}: {len(self.archs)} archs but {len(self.target)} targets")

    def __len__(self) -> int:
        return len(self.archs)

    def subset(self, idx) -> "Benchmark":
        """A new Benchmark restricted to the integer indices ``idx``."""
        idx = np.asarray(idx, dtype=int)
        return Benchmark(self.name, self.space, [self.archs[i] for i in idx], self.target[idx], self.metric,
                         {k: v[idx] for k, v in self.reference.items()}, self.description, dict(self.space_kwargs),
                         self.data, list(self.notes))

    def split(self, n_train: int, seed: int = 0, max_eval: Optional[int] = None):
        """Seeded random split into (train, held-out): ``n_train`` training archs, at most half when small."""
        if len(self) < 4:
            raise ValueError(f"benchmark {self.name!r} has {len(self)} architectures; need at least 4 to split")
        rng = np.random.default_rng(seed)
        perm = rng.permutation(len(self))
        n_train = max(2, min(n_train, len(self) // 2 if len(self) < 2 * n_train else n_train))
        test = perm[n_train:] if max_eval is None else perm[n_train:n_train + max_eval]
        return self.subset(perm[:n_train]), self.subset(test)
