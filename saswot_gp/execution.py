"""The one execution seam for many independent pieces of work: serial in-process (the default, no start-up cost)
or a ``dask.distributed`` cluster (a local one of N single-thread worker processes, or an existing one by
address or scheduler file).

Callers submit a top-level function over items and consume ``(index, result)`` pairs as tasks finish, writing
results themselves (the client), so a restarted client resumes from what was written. Items quicker than about
250 ms share a task (:func:`.tasks.chunk_size`), so that Dask's per-task cost stays small next to the work. A
worker that dies mid-task has its task run again on another worker (Dask reschedules it); a task that raises is
retried ``retries`` times, then its error reaches the caller.
"""

from __future__ import annotations

import ctypes
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional, Sequence, Tuple

from .errors import SaswotError
from .tasks import Stream, chunk_size

RETRIES = 2  # a task that raises is retried this often before its error reaches the caller
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers
MMAP_THRESHOLD = 32 * 2 ** 20  # glibc's own ceiling for its dynamic threshold on 64-bit
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD  # what glibc's dynamic rule sets with that mmap threshold


@contextmanager
def torch_threads(n: Optional[int]) -> Iterator[None]:
    """Run the block with ``n`` torch threads (None or 0: the caller's), then restore the caller's count
    (reductions such as ``mean`` sum in a thread-dependent order, so a seeded result is bit-identical only at a
    fixed count)."""
    import torch
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _keep_freed_blocks() -> bool:
    """Raise glibc's mmap threshold to 32 MiB and its trim threshold to 64 MiB in this process, as glibc's own
    dynamic rule would; True if done (glibc only).

    A Dask nanny starts its worker with ``MALLOC_TRIM_THRESHOLD_=65536``, and setting any such variable freezes
    glibc's mmap threshold at 128 KiB: every tensor larger than that is mapped and unmapped anew, and the page
    faults made convolutions 1.8x slower in a worker than in a plain process; the 64 KiB trim threshold then
    hands freed heap back to the system after nearly every network, a few % more (benchmarks/RESULTS.md)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (musl)
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))


# On a worker: the index of the GPU its tasks use as ``cuda`` (None: no GPU, or torch's default)
_WORKER_GPU: Optional[int] = None


def worker_gpu(name: Any, n_gpus: int) -> Optional[int]:
    """The GPU a worker named ``name`` uses among ``n_gpus`` visible ones: its number (a local cluster names its
    workers 0, 1, ...; ``dask worker --nworkers K --name NAME`` names them ``NAME-0``, ``NAME-1``, ...) modulo
    ``n_gpus``, so workers spread over the GPUs; None with fewer than 2 GPUs (one visible GPU, as ``dask cuda
    worker`` arranges, or none) or a name without a number."""
    import re
    if n_gpus < 2:
        return None
    found = re.search(r"(?:^|-)(\d+)$", str(name))  # not the port of an address (``tcp://host:8788``)
    return int(found.group(1)) % n_gpus if found else None


def _worker_setup(worker=None) -> None:
    """Run on every worker: one torch thread per worker process, freed tensor memory kept for reuse, and its own
    GPU (:func:`worker_gpu`) when the machine has several."""
    global _WORKER_GPU
    import torch
    torch.set_num_threads(1)
    _keep_freed_blocks()
    if worker is not None and torch.cuda.is_available():
        _WORKER_GPU = worker_gpu(getattr(worker, "name", None), torch.cuda.device_count())


# On a worker: the objects :meth:`Executor.scatter` sent, by key (filled and emptied by :class:`_Held`)
_HELD: dict = {}


class Shared:
    """A handle to an object every worker holds (:meth:`Executor.scatter`); tasks receive the object itself."""

    def __init__(self, key: str):
        self.key = key

    def __repr__(self) -> str:
        return f"Shared({self.key!r})"


def _held(arg: Any) -> Any:
    if not isinstance(arg, Shared):
        return arg
    try:
        return _HELD[arg.key]
    except KeyError:
        raise RuntimeError(f"this worker does not hold {arg.key} (its executor was closed)") from None


def _task(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """Run one task with one torch thread in the thread that runs it (a worker's task thread keeps its own
    setting) and the worker's GPU as the current CUDA device (also a per-thread setting), :class:`Shared`
    arguments replaced by the objects they name."""
    import torch
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)
    if _WORKER_GPU is not None:
        torch.cuda.set_device(_WORKER_GPU)
    return fn(*[_held(a) for a in args], **{k: _held(v) for k, v in kwargs.items()})


def _register_setup(client) -> None:
    """Apply :func:`_worker_setup` to every worker now and to every worker that joins or restarts later."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class WorkerSetup(WorkerPlugin):
        name = "saswot-gp-worker-setup"

        def setup(self, worker) -> None:
            _worker_setup(worker)
    client.register_plugin(WorkerSetup())


def _held_plugin(key: str, obj: Any):
    """A worker plugin that puts ``obj`` in the worker's :data:`_HELD` under ``key`` (also on workers that join
    or restart later) and drops it when unregistered."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class _Held(WorkerPlugin):
        idempotent = False

        def __init__(self):
            self.name, self.obj = key, obj

        def setup(self, worker) -> None:
            _hold(key, self.obj)

        def teardown(self, worker) -> None:
            _drop(key)
    return _Held()


# Module level, so that the plugin, pickled by value, reaches this module's _HELD on the worker, not a copy of it
def _hold(key: str, obj: Any) -> None:
    _HELD[key] = obj


def _drop(key: str) -> None:
    _HELD.pop(key, None)


class Executor:
    """Serial (``client is None``) or Dask execution of independent tasks; use as a context manager."""

    def __init__(self, client=None, cluster=None, log: Optional[Callable[[str], None]] = None):
        self.client, self.cluster = client, cluster
        self.log = log or (lambda msg: None)
        self._held: List[str] = []
        self.tasks_submitted = 0  # Dask tasks :meth:`submit` has started (several items may share one)

    @property
    def distributed(self) -> bool:
        """True when tasks run on a Dask cluster."""
        return self.client is not None

    @property
    def n_workers(self) -> int:
        """Workers the tasks can use (1 when serial; on Dask a round trip to the scheduler)."""
        if self.client is None:
            return 1
        return max(1, len(self.client.scheduler_info().get("workers", {})))

    def scatter(self, obj: Any) -> Any:
        """Send ``obj`` to every worker once (and to workers that join or restart later); pass the returned handle
        as a task argument and the task receives ``obj`` (serial: ``obj`` itself). The closing of the executor
        drops it from the workers.

        Held by a worker plugin rather than as Dask data: Dask placed tasks that depend on scattered data
        unevenly (three of four fitness batches on one worker while the other idled), while tasks without
        dependencies are handed to workers as they free up (benchmarks/RESULTS.md)."""
        if self.client is None:
            return obj
        import uuid
        key = f"saswot-gp-held-{uuid.uuid4().hex}"
        self.client.register_plugin(_held_plugin(key, obj), name=key)
        self._held.append(key)
        return Shared(key)

    def as_completed(self, fn: Callable, items: Sequence[Any], *args: Any, **kwargs: Any) -> Iterator[Tuple[int, Any]]:
        """``fn(item, *args, **kwargs)`` for every item; yields ``(index, result)`` as tasks finish (serial: in
        order). Abandoning the iterator cancels what has not run.

        On Dask, items too quick for a task of their own share one (:func:`.tasks.chunk_size`: tasks of about
        250 ms, sized from the items measured so far), at most two tasks per worker are in flight, and each
        item's result is yielded as soon as its task finishes."""
        if self.client is None:
            for i, item in enumerate(items):
                yield i, fn(item, *args, **kwargs)
            return
        items, stream, nxt = list(items), self.stream(), 0
        workers = self.n_workers  # asks the scheduler: once, not for every task

        def fill() -> None:
            nonlocal nxt
            while nxt < len(items) and stream.n_tasks < 2 * workers:
                size = chunk_size(stream.seconds, len(items) - nxt, workers)
                idx = list(range(nxt, nxt + size))
                stream.submit_items(idx, fn, [items[i] for i in idx], *args, **kwargs)
                nxt += size
        try:
            fill()
            while len(stream):
                i, result = stream.next()
                fill()
                yield i, result
        finally:
            stream.cancel()

    def submit(self, fn: Callable, *args: Any, **kwargs: Any):
        """Start ``fn(*args, **kwargs)`` as one Dask task (one torch thread, the worker's GPU, :class:`Shared`
        arguments replaced by their objects, retried :data:`RETRIES` times); its future."""
        self.tasks_submitted += 1
        return self.client.submit(_task, fn, *args, retries=RETRIES, pure=False, **kwargs)

    def map(self, fn: Callable, items: Sequence[Any], *args: Any, **kwargs: Any) -> List[Any]:
        """``[fn(item, *args, **kwargs) for item in items]``, in order."""
        out: List[Any] = [None] * len(items)
        for i, r in self.as_completed(fn, items, *args, **kwargs):
            out[i] = r
        return out

    def stream(self) -> "Stream":
        """A stream of tasks submitted one at a time and taken back as they finish (see :class:`.tasks.Stream`)."""
        return Stream(self)

    def close(self) -> None:
        """Shut the client and any cluster this executor started."""
        if self.client is not None:
            for key in self._held:
                try:
                    self.client.unregister_worker_plugin(key)
                except Exception:  # noqa: BLE001 - a closing cluster may already be gone
                    pass
            self._held.clear()
            self.client.close()
            self.client = None
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


SCHEDULER_FORMS = ("an address such as tcp://127.0.0.1:8786 or 127.0.0.1:8786, or the JSON file "
                   "`dask scheduler --scheduler-file` wrote")
CONNECT_TIMEOUT_S = 3.0  # a scheduler that does not accept a connection in this time is reported unreachable


def scheduler_address(scheduler: str) -> Tuple[str, str, int]:
    """The address a Dask scheduler spec points at, (address, host, port): the spec itself, or the ``address``
    in a scheduler file (a name ending in .json, or an existing file); a one-line SaswotError naming the spec
    and the accepted forms when it is neither."""
    import json
    import re
    address = scheduler.strip()
    try:
        is_file = Path(address).is_file()
    except OSError:  # a name the file system refuses: not a file
        is_file = False
    if address.endswith(".json") or is_file:
        if not is_file:
            raise SaswotError(f"scheduler file {scheduler!r} not found; expected {SCHEDULER_FORMS}")
        try:
            address = str(json.loads(Path(address).read_text(encoding="utf-8"))["address"])
        except (OSError, ValueError, KeyError, TypeError):
            raise SaswotError(f"scheduler file {scheduler!r} has no scheduler address; expected {SCHEDULER_FORMS}") \
                from None
    m = re.fullmatch(r"(?:(?:tcp|tls)://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})", address)
    if not m or not 0 < int(m[2]) < 65536:
        raise SaswotError(f"scheduler {scheduler!r}; expected {SCHEDULER_FORMS}")
    return address, m[1].strip("[]"), int(m[2])


def _check_reachable(scheduler: str, host: str, port: int) -> None:
    """A one-line SaswotError unless ``host:port`` accepts a TCP connection within :data:`CONNECT_TIMEOUT_S`."""
    import socket
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        why = "timed out" if isinstance(exc, socket.timeout) else (exc.strerror or type(exc).__name__).lower()
        raise SaswotError(f"cannot reach the Dask scheduler {scheduler!r} at {host}:{port} ({why}); expected a running "
                          f"`dask scheduler`, {SCHEDULER_FORMS}") from None


def executor(workers: int = 0, scheduler: Optional[str] = None,
             log: Optional[Callable[[str], None]] = None) -> Executor:
    """The executor for ``--workers N`` (a local cluster of N single-thread worker processes; 0: serial,
    in-process, no Dask start-up) or ``--scheduler ADDRESS|FILE`` (an existing cluster: its address such as
    ``tcp://host:8786``, or the JSON scheduler file ``dask scheduler --scheduler-file`` wrote)."""
    say = log or (lambda msg: None)
    if workers < 0:
        raise SaswotError(f"--workers {workers}; expected 0 (serial) or a positive number of worker processes")
    if scheduler and workers:
        raise SaswotError("give --workers or --scheduler, not both")
    if not scheduler and workers == 0:
        return Executor(log=say)
    try:
        from distributed import Client, LocalCluster
    except ImportError:  # pragma: no cover - dask is a dependency
        raise SaswotError("--workers/--scheduler need dask.distributed: pip install 'dask[distributed]'") from None
    if scheduler:
        address, host, port = scheduler_address(scheduler)
        _check_reachable(scheduler, host, port)
        try:
            client = Client(address, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise SaswotError(f"cannot reach the Dask scheduler {scheduler!r} ({type(exc).__name__}); "
                              f"expected a running `dask scheduler` address or scheduler file") from None
        _register_setup(client)
        ex = Executor(client, None, say)
        say(f"dask: connected to {scheduler} ({ex.n_workers} workers); dashboard {client.dashboard_link}")
        return ex
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):  # inherited by the workers
        os.environ.setdefault(var, "1")
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                           silence_logs=40)
    client = Client(cluster)
    _register_setup(client)
    say(f"dask: local cluster of {workers} single-thread workers; dashboard {client.dashboard_link}")
    return Executor(client, cluster, say)


def check_device(device: str) -> str:
    """``device`` if usable here ('cpu', 'cuda', 'cuda:N'), else a one-line SaswotError. On a Dask cluster
    each worker checks again where it runs; ``cuda`` there means the worker's own GPU (:func:`worker_gpu`))."""
    import re
    import torch
    if device == "cpu":
        return device
    if not re.fullmatch(r"cuda(:\d+)?", device or ""):
        raise SaswotError(f"device {device!r}; expected cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise SaswotError(f"device {device!r}: no CUDA device is visible to this process; use --device cpu")
    n = torch.cuda.device_count()
    if ":" in device and int(device.split(":")[1]) >= n:
        raise SaswotError(f"device {device!r}: only {n} CUDA device(s) are visible (cuda:0 to cuda:{n - 1})")
    return device
