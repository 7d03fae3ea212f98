"""Rep-PAN (YOLOv6's RepPANNeck): top-down then bottom-up fusion of the stride 8/16/32 maps, with
RepBlocks as the fusion convs.

Unlike the YOLOv5 PAN, each level is narrowed on the way down (1x1 ``reduce`` convs halve the
channels before upsampling), so the neck's outputs are half the backbone's widths: at width 0.25,
[32, 64, 128] instead of [64, 128, 256]. That is where YOLOv6 saves the FLOPs its dense 3x3
RepConvs spend.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from edgevision.models.blocks import ActFactory, ConvBNAct
from edgevision.models.blocks_rep import RepBlock


def _upsample(x: torch.Tensor) -> torch.Tensor:
    # A fixed factor (not a target size) keeps the exported Resize shape-agnostic: one ONNX file
    # serves every input size divisible by 32. YOLOv6 uses a learned 2x2 transposed conv; nearest
    # upsampling is free and the 1x1 reduce conv before it already mixes the channels.
    return nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")


class RepPAN(nn.Module):
    """Rep-PAN neck.

    Top-down: ``reduce5`` (1x1, c5 -> c4/2), upsample, concat with c4, RepBlock to c4/2;
    ``reduce4`` (1x1 -> c3/2), upsample, concat with c3, RepBlock -> P3 out (c3/2).
    Bottom-up: stride-2 3x3 conv, concat with the reduced map of the level above, RepBlock ->
    P4 out (c4/2); the same again -> P5 out (c5/2).

    Args:
        in_channels: channels (c3, c4, c5) of the backbone maps.
        num_blocks: RepConvs in each of the four RepBlocks.
        act: activation factory.

    Attributes:
        out_channels: [c3 // 2, c4 // 2, c5 // 2].
    """

    def __init__(self, in_channels: Sequence[int], num_blocks: int = 1, act: ActFactory = nn.ReLU):
        super().__init__()
        c3, c4, c5 = in_channels
        out3, out4, out5 = c3 // 2, c4 // 2, c5 // 2
        self.reduce5 = ConvBNAct(c5, out4, 1, act=act)
        self.top_down4 = RepBlock(out4 + c4, out4, num_blocks, act)
        self.reduce4 = ConvBNAct(out4, out3, 1, act=act)
        self.top_down3 = RepBlock(out3 + c3, out3, num_blocks, act)
        self.down3 = ConvBNAct(out3, out3, 3, 2, act=act)
        self.bottom_up4 = RepBlock(2 * out3, out4, num_blocks, act)
        self.down4 = ConvBNAct(out4, out4, 3, 2, act=act)
        self.bottom_up5 = RepBlock(2 * out4, out5, num_blocks, act)
        self.out_channels = [out3, out4, out5]

    def forward(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """[(B, c3, H/8, W/8), (B, c4, H/16, W/16), (B, c5, H/32, W/32)] ->
        [(B, c3/2, H/8, W/8), (B, c4/2, H/16, W/16), (B, c5/2, H/32, W/32)]."""
        x3, x4, x5 = features
        reduced5 = self.reduce5(x5)
        reduced4 = self.reduce4(self.top_down4(torch.cat([_upsample(reduced5), x4], dim=1)))
        out3 = self.top_down3(torch.cat([_upsample(reduced4), x3], dim=1))
        out4 = self.bottom_up4(torch.cat([self.down3(out3), reduced4], dim=1))
        out5 = self.bottom_up5(torch.cat([self.down4(out4), reduced5], dim=1))
        return [out3, out4, out5]
