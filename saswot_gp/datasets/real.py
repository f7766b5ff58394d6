"""Loaders for real segmentation sets the user already has on disk (nothing is downloaded).

* Cityscapes, through ``torchvision.datasets.Cityscapes``: ``root/leftImg8bit/<split>/<city>/*_leftImg8bit.png``
  and ``root/gtFine/<split>/<city>/*_gtFine_labelIds.png``; label ids are mapped to the 19 train ids,
  everything else to 255.
* CamVid in the common 11-class SegNet layout: ``root/{train,trainannot,val,valannot,test,testannot}``,
  an annotation PNG with the image's file name; values 0..10 are classes, 11 (void) and above -> 255.
"""

from __future__ import annotations

import os
from typing import Any, Callable, List, Optional, Tuple

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ..errors import SaswotError
from .transforms import IGNORE_INDEX, eval_transform

CITYSCAPES_CLASSES: Tuple[str, ...] = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
    "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle")
CAMVID_CLASSES: Tuple[str, ...] = (
    "sky", "building", "pole", "road", "sidewalk", "tree", "sign", "fence", "car", "pedestrian", "bicyclist")
_IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp")

Transform = Callable[[Any, Any], Tuple[torch.Tensor, torch.Tensor]]


def cityscapes_lut() -> np.ndarray:
    """Lookup table (256 entries, uint8) from Cityscapes label ids to the 19 train ids, 255 elsewhere."""
    from torchvision.datasets import Cityscapes

    lut = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    for c in Cityscapes.classes:
        if 0 <= c.id < 256 and 0 <= c.train_id < len(CITYSCAPES_CLASSES):
            lut[c.id] = c.train_id
    return lut


class CityscapesSeg(Dataset):
    """Cityscapes fine annotations as ``(image float32 3xHxW normalised, train-id label int64 HxW)``."""

    num_classes = len(CITYSCAPES_CLASSES)
    ignore_index = IGNORE_INDEX
    class_names = CITYSCAPES_CLASSES

    def __init__(self, root: str, split: str = "train", mode: str = "fine", transform: Optional[Transform] = None):
        from torchvision.datasets import Cityscapes

        layout = (f"expected {root}/leftImg8bit/{split}/<city>/*_leftImg8bit.png and "
                  f"{root}/gtFine/{split}/<city>/*_gtFine_labelIds.png")
        if not os.path.isdir(root):
            raise SaswotError(f"Cityscapes root {root!r} is not a directory; {layout}")
        try:
            self.base = Cityscapes(root, split=split, mode=mode, target_type="semantic")
        except (RuntimeError, ValueError, OSError) as exc:
            raise SaswotError(f"Cityscapes not usable under {root!r} ({str(exc).splitlines()[0]}); {layout}") from None
        order = sorted(range(len(self.base.images)), key=lambda i: self.base.images[i])
        self.base.images = [self.base.images[i] for i in order]
        self.base.targets = [self.base.targets[i] for i in order]
        if not self.base.images:
            raise SaswotError(f"Cityscapes under {root!r} has no {split} images; {layout}")
        missing = [t[0] for t in self.base.targets if not os.path.isfile(t[0])]
        if missing:
            raise SaswotError(f"Cityscapes: {len(missing)} label files missing, e.g. {missing[0]!r}; {layout}")
        self.lut = cityscapes_lut()
        self.transform = transform or eval_transform()

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """Sample ``index`` as ``(image float32 3xHxW, label int64 HxW)`` after the transform."""
        image, target = self.base[index]
        ids = np.asarray(target)
        if ids.ndim == 3:
            ids = ids[..., 0]
        label = self.lut[np.clip(ids.astype(np.int64), 0, 255)]
        return self.transform(image.convert("RGB"), label)


class CamVidSeg(Dataset):
    """CamVid (SegNet 11-class layout) as ``(image float32 3xHxW normalised, label int64 HxW)``, void -> 255."""

    num_classes = len(CAMVID_CLASSES)
    ignore_index = IGNORE_INDEX
    class_names = CAMVID_CLASSES

    def __init__(self, root: str, split: str = "train", transform: Optional[Transform] = None):
        if split not in ("train", "val", "test"):
            raise SaswotError(f"unknown CamVid split {split!r}; expected train, val or test")
        img_dir, ann_dir = os.path.join(root, split), os.path.join(root, split + "annot")
        layout = f"expected folders {img_dir} and {ann_dir} holding images and same-named label PNGs"
        if not (os.path.isdir(img_dir) and os.path.isdir(ann_dir)):
            raise SaswotError(f"CamVid not found under {root!r}; {layout}")
        names = sorted(f for f in os.listdir(img_dir) if f.lower().endswith(_IMAGE_EXTS))
        if not names:
            raise SaswotError(f"CamVid {split} under {root!r} has no images; {layout}")
        self.images: List[str] = []
        self.labels: List[str] = []
        for name in names:
            label = os.path.join(ann_dir, os.path.splitext(name)[0] + ".png")
            if not os.path.isfile(label):
                raise SaswotError(f"CamVid: no label {label!r} for image {name!r}; {layout}")
            self.images.append(os.path.join(img_dir, name))
            self.labels.append(label)
        self.transform = transform or eval_transform()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """Sample ``index`` as ``(image float32 3xHxW, label int64 HxW)`` after the transform."""
        with Image.open(self.images[index]) as im:
            image = im.convert("RGB")
        with Image.open(self.labels[index]) as lab:
            ids = np.asarray(lab)
        if ids.ndim == 3:
            ids = ids[..., 0]
        ids = ids.astype(np.int64)
        label = np.where((ids >= 0) & (ids < self.num_classes), ids, IGNORE_INDEX).astype(np.uint8)
        return self.transform(image, label)
