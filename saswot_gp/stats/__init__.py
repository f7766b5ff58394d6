"""Statistics of untrained segmenters: collection, sketching, packing, caching."""

from .cache import batch_digest, build_model, stats_and_targets, stats_for_archs  # noqa: F401
from .collect import ArchStats, collect_stats, segmentation_loss  # noqa: F401
from .pack import PackedStats, pack  # noqa: F401
