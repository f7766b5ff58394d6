"""``tiny``: a small plain encoder-decoder space for tests and the synthetic stand-in benchmark.

Grammar: layers joined by ``_``, each ``<width>k<kernel>s<stride>`` with width in {4, 8, 16, 32},
kernel in {1, 3, 5}, stride in {1, 2}; 2 to 5 layers; e.g. ``8k3s2_16k5s1_32k3s2``. Every layer is
Conv-BN-ReLU; a 1x1 classifier follows and logits are upsampled bilinearly to the input size.
"""

from __future__ import annotations

import random
import re
from typing import List, Tuple

import torch.nn.functional as F
from torch import nn

from ..errors import SaswotError
from .base import SearchSpace, register_space

WIDTHS = (4, 8, 16, 32)
KERNELS = (1, 3, 5)
STRIDES = (1, 2)
_LAYER = re.compile(r"^(\d+)k(\d)s(\d)$")
GRAMMAR = "layers '<width>k<kernel>s<stride>' joined by '_', width in {4,8,16,32}, kernel in {1,3,5}, stride in {1,2}, 2-5 layers"


class _TinyNet(nn.Module):
    def __init__(self, layers: List[Tuple[int, int, int]], num_classes: int):
        super().__init__()
        mods, c = [], 3
        for w, k, s in layers:
            mods += [nn.Conv2d(c, w, k, s, k // 2, bias=False), nn.BatchNorm2d(w), nn.ReLU()]
            c = w
        self.body = nn.Sequential(*mods)
        self.head = nn.Conv2d(c, num_classes, 1)

    def forward(self, x):
        return F.interpolate(self.head(self.body(x)), size=x.shape[-2:], mode="bilinear", align_corners=False)


@register_space("tiny")
class TinySpace(SearchSpace):
    """Plain conv encoder + 1x1 head; about 10^5 architectures."""

    name = "tiny"
    activation_bytes_per_pixel = 1100.0  # largest of 40 sampled networks: 879 (forward), plus a quarter

    def __init__(self, num_classes: int = 11, input_size=(32, 32)):
        self.num_classes = num_classes
        self.input_size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)

    def decode(self, arch: str) -> List[Tuple[int, int, int]]:
        """Parse ``arch`` into (width, kernel, stride) tuples."""
        parts = arch.split("_") if isinstance(arch, str) else []
        if not 2 <= len(parts) <= 5:
            raise SaswotError(f"tiny architecture {arch!r}: expected {GRAMMAR}")
        out = []
        for p in parts:
            m = _LAYER.match(p)
            if not m or int(m[1]) not in WIDTHS or int(m[2]) not in KERNELS or int(m[3]) not in STRIDES:
                raise SaswotError(f"tiny architecture {arch!r}: bad layer {p!r}; expected {GRAMMAR}")
            out.append((int(m[1]), int(m[2]), int(m[3])))
        return out

    def encode(self, spec) -> str:
        """Canonical string of (width, kernel, stride) tuples."""
        return "_".join(f"{w}k{k}s{s}" for w, k, s in spec)

    def sample(self, rng: random.Random) -> str:
        """Uniform depth, then uniform choices per layer."""
        n = rng.randint(2, 5)
        return self.encode([(rng.choice(WIDTHS), rng.choice(KERNELS), rng.choice(STRIDES)) for _ in range(n)])

    def mutate(self, arch: str, rng: random.Random) -> str:
        """Change one choice of one layer."""
        spec = self.decode(arch)
        i = rng.randrange(len(spec))
        j = rng.randrange(3)
        opts = [v for v in (WIDTHS, KERNELS, STRIDES)[j] if v != spec[i][j]]
        layer = list(spec[i])
        layer[j] = rng.choice(opts)
        spec[i] = tuple(layer)
        return self.encode(spec)

    def build(self, arch: str, num_classes=None) -> nn.Module:
        """The untrained network."""
        return _TinyNet(self.decode(arch), num_classes or self.num_classes)
