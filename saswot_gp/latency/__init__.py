"""Latency lookup table (LUT) of the ``realtime`` space: time every building block once, predict by summing.

A realtime network is a stem (down to 1/8), ``num_layers`` searchable layers and a two-branch head, so
its batch-1 latency is approximately the sum of the latencies of those parts. :func:`build_lut`
enumerates every distinct part that can occur in the space at one input resolution, times each one
alone (batch 1, ``torch.inference_mode`` or ONNX Runtime, median of ``repeats`` after ``warmup``) and stores the
result keyed so that :meth:`LatencyTable.predict` is a pure lookup:

* ``stem:{base_width}:{H}x{W}``: the four stem convolutions on the ``H x W`` input;
* ``layer:{op}:{cin}:{cout}:{stride}:{h}x{w}``: one searchable layer on an ``h x w`` input;
* ``head:{c_hi}:{c_lo}:L{level_hi}:L{level_lo}``: ``proj_hi``, ``proj_lo``, the bilinear upsampling of
  the coarse branch, the sum, ``fuse``, ``classifier`` and the final upsampling to the input size
  (head width and class count are the table's, from its space settings).

The parts, their configurations and their modules are the space's own (``RealtimeSpace.walk``,
``part_module``, ``part_input``: the methods ``RealtimeSpace.build`` assembles a network from), so the
table times exactly what the network runs.

Every entry also records its trainable parameters and multiply-accumulates, so the sums reproduce
``count_params`` / ``count_flops`` of the whole network (a check that the decomposition is complete).
Files are JSON (written atomically), validated on load; nothing in them is executed.

Parts (and, in a check, whole networks) run in one of two runtimes (:mod:`.runtime`): ``eager`` (PyTorch, the
default) or ``onnxruntime`` (each module exported to ONNX and run in an ONNX Runtime session); the table records
which, with its version, and a search refuses a table measured for another runtime or resolution than it asks for.

The plain sum under-predicts a whole network (its own forward overhead, caches that a part timed alone keeps
warm) and mis-ranks some operators against others. :func:`calibrate_lut` measures seeded whole networks (seeds
1000 and up, never a ``latency check`` sample) and fits a small non-negative linear model over the entries
(per-network intercept, one scale per group of parts: stem and head, each stride-1 operator, stride-2 layers);
the table stores it under ``"calibration"`` and :meth:`LatencyTable.predict` uses it (``predict_raw``: the sum).

Modules: :mod:`.keys` (entry keys, reachable parts), :mod:`.table` (:class:`LatencyTable`, JSON),
:mod:`.runtime` (eager or ONNX Runtime), :mod:`.build` (timing the parts, :func:`build_lut`), :mod:`.check`
(:func:`check_lut`), :mod:`.model` (the calibration model), :mod:`.calibrate` (:func:`calibrate_lut`).
"""

from ..spaces.realtime import RealtimeHead as HeadBlock  # the head alone (its former name here)
from ..training.speed import STATISTICS
from .build import Progress, build_lut, config_module, time_module
from .calibrate import MIN_SEED as CALIBRATION_MIN_SEED
from .calibrate import (DRIFT_WARN, RECOMMENDED_CALIBRATION_N, RECOMMENDED_TIMING, calibrate_lut,
                        calibration_drift, drifted, fit_calibration, min_calibration_n, sample_archs)
from .check import agreement, check_lut, kendall_tau, measure_archs
from .keys import (SPACE_KWARGS, arch_keys, enumerate_configs, head_key, layer_key, part_key, require_realtime,
                   space_kwargs, stem_key)
from .model import DEFAULT_FEATURES, FEATURE_SETS, GROUPS, Calibration, part_group
from .runtime import RUNTIMES, check_runtime, runtime_version
from .table import LUT_FORMAT, LUT_VERSION, LatencyTable

__all__ = ["CALIBRATION_MIN_SEED", "Calibration", "DEFAULT_FEATURES", "DRIFT_WARN", "FEATURE_SETS", "GROUPS",
           "HeadBlock", "LUT_FORMAT", "LUT_VERSION", "LatencyTable", "Progress", "RECOMMENDED_CALIBRATION_N",
           "RECOMMENDED_TIMING", "RUNTIMES", "SPACE_KWARGS", "STATISTICS",
           "agreement", "arch_keys", "build_lut", "calibrate_lut", "calibration_drift", "check_lut", "check_runtime",
           "config_module", "drifted", "enumerate_configs", "fit_calibration", "head_key", "kendall_tau", "layer_key", "measure_archs",
           "min_calibration_n", "part_group", "part_key", "require_realtime", "runtime_version", "sample_archs", "space_kwargs",
           "stem_key", "time_module"]
