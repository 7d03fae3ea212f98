"""The YOLOv4-tiny FPN: one top-down pass, no bottom-up path.

At the coarsest level a 1x1 conv halves the channels (the "lateral"), and a 3x3 conv makes that
level's output. Going one level finer, a 1x1 conv halves the running map again, it is upsampled
x2 and concatenated with the backbone map of that level, and a 3x3 conv makes the output. Each
output has the channels of its backbone input (512 and 256 at width 1.0), as in darknet's
``yolov4-tiny.cfg``, where these 3x3 convs sit just before the 1x1 predictors.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from edgevision.models.backbones.csp_tiny import LEAKY
from edgevision.models.blocks import ActFactory, ConvBNAct


class TinyFPN(nn.Module):
    """Top-down feature pyramid of YOLOv4-tiny over two (or three) levels.

    Args:
        in_channels: channels of the backbone maps, finest first (e.g. ``[256, 512]``).
        act: activation factory; leaky ReLU 0.1 as darknet.

    Attributes:
        out_channels: channels of the returned maps, finest first (equal to ``in_channels``).
    """

    def __init__(self, in_channels: Sequence[int], act: ActFactory = LEAKY):
        super().__init__()
        channels = [int(c) for c in in_channels]
        if len(channels) < 2:
            raise ValueError(f"TinyFPN needs at least two levels, got in_channels={channels}")
        self.lateral = ConvBNAct(channels[-1], channels[-1] // 2, 1, act=act)
        # Coarsest first: the order the top-down pass runs in.
        self.outputs = nn.ModuleList([ConvBNAct(channels[-1] // 2, channels[-1], 3, act=act)])
        self.reduces = nn.ModuleList()
        running = channels[-1] // 2  # channels of the map passed down to the next finer level
        for level_channels in reversed(channels[:-1]):
            self.reduces.append(ConvBNAct(running, level_channels // 2, 1, act=act))
            running = level_channels // 2 + level_channels
            self.outputs.append(ConvBNAct(running, level_channels, 3, act=act))
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.out_channels = channels

    def forward(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Backbone maps, finest first -> the same number of maps, finest first, same sizes."""
        running = self.lateral(features[-1])
        outputs = [self.outputs[0](running)]
        for reduce, output, skip in zip(
            self.reduces, self.outputs[1:], reversed(features[:-1]), strict=True
        ):
            running = torch.cat([self.upsample(reduce(running)), skip], dim=1)
            outputs.append(output(running))
        return outputs[::-1]
