"""Hand-designed real-time segmenters to compare searched architectures against."""

from __future__ import annotations

import torch
from torch import nn


class LogitsOnly(nn.Module):
    """Wrap a torchvision segmentation model (which returns ``{'out': logits}``) to return the logits tensor."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits at the input resolution."""
        return self.model(x)["out"]


def lraspp_mobilenet_v3_small(num_classes: int = 11, seed: int = 0) -> nn.Module:
    """torchvision's LRASPP with a MobileNetV3-Small backbone, randomly initialised (no weights downloaded).

    torchvision only ships LRASPP on MobileNetV3-Large; this builds the same head (``LRASPPHead`` on the
    1/8 and 1/16 features) on MobileNetV3-Small's features, as in Howard et al. (2019), seeded by ``seed``.
    """
    from torchvision.models import mobilenet_v3_small
    from torchvision.models.segmentation.lraspp import LRASPP
    from torchvision.models._utils import IntermediateLayerGetter

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        backbone = mobilenet_v3_small(weights=None, dilated=True).features
        # stages: the last block of each output stride; low = 1/8, high = last (1/16 with dilation)
        stage_idx = [0] + [i for i, b in enumerate(backbone) if getattr(b, "_is_cn", False)] + [len(backbone) - 1]
        low_pos, high_pos = stage_idx[-4], stage_idx[-1]
        low_ch, high_ch = backbone[low_pos].out_channels, backbone[high_pos].out_channels
        body = IntermediateLayerGetter(backbone, return_layers={str(low_pos): "low", str(high_pos): "high"})
        model = LRASPP(body, low_ch, high_ch, num_classes)
    return LogitsOnly(model)
