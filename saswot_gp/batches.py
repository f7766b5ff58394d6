"""Fixed, documented batches for collecting statistics when no real images are at hand, and the choice of
the batch a benchmark's statistics are collected on."""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Optional, Tuple

import torch
import torch.nn.functional as F

from .errors import SaswotError

if TYPE_CHECKING:
    from .groundtruth.base import Benchmark

BATCH_KINDS = ("auto", "synthetic", "natural", "digits")
MEMORY_ENV = "SASWOT_MAX_MEMORY"  # the memory limit of a batch and its network, such as 32G; default 3/4 of the RAM
_UNITS = {"": 1, "k": 2 ** 10, "m": 2 ** 20, "g": 2 ** 30, "t": 2 ** 40}


def format_bytes(n: float) -> str:
    """``n`` bytes as a short human size: '512 MB', '23.4 GB' (powers of 1024)."""
    for unit, scale in (("TB", 2 ** 40), ("GB", 2 ** 30), ("MB", 2 ** 20)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n / 2 ** 20:.2f} MB"


def memory_limit() -> int:
    """Bytes a batch and its network may take: ``$SASWOT_MAX_MEMORY`` (such as '32G', '512M' or bytes), or 3/4
    of this machine's physical memory; SaswotError if the variable is malformed."""
    text = os.environ.get(MEMORY_ENV, "").strip()
    if not text:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 3 // 4
    num, unit = text.rstrip("bBiI"), ""
    if num and num[-1].lower() in _UNITS:
        num, unit = num[:-1], num[-1].lower()
    try:
        value = float(num) * _UNITS[unit]
    except ValueError:
        value = -1.0
    if not value > 0 or math.isinf(value):
        raise SaswotError(f"{MEMORY_ENV}={text!r}; expected a positive size such as 32G, 512M or a number of bytes")
    return int(value)


def batch_bytes(n: int, size: Tuple[int, int], num_classes: int, kind: str = "synthetic") -> int:
    """Estimated peak bytes of building a batch of ``n`` images of ``size`` (float images, their working copies,
    one smooth field per class or, for 'natural', a distance per class and colour channel, int64 labels)."""
    per_pixel = 24 + 8 + 4 * num_classes + (12 * num_classes if kind == "natural" else 0)
    return int(n * size[0] * size[1] * per_pixel)


def check_memory(space, size: Tuple[int, int], n: int, kind: str = "synthetic", backward: bool = True,
                 what: str = "statistics batch") -> None:
    """Refuse (SaswotError) a batch of ``n`` images of ``size`` whose estimated memory, the batch itself
    (:func:`batch_bytes`) and the layer outputs of ``space``'s largest network on it
    (:meth:`~saswot_gp.spaces.base.SearchSpace.activation_bytes`), exceeds :func:`memory_limit`; the message
    says what fits. Pure arithmetic: nothing is allocated."""
    limit = memory_limit()
    data = batch_bytes(n, size, space.num_classes, kind)
    net = space.activation_bytes(size, n, backward)
    if data + net <= limit:
        return
    h, w = size
    m = max(1, space.resolution_multiple)
    scale = math.sqrt(limit / (data + net))
    fit_h, fit_w = int(h * scale) // m * m, int(w * scale) // m * m
    fit_n = int(limit // ((data + net) / n))
    fits = [f"{n} image{'s' * (n != 1)} at up to {fit_h}x{fit_w}"] if min(fit_h, fit_w) >= 8 else []
    fits += [f"{fit_n} image{'s' * (fit_n != 1)} at {h}x{w}"] if fit_n >= 1 else []
    raise SaswotError(
        f"a {what} of {n} image{'s' * (n != 1)} at {h}x{w} for space {space.name!r} needs about "
        f"{format_bytes(data + net)} (batch {format_bytes(data)}, layer outputs of the largest network "
        f"{format_bytes(net)}), over the memory limit of {format_bytes(limit)}; expected at most "
        + (" or ".join(fits) if fits else "a smaller resolution")
        + f" (raise the limit with {MEMORY_ENV}, such as {MEMORY_ENV}={math.ceil((data + net) / 2 ** 30)}G)")


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
    contiguous like a real segmentation. Same arguments, same tensors, at any torch thread count.
    """
    from .execution import torch_threads
    g = torch.Generator().manual_seed(seed)
    h, w = size
    lo = (max(1, h // 4), max(1, w // 4))
    img = F.interpolate(torch.randn(n, 3, *lo, generator=g), size=size, mode="bilinear", align_corners=False)
    with torch_threads(1):  # the same bits whatever the caller's thread count (the statistics cache keys on them)
        img = (img - img.mean()) / (img.std() + 1e-8)
    fields = F.interpolate(torch.randn(n, num_classes, *lo, generator=g), size=size, mode="bilinear", align_corners=False)
    return img, fields.argmax(1).long()


NATURAL_MEAN = (0.485, 0.456, 0.406)
NATURAL_STD = (0.229, 0.224, 0.225)


def _sample_photos() -> torch.Tensor:
    """The two photographs scikit-learn ships (china.jpg, flower.jpg) as a (2, 3, 427, 640) float tensor in [0, 1]."""
    import numpy as np
    from sklearn.datasets import load_sample_images
    photos = np.stack(load_sample_images().images).astype(np.float32) / 255.0
    return torch.from_numpy(photos).permute(0, 3, 1, 2).contiguous()


def natural_batch(n: int = 8, size: Tuple[int, int] = (64, 64), num_classes: int = 11,
                  seed: int = 0) -> Tuple[torch.Tensor, torch.Tensor]:
    """A seeded batch of random crops of real photographs (offline: scikit-learn's sample images).

    Each image is a random crop (side 25-100 % of the photo's height, random position and horizontal
    flip) resized to ``size`` and normalised with the ImageNet mean and std. Its labels follow the
    image's structure: every pixel takes the nearest of ``num_classes`` colour centres drawn (with
    ``seed``) from the photographs' pixels, so regions are contiguous and aligned with edges, as in a
    real segmentation. Same arguments, same tensors.
    """
    g = torch.Generator().manual_seed(seed)
    photos = _sample_photos()
    _, _, ph, pw = photos.shape
    h, w = size
    flat = photos.permute(0, 2, 3, 1).reshape(-1, 3)
    centres = flat[torch.randint(0, flat.shape[0], (num_classes,), generator=g)]
    imgs = []
    for _ in range(n):
        src = int(torch.randint(0, photos.shape[0], (1,), generator=g))
        side = float(torch.empty(1).uniform_(0.25, 1.0, generator=g))
        ch = max(8, int(side * ph))
        cw = min(pw, max(8, int(ch * w / h)))
        y0 = int(torch.randint(0, ph - ch + 1, (1,), generator=g))
        x0 = int(torch.randint(0, pw - cw + 1, (1,), generator=g))
        crop = photos[src:src + 1, :, y0:y0 + ch, x0:x0 + cw]
        if bool(torch.rand(1, generator=g) < 0.5):
            crop = crop.flip(-1)
        imgs.append(F.interpolate(crop, size=(h, w), mode="bilinear", align_corners=False))
    raw = torch.cat(imgs)
    d = ((raw.permute(0, 2, 3, 1).unsqueeze(-2) - centres) ** 2).sum(-1)  # (n, h, w, classes)
    labels = d.argmin(-1).long()
    mean = torch.tensor(NATURAL_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(NATURAL_STD).view(1, 3, 1, 1)
    return (raw - mean) / std, labels


def batch_source(bench: "Benchmark", kind: str = "auto") -> str:
    """The statistics batch a benchmark gets: ``kind`` itself, or for 'auto' 'digits' when the benchmark file
    declares it was trained on the embedded digit scenes (``Benchmark.data``) and 'synthetic' otherwise."""
    if kind not in BATCH_KINDS:
        raise SaswotError(f"batch {kind!r}; expected one of {', '.join(BATCH_KINDS)}")
    if kind != "auto":
        return kind
    return "digits" if bench.data == "digits" else "synthetic"


def default_batch(bench: "Benchmark", n: int = 8, seed: int = 0, resolution: Optional[Tuple[int, int]] = None,
                  kind: str = "auto") -> Tuple[torch.Tensor, torch.Tensor]:
    """The fixed batch used for a benchmark's statistics: ``(images, labels)``.

    ``kind`` (:func:`batch_source`): 'digits', the first ``n`` training digit scenes generated with data seed
    ``seed`` (the build's own data when ``seed`` is 0); 'synthetic', seeded smooth random images with spatially
    coherent random labels; 'natural', seeded random crops of real photographs (:func:`natural_batch`).
    ``resolution`` is checked against the space. Real images of the public benchmarks are not available offline.
    """
    from .spaces import get_space
    sp = get_space(bench.space, **bench.space_kwargs)
    size = sp.check_resolution(resolution)
    src = batch_source(bench, kind)
    check_memory(sp, size, n, src)
    if src == "digits":
        if sp.num_classes < 11:
            raise SaswotError(f"digit scenes have 11 classes but space {bench.space!r} has {sp.num_classes}; "
                              f"use --batch synthetic or natural")
        return digits_batch(n=n, size=size, seed=seed)
    if src == "natural":
        return natural_batch(n=n, size=size, num_classes=sp.num_classes, seed=seed)
    return synthetic_batch(n=n, size=size, num_classes=sp.num_classes, seed=seed)


def describe_batch(bench: "Benchmark", images: torch.Tensor, seed: int, kind: str = "auto") -> str:
    """One line saying what :func:`default_batch` gave (printed by the commands that use it)."""
    src = batch_source(bench, kind)
    if src == "digits":
        return f"the first {images.shape[0]} training digit scenes (data seed {seed}), {tuple(images.shape)}"
    if src == "natural":
        return (f"random crops of scikit-learn's sample photographs {tuple(images.shape)} with colour-cluster labels "
                f"(seed {seed})")
    return f"seeded synthetic images {tuple(images.shape)} with smooth random labels (seed {seed})"
