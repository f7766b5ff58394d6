"""Networks as ONNX files, checked in ONNX Runtime against PyTorch (``saswot-gp export-net``).

:func:`export_onnx` builds one architecture (untrained with weights from a seed, or with the weights of a
checkpoint written by ``saswot-gp train --checkpoint``), exports it at batch 1 with ``torch.onnx.export``
(the torch.export-based exporter, ``dynamo=True``, which needs ``onnxscript``), writes the file atomically, runs
it in an ONNX Runtime ``InferenceSession`` (``CPUExecutionProvider``) on a seeded batch and compares the output
with PyTorch's. The helpers :func:`onnx_model`, :func:`ort_session` and :func:`ort_feeds` are also how the
latency table times networks and their parts in ONNX Runtime (``--runtime onnxruntime``).

``onnx``, ``onnxscript`` and ``onnxruntime`` are imported only when used; a missing one is a one-line error.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import torch
from torch import nn

from .errors import SaswotError

OPSET = 18                      # the lowest opset the torch.export-based exporter implements without conversion
PROVIDER = "CPUExecutionProvider"
EXPORTER = "torch.onnx.export(dynamo=True)"
TOLERANCE = 1e-4                # max |ORT - PyTorch| allowed, relative to max(1, max |PyTorch output|)


def _require(module: str):
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError:
        raise SaswotError(f"{module} is not installed; `pip install onnx onnxscript onnxruntime` to export to "
                          f"ONNX and time in ONNX Runtime") from None


def ort_version() -> str:
    """``onnxruntime.__version__`` (one-line SaswotError when ONNX Runtime is not installed)."""
    return str(_require("onnxruntime").__version__)


def flat_inputs(inputs) -> List[torch.Tensor]:
    """The tensors of ``inputs`` (a tensor, or nested tuples/lists of them) in order: the ONNX graph's inputs."""
    if isinstance(inputs, torch.Tensor):
        return [inputs]
    return [t for item in inputs for t in flat_inputs(item)]


def onnx_model(module: nn.Module, args: tuple, opset: int = OPSET) -> bytes:
    """``module(*args)`` exported to ONNX (serialised ``ModelProto``) in eval mode at the shapes of ``args``."""
    _require("onnxscript")
    _require("onnx")
    was_training = module.training
    module.eval()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(module, tuple(args), dynamo=True, opset_version=int(opset), verbose=False)
    except Exception as exc:  # noqa: BLE001 - the exporter's report is many lines: keep its last summary line
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        raise SaswotError(f"ONNX export of {type(module).__name__} failed: {lines[0] if lines else exc!r}") from None
    finally:
        module.train(was_training)
    return program.model_proto.SerializeToString()


def ort_session(model: Union[bytes, str, Path], threads: int = 1):
    """An ONNX Runtime ``InferenceSession`` (CPUExecutionProvider) of ``model`` (bytes or a file) with
    ``intra_op_num_threads = threads`` and ``inter_op_num_threads = 1`` (sequential execution, default graph
    optimisations: ORT_ENABLE_ALL)."""
    ort = _require("onnxruntime")
    if int(threads) < 1:
        raise SaswotError(f"need threads >= 1, got {threads}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    source = str(model) if isinstance(model, Path) else model
    return ort.InferenceSession(source, options, providers=[PROVIDER])


def ort_feeds(session, inputs) -> Dict[str, object]:
    """``{graph input name: numpy array}`` of ``inputs`` (see :func:`flat_inputs`) for ``session.run``."""
    tensors = flat_inputs(inputs)
    names = [i.name for i in session.get_inputs()]
    if len(names) != len(tensors):
        raise SaswotError(f"the ONNX graph takes {len(names)} input(s), given {len(tensors)}")
    return {name: t.detach().cpu().numpy() for name, t in zip(names, tensors)}


def _space(space, resolution: Optional[Sequence[int]], space_kwargs: Optional[Dict]):
    from .spaces import get_space
    if not isinstance(space, str):
        return space, space.check_resolution(tuple(resolution) if resolution else None)
    kw = dict(space_kwargs or {})
    if resolution is not None:
        kw["input_size"] = (int(resolution[0]), int(resolution[1]))
    try:
        sp = get_space(space, **kw)
    except TypeError as exc:
        raise SaswotError(f"space {space!r} does not take these settings {sorted(kw)}: {exc}") from None
    return sp, sp.check_resolution(None)


def _state_dict(checkpoint: str) -> Dict[str, torch.Tensor]:
    from .training import load_checkpoint
    if not Path(checkpoint).is_file():
        raise SaswotError(f"checkpoint {str(checkpoint)!r} not found (write one with `saswot-gp train --checkpoint`)")
    state = load_checkpoint(str(checkpoint))
    model = state.get("model") if isinstance(state, dict) else None
    if not isinstance(model, dict) or not all(isinstance(v, torch.Tensor) for v in model.values()):
        raise SaswotError(f"checkpoint {str(checkpoint)!r} holds no 'model' state_dict (expected a file written by "
                          f"`saswot-gp train --checkpoint`)")
    return model


def _load_weights(model: nn.Module, weights: Dict[str, torch.Tensor], checkpoint: str, arch: str) -> None:
    mine = model.state_dict()
    missing = sorted(set(mine) - set(weights))
    extra = sorted(set(weights) - set(mine))
    shapes = [f"{k} {tuple(weights[k].shape)} vs {tuple(v.shape)}" for k, v in mine.items()
              if k in weights and weights[k].shape != v.shape]
    if missing or extra or shapes:
        what = "; ".join(f"{label}: {', '.join(items[:3])}{' ...' if len(items) > 3 else ''}"
                         for label, items in (("missing", missing), ("unexpected", extra), ("shape", shapes)) if items)
        raise SaswotError(f"checkpoint {str(checkpoint)!r} does not fit {arch} in this space ({what}); give the ARCH "
                          f"and space settings it was trained with")
    model.load_state_dict(weights)


def build_network(space, arch: str, checkpoint: Optional[str] = None, seed: int = 0) -> nn.Module:
    """``arch`` of ``space`` in eval mode: weights from ``seed`` (global RNG untouched), then the checkpoint's
    (its class count taken from the checkpoint's ``classifier.weight`` when present)."""
    weights = _state_dict(checkpoint) if checkpoint else None
    num_classes = None
    if weights is not None and "classifier.weight" in weights:
        num_classes = int(weights["classifier.weight"].shape[0])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = space.build(arch, num_classes=num_classes) if num_classes else space.build(arch)
    if weights is not None:
        _load_weights(model, weights, str(checkpoint), arch)
    return model.eval()


def _opset_of(blob: bytes) -> int:
    onnx = _require("onnx")
    proto = onnx.load_from_string(blob)
    onnx.checker.check_model(proto)
    return max(int(o.version) for o in proto.opset_import if o.domain in ("", "ai.onnx"))


def export_onnx(space, arch: str, path: Union[str, Path], resolution: Optional[Sequence[int]] = None,
                checkpoint: Optional[str] = None, seed: int = 0, threads: int = 1, opset: int = OPSET,
                tolerance: float = TOLERANCE, space_kwargs: Optional[Dict] = None) -> Dict[str, object]:
    """Export ``arch`` of ``space`` (a name, built with ``space_kwargs`` at ``resolution``, or an instance) to
    ONNX at ``path`` (batch 1), then run the file in ONNX Runtime (CPUExecutionProvider, ``threads`` intra-op
    threads) and in PyTorch on a batch drawn from ``seed``.

    Weights: from ``seed``, or those of ``checkpoint`` (a ``saswot-gp train --checkpoint`` file; loaded with
    ``weights_only=True``). Returns ``path``, ``max_abs_diff``, ``output_scale`` (max |PyTorch output|),
    ``limit`` (``tolerance x max(1, output_scale)``), ``opset``, shapes, versions and settings; raises a
    one-line SaswotError when the difference is above the limit (the file is kept for inspection).
    """
    import math
    from .io import atomic_write, check_output_path
    from .spaces.base import count_params
    check_output_path(path, what="ONNX file")  # before any export work
    from .batches import check_memory
    sp, (h, w) = _space(space, resolution, space_kwargs)
    check_memory(sp, (h, w), 1, backward=False, what="network input")
    arch = sp.validate(arch)
    model = build_network(sp, arch, checkpoint, seed)
    x = torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(int(seed)))
    with torch.inference_mode():
        ref = model(x).float()
    blob = onnx_model(model, (x,), opset)
    opset_used = _opset_of(blob)
    path = Path(path)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(blob))
    session = ort_session(path, threads)
    out = session.run(None, ort_feeds(session, x))[0]
    got = torch.from_numpy(out).float()
    if tuple(got.shape) != tuple(ref.shape):
        raise SaswotError(f"ONNX Runtime output of {str(path)!r} has shape {tuple(got.shape)}, PyTorch "
                          f"{tuple(ref.shape)}")
    diff = float((got - ref).abs().max())
    scale = float(ref.abs().max())
    limit = float(tolerance) * max(1.0, scale)
    if not (math.isfinite(diff) and diff <= limit):
        raise SaswotError(f"ONNX Runtime output of {str(path)!r} differs from PyTorch by {diff:.3g} (limit {limit:.3g}"
                          f" = {tolerance:g} x max(1, max |output| {scale:.3g})); the file is kept for inspection")
    return {"path": str(path), "space": sp.name, "arch": arch, "resolution": [h, w], "batch": 1,
            "input_shape": list(x.shape), "output_shape": list(ref.shape), "params": count_params(model),
            "checkpoint": str(checkpoint) if checkpoint else None, "seed": int(seed), "opset": opset_used,
            "exporter": EXPORTER, "torch": torch.__version__, "onnxruntime": ort_version(), "provider": PROVIDER,
            "threads": int(threads), "max_abs_diff": diff, "output_scale": scale, "tolerance": float(tolerance),
            "limit": limit, "bytes": len(blob)}
