"""Backbones: each returns stride 8/16/32 feature maps from ``forward_features``."""

from edgevision.models.backbones.cspdarknet import CSPDarknet
from edgevision.models.backbones.shufflenetv2 import ShuffleNetV2, shufflenet_v2

__all__ = ["CSPDarknet", "ShuffleNetV2", "shufflenet_v2"]
