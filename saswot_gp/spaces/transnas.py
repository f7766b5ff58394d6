"""TransNAS-Bench-101 ``segmentsemantic`` networks: the micro (cell) and macro (skeleton) spaces.

Architecture strings are the benchmark's own:

* ``transnas-micro``: ``64-41414-a_bc_def``, each of a..f an op code on one cell edge
  (0 zero, 1 identity / factorized reduce, 2 ReLU-Conv1x1-BN, 3 ReLU-Conv3x3-BN); ``a`` is edge
  0->1, ``b c`` are 0->2, 1->2 and ``d e f`` are 0->3, 1->3, 2->3. 4^6 = 4096 architectures.
* ``transnas-macro``: ``64-<digits>-basic``, 4 to 6 digits in 1..4 (1 normal, 2 channels x2,
  3 stride 2, 4 both), each digit a module of two ResNet basic blocks, with 1 to 4 stride changes
  and 1 to 3 channel doublings: 3256 architectures.

The network is the benchmark's encoder (stem, then modules of 2 cells) followed by its 8-layer
conv/deconv segmentation decoder with 17 output classes; for a 256x256 input the logits are 256x256.
The trainable parameter count equals the benchmark's recorded ``params`` for every architecture of
the NASLib zero-cost files. ``naslib_key_to_arch`` converts the files' tuple keys such as
``"(1, 2, 4, 2, 0, 0)"`` to these strings.
"""

from __future__ import annotations

import itertools
import math
import random
import re
from typing import List, Optional, Tuple

import torch
from torch import nn

from ..errors import SaswotError
from .base import MetaSizedSpace, init_conv_bn, register_space

BASE_CHANNELS = 64
MICRO_SKELETON = "41414"
NUM_CLASSES = 17
TARGET_SIZE = 256            # the decoder is sized for 256x256 labels
NOMINAL_INPUT = 224          # the benchmark sizes its decoder from the encoder width at this input
OPS = ("0", "1", "2", "3")
MICRO_FORMAT = ("'64-41414-a_bc_def' with a..f op codes in 0-3 (0 zero, 1 identity/factorized reduce, "
                "2 relu-conv1x1-bn, 3 relu-conv3x3-bn), e.g. '64-41414-1_02_333'")
MACRO_FORMAT = ("'64-<digits>-basic' with 4 to 6 digits in 1-4 (1 normal, 2 channels x2, 3 stride 2, 4 both), "
                "1 to 4 of them in {3,4} and 1 to 3 in {2,4}, e.g. '64-1242-basic'")
_MICRO_RE = re.compile(r"^(\d+)-41414-([0-3])_([0-3]{2})_([0-3]{3})$")
_MACRO_RE = re.compile(r"^(\d+)-([1-4]{4,6})-basic$")
_KEY_RE = re.compile(r"^\s*\(\s*(\d+(?:\s*,\s*\d+)*)\s*,?\s*\)\s*$")


# ----------------------------------------------------------------------------------------- ops

class ReLUConvBN(nn.Sequential):
    """ReLU, Conv2d without bias, BatchNorm2d."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int):
        super().__init__(nn.ReLU(inplace=False), nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False),
                         nn.BatchNorm2d(c_out))


class Zero(nn.Module):
    """The 'none' op: zeros with the output's channels and stride."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.c_in, self.c_out, self.stride = c_in, c_out, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.c_in == self.c_out:
            return x[:, :, ::self.stride, ::self.stride].mul(0.0)
        n, _, h, w = x.shape
        return x.new_zeros(n, self.c_out, (h + 1) // self.stride, (w + 1) // self.stride)


class FactorizedReduce(nn.Module):
    """ReLU, two offset 1x1 convs each giving half the channels, concatenated, BatchNorm2d."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.convs = nn.ModuleList([nn.Conv2d(c_in, c_out // 2, 1, stride, 0, bias=False),
                                    nn.Conv2d(c_in, c_out - c_out // 2, 1, stride, 0, bias=False)])
        self.pad = nn.ConstantPad2d((0, 1, 0, 1), 0.0)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        y = self.pad(x)
        return self.bn(torch.cat([self.convs[0](x), self.convs[1](y[:, :, 1:, 1:])], dim=1))


def _make_op(code: str, c_in: int, c_out: int, stride: int) -> nn.Module:
    if code == "0":
        return Zero(c_in, c_out, stride)
    if code == "1":
        return nn.Identity() if stride == 1 and c_in == c_out else FactorizedReduce(c_in, c_out, stride)
    if code == "2":
        return ReLUConvBN(c_in, c_out, 1, stride, 0)
    return ReLUConvBN(c_in, c_out, 3, stride, 1)


class MicroCell(nn.Module):
    """4-node DAG cell: node j is the sum over i < j of op_ij(node i); edges from node 0 carry the stride/width change."""

    def __init__(self, ops: Tuple[str, ...], c_in: int, c_out: int, stride: int):
        super().__init__()
        self.edges = nn.ModuleList()
        self.sources: List[List[int]] = []
        k = 0
        for node in (1, 2, 3):
            self.sources.append(list(range(node)))
            for src in range(node):
                self.edges.append(_make_op(ops[k], c_in, c_out, stride) if src == 0 else _make_op(ops[k], c_out, c_out, 1))
                k += 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats, k = [x], 0
        for srcs in self.sources:
            out = None
            for src in srcs:
                y = self.edges[k](feats[src])
                out = y if out is None else out + y
                k += 1
            feats.append(out)
        return feats[-1]


class ResNetBasicBlock(nn.Module):
    """ReLU-Conv3x3-BN (with stride), ReLU-Conv3x3-BN, plus the input (1x1 conv + BN when the shape changes)."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, 0, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        return residual + self.conv_b(self.conv_a(x))


class ConvLayer(nn.Sequential):
    """Decoder layer: Conv2d (or ConvTranspose2d, stride 2, output padding 1) with bias, optional BN and LeakyReLU(0.2)."""

    def __init__(self, c_in: int, c_out: int, deconv: bool = False, norm_act: bool = True):
        conv = (nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1) if deconv
                else nn.Conv2d(c_in, c_out, 3, stride=1, padding=1))
        mods = [conv] + ([nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2, inplace=False)] if norm_act else [])
        super().__init__(*mods)


class SegmentationDecoder(nn.Sequential):
    """The benchmark's decoder: conv to 1024, (6-u) halving convs, (u-1) halving deconvs, one deconv, conv to classes."""

    def __init__(self, c_in: int, in_width: int, num_classes: int = NUM_CLASSES, target_width: int = TARGET_SIZE):
        u = int(math.log2(target_width / in_width))
        if u not in (2, 3, 4, 5, 6):
            raise SaswotError(f"transnas decoder: encoder output width {in_width} needs {u} upsamplings; expected 2 to 6")
        layers, c = [ConvLayer(c_in, 1024)], 1024
        for _ in range(6 - u):
            layers.append(ConvLayer(c, c // 2))
            c //= 2
        for _ in range(u - 1):
            layers.append(ConvLayer(c, c // 2, deconv=True))
            c //= 2
        layers.append(ConvLayer(c, c, deconv=True))
        layers.append(ConvLayer(c, num_classes, norm_act=False))
        super().__init__(*layers)


class TransNASEncoder(nn.Module):
    """Stem (two stride-2 convs) then one module of two cells per skeleton digit; no pooling."""

    def __init__(self, base: int, skeleton: str, cell_ops: Optional[Tuple[str, ...]]):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, base // 2, 3, 2, 1, bias=False), nn.BatchNorm2d(base // 2),
                                  ReLUConvBN(base // 2, base, 3, 2, 1))
        c, width = base, NOMINAL_INPUT // 4
        layers = []
        for digit in skeleton:
            d = int(digit)
            c_out = c * 2 if d % 2 == 0 else c
            stride = 2 if d > 2 else 1
            width //= stride
            cells = []
            for i in range(2):
                s = stride if i == 0 else 1
                cells.append(ResNetBasicBlock(c, c_out, s) if cell_ops is None else MicroCell(cell_ops, c, c_out, s))
                c = c_out
            layers.append(nn.Sequential(*cells))
        self.layers = nn.Sequential(*layers)
        self.out_channels, self.out_width = c, width
        init_conv_bn(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(self.stem(x))


class TransNASSegNet(nn.Module):
    """Encoder followed by the segmentation decoder (logits at the input resolution for 256x256 inputs)."""

    def __init__(self, arch: str, base: int, skeleton: str, cell_ops: Optional[Tuple[str, ...]], num_classes: int):
        super().__init__()
        self.arch = arch
        self.encoder = TransNASEncoder(base, skeleton, cell_ops)
        self.decoder = SegmentationDecoder(self.encoder.out_channels, self.encoder.out_width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


# ------------------------------------------------------------------------------- conversions

def _parse_key(key) -> Tuple[int, ...]:
    if isinstance(key, (tuple, list)):
        vals = tuple(int(v) for v in key)
    else:
        m = _KEY_RE.match(str(key))
        if not m:
            raise SaswotError(f"TransNAS key {key!r}: expected a tuple of integers like '(1, 2, 4, 2, 0, 0)'")
        vals = tuple(int(v) for v in re.split(r"\s*,\s*", m[1]))
    return vals


def naslib_key_to_micro(key) -> str:
    """Convert a NASLib micro key like ``"(1, 0, 0, 2, 1, 0)"`` (or a tuple) to ``"64-41414-1_00_210"``."""
    v = _parse_key(key)
    if len(v) != 6 or any(x not in (0, 1, 2, 3) for x in v):
        raise SaswotError(f"TransNAS micro key {key!r}: expected 6 op codes in 0-3 like '(1, 0, 0, 2, 1, 0)'")
    return f"{BASE_CHANNELS}-{MICRO_SKELETON}-{v[0]}_{v[1]}{v[2]}_{v[3]}{v[4]}{v[5]}"


def naslib_key_to_macro(key) -> str:
    """Convert a NASLib macro key like ``"(1, 2, 4, 2, 0, 0)"`` (zero-padded digits) to ``"64-1242-basic"``."""
    v = _parse_key(key)
    digits = list(v)
    while digits and digits[-1] == 0:
        digits.pop()
    if not 4 <= len(digits) <= 6 or any(x not in (1, 2, 3, 4) for x in digits):
        raise SaswotError(f"TransNAS macro key {key!r}: expected 4-6 digits in 1-4 padded with zeros to 6, like '(1, 2, 4, 2, 0, 0)'")
    return f"{BASE_CHANNELS}-{''.join(map(str, digits))}-basic"


def naslib_key_to_arch(key, space: str) -> str:
    """Convert a NASLib tuple key to the architecture string of ``space`` ('transnas-micro' or 'transnas-macro')."""
    if space in ("transnas-micro", "micro"):
        return naslib_key_to_micro(key)
    if space in ("transnas-macro", "macro"):
        return naslib_key_to_macro(key)
    raise SaswotError(f"unknown TransNAS space {space!r}; expected 'transnas-micro' or 'transnas-macro'")


def arch_to_naslib_key(arch: str) -> str:
    """Inverse of ``naslib_key_to_arch``: ``"64-1242-basic"`` -> ``"(1, 2, 4, 2, 0, 0)"``, micro likewise."""
    m = _MICRO_RE.match(arch) if isinstance(arch, str) else None
    if m:
        vals = [int(c) for c in m[2] + m[3] + m[4]]
    else:
        m = _MACRO_RE.match(arch) if isinstance(arch, str) else None
        if not m:
            raise SaswotError(f"TransNAS architecture {arch!r}: expected {MICRO_FORMAT} or {MACRO_FORMAT}")
        vals = [int(c) for c in m[2]] + [0] * (6 - len(m[2]))
    return "(" + ", ".join(map(str, vals)) + ")"


def _macro_ok(digits: str) -> bool:
    n_stride = sum(d in "34" for d in digits)
    n_double = sum(d in "24" for d in digits)
    return 4 <= len(digits) <= 6 and all(d in "1234" for d in digits) and 1 <= n_stride <= 4 and 1 <= n_double <= 3


MACRO_CODES: Tuple[str, ...] = tuple(
    "".join(t) for n in (4, 5, 6) for t in itertools.product("1234", repeat=n) if _macro_ok("".join(t)))


class _TransNASSpace(MetaSizedSpace):
    """Shared parts: meta-device parameter and FLOP counting."""

    num_classes = NUM_CLASSES
    input_size = (TARGET_SIZE, TARGET_SIZE)

    def __init__(self, num_classes: int = NUM_CLASSES, input_size: Tuple[int, int] = (TARGET_SIZE, TARGET_SIZE)):
        self.num_classes = int(num_classes)
        self.input_size = tuple(input_size)


@register_space("transnas-micro")
class TransNASMicroSpace(_TransNASSpace):
    """TransNAS-Bench-101 micro (cell) space, skeleton 64-41414, 4096 architectures."""

    name = "transnas-micro"
    activation_bytes_per_pixel = 2200.0  # largest of 40 sampled networks: 1756 (forward), plus a quarter

    def decode(self, arch: str) -> Tuple[int, ...]:
        """``"64-41414-1_02_333"`` -> op codes ``(1, 0, 2, 3, 3, 3)`` (raise SaswotError if malformed)."""
        m = _MICRO_RE.match(arch.strip()) if isinstance(arch, str) else None
        if not m or int(m[1]) != BASE_CHANNELS:
            raise SaswotError(f"transnas-micro architecture {arch!r}: expected {MICRO_FORMAT}")
        return tuple(int(c) for c in m[2] + m[3] + m[4])

    def encode(self, spec) -> str:
        """Op codes (6 ints in 0-3) -> ``"64-41414-a_bc_def"``."""
        return naslib_key_to_micro(tuple(spec))

    def sample(self, rng: random.Random) -> str:
        """Uniform over the 4096 cells."""
        return self.encode([rng.randrange(4) for _ in range(6)])

    def mutate(self, arch: str, rng: random.Random) -> str:
        """Change the op of one edge."""
        ops = list(self.decode(arch))
        i = rng.randrange(6)
        ops[i] = rng.choice([o for o in range(4) if o != ops[i]])
        return self.encode(ops)

    def crossover(self, a: str, b: str, rng: random.Random) -> str:
        """Uniform crossover: each edge's op from either parent (a mutation if it reproduces a parent)."""
        x, y = self.decode(a), self.decode(b)
        child = self.encode([rng.choice(pair) for pair in zip(x, y)])
        return child if child not in (a, b) else self.mutate(child, rng)

    def build(self, arch: str, num_classes: int | None = None) -> nn.Module:
        """The untrained encoder-decoder network for ``arch``."""
        ops = tuple(str(o) for o in self.decode(arch))
        return TransNASSegNet(self.encode(ops), BASE_CHANNELS, MICRO_SKELETON, ops, num_classes or self.num_classes)


@register_space("transnas-macro")
class TransNASMacroSpace(_TransNASSpace):
    """TransNAS-Bench-101 macro (skeleton) space with ResNet basic-block cells, 3256 architectures."""

    name = "transnas-macro"
    activation_bytes_per_pixel = 5200.0  # largest of 40 sampled networks: 4188 (forward), plus a quarter

    def decode(self, arch: str) -> str:
        """``"64-1242-basic"`` -> the skeleton digits ``"1242"`` (raise SaswotError if malformed or outside the space)."""
        m = _MACRO_RE.match(arch.strip()) if isinstance(arch, str) else None
        if not m or int(m[1]) != BASE_CHANNELS or not _macro_ok(m[2]):
            raise SaswotError(f"transnas-macro architecture {arch!r}: expected {MACRO_FORMAT}")
        return m[2]

    def encode(self, spec) -> str:
        """Skeleton digits (string or ints) -> ``"64-<digits>-basic"``."""
        digits = "".join(str(int(d)) for d in spec)
        if not _macro_ok(digits):
            raise SaswotError(f"transnas-macro skeleton {digits!r}: expected {MACRO_FORMAT}")
        return f"{BASE_CHANNELS}-{digits}-basic"

    def sample(self, rng: random.Random) -> str:
        """Uniform over the 3256 valid skeletons."""
        return self.encode(rng.choice(MACRO_CODES))

    def mutate(self, arch: str, rng: random.Random) -> str:
        """Change, insert or delete one module, keeping the skeleton valid."""
        digits = self.decode(arch)
        while True:
            kind = rng.choice(("change", "insert", "delete"))
            i = rng.randrange(len(digits))
            if kind == "change":
                new = digits[:i] + rng.choice([d for d in "1234" if d != digits[i]]) + digits[i + 1:]
            elif kind == "insert":
                new = digits[:i] + rng.choice("1234") + digits[i:]
            else:
                new = digits[:i] + digits[i + 1:]
            if new != digits and _macro_ok(new):
                return self.encode(new)

    def crossover(self, a: str, b: str, rng: random.Random) -> str:
        """One-point crossover of the two skeletons (retried until valid and new; else a mutation)."""
        x, y = self.decode(a), self.decode(b)
        for _ in range(20):
            child = x[:rng.randint(1, len(x) - 1)] + y[rng.randint(1, len(y) - 1):]
            if _macro_ok(child) and child not in (x, y):
                return self.encode(child)
        return self.mutate(rng.choice([a, b]), rng)

    def build(self, arch: str, num_classes: int | None = None) -> nn.Module:
        """The untrained encoder-decoder network for ``arch``."""
        digits = self.decode(arch)
        return TransNASSegNet(self.encode(digits), BASE_CHANNELS, digits, None, num_classes or self.num_classes)
