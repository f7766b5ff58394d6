"""Build a latency table: time each part of the realtime space alone, as the space builds it."""

from __future__ import annotations

import datetime
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

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
    if repeats < 1 or warmup < 0 or threads < 1 or rounds < 1:
        raise SaswotError(f"need repeats >= 1, warmup >= 0, threads >= 1, rounds >= 1; got {repeats}, {warmup}, "
                          f"{threads}, {rounds}")
    if statistic not in speed.STATISTICS:
        raise SaswotError(f"unknown latency statistic {statistic!r}; expected one of {list(speed.STATISTICS)}")
    check_runtime(runtime, device)
    space = _space_at(space, resolution)
    meta = _meta(space, runtime, threads, repeats, warmup, rounds, statistic, device)  # fails early without ORT
    configs = enumerate_configs(space)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    t0 = time.perf_counter()
    times: Dict[str, List[float]] = {key: [] for key in configs}
    total = len(configs) * int(rounds)
    try:
        parts, entries = _timers(space, configs, runtime, threads, seed)
        done = 0
        for _ in range(int(rounds)):
            for key, (module, x, timer) in parts.items():
                if timer is None:
                    ms = time_module(module, x, warmup=warmup, repeats=repeats, statistic=statistic, device=device)
                else:
                    ms = speed.summarise_ms(timer(warmup=warmup, repeats=repeats), statistic)
                times[key].append(ms)
                done += 1
                if progress:
                    progress(done, total, key)
    finally:
        torch.set_num_threads(old_threads)
    for key in entries:
        entries[key]["ms"] = speed.summarise_ms(times[key], statistic)
    meta.update(date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                build_s=round(time.perf_counter() - t0, 3), n_entries=len(entries))
    if runtime == "onnxruntime":
        meta["export_s"] = round(sum(timer.export_s for _, _, timer in parts.values()), 3)
    return LatencyTable(entries, meta)
