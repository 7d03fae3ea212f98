"""EfficientRep (YOLOv6's backbone): a RepVGG stem and four stages of a stride-2 RepConv plus a
RepBlock, with SPPF (ReLU: YOLOv6's SimSPPF) at the end.

Every conv is a 3x3 RepConv followed by ReLU, which after :func:`models.blocks_rep.reparameterize`
is a plain biased 3x3 conv: the densest, best-optimised conv shape in CPU inference libraries.
Depth and width multiples scale it like CSP-Darknet (``rep-n`` = (0.33, 0.25), ``rep-s`` =
(0.33, 0.50)).
"""

from __future__ import annotations

from torch import nn

from edgevision.models.backbones.cspdarknet import DarknetStages, scale_depth, scale_width
from edgevision.models.blocks import ActFactory
from edgevision.models.blocks_rep import RepBlock, RepConv

# Full-size (multiple 1.0) channels of the stem and the four stages: YOLOv6's.
BASE_CHANNELS = (64, 128, 256, 512, 1024)
# RepConvs per stage's RepBlock at depth 1.0. YOLOv6 uses (6, 12, 18, 6); half of that keeps the
# 0.33-depth models at (1, 2, 3, 1) blocks, which puts rep-n at yolo-n's FLOPs: dense 3x3 convs
# cost about four times a C3 bottleneck's half-width ones, so the same depth would double them.
BASE_DEPTHS = (3, 6, 9, 3)


class EfficientRep(DarknetStages):
    """YOLOv6-style RepVGG backbone returning the stride 8, 16 and 32 feature maps.

    Args:
        depth_multiple: scales the RepConvs per stage (:data:`BASE_DEPTHS`).
        width_multiple: scales the channels (:data:`BASE_CHANNELS`).
        act: activation factory; ReLU as YOLOv6's n and s models (it fuses into the conv in
            ONNX Runtime, where SiLU costs a separate Sigmoid and Mul).

    Attributes:
        out_channels: channels of the three returned maps.
        strides: [8, 16, 32].
    """

    def __init__(
        self, depth_multiple: float = 0.33, width_multiple: float = 0.25, act: ActFactory = nn.ReLU
    ):
        stem, *channels = [scale_width(c, width_multiple) for c in BASE_CHANNELS]

        def stage(in_channels: int, out_channels: int, depth: int) -> list[nn.Module]:
            return [
                RepConv(in_channels, out_channels, 2, act),
                RepBlock(out_channels, out_channels, depth, act),
            ]

        super().__init__(
            RepConv(3, stem, 2, act),
            stem,
            channels,
            [scale_depth(d, depth_multiple) for d in BASE_DEPTHS],
            stage,
            act,
        )
