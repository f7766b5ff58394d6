"""What runs the networks a latency table times: PyTorch eager, or ONNX Runtime.

* ``eager``: the module itself under ``torch.inference_mode`` (:func:`saswot_gp.training.speed.forward_times`),
  ``threads`` torch threads, on the table's device.
* ``onnxruntime``: the module exported to ONNX in memory (:func:`saswot_gp.export.onnx_model`, batch 1, the
  shapes it is timed at) and run in an ``InferenceSession`` (CPUExecutionProvider, ``intra_op_num_threads`` =
  the table's threads, ``inter_op_num_threads`` = 1, default graph optimisations). The export happens once per
  module, before its first timing, and is not timed; each timing loads a session (untimed), runs the timing loop
  :func:`saswot_gp.training.speed.call_times`, the one under ``forward_times`` (warm-up, repeats, the same
  statistic), on ``session.run`` with fixed feeds, and releases the session.
"""

from __future__ import annotations

import time
from typing import Callable, Dict, List, Optional, Sequence

import torch
from torch import nn

from ..errors import SaswotError
from ..training import speed

RUNTIMES = ("eager", "onnxruntime")
DEFAULT_RUNTIME = "eager"


def check_runtime(runtime: str, device: str = "cpu") -> str:
    """``runtime`` if it is one of :data:`RUNTIMES` and can run on ``device``, else a one-line SaswotError."""
    if runtime not in RUNTIMES:
        raise SaswotError(f"unknown runtime {runtime!r}; expected one of {list(RUNTIMES)}")
    if runtime == "onnxruntime" and torch.device(device).type != "cpu":
        raise SaswotError(f"runtime 'onnxruntime' times on the CPU (CPUExecutionProvider), not on {device!r}; "
                          f"use --device cpu")
    return runtime


def runtime_version(runtime: str) -> str:
    """The version of what runs the networks: ``torch.__version__`` (eager) or ``onnxruntime.__version__``."""
    if check_runtime(runtime) == "eager":
        return torch.__version__
    from ..export import ort_version
    return ort_version()


def runtime_meta(runtime: str, threads: int) -> Dict[str, object]:
    """What a table (or a check) records about its runtime: name, version, how networks run."""
    meta: Dict[str, object] = {"runtime": runtime, "runtime_version": runtime_version(runtime)}
    if runtime == "eager":
        meta["mode"] = "torch.inference_mode, eval"
    else:
        from ..export import EXPORTER, OPSET, PROVIDER
        meta.update(mode=f"onnxruntime InferenceSession, {PROVIDER}, ORT_ENABLE_ALL, sequential",
                    exporter=EXPORTER, onnx_opset=OPSET, intra_op_threads=int(threads), inter_op_threads=1)
    return meta


class OrtTimer:
    """Times ``module(x)`` in ONNX Runtime. The module is exported once, on the first call (``export_s`` records
    how long that took; only the ONNX bytes are kept), unless ``model`` gives the bytes of an earlier export of
    the same module; each call then loads a session, runs :func:`speed.call_times` on ``session.run`` with the same
    feeds and releases the session (hundreds of table entries would otherwise hold hundreds of sessions' memory)."""

    def __init__(self, module: nn.Module, x, threads: int, model: Optional[bytes] = None):
        self.module, self.x, self.threads = module, x, int(threads)
        self.model, self.export_s = model, 0.0

    def prepare(self) -> None:
        """Export now (done by the first call otherwise)."""
        if self.model is None:
            from ..export import onnx_model
            t0 = time.perf_counter()
            self.model = onnx_model(self.module, (self.x,))
            self.export_s = time.perf_counter() - t0

    def session(self):
        """A fresh ONNX Runtime session of the exported module and its feeds."""
        from ..export import ort_feeds, ort_session
        self.prepare()
        session = ort_session(self.model, self.threads)
        return session, ort_feeds(session, self.x)

    def __call__(self, warmup: int = 5, repeats: int = 20) -> List[float]:
        session, feeds = self.session()
        return speed.call_times(lambda: session.run(None, feeds), warmup=warmup, repeats=repeats)


def model_latency(runtime: str = "eager", threads: int = 1, warmup: int = 5, repeats: int = 20,
                  device: str = "cpu") -> Callable[[nn.Module, Sequence[int]], Dict[str, object]]:
    """A function ``(model, (h, w)) -> row`` measuring a whole network's batch-1 latency on ``runtime``, as
    :func:`saswot_gp.training.train_arch` takes it (``latency_fn``): ``latency_ms`` (median of ``repeats``),
    ``fps``, ``mean_ms``, ``min_ms`` and what ran it (``latency_runtime``, ``runtime_version``, ``threads``). Eager is
    :func:`saswot_gp.training.speed.measure_latency`; ONNX Runtime exports the model (untimed, on the CPU) and
    times it in a session with ``threads`` intra-op threads, on an input drawn from seed 0."""
    check_runtime(runtime, device)
    version = runtime_version(runtime)

    def measure(model: nn.Module, size: Sequence[int]) -> Dict[str, object]:
        h, w = int(size[0]), int(size[1])
        if runtime == "eager":
            row = speed.measure_latency(model, (h, w), threads=threads, warmup=warmup, repeats=repeats, device=device)
        else:
            x = torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(0))
            times = OrtTimer(model.cpu(), x, threads)(warmup=warmup, repeats=repeats)
            row = {**speed.latency_summary(times), "threads": int(threads)}
        return {**row, "latency_runtime": runtime, "runtime_version": version}
    return measure
