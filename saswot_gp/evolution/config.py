"""Settings and result of one evolution run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

from ..errors import SaswotError
from ..proxy import Proxy
from .pset import ROOTS, TERMINAL_SETS


@dataclass
class EvolutionConfig:
    """Hyper-parameters of one run (all recorded in the checkpoint)."""

    population: int = 64
    generations: int = 20
    seed: int = 0
    tournament: int = 7
    cxpb: float = 0.5
    mutpb: float = 0.4
    elite: int = 2
    hof_size: int = 20
    init_min: int = 2
    init_max: int = 5
    max_height: int = 7
    max_size: int = 30
    local_search: int = 12  # node-replacement neighbours tried around each elite per generation
    immigrants: float = 0.0  # fraction of each generation replaced by fresh random trees
    terminals: str = "all"  # terminal set: all, stats (network statistics only) or sizes (layer sizes only)
    resample: float = 0.0  # > 0: fitness on a fresh random fraction of each training split every generation
    parsimony: float = 0.0  # selection fitness = Kendall tau - parsimony * size
    root: str = "plain"  # plain: a score tree; rank: the log-rank aggregate of 1 to 4 score trees (rank1 .. rank4)

    def check(self) -> None:
        """Raise SaswotError on a nonsensical setting."""
        if self.population < 4:
            raise SaswotError(f"population {self.population}; expected at least 4")
        if self.generations < 0:
            raise SaswotError(f"generations {self.generations}; expected >= 0")
        if not 0 <= self.elite < self.population:
            raise SaswotError(f"elite {self.elite}; expected 0 <= elite < population")
        if not (0 <= self.cxpb <= 1 and 0 <= self.mutpb <= 1):
            raise SaswotError(f"cxpb {self.cxpb} / mutpb {self.mutpb}; expected probabilities in [0, 1]")
        if self.terminals not in TERMINAL_SETS:
            raise SaswotError(f"terminal set {self.terminals!r}; expected one of {', '.join(TERMINAL_SETS)}")
        if not 0 <= self.resample <= 1:
            raise SaswotError(f"resampled fraction {self.resample}; expected 0 (off) < fraction <= 1")
        if not 0 <= self.parsimony < 1:
            raise SaswotError(f"parsimony {self.parsimony}; expected 0 <= parsimony < 1 (Kendall tau per node)")
        if self.root not in ROOTS:
            raise SaswotError(f"root {self.root!r}; expected one of {', '.join(ROOTS)}")
        if self.tournament < 1:
            raise SaswotError(f"tournament size {self.tournament}; expected >= 1")


@dataclass
class EvolutionResult:
    """What a run leaves: hall of fame, best per size, per-generation log, cache statistics."""

    hall_of_fame: List[dict]
    best_by_size: List[dict]
    history: List[dict]
    cache_hits: int = 0
    evaluations: int = 0
    config: dict = field(default_factory=dict)

    @property
    def best(self) -> Proxy:
        """The best proxy found (highest training Kendall tau, then smallest)."""
        return Proxy(self.hall_of_fame[0]["tokens"], name="best")
