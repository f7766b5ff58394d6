"""``toolbox.map`` over the execution seam (:mod:`saswot_gp.execution`): serial built-in ``map``, or candidates
evaluated on Dask workers in batches, the evaluator (with its packed statistics) sent to the workers once."""

from __future__ import annotations

import random
import time
from typing import Callable, List, Optional, Sequence

# batches per worker and generation: enough to balance uneven candidates, few enough that task overhead
# (a few ms each) stays small against ~10 ms per candidate
BATCHES_PER_WORKER = 2
# a generation whose last in-process evaluation took less than this (seconds, scaled to its size) stays in
# process: on 2 workers of 2 cores, generations of 64 default candidates (0.2 s) ran 0.66x as fast on Dask
# (round trips and the cores' shared memory bandwidth) and generations of 500 (1.5 s) 1.10x (RESULTS.md)
MIN_GENERATION_S = 1.0


def _eval_batch(batch: Sequence[List[str]], evaluator) -> list:
    return [evaluator(tokens) for tokens in batch]


def make_map(evaluator, ex=None, min_generation_s: Optional[float] = None) -> Callable:
    """``map_fn`` for ``evolve(evaluator, ..., map_fn=...)``: without a distributed executor ``ex``, the built-in
    ``map``. With one: the evaluator is sent to the workers once and each generation's candidates go out in
    ``BATCHES_PER_WORKER`` batches per worker (the function ``evolve`` passes is ignored: the workers hold the
    evaluator), unless the generation is small: the first generation is evaluated in this process and timed,
    and every generation whose in-process time, estimated from the last one measured per candidate, is under
    ``min_generation_s`` (default :data:`MIN_GENERATION_S`) stays here. Results come back in candidate order and
    do not depend on where they were computed, so a seeded run equals the serial one."""
    if ex is None or not ex.distributed:
        return map
    handle = ex.scatter(evaluator)
    per_candidate: Optional[float] = None  # the last in-process time per candidate (None: not measured yet)

    def dask_map(_fn, candidates) -> list:
        nonlocal per_candidate
        cands = list(candidates)
        if not cands:
            return []
        floor = MIN_GENERATION_S if min_generation_s is None else min_generation_s
        if per_candidate is None or per_candidate * len(cands) < floor:
            t = time.perf_counter()
            out = [evaluator(c) for c in cands]
            per_candidate = (time.perf_counter() - t) / len(cands)
            return out
        n = max(1, min(len(cands), ex.n_workers * BATCHES_PER_WORKER))
        size = -(-len(cands) // n)
        batches = [cands[i:i + size] for i in range(0, len(cands), size)]
        state = random.getstate()  # Dask's scheduler (in this process) draws from the global RNG that DEAP uses:
        try:  # evolution's draws stay those of a serial run
            return [r for part in ex.map(_eval_batch, batches, handle) for r in part]
        finally:
            random.setstate(state)
    return dask_map
