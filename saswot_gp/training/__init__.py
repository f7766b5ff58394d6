"""Training, evaluation (mIoU, pixel accuracy) and latency measurement of segmenters."""

from .metrics import SegmentationMeter, confusion_matrix, mean_iou, scores_from_confusion  # noqa: F401
from .speed import measure_latency  # noqa: F401
from .train import evaluate, load_checkpoint, save_checkpoint, train_arch, train_segmenter  # noqa: F401
