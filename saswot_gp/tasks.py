"""How work is cut into Dask tasks (used by :mod:`saswot_gp.execution`): quick items share a task
(:func:`chunk_size`), and a :class:`Stream` takes tasks back one item at a time as they finish."""

from __future__ import annotations

import time
from typing import Any, Callable, List, Optional, Sequence, Tuple

# Items quicker than this share a Dask task. Independent items (Executor.as_completed): 0.25 s, chosen on realtime
# networks drawn with seed 1, not the reported ones (statistics 1.71-1.73x faster than serial with 0.1 s, 1.78-1.82x
# with 0.25 s, 1.78-1.91x with 0.5 s; benchmarks/RESULTS.md). The search's scoring tasks keep Dask's guidance of
# about 0.1 s: their scores steer the next proposals, so they should come back soon.
MIN_TASK_S = 0.25
SEARCH_TASK_S = 0.1


class Stream:
    """Tasks submitted one at a time and taken back as they finish, one ``(key, result)`` per item (serial: run at
    submission, returned first in, first out). For work whose next task depends on earlier results. A task carries
    one or several items under their keys (:meth:`submit_items`), so that quick items share Dask's per-task cost.
    """

    def __init__(self, ex: Any):  # the saswot_gp.execution.Executor (not imported: execution imports this module)
        self.ex = ex
        self.flying: dict = {}  # key -> the future of the task that carries it (Dask) or its result (serial)
        self.tasks: dict = {}  # task key -> (its future, the keys it carries in order) (Dask)
        self.seconds: List[float] = []  # seconds per item of each task taken back (serial: of each task run)
        self._ready: List[Tuple[Any, Any]] = []  # results of a finished task not yet taken
        self._arrivals = None

    def __len__(self) -> int:
        """Items in flight."""
        return len(self.flying)

    def __contains__(self, key: Any) -> bool:
        return key in self.flying

    @property
    def n_tasks(self) -> int:
        """Tasks in flight (serial: items in flight)."""
        return len(self.tasks) if self.ex.client is not None else len(self.flying)

    def submit_items(self, keys: Sequence[Any], fn: Callable, items: Sequence[Any], *args: Any, **kwargs: Any) -> None:
        """Start one task computing ``fn(item, *args, **kwargs)`` for every item, each result taken back under its
        key (keys already in flight are left out with their items); the task's seconds per item join
        :attr:`seconds`."""
        pairs = [(k, it) for k, it in zip(keys, items) if k not in self.flying]
        if pairs:
            self._start([k for k, _ in pairs], [it for _, it in pairs], fn, args, kwargs)

    def _start(self, keys: List[Any], items: List[Any], fn: Callable, args: Tuple[Any, ...], kwargs: dict) -> None:
        if self.ex.client is None:
            out, secs = _run_items(fn, items, *args, **kwargs)
            self.seconds.append(secs / len(keys))
            self.flying.update(zip(keys, out))
            return
        from distributed import as_completed
        fut = self.ex.submit(_run_items, fn, items, *args, **kwargs)
        self.tasks[fut.key] = (fut, keys)
        for k in keys:
            self.flying[k] = fut
        if self._arrivals is None:
            self._arrivals = as_completed()
        self._arrivals.add(fut)

    def next(self) -> Tuple[Any, Any]:
        """The next finished item's ``(key, result)`` (its task's error is raised here)."""
        if self._ready:
            key, result = self._ready.pop(0)
            del self.flying[key]
            return key, result
        if not self.flying:
            raise StopIteration
        if self.ex.client is None:
            key = next(iter(self.flying))
            return key, self.flying.pop(key)
        fut = next(self._arrivals)
        _, keys = self.tasks.pop(fut.key)
        out, secs = fut.result()
        self.seconds.append(secs / len(keys))
        self._ready.extend(zip(keys, out))
        return self.next()

    def cancel(self) -> None:
        """Cancel what is still in flight."""
        if self.ex.client is not None and self.tasks:
            self.ex.client.cancel([fut for fut, _ in self.tasks.values()])
        self.flying.clear()
        self.tasks.clear()
        self._ready.clear()


def chunk_size(per_item_s: Sequence[float], remaining: int, workers: int, min_task_s: Optional[float] = None) -> int:
    """How many of ``remaining`` items the next task takes: 1 until an item has been timed, then enough for a task
    of ``min_task_s`` (default :data:`MIN_TASK_S`; 0: one item per task) at the median of ``per_item_s`` (Dask's
    guidance: tasks of 100 ms or more keep its per-task cost small), but never so many that fewer than two tasks
    per worker would be left for the rest."""
    import math
    import statistics
    if remaining <= 0:
        return 0
    target = MIN_TASK_S if min_task_s is None else min_task_s
    if not per_item_s or target <= 0:
        return 1
    want = math.ceil(target / max(statistics.median(per_item_s), 1e-9))
    return max(1, min(want, math.ceil(remaining / (2 * max(1, workers))), remaining))


def _run_items(fn: Callable, items: Sequence[Any], *args: Any, **kwargs: Any) -> Tuple[List[Any], float]:
    """One task carrying several items (:meth:`Stream.submit_items`): ``fn`` over them, and the seconds they took."""
    t = time.perf_counter()
    out = [fn(item, *args, **kwargs) for item in items]
    return out, time.perf_counter() - t
