"""The modules of the realtime space (:mod:`saswot_gp.spaces.realtime`): its operators (:func:`make_op`),
the head (:class:`RealtimeHead`) and the assembled network (:class:`RealtimeNet`). Built by
:class:`~saswot_gp.spaces.realtime.RealtimeSpace` from the parts of an architecture."""

from __future__ import annotations

from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import SaswotError

OPS: Tuple[str, ...] = ("c3", "c33", "zc", "dc", "dw", "ir", "sk")
IR_EXPANSION = 4


class ConvBNReLU(nn.Sequential):
    """Conv2d (no bias) + BatchNorm2d (+ ReLU unless ``act`` is False)."""

    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, dilation: int = 1,
                 groups: int = 1, act: bool = True):
        pad = dilation * (k - 1) // 2
        layers: List[nn.Module] = [nn.Conv2d(cin, cout, k, stride, pad, dilation=dilation, groups=groups, bias=False),
                                   nn.BatchNorm2d(cout)]
        if act:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class ZoomedConv(nn.Module):
    """FasterSeg's zoomed convolution: 2x average-pool, 3x3 conv (with ``stride``), bilinear upsample."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.stride = stride
        self.conv = ConvBNReLU(cin, cout, 3, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pool, convolve, and upsample back to the strided input size."""
        h, w = x.shape[-2:]
        size = ((h + self.stride - 1) // self.stride, (w + self.stride - 1) // self.stride)
        y = self.conv(F.avg_pool2d(x, 2, 2, ceil_mode=True))
        return F.interpolate(y, size=size, mode="bilinear", align_corners=False)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise (``stride``), 1x1 linear project (+ identity if ``residual``)."""

    def __init__(self, cin: int, cout: int, stride: int, expansion: int = IR_EXPANSION, residual: bool = True):
        super().__init__()
        mid = cin * expansion
        self.residual = residual and stride == 1 and cin == cout
        self.body = nn.Sequential(ConvBNReLU(cin, mid, 1), ConvBNReLU(mid, mid, 3, stride, groups=mid),
                                  ConvBNReLU(mid, cout, 1, act=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block (adding the input when residual)."""
        y = self.body(x)
        return x + y if self.residual else y


def shortcut(cin: int, cout: int, stride: int) -> nn.Module:
    """Identity if shapes match, else (2x average-pool if ``stride`` is 2 and) 1x1 conv + BN."""
    if stride == 1 and cin == cout:
        return nn.Identity()
    pool: List[nn.Module] = [nn.AvgPool2d(2, 2, ceil_mode=True)] if stride == 2 else []
    return nn.Sequential(*pool, ConvBNReLU(cin, cout, 1, act=False))


class ResidualLayer(nn.Module):
    """``op(x) + shortcut(x)``: one searchable layer when the space is built with ``residual=True``."""

    def __init__(self, op: nn.Module, cin: int, cout: int, stride: int):
        super().__init__()
        self.op = op
        self.shortcut = shortcut(cin, cout, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``op(x) + shortcut(x)``."""
        return self.op(x) + self.shortcut(x)


def make_op(op: str, cin: int, cout: int, stride: int, residual: bool = False) -> nn.Module:
    """Build operator ``op`` (one of :data:`OPS`) mapping ``cin`` to ``cout`` channels with ``stride`` 1 or 2.

    With ``residual`` every operator but ``sk`` is wrapped as ``op(x) + shortcut(x)`` (``sk`` is the shortcut).
    """
    if residual and op != "sk":
        inner = InvertedResidual(cin, cout, stride, residual=False) if op == "ir" else make_op(op, cin, cout, stride)
        return ResidualLayer(inner, cin, cout, stride)
    if op == "c3":
        return ConvBNReLU(cin, cout, 3, stride)
    if op == "c33":
        return nn.Sequential(ConvBNReLU(cin, cout, 3, stride), ConvBNReLU(cout, cout, 3, 1))
    if op == "zc":
        return ZoomedConv(cin, cout, stride)
    if op == "dc":
        return ConvBNReLU(cin, cout, 3, stride, dilation=2)
    if op == "dw":
        return nn.Sequential(ConvBNReLU(cin, cin, 3, stride, groups=cin), ConvBNReLU(cin, cout, 1))
    if op == "ir":
        return InvertedResidual(cin, cout, stride)
    if op == "sk":
        if stride == 1 and cin == cout:
            return nn.Identity()
        pool: List[nn.Module] = [nn.AvgPool2d(2, 2, ceil_mode=True)] if stride == 2 else []
        return nn.Sequential(*pool, ConvBNReLU(cin, cout, 1, act=not residual))
    raise SaswotError(f"unknown realtime operator {op!r}; expected one of {list(OPS)}")


def _head_logits(head: nn.Module, hi: torch.Tensor, lo: torch.Tensor, size) -> torch.Tensor:
    """The head's computation with ``head``'s ``proj_hi``, ``proj_lo``, ``fuse`` and ``classifier``."""
    hi = head.proj_hi(hi)
    lo = F.interpolate(head.proj_lo(lo), size=hi.shape[-2:], mode="bilinear", align_corners=False)
    logits = head.classifier(head.fuse(hi + lo))
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


class RealtimeHead(nn.Module):
    """The head alone: logits at ``out_size`` from ``(hi, lo)`` (what :class:`RealtimeNet` does after its layers)."""

    def __init__(self, c_hi: int, c_lo: int, head_width: int, num_classes: int, out_size: Sequence[int]):
        super().__init__()
        self.out_size = (int(out_size[0]), int(out_size[1]))
        self.proj_hi = ConvBNReLU(c_hi, head_width, 1)
        self.proj_lo = ConvBNReLU(c_lo, head_width, 1)
        self.fuse = ConvBNReLU(head_width, head_width, 3)
        self.classifier = nn.Conv2d(head_width, num_classes, 1)

    def forward(self, xs: Tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Logits at ``out_size`` from the 1/8 feature ``hi`` and the final, coarser feature ``lo``."""
        hi, lo = xs
        return _head_logits(self, hi, lo, self.out_size)


class RealtimeNet(nn.Module):
    """The network for one realtime architecture; ``forward`` returns logits at the input resolution.

    Built by :meth:`RealtimeSpace.build` from the space's parts: ``stem``, the ``layers`` and a
    :class:`RealtimeHead` whose submodules the network holds directly (``proj_hi``, ``proj_lo``, ``fuse``,
    ``classifier``); ``hi_index`` is the last layer whose output is at 1/8 (-1: the stem).
    """

    def __init__(self, stem: nn.Module, layers: Sequence[nn.Module], head: RealtimeHead, hi_index: int,
                 levels: int):
        super().__init__()
        self.stem = stem
        self.layers = nn.ModuleList(layers)
        self.hi_index = int(hi_index)
        self.levels = int(levels)
        self.proj_hi, self.proj_lo, self.fuse, self.classifier = head.proj_hi, head.proj_lo, head.fuse, head.classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N x classes x H x W) for images ``x`` (N x 3 x H x W)."""
        y = self.stem(x)
        hi = y
        for i, layer in enumerate(self.layers):
            y = layer(y)
            if i == self.hi_index:
                hi = y
        return _head_logits(self, hi, y, x.shape[-2:])
