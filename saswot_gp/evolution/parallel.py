"""``toolbox.map`` over the execution seam (:mod:`saswot_gp.execution`): serial built-in ``map``, or candidates
evaluated on Dask workers in batches, the evaluator (with its packed statistics) sent to the workers once."""

from __future__ import annotations

import random
from typing import Callable, List, Sequence

# batches per worker and generation: enough to balance uneven candidates, few enough that task overhead
# (a few ms each) stays small against ~10 ms per candidate
BATCHES_PER_WORKER = 2


def _eval_batch(batch: Sequence[List[str]], evaluator) -> list:
    return [evaluator(tokens) for tokens in batch]


def make_map(evaluator, ex=None) -> Callable:
    """``map_fn`` for ``evolve(evaluator, ..., map_fn=...)``: without a distributed executor ``ex``, the built-in
    ``map``. With one: the evaluator is scattered once and each generation's candidates go out in
    ``BATCHES_PER_WORKER`` batches per worker (the function ``evolve`` passes is ignored: the workers hold the
    evaluator); the results come back in candidate order, so a seeded run equals the serial one."""
    if ex is None or not ex.distributed:
        return map
    handle = ex.scatter(evaluator)

    def dask_map(_fn, candidates) -> list:
        cands = list(candidates)
        if not cands:
            return []
        n = max(1, min(len(cands), ex.n_workers * BATCHES_PER_WORKER))
        size = -(-len(cands) // n)
        batches = [cands[i:i + size] for i in range(0, len(cands), size)]
        state = random.getstate()  # Dask's scheduler (in this process) draws from the global RNG that DEAP uses:
        try:  # evolution's draws stay those of a serial run
            return [r for part in ex.map(_eval_batch, batches, handle) for r in part]
        finally:
            random.setstate(state)
    return dask_map
