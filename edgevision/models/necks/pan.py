"""Path-aggregation necks: top-down (FPN) then bottom-up fusion of the stride 8/16/32 maps.

``PAN`` is the YOLOv5 v6 neck (concatenate + C3); ``LightPAN`` is the nano neck (add +
depthwise-separable convs at one common width), in the spirit of NanoDet-Plus's Ghost-PAN but
simpler, because on a CPU the depthwise/pointwise pair is the cheapest fusion that still mixes
channels. Both take and return a list of three (B, C_i, H/s_i, W/s_i) maps, finest first.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from edgevision.models.backbones.cspdarknet import scale_depth
from edgevision.models.blocks import C3, ActFactory, ConvBNAct, DepthwiseSeparable


def _upsample(x: torch.Tensor) -> torch.Tensor:
    # A fixed factor of 2 (not a target size) keeps the exported Resize shape-agnostic, so one ONNX
    # file serves every input size divisible by 32.
    return nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")


class PAN(nn.Module):
    """YOLOv5 v6 PAN: lateral 1x1 convs, upsample + concat + C3 down the pyramid, then stride-2
    convs + concat + C3 back up.

    Args:
        in_channels: channels (c3, c4, c5) of the backbone maps.
        depth_multiple: scales the 3 bottlenecks inside each C3 (as the backbone does).
        act: activation factory.

    Attributes:
        out_channels: equal to ``in_channels`` (each level keeps its backbone width).
    """

    def __init__(
        self, in_channels: Sequence[int], depth_multiple: float = 0.33, act: ActFactory = nn.SiLU
    ):
        super().__init__()
        c3, c4, c5 = in_channels
        depth = scale_depth(3, depth_multiple)
        self.lateral5 = ConvBNAct(c5, c4, 1, act=act)
        self.top_down4 = C3(2 * c4, c4, depth, shortcut=False, act=act)
        self.lateral4 = ConvBNAct(c4, c3, 1, act=act)
        self.top_down3 = C3(2 * c3, c3, depth, shortcut=False, act=act)
        self.down3 = ConvBNAct(c3, c3, 3, 2, act=act)
        self.bottom_up4 = C3(2 * c3, c4, depth, shortcut=False, act=act)
        self.down4 = ConvBNAct(c4, c4, 3, 2, act=act)
        self.bottom_up5 = C3(2 * c4, c5, depth, shortcut=False, act=act)
        self.out_channels = [c3, c4, c5]

    def forward(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """[(B, c3, H/8, W/8), (B, c4, ...), (B, c5, ...)] -> the same shapes, fused."""
        x3, x4, x5 = features
        lateral5 = self.lateral5(x5)
        lateral4 = self.lateral4(self.top_down4(torch.cat([_upsample(lateral5), x4], dim=1)))
        out3 = self.top_down3(torch.cat([_upsample(lateral4), x3], dim=1))
        out4 = self.bottom_up4(torch.cat([self.down3(out3), lateral4], dim=1))
        out5 = self.bottom_up5(torch.cat([self.down4(out4), lateral5], dim=1))
        return [out3, out4, out5]


class LightPAN(nn.Module):
    """Nano neck: 1x1 convs to one width, add-based top-down and bottom-up paths.

    Adding instead of concatenating keeps every fusion conv at ``width`` channels, and the
    bottom-up downsampling is a depthwise 3x3 stride-2 conv (learned, nearly free) rather than a
    full conv. Each fused map goes through one depthwise-separable conv.

    Args:
        in_channels: channels of the three backbone maps.
        width: the common channel count of every output level.
        act: activation factory.

    Attributes:
        out_channels: ``[width] * 3``.
    """

    def __init__(self, in_channels: Sequence[int], width: int = 96, act: ActFactory = nn.ReLU):
        super().__init__()
        self.reduce = nn.ModuleList(ConvBNAct(c, width, 1, act=act) for c in in_channels)
        self.top_down4 = DepthwiseSeparable(width, width, 3, act=act)
        self.top_down3 = DepthwiseSeparable(width, width, 3, act=act)
        self.down3 = ConvBNAct(width, width, 3, 2, groups=width, act=act)
        self.down4 = ConvBNAct(width, width, 3, 2, groups=width, act=act)
        self.bottom_up4 = DepthwiseSeparable(width, width, 3, act=act)
        self.bottom_up5 = DepthwiseSeparable(width, width, 3, act=act)
        self.out_channels = [width] * 3

    def forward(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Three (B, C_i, H/s_i, W/s_i) maps -> three (B, width, H/s_i, W/s_i) maps."""
        x3, x4, x5 = (reduce(x) for reduce, x in zip(self.reduce, features, strict=True))
        top4 = self.top_down4(x4 + _upsample(x5))
        out3 = self.top_down3(x3 + _upsample(top4))
        out4 = self.bottom_up4(top4 + self.down3(out3))
        out5 = self.bottom_up5(x5 + self.down4(out4))
        return [out3, out4, out5]
