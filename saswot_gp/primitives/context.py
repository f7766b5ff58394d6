"""The statistics interface that operators read: :class:`StatsContext`.

Every operator function is called as ``fn(ctx, *children)`` and a proxy is evaluated with
``Proxy.evaluate(ctx)``; ``ctx`` holds the statistics of one or more architectures packed into flat
float64 tensors with segment ids. :class:`saswot_gp.stats.pack.PackedStats` is the implementation; any
object with these attributes and methods can stand in for it (a test double, another packing).

Segment kinds (the ``kind`` argument of the segment methods), after the value types of
:mod:`saswot_gp.primitives.types`:

* ``'W'``: the elements of weight-shaped tensors, one segment per layer (``n_layers`` values out);
* ``'A'``: the rows x batch of activation-shaped tensors, one segment per layer (``n_layers`` values out);
* ``'L'``: layer scalars, one segment per architecture (``n_archs`` values out).
"""

from __future__ import annotations

from typing import Dict, Protocol, runtime_checkable

import torch


@runtime_checkable
class StatsContext(Protocol):
    """What an operator function may use of its ``ctx`` (``isinstance`` checks only that the names exist).

    The segment methods and ``logdet``/``arch_logdet`` return new tensors, never their argument or a view of it:
    ``Proxy.evaluate`` writes into operators' results (``Operator.spare``), so a result that shared memory with a
    terminal would overwrite the statistics.
    """

    n_archs: int
    """Number of architectures (the length of an architecture score)."""
    n_layers: int
    """Number of layers over all architectures (the length of a layer scalar)."""
    batch_size: int
    """Samples per batch (columns of the activation-shaped tensors)."""
    w: torch.Tensor
    """Terminal ``W``: weights of every layer, flat (weight-shaped)."""
    g: torch.Tensor
    """Terminal ``G``: gradient of the loss w.r.t. the weights, flat (weight-shaped)."""
    a: torch.Tensor
    """Terminal ``A``: layer output activations, rows (positions) x batch (activation-shaped)."""
    ag: torch.Tensor
    """Terminal ``AG``: gradient of the loss w.r.t. the layer outputs, rows x batch (activation-shaped)."""
    layer: Dict[str, torch.Tensor]
    """Per-layer scalars (``params``, ``flops``, ``channels``, ``resolution``), ``n_layers`` values each."""
    arch: Dict[str, torch.Tensor]
    """Per-architecture scalars (``params``, ``flops``; ``zc_<measure>`` where measure terminals' values were
    attached, :mod:`saswot_gp.zerocost.terminals`), ``n_archs`` values each."""

    def seg_sum(self, kind: str, x: torch.Tensor) -> torch.Tensor:
        """Sum of ``x`` over each segment of ``kind``."""
        ...

    def seg_mean(self, kind: str, x: torch.Tensor) -> torch.Tensor:
        """Mean of ``x`` over each segment of ``kind``."""
        ...

    def seg_max(self, kind: str, x: torch.Tensor) -> torch.Tensor:
        """Maximum of ``x`` over each segment of ``kind``."""
        ...

    def seg_min(self, kind: str, x: torch.Tensor) -> torch.Tensor:
        """Minimum of ``x`` over each segment of ``kind``."""
        ...

    def expand(self, kind: str, v: torch.Tensor) -> torch.Tensor:
        """Broadcast one value per segment of ``kind`` back to its elements (rows x batch for ``'A'``)."""
        ...

    def scale(self, kind: str) -> torch.Tensor:
        """Full-size / sketched-size per segment of ``kind``, so sketched sums estimate full sums."""
        ...

    def logdet(self, x: torch.Tensor) -> torch.Tensor:
        """Per-layer log-determinant of the batch kernel of the binary codes ``x > 0`` (``n_layers`` values)."""
        ...

    def arch_logdet(self, x: torch.Tensor) -> torch.Tensor:
        """Per-architecture log-determinant of one batch kernel of the codes ``x > 0`` over all its layers."""
        ...

