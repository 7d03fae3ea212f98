"""Backbones: each returns stride 8/16/32 feature maps from ``forward_features``."""

from .cspdarknet import CSPDarknet
from .shufflenetv2 import ShuffleNetV2, shufflenet_v2

__all__ = ["CSPDarknet", "ShuffleNetV2", "shufflenet_v2"]
