"""FasterSeg-style real-time segmentation space (registered as ``realtime``).

A network is a stem down to 1/8 resolution (four 3x3 conv-BN-ReLU: stride 2, 2, 1, 2), then
``num_layers`` searchable layers (default 10) on a single path that may descend 1/8 -> 1/16 -> 1/32,
then a light head that fuses two branches at different resolutions (the last 1/8 feature and the
final, coarser feature: 1x1 projections, bilinear upsampling, sum, 3x3 conv, 1x1 classifier) and
upsamples the logits to the input size. A layer at level ``l`` (0: 1/8, 1: 1/16, 2: 1/32) has
``round(base_width * 2**(l + 1) * multiplier)`` channels. With ``residual=True`` (default) each layer
computes ``op(x) + shortcut(x)`` (identity, or [2x avg-pool +] 1x1 conv-BN when the shape changes),
and ``sk`` is the shortcut alone; ``residual=False`` gives plain FasterSeg-like layers. Any input whose
sides are divisible by 32 works. Defaults (``base_width=16``, 64x64 input, 11 classes) suit the
embedded digits set on CPU.

A network is assembled from its parts, which :meth:`RealtimeSpace.walk` lists (a :class:`StemPart`, one
:class:`LayerPart` per layer, a :class:`HeadPart`: channels, levels, operator) and
:meth:`RealtimeSpace.part_module` builds (``stem``, ``layer_module``, ``head``). The latency lookup table
(:mod:`saswot_gp.latency`) times exactly these modules, so a change made here reaches it. The modules
themselves (operators, head, network) are defined in :mod:`saswot_gp.spaces.realtime_ops` and importable
from here.

Architecture string grammar (canonical form written by :meth:`RealtimeSpace.encode`)::

    arch  := layer ("-" layer)*          exactly num_layers layers (default 10)
    layer := op ".w" width "." move
    op    := "c3"   3x3 conv-BN-ReLU
           | "c33"  two stacked 3x3 convs
           | "zc"   zoomed conv: 2x avg-pool, 3x3 conv, bilinear up
           | "dc"   3x3 conv with dilation 2
           | "dw"   depthwise-separable conv (3x3 depthwise + 1x1 pointwise)
           | "ir"   inverted residual (1x1 expand x4, 3x3 depthwise, 1x1 project)
           | "sk"   skip (identity; 1x1 conv projection if width or resolution changes)
    width := "0.5" | "0.75" | "1.0" | "1.25"      (channel multiplier; "1" or "1.00" are accepted)
    move  := "s"    stay at the current resolution
           | "d"    descend to the next resolution (the layer has stride 2)

with 1 or 2 layers marked ``d`` (so the final branch is at 1/16 or 1/32). Example::

    c3.w1.0.s-ir.w0.5.d-zc.w1.25.s-sk.w1.0.s-dc.w0.75.d-dw.w1.0.s-c33.w1.0.s-c3.w0.5.s-ir.w1.0.s-sk.w1.0.s

Space size with 10 layers: (7 ops * 4 widths)^10 * (C(10,1) + C(10,2)) = 28^10 * 55 ~ 1.6e16.
"""

from __future__ import annotations

import math
import random
import re
from typing import List, NamedTuple, Sequence, Tuple

import torch
from torch import nn

from ..errors import SaswotError
from .base import SearchSpace, register_space
from .realtime_ops import (IR_EXPANSION, OPS, ConvBNReLU, InvertedResidual, RealtimeHead, RealtimeNet,  # noqa: F401
                           ResidualLayer, ZoomedConv, make_op, shortcut)

__all__ = ["IR_EXPANSION", "MAX_DOWNS", "MIN_DOWNS", "OPS", "WIDTHS", "ConvBNReLU", "HeadPart", "InvertedResidual",
           "LayerPart", "RTLayer", "RealtimeHead", "RealtimeNet", "RealtimeSpace", "ResidualLayer", "StemPart",
           "WalkState", "ZoomedConv", "make_op", "shortcut"]

WIDTHS: Tuple[float, ...] = (0.5, 0.75, 1.0, 1.25)
_WIDTH_TEXT = {0.5: "0.5", 0.75: "0.75", 1.0: "1.0", 1.25: "1.25"}
MIN_DOWNS, MAX_DOWNS = 1, 2
_LAYER_RE = re.compile(r"^([a-z0-9]+)\.w([0-9]+(?:\.[0-9]+)?)\.([a-z]+)$")


class RTLayer(NamedTuple):
    """One searchable layer: operator name, width multiplier, and whether it descends a resolution."""

    op: str
    width: float
    down: bool


def _grammar(num_layers: int) -> str:
    return (f"expected {num_layers} '-'-separated layers 'op.wWIDTH.move' with op in {'|'.join(OPS)}, "
            f"WIDTH in {'|'.join(_WIDTH_TEXT.values())}, move s|d, and {MIN_DOWNS}-{MAX_DOWNS} 'd' layers "
            f"(e.g. 'c3.w1.0.s-ir.w0.5.d-...')")


class StemPart(NamedTuple):
    """The stem: ``cin`` (3) channels -> ``mid`` (the base width) at 1/2 -> ``cout`` at 1/8 (level 0)."""

    cin: int
    mid: int
    cout: int
    kind = "stem"


class LayerPart(NamedTuple):
    """One searchable layer: operator ``op`` from ``cin`` channels at ``level_in`` to ``cout`` at ``level_out``."""

    op: str
    cin: int
    cout: int
    level_in: int
    level_out: int
    kind = "layer"

    @property
    def stride(self) -> int:
        """2 when the layer descends a resolution, else 1."""
        return 2 if self.level_out > self.level_in else 1


class HeadPart(NamedTuple):
    """The head: fuses a ``c_hi``-channel feature at ``level_hi`` with a ``c_lo``-channel one at ``level_lo``."""

    c_hi: int
    c_lo: int
    level_hi: int
    level_lo: int
    kind = "head"


class WalkState(NamedTuple):
    """Where a walk over an arch stands: current level and channels, channels of the last 1/8 (level 0) feature."""

    level: int
    channels: int
    hi_channels: int


@register_space("realtime")
class RealtimeSpace(SearchSpace):
    """FasterSeg-style multi-resolution real-time space; see the module docstring for the arch grammar."""

    name = "realtime"
    resolution_multiple = 32

    def __init__(self, base_width: int = 16, input_size: int | Tuple[int, int] = 64, num_classes: int = 11,
                 num_layers: int = 10, head_width: int | None = None, residual: bool = True):
        if isinstance(input_size, int):
            input_size = (input_size, input_size)
        input_size = (int(input_size[0]), int(input_size[1]))
        if min(input_size) <= 0 or input_size[0] % 32 or input_size[1] % 32:
            raise SaswotError(f"realtime space: input size {input_size} must be positive and divisible by 32")
        if int(base_width) < 2 or int(num_classes) < 1 or int(num_layers) < MAX_DOWNS:
            raise SaswotError(f"realtime space: need base_width >= 2, num_classes >= 1, num_layers >= {MAX_DOWNS}; "
                              f"got {base_width}, {num_classes}, {num_layers}")
        self.base_width = int(base_width)
        self.input_size = input_size
        self.num_classes = int(num_classes)
        self.num_layers = int(num_layers)
        self.head_width = int(head_width) if head_width else 2 * self.base_width
        self.residual = bool(residual)
        # largest of 40 sampled default networks: 313 bytes per pixel (forward); a quarter more, scaled with width
        self.activation_bytes_per_pixel = 25.0 * self.base_width * max(1.0, self.num_layers / 10)

    # --- encoding -------------------------------------------------------------------------------
    def decode(self, arch: str) -> Tuple[RTLayer, ...]:
        """Parse ``arch`` into a tuple of :class:`RTLayer` (raise SaswotError naming it and the grammar)."""
        shown = repr(arch) if len(str(arch)) <= 160 else repr(str(arch)[:160] + "...")
        if not isinstance(arch, str):
            raise SaswotError(f"bad realtime arch {shown}: not a string; {_grammar(self.num_layers)}")
        toks = arch.strip().split("-")
        if len(toks) != self.num_layers:
            raise SaswotError(f"bad realtime arch {shown}: {len(toks)} layers; {_grammar(self.num_layers)}")
        layers = []
        for i, tok in enumerate(toks):
            m = _LAYER_RE.match(tok.strip())
            why = None
            if m is None:
                why = f"layer {i} {tok!r} is not op.wWIDTH.move"
            elif m.group(1) not in OPS:
                why = f"layer {i} has unknown op {m.group(1)!r}"
            elif float(m.group(2)) not in _WIDTH_TEXT:
                why = f"layer {i} has unknown width {m.group(2)!r}"
            elif m.group(3) not in ("s", "d"):
                why = f"layer {i} has unknown move {m.group(3)!r}"
            if why:
                raise SaswotError(f"bad realtime arch {shown}: {why}; {_grammar(self.num_layers)}")
            layers.append(RTLayer(m.group(1), float(m.group(2)), m.group(3) == "d"))
        downs = sum(layer.down for layer in layers)
        if not MIN_DOWNS <= downs <= MAX_DOWNS:
            raise SaswotError(f"bad realtime arch {shown}: {downs} 'd' layers; {_grammar(self.num_layers)}")
        return tuple(layers)

    def encode(self, spec: Sequence) -> str:
        """Canonical string of a sequence of ``RTLayer`` or ``(op, width, down)`` tuples (validated)."""
        try:
            text = "-".join(f"{op}.w{_WIDTH_TEXT[float(width)]}.{'d' if down else 's'}" for op, width, down in spec)
        except (KeyError, TypeError, ValueError) as exc:
            raise SaswotError(f"bad realtime spec {spec!r}: {exc}; {_grammar(self.num_layers)}") from None
        self.decode(text)
        return text

    def size(self) -> int:
        """Exact number of distinct architecture strings in this space."""
        per_layer = len(OPS) * len(WIDTHS)
        moves = sum(math.comb(self.num_layers, k) for k in range(MIN_DOWNS, MAX_DOWNS + 1))
        return per_layer ** self.num_layers * moves

    # --- variation ------------------------------------------------------------------------------
    def sample(self, rng: random.Random) -> str:
        """Uniform draw over the space: ops and widths i.i.d., the set of 'd' layers uniform over valid sets."""
        downs = self._draw_downs(rng)
        return self.encode([RTLayer(rng.choice(OPS), rng.choice(WIDTHS), i in downs) for i in range(self.num_layers)])

    def _draw_downs(self, rng: random.Random) -> set:
        """Indices of the 'd' layers, uniform over every valid set (1 or 2 of ``num_layers``)."""
        n = self.num_layers
        counts = [math.comb(n, k) for k in range(MIN_DOWNS, MAX_DOWNS + 1)]
        k = rng.choices(range(MIN_DOWNS, MAX_DOWNS + 1), weights=counts)[0]
        return set(rng.sample(range(n), k))

    def sample_diverse(self, rng: random.Random, concentration: float = 0.5) -> str:
        """Draw with per-architecture operator and width preferences (Dirichlet(``concentration``) weights).

        Every architecture of the space can be drawn, but small ``concentration`` favours architectures that
        repeat a few operators and widths (all-skip and narrow, or all stacked-conv and wide), so a sample
        spans the space's range of capacity instead of clustering around its average, as i.i.d. draws do.
        """
        if not concentration > 0:
            raise SaswotError(f"concentration {concentration!r}; expected a positive number")
        downs = self._draw_downs(rng)
        op_w = [rng.gammavariate(concentration, 1.0) + 1e-12 for _ in OPS]
        width_w = [rng.gammavariate(concentration, 1.0) + 1e-12 for _ in WIDTHS]
        return self.encode([RTLayer(rng.choices(OPS, weights=op_w)[0], rng.choices(WIDTHS, weights=width_w)[0],
                                    i in downs) for i in range(self.num_layers)])

    def mutate(self, arch: str, rng: random.Random) -> str:
        """Change exactly one field (op, width or move) of one layer, keeping 1-2 descents."""
        layers = list(self.decode(arch))
        ndown = sum(layer.down for layer in layers)
        while True:
            i = rng.randrange(len(layers))
            field = rng.choice(("op", "width", "move"))
            old = layers[i]
            if field == "op":
                new = old._replace(op=rng.choice([o for o in OPS if o != old.op]))
            elif field == "width":
                new = old._replace(width=rng.choice([w for w in WIDTHS if w != old.width]))
            else:
                if not MIN_DOWNS <= ndown + (-1 if old.down else 1) <= MAX_DOWNS:
                    continue
                new = old._replace(down=not old.down)
            layers[i] = new
            return self.encode(layers)

    def crossover(self, a: str, b: str, rng: random.Random) -> str:
        """One-point crossover of the layer lists, then repair the number of descents to 1-2."""
        la, lb = self.decode(a), self.decode(b)
        cut = rng.randrange(1, self.num_layers)
        child = list(la[:cut] + lb[cut:])
        downs = [i for i, layer in enumerate(child) if layer.down]
        for i in downs[MAX_DOWNS:]:
            child[i] = child[i]._replace(down=False)
        if not downs:
            parents = [i for i in range(self.num_layers) if la[i].down or lb[i].down]
            i = rng.choice(parents)
            child[i] = child[i]._replace(down=True)
        return self.encode(child)

    # --- networks: the parts of an arch and their modules (also what the latency table times) ------
    def channels(self, level: int, width: float) -> int:
        """Channels of a layer at ``level`` (0: 1/8, 1: 1/16, 2: 1/32) with width multiplier ``width``."""
        return max(4, int(self.base_width * 2 ** (int(level) + 1) * float(width) + 0.5))

    def level_size(self, level: int) -> Tuple[int, int]:
        """Spatial size (H, W) of a feature at ``level`` for the space's input size."""
        f = 8 * 2 ** int(level)
        return -(-self.input_size[0] // f), -(-self.input_size[1] // f)

    def walk_start(self) -> Tuple[StemPart, WalkState]:
        """The stem's part and the walk state after it (level 0)."""
        c8 = 2 * self.base_width
        return StemPart(3, self.base_width, c8), WalkState(0, c8, c8)

    def walk_step(self, state: WalkState, layer: RTLayer) -> Tuple[LayerPart, WalkState]:
        """The part of ``layer`` (an :class:`RTLayer`) applied at ``state``, and the state after it."""
        level = state.level + int(layer.down)
        cout = self.channels(level, layer.width)
        part = LayerPart(layer.op, state.channels, cout, state.level, level)
        return part, WalkState(level, cout, cout if level == 0 else state.hi_channels)

    def walk_end(self, state: WalkState) -> HeadPart:
        """The head's part after the last layer's ``state``."""
        return HeadPart(state.hi_channels, state.channels, 0, state.level)

    def walk(self, arch: str) -> List:
        """The parts of ``arch`` in network order: a :class:`StemPart`, one :class:`LayerPart` per layer, a
        :class:`HeadPart` (channels in/out, levels, operator of each)."""
        stem, state = self.walk_start()
        parts: List = [stem]
        for layer in self.decode(arch):
            part, state = self.walk_step(state, layer)
            parts.append(part)
        return parts + [self.walk_end(state)]

    def stem(self) -> nn.Module:
        """The stem: four 3x3 conv-BN-ReLU (stride 2, 2, 1, 2) down to 1/8."""
        mid, c8 = self.base_width, 2 * self.base_width
        return nn.Sequential(ConvBNReLU(3, mid, 3, 2), ConvBNReLU(mid, c8, 3, 2), ConvBNReLU(c8, c8, 3, 1),
                             ConvBNReLU(c8, c8, 3, 2))

    def layer_module(self, part: LayerPart) -> nn.Module:
        """The module of one searchable layer (``make_op`` with the space's ``residual`` setting)."""
        return make_op(part.op, part.cin, part.cout, part.stride, self.residual)

    def head(self, part: HeadPart, num_classes: int | None = None) -> RealtimeHead:
        """The head of ``part`` (logits upsampled to the space's input size)."""
        return RealtimeHead(part.c_hi, part.c_lo, self.head_width, int(num_classes or self.num_classes),
                            self.input_size)

    def part_module(self, part, num_classes: int | None = None) -> nn.Module:
        """The module of any part from :meth:`walk`."""
        if isinstance(part, StemPart):
            return self.stem()
        if isinstance(part, LayerPart):
            return self.layer_module(part)
        if isinstance(part, HeadPart):
            return self.head(part, num_classes)
        raise SaswotError(f"not a realtime part: {part!r}")

    def part_input(self, part, batch: int = 1):
        """A random input of ``part``'s module (a tensor; for the head a ``(hi, lo)`` pair) at the input size."""
        if isinstance(part, StemPart):
            return torch.randn(batch, part.cin, *self.input_size)
        if isinstance(part, LayerPart):
            return torch.randn(batch, part.cin, *self.level_size(part.level_in))
        if isinstance(part, HeadPart):
            return (torch.randn(batch, part.c_hi, *self.level_size(part.level_hi)),
                    torch.randn(batch, part.c_lo, *self.level_size(part.level_lo)))
        raise SaswotError(f"not a realtime part: {part!r}")

    def build(self, arch: str, num_classes: int | None = None) -> nn.Module:
        """Build the untrained :class:`RealtimeNet` for ``arch`` from the modules of its :meth:`walk` parts."""
        parts = self.walk(arch)
        modules = [self.part_module(p, num_classes) for p in parts]
        hi_index = max((i for i, p in enumerate(parts[1:-1]) if p.level_out == 0), default=-1)
        return RealtimeNet(modules[0], modules[1:-1], modules[-1], hi_index, parts[-1].level_lo)

    def resolutions(self, arch: str) -> List[int]:
        """Output stride (8, 16 or 32) of each layer of ``arch``."""
        return [8 * 2 ** p.level_out for p in self.walk(arch)[1:-1]]
