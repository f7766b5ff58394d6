"""Latency and throughput of a segmenter at batch 1 under ``torch.inference_mode``.

:func:`call_times` is the one timing loop of the package. :func:`forward_times` runs it on a PyTorch module:
:func:`measure_latency` (whole networks) and the latency lookup table (:mod:`saswot_gp.latency`, one network part at
a time) both time with it; the table's ONNX Runtime timings (``runtime='onnxruntime'``) run it on a session.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable, Dict, List, Optional, Sequence

import torch
from torch import nn

STATISTICS = ("median", "min")


def call_times(call: Callable[[], object], warmup: int = 5, repeats: int = 20,
               sync: Optional[Callable[[], None]] = None) -> List[float]:
    """Wall times (ms, ``time.perf_counter``) of ``repeats`` calls ``call()`` after ``warmup`` untimed ones.

    The one timing loop, whatever runs the network (:func:`forward_times` for PyTorch modules, an ONNX Runtime
    session in :mod:`saswot_gp.latency.runtime`); ``sync`` is called after the warm-up and inside each timed call.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1, warmup >= 0; got {repeats}, {warmup}")
    sync = sync or (lambda: None)
    times = []
    for _ in range(warmup):
        call()
    sync()
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        sync()
        times.append((time.perf_counter() - t0) * 1000.0)
    return times


def forward_times(model: nn.Module, x, warmup: int = 5, repeats: int = 20,
                  sync: Optional[Callable[[], None]] = None) -> List[float]:
    """Wall times (ms) of ``repeats`` calls ``model(x)`` after ``warmup`` untimed ones (:func:`call_times`).

    The model runs in eval mode under ``torch.inference_mode`` (its training mode is restored afterwards);
    ``sync`` (e.g. ``torch.cuda.synchronize``) is called after the warm-up and inside each timed call.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            return call_times(lambda: model(x), warmup=warmup, repeats=repeats, sync=sync)
    finally:
        model.train(was_training)


def summarise_ms(times: Sequence[float], statistic: str = "median") -> float:
    """The median (``statistic='median'``) or minimum (``'min'``) of ``times``."""
    if statistic not in STATISTICS:
        raise ValueError(f"unknown latency statistic {statistic!r}; expected one of {list(STATISTICS)}")
    return float(statistics.median(times) if statistic == "median" else min(times))


def latency_summary(times: Sequence[float]) -> Dict[str, float]:
    """``latency_ms`` (median), ``fps`` (from the median), ``mean_ms`` and ``min_ms`` of timed runs (ms)."""
    med = summarise_ms(times, "median")
    return {"latency_ms": med, "fps": 1000.0 / med if med > 0 else float("inf"), "mean_ms": statistics.fmean(times),
            "min_ms": summarise_ms(times, "min")}


def measure_latency(model: nn.Module, input_size: int | Sequence[int] = (64, 64), threads: int = 1,
                    warmup: int = 5, repeats: int = 20, device: str = "cpu") -> Dict[str, object]:
    """Median batch-1 forward latency: ``{'latency_ms', 'fps', 'mean_ms', 'min_ms', 'threads', 'input_size', ...}``."""
    h, w = (input_size, input_size) if isinstance(input_size, int) else (int(input_size[0]), int(input_size[1]))
    if repeats < 1 or warmup < 0 or threads < 1:
        raise ValueError(f"need repeats >= 1, warmup >= 0, threads >= 1; got {repeats}, {warmup}, {threads}")
    from ..execution import torch_threads
    dev = torch.device(device)
    with torch_threads(threads):
        x = torch.randn(1, 3, h, w, device=dev)
        times = forward_times(model, x, warmup=warmup, repeats=repeats,
                              sync=device_sync(device))
    return {**latency_summary(times), "threads": int(threads), "input_size": [h, w], "warmup": int(warmup),
            "repeats": int(repeats), "device": str(dev)}


def device_sync(device: str) -> Optional[Callable[[], None]]:
    """What makes a timing wait for the device: ``torch.cuda.synchronize`` on CUDA, nothing on the CPU."""
    return torch.cuda.synchronize if torch.device(device).type == "cuda" else None


def device_name(device: str) -> str:
    """A human name of ``device`` for tables: the GPU's name, or the CPU's (``platform.processor()``)."""
    import platform
    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name(torch.device(device))
    return platform.processor() or platform.machine() or "cpu"
