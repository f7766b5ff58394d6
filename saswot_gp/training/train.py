"""Training and evaluation of segmenters, with atomic, exactly resumable checkpoints.

Determinism: the batch at step ``t`` is a pure function of ``(seed, t)`` (a per-epoch permutation of
the training set), and the global torch RNG is reseeded from ``(seed, t)`` before each step (inside
``torch.random.fork_rng``, so the caller's RNG is left alone). A run resumed from a checkpoint
therefore continues with the same batches and augmentations and ends with the same weights as an
uninterrupted run. Data are read in the main process (no workers).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from ..errors import SaswotError
from ..io import check_same_settings
from .metrics import SegmentationMeter

DEFAULT_LR = {"sgd": 0.05, "adamw": 3e-3}
DEFAULT_WEIGHT_DECAY = {"sgd": 1e-4, "adamw": 1e-2}
_CONFIG_KEYS = ("steps", "batch_size", "optimizer", "lr", "momentum", "weight_decay", "poly_power",
                "warmup_steps", "seed", "ignore_index", "class_weights")


def _batch(dataset: Dataset, indices: Sequence[int], device: torch.device):
    images, labels = zip(*(dataset[int(i)] for i in indices))
    return torch.stack(images).to(device), torch.stack(labels).to(device)


def _step_indices(n: int, batch_size: int, seed: int, step: int) -> List[int]:
    per_epoch = max(1, n // batch_size)
    epoch, j = divmod(step, per_epoch)
    g = torch.Generator().manual_seed((seed * 1_000_003 + epoch) % (2 ** 63))
    perm = torch.randperm(n, generator=g)
    return perm[j * batch_size:(j + 1) * batch_size].tolist()


def _logits_at(logits: torch.Tensor, size) -> torch.Tensor:
    if logits.shape[-2:] != tuple(size):
        logits = F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)
    return logits


def save_checkpoint(state: Dict[str, Any], path: str) -> None:
    """Write ``state`` with ``torch.save`` atomically (:func:`saswot_gp.io.atomic_write`)."""
    from ..io import atomic_write

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
    atomic_write(path, write)


def load_checkpoint(path: str) -> Dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (``weights_only=True``, mapped to CPU); any other file
    is a one-line SaswotError naming it and what was expected (never advice to load it unsafely)."""
    import warnings
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on pickle protocols
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - report any unreadable file as one user-facing line
        unsafe = "weights only load failed" in str(exc).lower()
        why = ("it does not load as tensors and plain values alone (a file that needs more is never loaded: that "
               "could run code from it)") if unsafe else f"it is not a readable PyTorch file ({type(exc).__name__})"
        raise SaswotError(f"cannot read checkpoint {path!r}: {why}; expected a checkpoint written by "
                          f"`saswot-gp train --checkpoint`") from None


@torch.no_grad()
def evaluate(model: nn.Module, dataset: Dataset, num_classes: Optional[int] = None, batch_size: int = 16,
             ignore_index: int = 255, max_batches: Optional[int] = None, device: str = "cpu") -> Dict[str, object]:
    """Evaluate ``model`` on ``dataset`` in order: ``{'mIoU', 'pixel_acc', 'per_class_iou', 'num_pixels'}``."""
    num_classes = num_classes or getattr(dataset, "num_classes", None)
    dev = torch.device(device)
    was_training = model.training
    model.eval()
    meter = None
    try:
        n = len(dataset)
        for b, start in enumerate(range(0, n, batch_size)):
            if max_batches is not None and b >= max_batches:
                break
            x, y = _batch(dataset, range(start, min(n, start + batch_size)), dev)
            logits = _logits_at(model(x), y.shape[-2:])
            if meter is None:
                meter = SegmentationMeter(num_classes or logits.shape[1], ignore_index)
            meter.update(logits.argmax(1).cpu(), y.cpu())
    finally:
        model.train(was_training)
    if meter is None:
        raise SaswotError("cannot evaluate on an empty data set")
    return meter.scores()


def _make_optimizer(name: str, model: nn.Module, lr: float, momentum: float, weight_decay: float):
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    raise SaswotError(f"unknown optimizer {name!r}; expected 'sgd' or 'adamw'")


def _train_config(n: int, steps: Optional[int], epochs: Optional[float], batch_size: int, optimizer: str,
                  lr: Optional[float], momentum: float, weight_decay: Optional[float], poly_power: float,
                  warmup_steps: int, seed: int, ignore_index: int,
                  class_weights: Optional[Sequence[float]]) -> Dict[str, Any]:
    """The run's settings (:data:`_CONFIG_KEYS`), checked and with defaults filled in: what a checkpoint
    records and a resumed run must match. ``n`` is the size of the training set."""
    if n == 0:
        raise SaswotError("training set is empty")
    batch_size = int(min(batch_size, n))
    if (steps is None) == (epochs is None):
        raise SaswotError("give exactly one of steps or epochs")
    total = int(steps) if steps is not None else int(math.ceil(float(epochs) * max(1, n // batch_size)))
    if total < 1:
        raise SaswotError(f"need at least one training step, got {total}")
    optimizer = optimizer.lower()
    if optimizer not in DEFAULT_LR:
        raise SaswotError(f"unknown optimizer {optimizer!r}; expected 'sgd' or 'adamw'")
    lr = float(DEFAULT_LR[optimizer] if lr is None else lr)
    weight_decay = float(DEFAULT_WEIGHT_DECAY[optimizer] if weight_decay is None else weight_decay)
    return {"steps": total, "batch_size": batch_size, "optimizer": optimizer, "lr": lr, "momentum": float(momentum),
            "weight_decay": weight_decay, "poly_power": float(poly_power), "warmup_steps": int(warmup_steps),
            "seed": int(seed), "ignore_index": int(ignore_index),
            "class_weights": None if class_weights is None else [float(v) for v in class_weights]}


def _lr_scale(step: int, total: int, poly_power: float, warmup_steps: int) -> float:
    """The factor on the base learning rate at ``step``: poly decay, times a linear warm-up over ``warmup_steps``."""
    scale = (1.0 - step / total) ** poly_power
    if warmup_steps and step < warmup_steps:
        scale *= (step + 1) / warmup_steps
    return scale


@dataclass
class _Run:
    """One training run as the step loop sees it: model, optimiser and loss, schedule settings, the losses
    so far, and where (and since when) its checkpoint and clock stand."""

    model: nn.Module
    opt: torch.optim.Optimizer
    criterion: nn.Module
    config: Dict[str, Any]
    dev: torch.device
    poly_power: float
    warmup_steps: int
    grad_clip: Optional[float]
    checkpoint: Optional[str]
    losses: List[float]
    elapsed_before: float
    t0: float = 0.0

    def elapsed(self) -> float:
        """Seconds of training so far, earlier (resumed-from) sessions included."""
        return self.elapsed_before + time.perf_counter() - self.t0

    def save(self, step: int) -> None:
        """Write the checkpoint (when the run has one) after ``step`` steps."""
        if self.checkpoint:
            save_checkpoint({"model": self.model.state_dict(), "optimizer": self.opt.state_dict(), "step": step,
                             "losses": list(self.losses), "config": self.config,
                             "train_time_s": self.elapsed()}, self.checkpoint)

    def step(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> Optional[float]:
        """One optimiser step on batch ``(x, y)`` at learning rate ``lr``: its loss, or None (no step) if not finite."""
        for group in self.opt.param_groups:
            group["lr"] = lr
        logits = _logits_at(self.model(x), y.shape[-2:])
        loss = self.criterion(logits, y)
        if not torch.isfinite(loss):
            return None
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_clip:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.opt.step()
        return float(loss.detach())


def _resume(run: _Run, checkpoint: Optional[str]) -> int:
    """Load model, optimiser, losses and clock of ``checkpoint`` into ``run`` (same settings required); the step reached."""
    if not (checkpoint and os.path.exists(checkpoint)):
        raise SaswotError(f"cannot resume: checkpoint {checkpoint!r} not found; drop --resume to start from scratch")
    state = load_checkpoint(checkpoint)
    saved = state.get("config", {})
    check_same_settings(saved, run.config, _CONFIG_KEYS, f"from checkpoint {checkpoint!r}")
    try:
        run.model.load_state_dict(state["model"])
    except (RuntimeError, KeyError, TypeError, AttributeError) as exc:  # another network's checkpoint
        why = " ".join(str(exc).split())
        raise SaswotError(f"cannot resume from checkpoint {checkpoint!r}: it holds another network than this one "
                          f"({why[:200]}{'...' if len(why) > 200 else ''}); give the architecture it was trained "
                          f"with, or drop --resume") from None
    run.opt.load_state_dict(state["optimizer"])
    run.losses = [float(v) for v in state["losses"]]
    run.elapsed_before = float(state.get("train_time_s", 0.0))
    return int(state["step"])


def _run_steps(run: _Run, train_set: Dataset, start: int, every: int,
               progress: Optional[Callable[[Dict[str, Any]], Any]], progress_every: int) -> Tuple[int, bool, bool]:
    """Train from step ``start`` to the end (or until the loss diverges or ``progress`` says stop), saving
    every ``every`` steps; returns ``(steps done, stopped early, diverged)``. See the module docstring
    for the per-step batches and RNG seeds."""
    total, batch_size, lr, seed = (run.config[k] for k in ("steps", "batch_size", "lr", "seed"))
    n = len(train_set)
    step, stopped_early, diverged = start, False, False
    dev = run.dev
    cuda_ids = [dev.index if dev.index is not None else torch.cuda.current_device()] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda_ids):
        while step < total:
            torch.manual_seed((seed * 1_000_003 + step) % (2 ** 63))
            x, y = _batch(train_set, _step_indices(n, batch_size, seed, step), dev)
            scale = _lr_scale(step, total, run.poly_power, run.warmup_steps)
            loss = run.step(x, y, lr * scale)
            if loss is None:
                diverged = True
                break
            run.losses.append(loss)
            step += 1
            if step % every == 0 or step == total:
                run.save(step)
            if progress is not None and (step % progress_every == 0 or step == total):
                info = {"step": step, "steps": total, "loss": run.losses[-1], "lr": lr * scale,
                        "elapsed_s": run.elapsed()}
                if progress(info) is False:
                    if step % every and step != total:
                        run.save(step)
                    stopped_early = step < total
                    break
    return step, stopped_early, diverged


def train_segmenter(model: nn.Module, train_set: Dataset, val_set: Optional[Dataset] = None, *,
                    steps: Optional[int] = None, epochs: Optional[float] = None, batch_size: int = 16,
                    optimizer: str = "adamw", lr: Optional[float] = None, momentum: float = 0.9,
                    weight_decay: Optional[float] = None, poly_power: float = 0.9, warmup_steps: int = 0,
                    grad_clip: Optional[float] = None, seed: int = 0, num_classes: Optional[int] = None,
                    ignore_index: int = 255, class_weights: Optional[Sequence[float]] = None, checkpoint: Optional[str] = None, checkpoint_every: Optional[int] = None,
                    resume: bool = False, progress: Optional[Callable[[Dict[str, Any]], Any]] = None,
                    progress_every: int = 10, eval_batch_size: Optional[int] = None,
                    max_eval_batches: Optional[int] = None, device: str = "cpu") -> Dict[str, Any]:
    """Train with cross-entropy (ignore 255) and a poly schedule, then evaluate on ``val_set``; returns a result dict.

    Give ``steps`` or ``epochs``; ``class_weights`` (one per class) weight the loss. With ``checkpoint`` the state is saved atomically every ``checkpoint_every``
    steps and at the end; ``resume=True`` continues from it (same config required). ``progress(info)`` is
    called every ``progress_every`` steps with ``{'step', 'steps', 'loss', 'lr', 'elapsed_s'}``; returning
    ``False`` stops the run early (checkpoint written). The result holds ``losses`` (one per step),
    ``final_loss`` (mean of the last 10% of steps), ``train_time_s`` and, with ``val_set``, ``mIoU``,
    ``pixel_acc`` and ``per_class_iou``.
    """
    config = _train_config(len(train_set), steps, epochs, batch_size, optimizer, lr, momentum, weight_decay,
                           poly_power, warmup_steps, seed, ignore_index, class_weights)
    n_cls = num_classes or getattr(train_set, "num_classes", None)
    if class_weights is not None and n_cls is not None and len(class_weights) != n_cls:
        raise SaswotError(f"class_weights has {len(class_weights)} entries but there are {n_cls} classes")
    dev = torch.device(device)
    model.to(dev)
    opt = _make_optimizer(config["optimizer"], model, config["lr"], momentum, config["weight_decay"])
    weight = None if class_weights is None else torch.tensor(config["class_weights"], dtype=torch.float32, device=dev)
    criterion = nn.CrossEntropyLoss(weight=weight, ignore_index=ignore_index)
    run = _Run(model, opt, criterion, config, dev, poly_power, warmup_steps, grad_clip, checkpoint, [], 0.0)
    resumed_from = _resume(run, checkpoint) if resume else None
    every = int(checkpoint_every) if checkpoint_every else max(1, config["steps"] // 10)
    run.t0 = time.perf_counter()
    model.train()
    step, stopped_early, diverged = _run_steps(run, train_set, resumed_from or 0, every, progress, progress_every)
    result = _train_result(run, step, resumed_from, stopped_early, diverged)
    if val_set is not None:
        num_classes = num_classes or getattr(val_set, "num_classes", None) or getattr(train_set, "num_classes", None)
        result.update(evaluate(model, val_set, num_classes, eval_batch_size or config["batch_size"], ignore_index,
                               max_eval_batches, device))
    return result


def _train_result(run: _Run, step: int, resumed_from: Optional[int], stopped_early: bool,
                  diverged: bool) -> Dict[str, Any]:
    """The result dict of a finished run before evaluation: its settings, losses, clock and how it ended."""
    losses = run.losses
    tail = losses[-max(1, len(losses) // 10):] if losses else []
    result: Dict[str, Any] = dict(run.config)
    result.update({"steps_done": step, "losses": losses, "first_loss": losses[0] if losses else float("nan"),
                   "final_loss": sum(tail) / len(tail) if tail else float("nan"), "train_time_s": run.elapsed(),
                   "resumed_from": resumed_from, "stopped_early": stopped_early, "diverged": diverged})
    return result


def train_arch(arch: str, space: Any = "realtime", data: str = "digits", *, space_kwargs: Optional[Dict] = None,
               data_kwargs: Optional[Dict] = None, data_root: Optional[str] = None, steps: Optional[int] = 1000,
               epochs: Optional[float] = None, batch_size: int = 16, optimizer: str = "adamw",
               lr: Optional[float] = None, seed: int = 0, threads: Optional[int] = 1, eval_split: str = "val",
               augment: Optional[bool] = None, latency: bool = True, latency_threads: int = 1,
               latency_repeats: int = 20, checkpoint: Optional[str] = None, resume: bool = False,
               progress: Optional[Callable[[Dict[str, Any]], Any]] = None, device: str = "cpu",
               latency_fn: Optional[Callable[[Any, Tuple[int, int]], Dict[str, Any]]] = None,
               **train_kwargs: Any) -> Dict[str, Any]:
    """Build ``arch`` in ``space``, train it on ``data``, evaluate on ``eval_split``; return one result row.

    The row holds ``arch`` (canonical), ``space``, ``data``, ``mIoU``, ``pixel_acc``, ``params``, ``flops``
    (MACs at the space's input size), ``latency_ms`` and ``fps`` (batch 1, ``latency_threads`` threads; NaN
    when ``latency`` is False; ``latency_fn(model, (h, w))`` measures instead of eager PyTorch when given, such
    as :func:`saswot_gp.latency.runtime.model_latency` for ONNX Runtime), ``train_time_s``, ``final_loss``, ``seed``, ``steps``, ``batch_size``,
    ``optimizer``, ``lr``, ``input_size``. The digits set is generated at the space's input size; real
    sets are augmented by default (random scale/crop to the input size, flip), digits are not. On the
    default digits set at 64x64, about 1000 steps (~1 min on one CPU thread) are needed before the
    11-class mIoU rises above the background-only level (~0.08).
    """
    from ..batches import check_memory
    from ..io import check_output_path
    from ..spaces import get_space
    from ..spaces.base import SearchSpace, count_flops, count_params
    from .speed import measure_latency

    if checkpoint:
        check_output_path(checkpoint, what="checkpoint")  # before any training
    sp = space if isinstance(space, SearchSpace) else get_space(space, **(space_kwargs or {}))
    arch = sp.validate(arch)
    h, w = sp.input_size
    check_memory(sp, (h, w), batch_size, what="training batch")
    train_set, val_set = _arch_datasets(data, eval_split, (h, w), seed, data_kwargs, data_root, augment)
    num_classes = int(getattr(train_set, "num_classes", sp.num_classes))
    from ..execution import torch_threads
    with torch_threads(threads):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = sp.build(arch, num_classes=num_classes)
        params = count_params(model)
        flops = count_flops(model, torch.zeros(1, 3, h, w))
        res = train_segmenter(model, train_set, val_set, steps=None if epochs is not None else steps, epochs=epochs,
                              batch_size=batch_size, optimizer=optimizer, lr=lr, seed=seed, num_classes=num_classes,
                              checkpoint=checkpoint, resume=resume, progress=progress, device=device, **train_kwargs)
    if not latency:
        speed = {"latency_ms": float("nan"), "fps": float("nan")}
    elif latency_fn is not None:
        speed = latency_fn(model, (h, w))
    else:
        speed = measure_latency(model, (h, w), threads=latency_threads, repeats=latency_repeats, device=device)
    return {"arch": arch, "space": sp.name, "data": data, "mIoU": res.get("mIoU", float("nan")),
            "pixel_acc": res.get("pixel_acc", float("nan")), "params": params, "flops": flops,
            "latency_ms": speed["latency_ms"], "fps": speed["fps"], "train_time_s": res["train_time_s"],
            "final_loss": res["final_loss"], "seed": seed, "steps": res["steps"], "batch_size": res["batch_size"],
            "optimizer": res["optimizer"], "lr": res["lr"], "input_size": f"{h}x{w}", "diverged": res["diverged"]}


def _arch_datasets(data: str, eval_split: str, size: Tuple[int, int], seed: int, data_kwargs: Optional[Dict],
                   data_root: Optional[str], augment: Optional[bool]) -> Tuple[Dataset, Dataset]:
    """The training and evaluation sets of :func:`train_arch`: digits generated at ``size`` with ``seed``;
    the training set augmented (random scale/crop to ``size``, flip) when ``augment`` (default: real sets only)."""
    from ..datasets import get_dataset, train_transform

    kwargs = dict(data_kwargs or {})
    if data == "digits":
        kwargs.setdefault("image_size", size)
        kwargs.setdefault("seed", seed)
    if augment is None:
        augment = data != "digits"
    train_kwargs_ds = dict(kwargs)
    if augment:
        train_kwargs_ds["transform"] = train_transform(size)
    train_set = get_dataset(data, "train", root=data_root, **train_kwargs_ds)
    val_set = get_dataset(data, eval_split, root=data_root, **kwargs)
    return train_set, val_set
