"""An embedded toy segmentation set: random scenes of digits from ``sklearn.datasets.load_digits``.

Each scene is a textured, coloured background with a few digits scaled, placed and coloured at
random. Labels: 0 background, ``d + 1`` for digit ``d`` (11 classes); with ``ignore_border`` the
anti-aliased rim of each digit is 255 (ignore). Difficulty knobs: ``scale_range`` (digit height as a
fraction of the image side), ``min_digits``/``max_digits``, ``texture`` (background clutter),
``min_contrast`` (L1 RGB distance of a digit's colour from its background) and ``bold`` (stroke
dilation in source pixels; thin 8x8 strokes are below what a 1/8-resolution head can resolve at 64x64). Scene ``i`` of a split is a pure function of
``(seed, split, i)``; the 1797 source images are partitioned once (fixed seed, 60/20/20) so that
train, val and test scenes never share a source digit image. Nothing is downloaded.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..errors import SaswotError
from .transforms import JointTransform, eval_transform

SPLITS: Tuple[str, ...] = ("train", "val", "test")
SPLIT_FRACTIONS: Tuple[float, float, float] = (0.6, 0.2, 0.2)
DEFAULT_COUNTS: Dict[str, int] = {"train": 2000, "val": 300, "test": 300}
CLASS_NAMES: Tuple[str, ...] = ("background",) + tuple(str(d) for d in range(10))
_PARTITION_SEED = 1797
# raw scenes shared by every cached DigitScenes with the same settings (a build trains many nets on one set)
_SHARED_SCENES: Dict[tuple, Dict[int, Tuple[np.ndarray, np.ndarray, list]]] = {}
_SHARED_LIMIT = 8


@functools.lru_cache(maxsize=1)
def _source() -> Tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images / 16.0).astype(np.float32), d.target.astype(np.int64)


@functools.lru_cache(maxsize=None)
def source_indices(split: str) -> np.ndarray:
    """Indices into ``load_digits()`` reserved for ``split`` (fixed, disjoint across splits)."""
    if split not in SPLITS:
        raise SaswotError(f"unknown digits split {split!r}; expected one of {list(SPLITS)}")
    n = len(_source()[1])
    perm = np.random.default_rng(_PARTITION_SEED).permutation(n)
    a = int(round(SPLIT_FRACTIONS[0] * n))
    b = a + int(round(SPLIT_FRACTIONS[1] * n))
    part = {"train": perm[:a], "val": perm[a:b], "test": perm[b:]}[split]
    out = np.sort(part)
    out.setflags(write=False)
    return out


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int, amp: float) -> torch.Tensor:
    g = torch.from_numpy(rng.normal(0.0, amp, (1, 3, cells, cells)).astype(np.float32))
    return F.interpolate(g, size=(h, w), mode="bicubic", align_corners=False)[0]


@functools.lru_cache(maxsize=4096)
def _bold_glyph(src: int, bold: float) -> torch.Tensor:
    glyph = torch.from_numpy(np.pad(_source()[0][src], 1))[None, None]
    if bold <= 0:
        return glyph
    up = F.interpolate(glyph, scale_factor=4, mode="bilinear", align_corners=False)
    r = max(1, int(round(bold * 4)))
    return F.max_pool2d(up, 2 * r + 1, 1, r)


def _glyph(src: int, bold: float, h: int, w: int) -> torch.Tensor:
    """Alpha map (h x w, [0, 1]) of source digit ``src`` dilated by ``bold`` source pixels."""
    g = _bold_glyph(src, float(bold))
    return F.interpolate(g, size=(h, w), mode="bilinear", align_corners=False)[0, 0].clamp(0, 1)


def make_scene(rng: np.random.Generator, height: int, width: int, pool: np.ndarray, min_digits: int = 1,
               max_digits: int = 3, scale_range: Tuple[float, float] = (0.35, 0.65),
               ignore_border: bool = False, texture: float = 0.5,
               min_contrast: float = 1.2, bold: float = 0.5) -> Tuple[np.ndarray, np.ndarray, list]:
    """Draw one scene: ``(image uint8 HxWx3, label uint8 HxW, list of (source index, digit))``."""
    images, targets = _source()
    yy = torch.linspace(0, 1, height)[:, None]
    xx = torch.linspace(0, 1, width)[None, :]
    base = torch.from_numpy(rng.uniform(0.0, 1.0, 3).astype(np.float32))[:, None, None]
    freq, angle, phase = rng.uniform(2, 10), rng.uniform(0, np.pi), rng.uniform(0, 2 * np.pi)
    amp = torch.from_numpy(rng.uniform(0.0, 0.15 * texture, 3).astype(np.float32))[:, None, None]
    stripes = amp * torch.sin(2 * np.pi * freq * (np.cos(angle) * xx + np.sin(angle) * yy) + phase)
    img = base + _smooth_noise(rng, height, width, int(rng.integers(2, 6)), 0.2 * texture) + stripes
    img = img + torch.from_numpy(rng.normal(0, 0.03, (3, height, width)).astype(np.float32))
    img = img.clamp(0, 1)
    label = torch.zeros(height, width, dtype=torch.uint8)
    placed = []
    for _ in range(int(rng.integers(min_digits, max_digits + 1))):
        src = int(pool[rng.integers(len(pool))])
        side = rng.uniform(*scale_range) * min(height, width)
        dh = max(4, min(height, int(round(side * rng.uniform(0.85, 1.2)))))
        dw = max(4, min(width, int(round(side * rng.uniform(0.7, 1.0)))))
        alpha = _glyph(src, bold, dh, dw)
        # of a few candidate positions, keep the one overlapping earlier digits least
        cand = [(int(rng.integers(0, height - dh + 1)), int(rng.integers(0, width - dw + 1))) for _ in range(6)]
        y0, x0 = min(cand, key=lambda p: int((label[p[0]:p[0] + dh, p[1]:p[1] + dw] > 0).sum()))
        region = img[:, y0:y0 + dh, x0:x0 + dw]
        bg_mean = region.mean(dim=(1, 2)).numpy()
        colour = rng.uniform(0, 1, 3)
        for _try in range(20):
            if np.abs(colour - bg_mean).sum() > min_contrast:
                break
            colour = rng.uniform(0, 1, 3)
        col = torch.from_numpy(colour.astype(np.float32))[:, None, None]
        img[:, y0:y0 + dh, x0:x0 + dw] = region * (1 - alpha) + col * alpha
        lab = label[y0:y0 + dh, x0:x0 + dw]
        if ignore_border:
            lab[(alpha > 0.2) & (alpha < 0.5)] = 255
        lab[alpha >= 0.5] = int(targets[src]) + 1
        placed.append((src, int(targets[src])))
    img = (img.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()
    return img, label.numpy(), placed


class DigitScenes(Dataset):
    """Torch Dataset of digit scenes: item ``i`` is ``(image float32 3xHxW normalised, label int64 HxW)``.

    ``transform`` is a joint :class:`~saswot_gp.datasets.transforms.JointTransform` (default: normalise
    only); with ``cache`` the raw uint8 scenes are kept in memory after their first use, shared by every
    instance with the same settings in the process (at most 8 settings are kept).
    """

    num_classes = 11
    ignore_index = 255
    class_names = CLASS_NAMES

    def __init__(self, split: str = "train", num_images: Optional[int] = None,
                 image_size: int | Sequence[int] = 64, seed: int = 0, min_digits: int = 1, max_digits: int = 3,
                 scale_range: Tuple[float, float] = (0.35, 0.65), ignore_border: bool = False,
                 texture: float = 0.5, min_contrast: float = 1.2, bold: float = 0.5,
                 transform: Optional[Callable[[Any, Any], Tuple[torch.Tensor, torch.Tensor]]] = None,
                 cache: bool = True):
        self.pool = source_indices(split)
        self.split = split
        self.num_images = int(DEFAULT_COUNTS[split] if num_images is None else num_images)
        h, w = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        self.image_size = (int(h), int(w))
        if self.num_images < 0 or min(self.image_size) < 8:
            raise SaswotError(f"digits: need num_images >= 0 and image sides >= 8, got {self.num_images}, "
                              f"{self.image_size}")
        if not 0 <= min_digits <= max_digits:
            raise SaswotError(f"digits: need 0 <= min_digits <= max_digits, got {min_digits}, {max_digits}")
        lo, hi = scale_range
        if not 0 < lo <= hi <= 1:
            raise SaswotError(f"digits: scale_range must satisfy 0 < lo <= hi <= 1, got {scale_range}")
        self.seed = int(seed)
        self.min_digits, self.max_digits = int(min_digits), int(max_digits)
        self.scale_range = (float(lo), float(hi))
        self.ignore_border = bool(ignore_border)
        self.texture, self.min_contrast, self.bold = float(texture), float(min_contrast), float(bold)
        self.transform: JointTransform = transform or eval_transform()
        self._cache: Optional[Dict[int, Tuple[np.ndarray, np.ndarray, list]]] = None
        if cache:
            key = (self.seed, split, self.image_size, self.min_digits, self.max_digits, self.scale_range,
                   self.ignore_border, self.texture, self.min_contrast, self.bold)
            if key not in _SHARED_SCENES and len(_SHARED_SCENES) >= _SHARED_LIMIT:
                _SHARED_SCENES.pop(next(iter(_SHARED_SCENES)))
            self._cache = _SHARED_SCENES.setdefault(key, {})

    def __len__(self) -> int:
        return self.num_images

    def scene(self, index: int) -> Tuple[np.ndarray, np.ndarray, list]:
        """Raw scene ``index``: ``(image uint8 HxWx3, label uint8 HxW, [(source index, digit), ...])``."""
        if not 0 <= index < self.num_images:
            raise IndexError(f"digits {self.split}: index {index} out of range [0, {self.num_images})")
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        rng = np.random.default_rng([self.seed, SPLITS.index(self.split), int(index)])
        out = make_scene(rng, self.image_size[0], self.image_size[1], self.pool, self.min_digits, self.max_digits,
                         self.scale_range, self.ignore_border, self.texture, self.min_contrast, self.bold)
        if self._cache is not None:
            self._cache[index] = out
        return out

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """Scene ``index`` as ``(image float32 3xHxW, label int64 HxW)`` after the transform."""
        img, label, _ = self.scene(int(index))
        return self.transform(img, label)
