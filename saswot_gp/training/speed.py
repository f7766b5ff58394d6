"""Latency and throughput of a segmenter at batch 1 under ``torch.inference_mode``."""

from __future__ import annotations

import statistics
import time
from typing import Dict, Sequence

import torch
from torch import nn


def measure_latency(model: nn.Module, input_size: int | Sequence[int] = (64, 64), threads: int = 1,
                    warmup: int = 5, repeats: int = 20, device: str = "cpu") -> Dict[str, object]:
    """Median batch-1 forward latency: ``{'latency_ms', 'fps', 'mean_ms', 'min_ms', 'threads', 'input_size', ...}``."""
    h, w = (input_size, input_size) if isinstance(input_size, int) else (int(input_size[0]), int(input_size[1]))
    if repeats < 1 or warmup < 0 or threads < 1:
        raise ValueError(f"need repeats >= 1, warmup >= 0, threads >= 1; got {repeats}, {warmup}, {threads}")
    old_threads = torch.get_num_threads()
    was_training = model.training
    dev = torch.device(device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    torch.set_num_threads(int(threads))
    model.eval()
    try:
        x = torch.randn(1, 3, h, w, device=dev)
        times = []
        with torch.inference_mode():
            for _ in range(warmup):
                model(x)
            sync()
            for _ in range(repeats):
                t0 = time.perf_counter()
                model(x)
                sync()
                times.append((time.perf_counter() - t0) * 1000.0)
    finally:
        torch.set_num_threads(old_threads)
        model.train(was_training)
    med = statistics.median(times)
    return {"latency_ms": med, "fps": 1000.0 / med if med > 0 else float("inf"), "mean_ms": statistics.fmean(times),
            "min_ms": min(times), "threads": int(threads), "input_size": [h, w], "warmup": int(warmup),
            "repeats": int(repeats), "device": str(dev)}
