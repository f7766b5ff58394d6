"""Fixed, documented batches for collecting statistics when no real images are at hand."""

from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F


def digits_batch(n: int = 8, size: Tuple[int, int] = (64, 64), seed: int = 0) -> Tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` training scenes of the embedded digit set (data seed ``seed``) at ``size``: (images, labels)."""
    from .datasets import get_dataset
    ds = get_dataset("digits", "train", image_size=tuple(size), seed=seed, num_images=n)
    items = [ds[i] for i in range(n)]
    return torch.stack([x for x, _ in items]), torch.stack([y for _, y in items])


def synthetic_batch(n: int = 8, size: Tuple[int, int] = (32, 32), num_classes: int = 11,
                    seed: int = 0) -> Tuple[torch.Tensor, torch.Tensor]:
    """A seeded batch of smooth random images and spatially coherent labels (argmax of smooth fields).

    Images are low-frequency Gaussian fields (upsampled 1/4-resolution noise) normalised to zero mean
    and unit variance; labels are the argmax of ``num_classes`` other smooth fields, so regions are
    contiguous like a real segmentation. Same arguments, same tensors.
    """
    g = torch.Generator().manual_seed(seed)
    h, w = size
    lo = (max(1, h // 4), max(1, w // 4))
    img = F.interpolate(torch.randn(n, 3, *lo, generator=g), size=size, mode="bilinear", align_corners=False)
    img = (img - img.mean()) / (img.std() + 1e-8)
    fields = F.interpolate(torch.randn(n, num_classes, *lo, generator=g), size=size, mode="bilinear", align_corners=False)
    return img, fields.argmax(1).long()
