"""CSP-Darknet in the YOLOv5 v6 layout: 6x6 stride-2 stem, four Conv + C3 stages, SPPF at the end.

Depth and width multiples scale one architecture from nano to large, as in YOLOv5:
``yolo-n`` = (0.33, 0.25), ``yolo-s`` = (0.33, 0.50).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from edgevision.models.blocks import C3, SPPF, ActFactory, ConvBNAct

# Full-size (multiple 1.0) channels of the stem and the four stages, and C3 blocks per stage.
BASE_CHANNELS = (64, 128, 256, 512, 1024)
BASE_DEPTHS = (3, 6, 9, 3)


def scale_depth(num_blocks: int, depth_multiple: float) -> int:
    """Blocks after the depth multiple: at least one, rounded (YOLOv5's rule)."""
    return max(round(num_blocks * depth_multiple), 1)


def scale_width(channels: int, width_multiple: float, divisor: int = 8) -> int:
    """Channels after the width multiple, rounded up to a multiple of ``divisor`` (SIMD-friendly)."""
    return math.ceil(channels * width_multiple / divisor) * divisor


# (in_channels, out_channels, depth) -> the modules of one stage: a stride-2 conv, then its blocks.
StageFactory = Callable[[int, int, int], list[nn.Module]]


class DarknetStages(nn.Module):
    """The shape CSP-Darknet and EfficientRep share: a stem, four stages each opened by a stride-2
    conv, SPPF closing the last; returns the stride 8, 16 and 32 maps. Module names (``stem``,
    ``stage1`` .. ``stage4``) are the checkpoints' keys.

    Args:
        stem: the stride-2 stem, ``stem_channels`` out.
        channels, depths: the four stages' output channels and block counts (already scaled).
        stage: builds one stage's modules.
        act: the activation of the closing SPPF.
    """

    def __init__(
        self,
        stem: nn.Module,
        stem_channels: int,
        channels: list[int],
        depths: list[int],
        stage: StageFactory,
        act: ActFactory,
    ):
        super().__init__()
        self.stem = stem
        in_channels = stem_channels
        stages = []
        for out_channels, depth in zip(channels, depths, strict=True):
            stages.append(nn.Sequential(*stage(in_channels, out_channels, depth)))
            in_channels = out_channels
        stages[-1].append(SPPF(in_channels, in_channels, 5, act=act))
        self.stage1, self.stage2, self.stage3, self.stage4 = stages
        self.out_channels = channels[1:]
        self.strides = [8, 16, 32]

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, H, W) -> [(B, c3, H/8, W/8), (B, c4, H/16, W/16), (B, c5, H/32, W/32)]."""
        x = self.stage1(self.stem(x))
        c3 = self.stage2(x)
        c4 = self.stage3(c3)
        return [c3, c4, self.stage4(c4)]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.forward_features(x)


class CSPDarknet(DarknetStages):
    """YOLOv5 v6 backbone returning the stride 8, 16 and 32 feature maps.

    Args:
        depth_multiple: scales the C3 block counts (3, 6, 9, 3).
        width_multiple: scales the channels (64, 128, 256, 512, 1024).
        act: activation factory; SiLU as in YOLOv5.

    Attributes:
        out_channels: channels of the three returned maps.
        strides: (8, 16, 32).
    """

    def __init__(
        self, depth_multiple: float = 0.33, width_multiple: float = 0.25, act: ActFactory = nn.SiLU
    ):
        stem, *channels = [scale_width(c, width_multiple) for c in BASE_CHANNELS]

        def stage(in_channels: int, out_channels: int, depth: int) -> list[nn.Module]:
            return [
                ConvBNAct(in_channels, out_channels, 3, 2, act=act),
                C3(out_channels, out_channels, depth, shortcut=True, act=act),
            ]

        # The 6x6 stride-2 stem replaced YOLOv5's Focus slice in v6: same receptive field, and a
        # plain conv exports and runs faster than space-to-depth slicing.
        super().__init__(
            ConvBNAct(3, stem, 6, 2, act=act, padding=2),
            stem,
            channels,
            [scale_depth(d, depth_multiple) for d in BASE_DEPTHS],
            stage,
            act,
        )
