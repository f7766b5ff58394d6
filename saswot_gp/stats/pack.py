"""Packing the statistics of many architectures into flat tensors with segment ids.

Elements of weight-shaped tensors carry a layer id; rows of activation-shaped tensors carry a layer
id; layers carry an architecture id. A proxy evaluated on a :class:`PackedStats` scores every
architecture in one vectorised pass: reductions are ``index_add``/``scatter_reduce`` over these ids.
"""

from __future__ import annotations

from typing import Dict, Sequence

import numpy as np
import torch

from ..errors import SaswotError
from .collect import LAYER_SCALARS, ArchStats


class PackedStats:
    """Statistics of ``n_archs`` architectures packed into float64 tensors (see module docstring)."""

    def __init__(self, stats: Sequence[ArchStats]):
        if not stats:
            raise SaswotError("cannot pack statistics of zero architectures")
        batch = {s.a.shape[1] for s in stats}
        if len(batch) != 1:
            raise SaswotError(f"statistics were collected on different batch sizes {sorted(batch)}; expected one batch")
        self.batch_size = batch.pop()
        self.n_archs = len(stats)
        offs = np.cumsum([0] + [s.n_layers for s in stats])
        self.n_layers = int(offs[-1])
        f64 = lambda xs: torch.from_numpy(np.concatenate(xs).astype(np.float64))  # noqa: E731
        self.w = f64([s.w for s in stats])
        self.g = f64([s.g for s in stats])
        self.a = f64([s.a for s in stats])
        self.ag = f64([s.ag for s in stats])
        self.w_seg = torch.from_numpy(np.concatenate([s.w_layer.astype(np.int64) + o for s, o in zip(stats, offs)]))
        self.a_seg = torch.from_numpy(np.concatenate([s.a_layer.astype(np.int64) + o for s, o in zip(stats, offs)]))
        self.layer_arch = torch.from_numpy(np.repeat(np.arange(self.n_archs), [s.n_layers for s in stats]))
        self.layer: Dict[str, torch.Tensor] = {k: f64([s.layer[k] for s in stats]) for k in LAYER_SCALARS}
        self.arch: Dict[str, torch.Tensor] = {k: torch.tensor([s.arch[k] for s in stats], dtype=torch.float64)
                                              for k in ("params", "flops")}
        w_numel = f64([s.w_numel for s in stats])
        a_numel = f64([s.a_numel for s in stats])
        self._seg = {"W": self.w_seg, "A": self.a_seg, "L": self.layer_arch}
        self._n = {"W": self.n_layers, "A": self.n_layers, "L": self.n_archs}
        w_cnt = torch.bincount(self.w_seg, minlength=self.n_layers).double()
        a_rows = torch.bincount(self.a_seg, minlength=self.n_layers)  # sketched positions per layer
        a_cnt = a_rows.double() * self.batch_size
        l_cnt = torch.bincount(self.layer_arch, minlength=self.n_archs).double()
        self._count = {"W": w_cnt, "A": a_cnt, "L": l_cnt}
        # segments are contiguous and in order (statistics are concatenated layer by layer, architecture by
        # architecture), so segment reductions run on lengths (torch.segment_reduce, ~3x faster than index_add)
        self._lengths = {"W": w_cnt.long(), "A": a_rows, "L": l_cnt.long()}
        self._contiguous = all(bool((seg[1:] >= seg[:-1]).all()) for seg in self._seg.values())
        self._scale = {"W": w_numel / w_cnt, "A": a_numel / a_cnt, "L": torch.ones(self.n_archs, dtype=torch.float64)}
        self._groups = None
        self._uniform = False

    # ------------------------------------------------------------------ segment helpers
    def _rowwise(self, kind: str, x: torch.Tensor) -> torch.Tensor:
        return x.sum(1) if kind == "A" else x

    def seg_sum(self, kind: str, x: torch.Tensor) -> torch.Tensor:
        """Sum of ``x`` over each segment of ``kind`` ('W', 'A' over rows and batch, 'L' over layers)."""
        x = self._rowwise(kind, x)
        if self._contiguous:
            return torch.segment_reduce(x, "sum", lengths=self._lengths[kind])
        return torch.zeros(self._n[kind], dtype=x.dtype).index_add_(0, self._seg[kind], x)

    def seg_mean(self, kind: str, x: torch.Tensor) -> torch.Tensor:
        """Mean over each segment."""
        return self.seg_sum(kind, x) / self._count[kind]

    def _seg_reduce(self, kind: str, x: torch.Tensor, how: str) -> torch.Tensor:
        if kind == "A":
            x = x.amax(1) if how == "amax" else x.amin(1)
        if self._contiguous:
            return torch.segment_reduce(x, "max" if how == "amax" else "min", lengths=self._lengths[kind])
        return torch.zeros(self._n[kind], dtype=x.dtype).scatter_reduce_(0, self._seg[kind], x, how, include_self=False)

    def seg_max(self, kind: str, x: torch.Tensor) -> torch.Tensor:
        """Maximum over each segment."""
        return self._seg_reduce(kind, x, "amax")

    def seg_min(self, kind: str, x: torch.Tensor) -> torch.Tensor:
        """Minimum over each segment."""
        return self._seg_reduce(kind, x, "amin")

    def expand(self, kind: str, v: torch.Tensor) -> torch.Tensor:
        """Broadcast one value per segment back to the elements (rows x batch for 'A')."""
        out = v[self._seg[kind]]
        return out.unsqueeze(1) if kind == "A" else out

    def scale(self, kind: str) -> torch.Tensor:
        """Full-size / sketched-size per segment, so sketched sums estimate full sums."""
        return self._scale[kind]

    def layer_kernels(self, x: torch.Tensor) -> torch.Tensor:
        """Per-layer (N x N) batch kernels K = C C^T + (1-C)(1-C)^T of binary codes C = (x > 0) over the sketched
        positions (K_ij: positions where samples i and j agree), float64, shape (n_layers, N, N).

        Layers are grouped by row count, so this is one batched matmul per distinct count (when every layer has
        the same count, as with a sketch of K positions, the one group is a view of the codes: no gather, no copy).
        """
        if self._groups is None:
            counts = self._lengths["A"]
            starts = torch.cumsum(counts, 0) - counts
            self._groups = []
            for r in torch.unique(counts).tolist():
                layers = torch.nonzero(counts == r).flatten()
                rows = starts[layers].unsqueeze(1) + torch.arange(r).unsqueeze(0)
                self._groups.append((layers, rows))
            self._uniform = len(self._groups) == 1 and self._contiguous
        c = (x > 0).to(torch.float32)  # 0/1 codes: counts stay exact in float32, so every order of sums is exact
        if self._uniform:
            r = self._groups[0][1].shape[1]
            return self._kernels(c.view(self.n_layers, r, self.batch_size)).double()
        out = torch.empty(self.n_layers, self.batch_size, self.batch_size, dtype=torch.float64)
        for layers, rows in self._groups:
            out[layers] = self._kernels(c[rows]).double()  # (layers in group, r, N)
        return out

    @staticmethod
    def _kernels(cg: torch.Tensor) -> torch.Tensor:
        """K_ij = #positions where codes agree = r - s_i - s_j + 2 (C^T C)_ij for codes ``cg`` (layers, r, N)."""
        s = cg.sum(1)
        return (cg.transpose(1, 2) @ cg).mul_(2.0).sub_(s.unsqueeze(2)).sub_(s.unsqueeze(1)).add_(cg.shape[1])

    @staticmethod
    def _logdet(k: torch.Tensor) -> torch.Tensor:
        k = k + 1e-3 * torch.eye(k.shape[-1], dtype=torch.float64)
        chol, info = torch.linalg.cholesky_ex(k)
        ld = 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
        bad = info != 0
        if bad.any():
            ld[bad] = torch.linalg.slogdet(k[bad])[1]
        return ld

    def logdet(self, x: torch.Tensor) -> torch.Tensor:
        """Per-layer log|K| of the batch kernel of binary codes ``x > 0`` (:meth:`layer_kernels`)."""
        return self._logdet(self.layer_kernels(x))

    def arch_logdet(self, x: torch.Tensor) -> torch.Tensor:
        """Per-architecture log|K| of one batch kernel over all layers' codes ``x > 0`` (NWOT, Mellor et al. 2021):
        the per-layer kernels summed, each scaled by full / sketched positions so that the sum estimates the
        kernel of the full codes."""
        k = self.layer_kernels(x) * self._scale["A"].view(-1, 1, 1)
        n = self.batch_size
        ka = torch.zeros(self.n_archs, n, n, dtype=torch.float64).index_add_(0, self.layer_arch, k)
        return self._logdet(ka)

    def nbytes(self) -> int:
        """Memory held by the packed tensors, in bytes."""
        ts = [self.w, self.g, self.a, self.ag, self.w_seg, self.a_seg, self.layer_arch, *self.layer.values()]
        return int(sum(t.numel() * t.element_size() for t in ts))


def pack(stats: Sequence[ArchStats]) -> PackedStats:
    """Pack a list of per-architecture statistics (all on the same batch) into one PackedStats."""
    return PackedStats(stats)
