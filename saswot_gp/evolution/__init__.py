"""Typed-GP evolution of proxies: primitive set, fitness with canonical-form cache, the loop."""

from ..ranking import correlations  # noqa: F401  (the one home of rank correlation)
from .fitness import INVALID, FitnessCache, ProxyEvaluator, rank_quality  # noqa: F401
from .config import EvolutionConfig, EvolutionResult  # noqa: F401
from .loop import evolve  # noqa: F401
from .variation import make_toolbox  # noqa: F401
from .parallel import make_map  # noqa: F401
from .pset import build_pset, ensure_creator  # noqa: F401
