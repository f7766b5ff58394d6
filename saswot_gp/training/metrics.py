"""Segmentation metrics from a confusion matrix: mIoU, pixel accuracy, per-class IoU.

Rows of the confusion matrix are ground-truth classes, columns predicted classes. Pixels whose label
is ``ignore_index`` (or outside ``[0, num_classes)``) are not counted. A class absent from both the
labels and the predictions has no IoU (NaN) and is excluded from the mean. Scores are fractions in [0, 1].
"""

from __future__ import annotations

from typing import Dict

import torch


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int,
                     ignore_index: int = 255) -> torch.Tensor:
    """``num_classes x num_classes`` int64 confusion matrix (rows: target, cols: prediction) of two label maps."""
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {tuple(pred.shape)} != target shape {tuple(target.shape)}")
    p = pred.reshape(-1).long()
    t = target.reshape(-1).long()
    keep = (t != ignore_index) & (t >= 0) & (t < num_classes) & (p >= 0) & (p < num_classes)
    idx = t[keep] * num_classes + p[keep]
    return torch.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes).cpu()


def scores_from_confusion(conf: torch.Tensor) -> Dict[str, object]:
    """``{'mIoU', 'pixel_acc', 'per_class_iou' (list, NaN = absent), 'num_pixels'}`` from a confusion matrix."""
    conf = conf.double()
    tp = conf.diag()
    union = conf.sum(0) + conf.sum(1) - tp
    iou = torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))
    present = ~torch.isnan(iou)
    total = conf.sum()
    return {
        "mIoU": float(iou[present].mean()) if bool(present.any()) else float("nan"),
        "pixel_acc": float(tp.sum() / total) if total > 0 else float("nan"),
        "per_class_iou": [float(v) for v in iou],
        "num_pixels": int(total),
    }


class SegmentationMeter:
    """Accumulates a confusion matrix over batches of logits or label maps; ``scores()`` summarises it."""

    def __init__(self, num_classes: int, ignore_index: int = 255):
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        self.conf = torch.zeros(self.num_classes, self.num_classes, dtype=torch.int64)

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch: ``pred`` is N x C x H x W logits or N x H x W labels, ``target`` N x H x W labels."""
        if pred.dim() == target.dim() + 1:
            pred = pred.argmax(1)
        self.conf += confusion_matrix(pred, target, self.num_classes, self.ignore_index)

    def scores(self) -> Dict[str, object]:
        """mIoU, pixel accuracy and per-class IoU of everything added so far."""
        return scores_from_confusion(self.conf)


def mean_iou(pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int = 255) -> float:
    """mIoU of one pair of label maps (classes absent from both are excluded)."""
    return float(scores_from_confusion(confusion_matrix(pred, target, num_classes, ignore_index))["mIoU"])

