"""``nbmr-seg``: the NAS-Bench-MR multi-resolution (HRNet-like) segmentation networks (19 classes).

Architecture string (the benchmark's embedding joined)::

    c0_c1-n1_b_w-n2_b_b_w_w-n3_b_b_b_w_w_w-n4_b_b_b_b_w_w_w_w-last

``c0, c1``: the two stem widths; for stage k = 1..4: ``n_k`` modules of k branches, then k block
counts and k branch widths; ``last``: the head width. E.g.
``16_16-1_1_16-2_3_3_16_32-3_4_4_3_64_112_96-4_2_1_3_1_32_80_112_48-48``.

Network: two stride-2 ConvBNReLU stems (1/4 resolution); per module a fuse step (neighbouring
branches only; new branches by a stride-2 ConvBNReLU from the previous fused branch) and a
parallel step of BasicBlocks per branch; head: branches upsampled to branch 0, concatenated, 1x1
ConvBNReLU to ``last``, 1x1 classifier with bias. Logits are at 1/4 of the input resolution.

The benchmark's recorded ``params`` equal this network's count with a 50-way classifier instead of
the 19-way one (an extra ``31 * (last + 1)`` parameters): 99.7% of architectures still match within
0.5% with the 19 classes the benchmark trained with (see benchmarks/results/param_match.md).
"""

from __future__ import annotations

import random
import re
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import SaswotError
from .base import MetaSizedSpace, init_conv_bn, register_space

NUM_CLASSES = 19
EMBEDDING_LEN = 27
STEM_WIDTHS = (8, 16, 24, 32, 48, 64)
BRANCH_WIDTHS = (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128)
COUNTS = (1, 2, 3, 4)                 # modules per stage and blocks per branch, as the benchmark samples them
MAX_COUNT, MAX_WIDTH = 16, 4096       # sanity bounds accepted by decode
FORMAT = ("'c0_c1-n1_b_w-n2_b_b_w_w-n3_b_b_b_w_w_w-n4_b_b_b_b_w_w_w_w-last' of positive integers "
          "(stem widths, per stage k: modules, k block counts, k widths; head width), "
          "e.g. '16_16-1_1_16-2_3_3_16_32-3_4_4_3_64_112_96-4_2_1_3_1_32_80_112_48-48'")
_INT = re.compile(r"^\d+$")


# ------------------------------------------------------------------------------------- modules

class ConvBNReLU(nn.Sequential):
    """Conv2d (no bias, 'same' padding) - BatchNorm2d - ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 3, stride: int = 1):
        super().__init__(nn.Conv2d(c_in, c_out, kernel, stride, (kernel - 1) // 2, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=False))


class BasicBlock(nn.Module):
    """3x3 conv-BN-ReLU, 3x3 conv-BN, residual (1x1 conv-BN when widths differ), ReLU."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=False)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = (nn.Sequential(nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out))
                           if c_in != c_out else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


def _resize(x: torch.Tensor, size) -> torch.Tensor:
    return x if x.shape[-2:] == size else F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class FuseModule(nn.Module):
    """Exchange between neighbouring branches; extra output branches come from the previous fused branch."""

    def __init__(self, in_channels: Sequence[int], out_channels: Sequence[int]):
        super().__init__()
        n_in, n_out = len(in_channels), len(out_channels)
        self.n_in, self.n_out = n_in, n_out
        rows = []
        for i in range(min(n_in, n_out)):
            row = nn.ModuleDict()
            for j in range(max(0, i - 1), min(n_in, i + 2)):
                if j > i:
                    layer = nn.Sequential(ConvBNReLU(in_channels[j], out_channels[i], 1),
                                          nn.Upsample(scale_factor=2 ** (j - i), mode="nearest"))
                elif j == i:
                    layer = ConvBNReLU(in_channels[j], out_channels[i], 3)
                else:
                    layer = ConvBNReLU(in_channels[j], out_channels[i], 3, stride=2 ** (i - j))
                row[str(j)] = layer
            rows.append(row)
        self.rows = nn.ModuleList(rows)
        self.new_branches = nn.ModuleList(ConvBNReLU(out_channels[b - 1], out_channels[b], 3, stride=2)
                                          for b in range(n_in, n_out))
        self.relu = nn.ReLU(inplace=False)

    def forward(self, xs: List[torch.Tensor]) -> List[torch.Tensor]:
        out = []
        for row in self.rows:
            y = None
            for j, layer in row.items():
                t = layer(xs[int(j)])
                y = t if y is None else y + _resize(t, y.shape[-2:])
            out.append(self.relu(y))
        for layer in self.new_branches:
            out.append(layer(out[-1]))
        return out


class ParallelModule(nn.Module):
    """A stack of BasicBlocks on each branch."""

    def __init__(self, blocks: Sequence[int], widths: Sequence[int]):
        super().__init__()
        self.branches = nn.ModuleList(nn.Sequential(*[BasicBlock(w, w) for _ in range(n)]) for n, w in zip(blocks, widths))

    def forward(self, xs: List[torch.Tensor]) -> List[torch.Tensor]:
        return [branch(x) for branch, x in zip(self.branches, xs)]


class MultiResolutionNet(nn.Module):
    """Stem, (fuse, parallel) per module, concat head; 1/4-resolution logits."""

    def __init__(self, input_channel: Sequence[int], setting: Sequence, last_channel: int,
                 num_classes: int = NUM_CLASSES, arch: str = ""):
        super().__init__()
        self.arch = arch
        self.stem = nn.Sequential(ConvBNReLU(3, input_channel[0], 3, 2), ConvBNReLU(input_channel[0], input_channel[1], 3, 2))
        features, prev = [], [input_channel[1]]
        for _, blocks, widths in setting:
            features += [FuseModule(prev, widths), ParallelModule(blocks, widths)]
            prev = list(widths)
        self.features = nn.Sequential(*features)
        self.transform = ConvBNReLU(sum(prev), last_channel, 1)
        self.classifier = nn.Conv2d(last_channel, num_classes, 1)
        init_conv_bn(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xs = self.features([self.stem(x)])
        size = xs[0].shape[-2:]
        return self.classifier(self.transform(torch.cat([_resize(t, size) for t in xs], dim=1)))


# ----------------------------------------------------------------------------------- encoding

def embedding_to_arch(embedding: Sequence[int]) -> str:
    """Join a 27-integer benchmark embedding into the code string ``c0_c1-n1_b_w-...-last``."""
    e = [int(v) for v in embedding]
    if len(e) != EMBEDDING_LEN:
        raise SaswotError(f"NAS-Bench-MR embedding of length {len(e)}: expected {EMBEDDING_LEN} integers")
    parts, pos = [f"{e[0]}_{e[1]}"], 2
    for k in range(1, 5):
        parts.append("_".join(map(str, e[pos:pos + 1 + 2 * k])))
        pos += 1 + 2 * k
    parts.append(str(e[pos]))
    return "-".join(parts)


def embedding_to_setting(embedding: Sequence[int]) -> Tuple[List[int], List[list], int]:
    """Expand an embedding into (input_channel, inverted_residual_setting, last_channel) as the benchmark stores them."""
    e = [int(v) for v in embedding]
    setting, pos = [], 2
    for k in range(1, 5):
        n, blocks, widths = e[pos], e[pos + 1:pos + 1 + k], e[pos + 1 + k:pos + 1 + 2 * k]
        setting += [[k, list(blocks), list(widths)] for _ in range(n)]
        pos += 1 + 2 * k
    return e[:2], setting, e[pos]


def record_to_arch(record: Dict) -> str:
    """Code string of one NAS-Bench-MR record (uses ``embedding``; checked against ``inverted_residual_setting``)."""
    if not isinstance(record, dict) or "embedding" not in record:
        raise SaswotError("NAS-Bench-MR record without an 'embedding' field; expected a dict from the benchmark pickle")
    arch = embedding_to_arch(record["embedding"])
    ic, setting, last = embedding_to_setting(record["embedding"])
    if "inverted_residual_setting" in record and [list(map(int, s[:1])) + [list(s[1]), list(s[2])]
                                                  for s in record["inverted_residual_setting"]] != setting:
        raise SaswotError(f"NAS-Bench-MR record {arch!r}: 'embedding' disagrees with 'inverted_residual_setting'")
    if "input_channel" in record and list(record["input_channel"]) != ic:
        raise SaswotError(f"NAS-Bench-MR record {arch!r}: 'embedding' disagrees with 'input_channel'")
    if "last_channel" in record and int(record["last_channel"]) != last:
        raise SaswotError(f"NAS-Bench-MR record {arch!r}: 'embedding' disagrees with 'last_channel'")
    return arch


def _segments(e: Sequence[int]) -> List[Tuple[int, int]]:
    """(start, stop) of the stem, the four stages and the head inside an embedding."""
    out, pos = [(0, 2)], 2
    for k in range(1, 5):
        out.append((pos, pos + 1 + 2 * k))
        pos += 1 + 2 * k
    out.append((pos, pos + 1))
    return out


def _choices(position: int) -> Tuple[int, ...]:
    """The benchmark's value set for one embedding position."""
    if position < 2:
        return STEM_WIDTHS
    if position == EMBEDDING_LEN - 1:
        return BRANCH_WIDTHS
    pos = 2
    for k in range(1, 5):
        if position < pos + 1 + k:
            return COUNTS
        if position < pos + 1 + 2 * k:
            return BRANCH_WIDTHS
        pos += 1 + 2 * k
    raise AssertionError(position)


@register_space("nbmr-seg")
class NBMRSegSpace(MetaSizedSpace):
    """NAS-Bench-MR Cityscapes segmentation space (HRNet-like, 4 stages of 1-4 modules)."""

    name = "nbmr-seg"
    num_classes = NUM_CLASSES
    input_size = (224, 224)
    activation_bytes_per_pixel = 11000.0  # largest of 24 sampled networks: 8789 (forward), plus a quarter

    def __init__(self, num_classes: int = NUM_CLASSES, input_size: Tuple[int, int] = (224, 224)):
        self.num_classes = int(num_classes)
        self.input_size = tuple(input_size)

    def decode(self, arch: str) -> Tuple[int, ...]:
        """Code string -> the 27-integer embedding (raise SaswotError naming the string and the format)."""
        parts = arch.strip().split("-") if isinstance(arch, str) else []
        sizes = [2, 3, 5, 7, 9, 1]
        fields = [p.split("_") for p in parts]
        if len(parts) != 6 or [len(f) for f in fields] != sizes or not all(_INT.match(v) for f in fields for v in f):
            raise SaswotError(f"nbmr-seg architecture {arch!r}: expected {FORMAT}")
        e = tuple(int(v) for f in fields for v in f)
        for i, v in enumerate(e):
            counts = _choices(i) is COUNTS
            if v < 1 or v > (MAX_COUNT if counts else MAX_WIDTH):
                raise SaswotError(f"nbmr-seg architecture {arch!r}: value {v} out of range at position {i + 1}; expected {FORMAT}")
        return e

    def encode(self, spec) -> str:
        """27-integer embedding -> code string."""
        return embedding_to_arch(spec)

    def sample(self, rng: random.Random) -> str:
        """Each position drawn uniformly from the benchmark's value set (stem widths 8-64, counts 1-4, widths 8-128)."""
        return self.encode([rng.choice(_choices(i)) for i in range(EMBEDDING_LEN)])

    def mutate(self, arch: str, rng: random.Random) -> str:
        """Redraw one position (a stem/branch/head width, a module count or a block count) to a different value."""
        e = list(self.decode(arch))
        i = rng.randrange(EMBEDDING_LEN)
        e[i] = rng.choice([v for v in _choices(i) if v != e[i]])
        return self.encode(e)

    def crossover(self, a: str, b: str, rng: random.Random) -> str:
        """Take the stem, each stage and the head from either parent (a mutation if that reproduces a parent)."""
        x, y = self.decode(a), self.decode(b)
        child: List[int] = []
        for start, stop in _segments(x):
            child += (x if rng.random() < 0.5 else y)[start:stop]
        out = self.encode(child)
        return out if out not in (a, b) else self.mutate(out, rng)

    def build(self, arch: str, num_classes: int | None = None) -> nn.Module:
        """The untrained multi-resolution network (logits at 1/4 input resolution)."""
        e = self.decode(arch)
        ic, setting, last = embedding_to_setting(e)
        return MultiResolutionNet(ic, setting, last, num_classes or self.num_classes, arch=self.encode(e))
