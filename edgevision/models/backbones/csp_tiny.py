"""The YOLOv4-tiny CSP backbone: two stride-2 convs, three CSP tiny blocks, one 3x3 conv.

A CSP tiny block (darknet's ``route groups=2 group_id=1``) runs a 3x3 conv, sends only the second
half of its channels through two more 3x3 convs, joins them with a 1x1 conv, concatenates that
with the block's first conv and halves the resolution with a 2x2 max-pool. Half the channels skip
the inner convs, so the block costs about half a plain stack while keeping two gradient paths;
there are no residual additions and no depthwise convs, which is why the family runs fast on
CPUs and small NPUs alike.

The maps the detector uses are the blocks' 1x1 "partial" outputs, taken before the concat and
the pool (darknet's FPN routes exactly these): stride 16 from the third block, stride 8 from the
second for the three-scale variant, plus the final stride-32 conv.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from edgevision.models.backbones.cspdarknet import scale_width
from edgevision.models.blocks import ActFactory, ConvBNAct

# Full-size (multiple 1.0) channels: the two stem convs, the three blocks and the last conv.
BASE_CHANNELS = (32, 64, 64, 128, 256, 512)
# darknet's leaky ReLU slope, kept by every YOLOv4-tiny port.
LEAKY = partial(nn.LeakyReLU, 0.1)


class CSPTinyBlock(nn.Module):
    """(B, c_in, H, W) -> pooled (B, 2 * channels, H/2, W/2) and partial (B, channels, H, W).

    Args:
        in_channels: input channels.
        channels: width of the block's first conv and of its 1x1 partial output (even).
        act: activation factory.
    """

    def __init__(self, in_channels: int, channels: int, act: ActFactory = LEAKY):
        super().__init__()
        if channels % 2:
            raise ValueError(f"CSP tiny block needs an even width to split, got {channels}")
        half = channels // 2
        self.conv1 = ConvBNAct(in_channels, channels, 3, act=act)
        self.conv2 = ConvBNAct(half, half, 3, act=act)
        self.conv3 = ConvBNAct(half, half, 3, act=act)
        self.conv4 = ConvBNAct(channels, channels, 1, act=act)
        self.pool = nn.MaxPool2d(2, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.conv1(x)
        # darknet's group_id=1: the second half of the channels goes through the inner convs.
        inner = self.conv2(x[:, x.shape[1] // 2 :])
        partial_out = self.conv4(torch.cat([self.conv3(inner), inner], dim=1))
        return self.pool(torch.cat([x, partial_out], dim=1)), partial_out


class CSPTiny(nn.Module):
    """YOLOv4-tiny backbone returning the stride 16 and 32 maps (and stride 8 if asked).

    Args:
        width_multiple: scales the channels (32, 64, 64, 128, 256, 512), rounded up to 8.
        three_scale: also return the stride-8 map (the ``yolov4-tiny-3l`` layout).
        act: activation factory; leaky ReLU 0.1 as darknet.

    Attributes:
        out_channels: channels of the returned maps, finest first.
        strides: (16, 32), or (8, 16, 32) with ``three_scale``.
    """

    def __init__(
        self, width_multiple: float = 1.0, three_scale: bool = False, act: ActFactory = LEAKY
    ):
        super().__init__()
        stem1, stem2, block1, block2, block3, last = (
            scale_width(c, width_multiple) for c in BASE_CHANNELS
        )
        self.stem = nn.Sequential(
            ConvBNAct(3, stem1, 3, 2, act=act), ConvBNAct(stem1, stem2, 3, 2, act=act)
        )
        self.block1 = CSPTinyBlock(stem2, block1, act)  # -> stride 8
        self.block2 = CSPTinyBlock(2 * block1, block2, act)  # -> stride 16; partial at 8
        self.block3 = CSPTinyBlock(2 * block2, block3, act)  # -> stride 32; partial at 16
        self.last = ConvBNAct(2 * block3, last, 3, act=act)
        self.three_scale = three_scale
        self.out_channels = [block2, block3, last] if three_scale else [block3, last]
        self.strides = [8, 16, 32] if three_scale else [16, 32]

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, H, W) -> [(B, c4, H/16, W/16), (B, c5, H/32, W/32)], with (B, c3, H/8, W/8)
        first when ``three_scale``; H and W divisible by 32."""
        x, _ = self.block1(self.stem(x))
        x, partial8 = self.block2(x)
        x, partial16 = self.block3(x)
        features = [partial16, self.last(x)]
        return [partial8, *features] if self.three_scale else features

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.forward_features(x)
