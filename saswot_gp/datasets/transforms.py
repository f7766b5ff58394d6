"""Joint image + mask transforms (torchvision transforms v2 with ``tv_tensors.Mask``).

A :class:`JointTransform` takes an RGB image (PIL, HxWx3 uint8 array or 3xHxW tensor) and a label map
(PIL, HxW array or tensor, values 0..254 and 255 = ignore), applies the same geometric transforms to
both (bilinear for the image, nearest for the mask, padding the mask with 255), and returns
``(image float32 3xHxW normalised, label int64 HxW)``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

IMAGENET_MEAN: Tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: Tuple[float, float, float] = (0.229, 0.224, 0.225)
IGNORE_INDEX = 255


def _size(size: int | Sequence[int]) -> Tuple[int, int]:
    return (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))


class RandomScale(v2.Transform):
    """Resize image and mask together by one factor drawn uniformly from ``scale_range``."""

    def __init__(self, scale_range: Tuple[float, float] = (0.5, 2.0),
                 interpolation: v2.InterpolationMode = v2.InterpolationMode.BILINEAR):
        super().__init__()
        self.scale_range = (float(scale_range[0]), float(scale_range[1]))
        self.interpolation = interpolation

    def make_params(self, flat_inputs: List[Any]) -> Dict[str, Any]:
        """Draw the scale factor and the resulting output size (from the first image or mask)."""
        h, w = next(x.shape[-2:] for x in flat_inputs if isinstance(x, (tv_tensors.Image, tv_tensors.Mask)))
        s = float(torch.empty(1).uniform_(*self.scale_range))
        return {"size": [max(1, int(round(h * s))), max(1, int(round(w * s)))]}

    def transform(self, inpt: Any, params: Dict[str, Any]) -> Any:
        """Resize one input (masks always use nearest neighbour)."""
        return self._call_kernel(TF.resize, inpt, size=params["size"], interpolation=self.interpolation,
                                 antialias=True)


def as_image(image: Any) -> tv_tensors.Image:
    """Wrap a PIL image, HxWx3 array or 3xHxW tensor as a ``tv_tensors.Image`` (uint8 or float in [0, 1])."""
    if isinstance(image, tv_tensors.Image):
        return image
    if isinstance(image, torch.Tensor):
        return tv_tensors.Image(image)
    arr = np.array(image.convert("RGB") if hasattr(image, "convert") else image, copy=True)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    return tv_tensors.Image(torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).contiguous())


def as_mask(mask: Any) -> tv_tensors.Mask:
    """Wrap a PIL label image, HxW array or tensor as an HxW uint8 ``tv_tensors.Mask``."""
    if isinstance(mask, torch.Tensor):
        t = mask
    else:
        t = torch.from_numpy(np.array(mask, copy=True))
    if t.ndim == 3 and t.shape[0] == 1:
        t = t[0]
    return tv_tensors.Mask(t.to(torch.uint8))


class JointTransform:
    """Apply ``ops`` (v2 transforms) jointly to image and mask, then to float, normalise, int64 labels."""

    def __init__(self, ops: Sequence[v2.Transform] = (), normalize: bool = True,
                 mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD):
        self.pipeline = v2.Compose(list(ops)) if ops else None
        self.normalize = normalize
        self.mean, self.std = list(mean), list(std)

    def __call__(self, image: Any, mask: Any) -> Tuple[torch.Tensor, torch.Tensor]:
        """Return ``(image float32 3xHxW, label int64 HxW)`` for one sample."""
        img, msk = as_image(image), as_mask(mask)
        if self.pipeline is not None:
            img, msk = self.pipeline(img, msk)
        img = TF.to_dtype(img, torch.float32, scale=True)
        if self.normalize:
            img = TF.normalize(img, self.mean, self.std)
        return img.as_subclass(torch.Tensor).contiguous(), msk.as_subclass(torch.Tensor).long().contiguous()


def train_transform(crop_size: int | Sequence[int], scale_range: Tuple[float, float] = (0.5, 2.0),
                    hflip: bool = True, normalize: bool = True,
                    interpolation: v2.InterpolationMode = v2.InterpolationMode.BILINEAR) -> JointTransform:
    """Training augmentation: random scale, random crop to ``crop_size`` (mask padded with 255), random h-flip."""
    ops: List[v2.Transform] = []
    if scale_range is not None and tuple(scale_range) != (1.0, 1.0):
        ops.append(RandomScale(scale_range, interpolation))
    ops.append(v2.RandomCrop(_size(crop_size), pad_if_needed=True,
                             fill={tv_tensors.Image: 0, tv_tensors.Mask: IGNORE_INDEX}))
    if hflip:
        ops.append(v2.RandomHorizontalFlip(0.5))
    return JointTransform(ops, normalize=normalize)


def eval_transform(size: int | Sequence[int] | None = None, normalize: bool = True) -> JointTransform:
    """Evaluation transform: optional resize to ``size`` (mask nearest), then to float and normalise."""
    ops = [v2.Resize(_size(size), antialias=True)] if size is not None else []
    return JointTransform(ops, normalize=normalize)
