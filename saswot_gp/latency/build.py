"""Build a latency table: time each part of the realtime space alone, as the space builds it."""

from __future__ import annotations

import datetime
import time
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
from torch import nn

from ..batches import check_memory
from ..errors import SaswotError
from ..training import speed
from .keys import enumerate_configs, require_realtime, space_kwargs
from .runtime import OrtTimer, check_runtime, runtime_meta
from .table import LatencyTable

Progress = Callable[[int, int, str], None]


def config_module(space, config) -> Tuple[nn.Module, object]:
    """The module (``space.part_module``) and batch-1 input (``space.part_input``) of one part."""
    return space.part_module(config), space.part_input(config)


def time_module(module: nn.Module, x, warmup: int = 5, repeats: int = 20, statistic: str = "median",
                device: str = "cpu") -> float:
    """Median (or ``statistic='min'``) wall time (ms) of ``module(x)`` at batch 1 under ``torch.inference_mode``
    on ``device`` (CUDA timings synchronise the device).

    The timing loop is :func:`saswot_gp.training.speed.forward_times`, the one ``measure_latency`` uses.
    """
    if statistic not in speed.STATISTICS:
        raise SaswotError(f"unknown latency statistic {statistic!r}; expected one of {list(speed.STATISTICS)}")
    if device != "cpu":
        module, x = module.to(device), x.to(device)
    return speed.summarise_ms(speed.forward_times(module, x, warmup=warmup, repeats=repeats,
                                                  sync=speed.device_sync(device)), statistic)


def _space_at(space, resolution: Optional[Sequence[int]]):
    from ..spaces import get_space
    if isinstance(space, str):
        space = get_space(space, **({"input_size": tuple(resolution)} if resolution else {}))
    require_realtime(space)
    if resolution is not None and tuple(int(v) for v in resolution) != tuple(space.input_size):
        kw = space_kwargs(space)
        kw["input_size"] = (int(resolution[0]), int(resolution[1]))
        space = get_space(space.name, **kw)
    return space


def _timers(space, configs, runtime: str, threads: int, seed: int):
    """Per key: the part's module, its input and (ONNX Runtime) its timer; weights from ``seed``, global RNG kept."""
    from ..spaces.base import count_flops, count_params
    parts: Dict[str, Tuple[nn.Module, object, Optional[OrtTimer]]] = {}
    entries: Dict[str, Dict[str, float]] = {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for key, cfg in configs.items():
            module, x = config_module(space, cfg)
            parts[key] = (module, x, OrtTimer(module, x, threads) if runtime == "onnxruntime" else None)
            entries[key] = {"ms": 0.0, "params": count_params(module), "macs": count_flops(module, x)}
    return parts, entries


def _meta(space, runtime: str, threads: int, repeats: int, warmup: int, rounds: int, statistic: str,
          device: str) -> Dict[str, object]:
    meta: Dict[str, object] = {
        "space": space.name, "space_kwargs": space_kwargs(space), "resolution": list(space.input_size),
        "threads": int(threads), "repeats": int(repeats), "warmup": int(warmup), "rounds": int(rounds), "batch": 1,
        "statistic": statistic}
    meta.update(runtime_meta(runtime, threads))
    meta.update({"torch": torch.__version__, "device": device, "device_name": speed.device_name(device)})
    return meta


class PartTimers(NamedTuple):
    """The parts of a table about to be timed (:func:`part_timers`)."""
    table: LatencyTable
    timers: Dict[str, Callable[[], float]]
    export_s: Callable[[], float]


def _check_timing(repeats: int, warmup: int, threads: int, rounds: int, statistic: str) -> None:
    if repeats < 1 or warmup < 0 or threads < 1 or rounds < 1:
        raise SaswotError(f"need repeats >= 1, warmup >= 0, threads >= 1, rounds >= 1; got {repeats}, {warmup}, "
                          f"{threads}, {rounds}")
    if statistic not in speed.STATISTICS:
        raise SaswotError(f"unknown latency statistic {statistic!r}; expected one of {list(speed.STATISTICS)}")


def part_timers(space, resolution: Optional[Sequence[int]] = None, threads: int = 1, repeats: int = 20,
                warmup: int = 5, seed: int = 0, statistic: str = "median", rounds: int = 1, device: str = "cpu",
                runtime: str = "eager") -> PartTimers:
    """What :func:`build_lut` times, before any timing: the table to fill (its meta, and entries with the parts'
    params and MACs and ``ms`` 0), per entry key a call that times the part once (ms, ``statistic`` of
    ``repeats`` runs after ``warmup``; an ONNX Runtime part is exported, untimed, on its first call), and the
    seconds spent exporting so far."""
    _check_timing(repeats, warmup, threads, rounds, statistic)
    check_runtime(runtime, device)
    space = _space_at(space, resolution)
    check_memory(space, space.input_size, 1, backward=False, what="network input")
    meta = _meta(space, runtime, threads, repeats, warmup, rounds, statistic, device)  # fails early without ORT
    parts, entries = _timers(space, enumerate_configs(space), runtime, threads, seed)
    timers: Dict[str, Callable[[], float]] = {}
    for key, (module, x, timer) in parts.items():
        if timer is None:
            timers[key] = (lambda module=module, x=x: time_module(module, x, warmup=warmup, repeats=repeats,
                                                                  statistic=statistic, device=device))
        else:
            timers[key] = (lambda timer=timer: speed.summarise_ms(timer(warmup=warmup, repeats=repeats), statistic))
    ort = [timer for _, _, timer in parts.values() if timer is not None]
    return PartTimers(LatencyTable(entries, meta), timers, lambda: sum(timer.export_s for timer in ort))


def timed_rounds(timers: Dict[str, Callable[[], float]], rounds: int, statistic: str, threads: int,
                 progress: Optional[Progress] = None) -> Dict[str, float]:
    """Call every timer in turn, ``rounds`` times, with ``threads`` torch threads (restored after), and summarise
    each key's rounds with ``statistic``; ``progress(i, n, key)`` after each call (``n`` = timers x rounds)."""
    times: Dict[str, List[float]] = {key: [] for key in timers}
    total, done = len(timers) * int(rounds), 0
    from ..execution import torch_threads
    with torch_threads(threads):
        for _ in range(int(rounds)):
            for key, once in timers.items():
                times[key].append(once())
                done += 1
                if progress:
                    progress(done, total, key)
    return {key: speed.summarise_ms(t, statistic) for key, t in times.items()}


def finish_build(parts: PartTimers, ms: Dict[str, float], seconds: float) -> LatencyTable:
    """The table of ``parts`` (:func:`part_timers`) with each entry's ``ms`` from ``ms`` and the build's date,
    duration (``build_s``), entry count and (ONNX Runtime) export time in its meta."""
    meta = dict(parts.table.meta)
    entries = {key: dict(e, ms=float(ms[key])) for key, e in parts.table.entries.items()}
    meta.update(date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                build_s=round(seconds, 3), n_entries=len(entries))
    if meta.get("runtime") == "onnxruntime":
        meta["export_s"] = round(parts.export_s(), 3)
    return LatencyTable(entries, meta)


def build_lut(space, resolution: Optional[Sequence[int]] = None, threads: int = 1, repeats: int = 20,
              warmup: int = 5, progress: Optional[Progress] = None, seed: int = 0,
              statistic: str = "median", rounds: int = 1, device: str = "cpu",
              runtime: str = "eager") -> LatencyTable:
    """Time every part of a realtime ``space`` (instance or name) at ``resolution`` (default: its input).

    The parts are those of :func:`enumerate_configs`, each built by the space (``part_module``, as
    ``RealtimeSpace.build`` builds networks) with a random batch-1 input (``part_input``). Each module is
    built with weights from ``seed`` (the global RNG is left alone) and timed alone at batch 1 with ``threads``
    threads: the median of ``repeats`` runs (or the minimum with ``statistic='min'``).
    With ``rounds > 1`` all entries are timed in turn ``rounds`` times and the rounds are summarised the
    same way, so that a burst of load from other processes does not land on a few entries only.
    ``progress(i, n, key)`` is called after each timing (``n`` = entries x rounds). ``device``: where the parts
    run ('cuda' timings synchronise); the table records the device and its name. ``runtime``: 'eager' (PyTorch,
    ``threads`` torch threads) or 'onnxruntime' (each part exported to ONNX once, untimed, then run in an
    ONNX Runtime session with ``threads`` intra-op threads; CPU only; see :mod:`.runtime`). The table records the
    runtime and its version.
    """
    t0 = time.perf_counter()
    parts = part_timers(space, resolution, threads=threads, repeats=repeats, warmup=warmup, seed=seed,
                        statistic=statistic, rounds=rounds, device=device, runtime=runtime)
    return finish_build(parts, timed_rounds(parts.timers, rounds, statistic, threads, progress),
                        time.perf_counter() - t0)
