"""The search-space interface every space implements, and the registry of spaces by name."""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from typing import Callable, Dict, Optional, Tuple

import torch
from torch import nn

from ..errors import SaswotError
from ..stats.collect import LAYER_TYPES, layer_macs


MIN_SIDE = 8  # smallest input side any command accepts


def parse_resolution(text: Optional[str]) -> Optional[Tuple[int, int]]:
    """``"HxW"`` (or ``"S"`` for a square) -> (H, W); None stays None; SaswotError if malformed. The one parser
    of every ``--resolution`` option; :meth:`SearchSpace.check_resolution` then checks it against the space."""
    if text is None:
        return None
    parts = str(text).lower().replace(" ", "").split("x")
    try:
        vals = [int(p) for p in parts]
    except ValueError:
        vals = []
    if len(vals) == 1:
        vals = vals * 2
    if len(vals) != 2 or min(vals) < MIN_SIDE:
        raise SaswotError(f"resolution {text!r}; expected HxW with sides >= {MIN_SIDE}, such as 64x64")
    return vals[0], vals[1]


class SearchSpace(ABC):
    """A family of segmentation networks addressed by a compact architecture string.

    Subclasses set ``name``, ``num_classes`` and ``input_size`` (H, W used for FLOPs) and implement
    ``decode``/``encode`` (string <-> structured arch), ``sample``, ``mutate`` and ``build``.
    ``decode`` must raise :class:`SaswotError` naming the bad string and the expected format.
    """

    name: str = "space"
    num_classes: int = 2
    input_size: Tuple[int, int] = (64, 64)
    resolution_multiple: int = 1  # input sides must be multiples of this (the network's total stride)
    # Bytes of all layer outputs of the space's largest network per input pixel and image (forward only), an upper
    # estimate; None: measured on a few sampled networks (meta device) the first time it is needed.
    activation_bytes_per_pixel: Optional[float] = None

    def check_resolution(self, hw: Optional[Tuple[int, int]]) -> Tuple[int, int]:
        """``hw`` (or the space's input size when None) if this space's networks accept it, else SaswotError."""
        h, w = hw or self.input_size
        m = self.resolution_multiple
        if min(h, w) < max(MIN_SIDE, m) or h % m or w % m:
            raise SaswotError(f"resolution {h}x{w} for space {self.name!r}; expected sides of at least "
                              f"{max(MIN_SIDE, m)}" + (f" divisible by {m}" if m > 1 else "") + ", such as "
                              f"{self.input_size[0]}x{self.input_size[1]}")
        return int(h), int(w)

    def activation_bytes(self, size: Tuple[int, int], n: int = 1, backward: bool = True) -> int:
        """Estimated bytes of the layer outputs of the space's largest network on ``n`` images of ``size``; half as
        much again with a backward pass (measured peaks of statistics collection: 1.2-1.4 times the outputs)."""
        per_pixel = self.activation_bytes_per_pixel
        if per_pixel is None:
            per_pixel = self.activation_bytes_per_pixel = _measured_bytes_per_pixel(self)
        return int(per_pixel * size[0] * size[1] * n * (1.5 if backward else 1))

    @abstractmethod
    def decode(self, arch: str):
        """Parse an architecture string into the space's structured form (raise SaswotError if bad)."""

    @abstractmethod
    def encode(self, spec) -> str:
        """Turn the structured form back into the canonical architecture string."""

    @abstractmethod
    def sample(self, rng: random.Random) -> str:
        """Draw one architecture string uniformly (or as the space defines) using ``rng``."""

    @abstractmethod
    def mutate(self, arch: str, rng: random.Random) -> str:
        """Return a different architecture string one small change away from ``arch``."""

    @abstractmethod
    def build(self, arch: str, num_classes: int | None = None) -> nn.Module:
        """Build the untrained ``nn.Module`` for ``arch`` (logits at input or reduced resolution)."""

    def crossover(self, a: str, b: str, rng: random.Random) -> str:
        """Combine two architectures; the default returns a mutation of one of them."""
        return self.mutate(rng.choice([a, b]), rng)

    def validate(self, arch: str) -> str:
        """Return the canonical form of ``arch`` or raise SaswotError."""
        return self.encode(self.decode(arch))

    def params(self, arch: str) -> int:
        """Number of trainable parameters of the built network."""
        return count_params(self.build(arch))

    def flops(self, arch: str, input_size: Tuple[int, int] | None = None) -> int:
        """Multiply-accumulate count of conv and linear layers for one image of ``input_size``."""
        h, w = input_size or self.input_size
        return count_flops(self.build(arch), torch.zeros(1, 3, h, w))


class MetaSizedSpace(SearchSpace):
    """A space whose params and FLOPs are counted on a network built on the meta device (no memory, no init)."""

    def params(self, arch: str) -> int:
        """Trainable parameters, counted on a network built on the meta device."""
        with torch.device("meta"):
            return count_params(self.build(arch))

    def flops(self, arch: str, input_size: Tuple[int, int] | None = None) -> int:
        """Multiply-accumulates for one image of ``input_size`` (shape-only pass on the meta device)."""
        h, w = input_size or self.input_size
        with torch.device("meta"):
            model = self.build(arch)
        return count_flops(model, torch.zeros(1, 3, h, w, device="meta"))


def _measured_bytes_per_pixel(space: SearchSpace, samples: int = 4) -> float:
    """The largest layer-output bytes per input pixel over ``samples`` seeded networks of ``space``, plus a
    quarter, measured with a shape-only forward on the meta device (4096 if the space cannot build there)."""
    total = [0]

    def hook(mod, inp, out):
        if isinstance(out, torch.Tensor):
            total[0] += out.numel() * out.element_size()
    h, w = space.input_size
    rng, most = random.Random(0), 0.0
    try:
        for _ in range(samples):
            with torch.device("meta"):
                model = space.build(space.sample(rng)).eval()
            total[0] = 0
            leaves = tuple({type(m) for m in model.modules() if not list(m.children())})
            forward_with_hooks(model, torch.zeros(1, 3, h, w, device="meta"), leaves, hook)
            most = max(most, total[0] / (h * w))
    except Exception:  # noqa: BLE001 - a plug-in space that cannot build on meta gets the generic estimate
        return 4096.0
    return 1.25 * most


def init_conv_bn(model: nn.Module) -> None:
    """Kaiming-normal (fan_out) conv weights, BN weight 1 and bias 0; meta (shape-only) layers are skipped."""
    for m in model.modules():
        if any(t.is_meta for t in m.parameters(recurse=False)):
            continue  # shape-only network (parameter/FLOP counting): nothing to initialise
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters of ``model``."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


def forward_with_hooks(model: nn.Module, x: torch.Tensor, layer_types, hook) -> int:
    """One gradient-free forward of ``model`` (in its current mode) with the forward ``hook`` on every module of
    ``layer_types``, removed afterwards; returns how many modules were hooked."""
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, layer_types)]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return len(handles)


def count_flops(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of every Conv2d, ConvTranspose2d and Linear layer for input ``x``."""
    total = [0]

    def hook(mod, inp, out):
        total[0] += layer_macs(mod, inp[0], out)

    was_training = model.training
    model.eval()
    try:
        forward_with_hooks(model, x, LAYER_TYPES, hook)
    finally:
        model.train(was_training)
    return int(total[0])


_SPACES: Dict[str, Callable[..., SearchSpace]] = {}


def register_space(name: str):
    """Class decorator registering a SearchSpace factory under ``name``."""
    def deco(factory):
        _SPACES[name] = factory
        return factory
    return deco


def get_space(name: str, **kwargs) -> SearchSpace:
    """Instantiate the registered space ``name`` (raise SaswotError listing known names)."""
    if name not in _SPACES:
        raise SaswotError(f"unknown search space {name!r}; expected one of {sorted(_SPACES)}")
    return _SPACES[name](**kwargs)


def space_names() -> list:
    """Names of all registered spaces."""
    return sorted(_SPACES)
