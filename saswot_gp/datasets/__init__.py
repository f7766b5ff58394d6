"""Segmentation data sets: the embedded digit scenes and loaders for the user's Cityscapes / CamVid copies."""

from __future__ import annotations

from typing import Optional

from torch.utils.data import Dataset

from ..errors import SaswotError
from .digits import DigitScenes, source_indices  # noqa: F401
from .real import CamVidSeg, CityscapesSeg, cityscapes_lut  # noqa: F401
from .transforms import JointTransform, RandomScale, eval_transform, train_transform  # noqa: F401

DATASETS = ("digits", "cityscapes", "camvid")


def get_dataset(name: str, split: str = "train", root: Optional[str] = None, **kwargs) -> Dataset:
    """Instantiate data set ``name`` ('digits', 'cityscapes' or 'camvid') for ``split``; real sets need ``root``."""
    if name == "digits":
        return DigitScenes(split=split, **kwargs)
    if name in ("cityscapes", "camvid"):
        if not root:
            raise SaswotError(f"data set {name!r} needs root=<folder with your copy of {name}>")
        cls = CityscapesSeg if name == "cityscapes" else CamVidSeg
        return cls(root, split=split, **kwargs)
    raise SaswotError(f"unknown data set {name!r}; expected one of {list(DATASETS)}")
