"""``toolbox.map`` implementations: serial (built-in ``map``) or a process pool holding the evaluator."""

from __future__ import annotations

import multiprocessing as mp
from typing import Callable, Tuple

_WORKER_EVAL = None


def _init(evaluator) -> None:
    global _WORKER_EVAL
    import torch
    torch.set_num_threads(1)
    _WORKER_EVAL = evaluator


def _call(tokens):
    return _WORKER_EVAL(tokens)


def make_map(evaluator, workers: int = 0) -> Tuple[Callable, Callable[[], None], Callable]:
    """(map_fn, close, fn): with ``workers`` > 1 a process pool evaluating ``fn``; else serial ``map``.

    Pass ``fn`` (not the evaluator) to ``map_fn``: workers received the evaluator once at start.
    """
    if workers <= 1:
        return map, (lambda: None), evaluator
    pool = mp.get_context("spawn").Pool(workers, initializer=_init, initargs=(evaluator,))
    return pool.map, pool.close, _call
