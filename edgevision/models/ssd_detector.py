"""SSD detectors: SSDLite on MobileNetV2 and the fastai multi-grid SSD on ShuffleNetV2.

Both are ``Detector(backbone, neck, head)``: the backbone gives a stride-16 and a stride-32 map,
the neck (:class:`SSDExtras`) appends stride-2 levels down to a 1x1 grid at 320 px, and the
:class:`~edgevision.models.heads.ssd.SSDHead` predicts offsets and C + 1 logits (background
first) for every prior. Strides are nominally (16, 32, 64, 128, 256, 512); the extra levels
round up (``ceil``), so inputs need only be multiples of 32 (``size_divisor=32``).

**ssd-grid prior table** (:func:`ssd_grid`, 320 x 320 input): every cell has 9 priors, the
(w, h) shapes (1, 1), (1, 0.5), (0.5, 1) of the cell at zoom 0.7 | 1.0 | 1.3, here in pixels
(sizes above the input are clipped to it; a 256 x 320 input keeps the relative sizes, so its
heights are 0.8 of these)::

    level stride cells priors  (w x h) per cell, zoom by zoom
    0   16 20x20 3600  11x11 11x6 6x11 | 16x16 16x8 8x16 | 21x21 21x10 10x21
    1   32 10x10  900  22x22 22x11 11x22 | 32x32 32x16 16x32 | 42x42 42x21 21x42
    2   64  5x5   225  45x45 45x22 22x45 | 64x64 64x32 32x64 | 83x83 83x42 42x83
    3  128  3x3    81  75x75 75x37 37x75 | 107x107 107x53 53x107 | 139x139 139x69 69x139
    4  256  2x2    36  112x112 112x56 56x112 | 160x160 160x80 80x160 | 208x208 208x104 104x208
    5  512  1x1     9  224x224 224x112 112x224 | 320x320 320x160 160x320 | 320x320 320x208 208x320
    total priors 4851

(printed by ``python -m edgevision.models.ssd_detector``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from edgevision.models.backbones.mobilenetv2 import make_divisible, mobilenet_v2
from edgevision.models.backbones.shufflenetv2 import shufflenet_v2
from edgevision.models.blocks import ActFactory, ConvBNAct
from edgevision.models.codecs.ssd import ceil_div, grid_prior_levels, ssd_prior_levels
from edgevision.models.detector import Detector
from edgevision.models.heads.ssd import SSDHead

SSD_STRIDES = (16, 32, 64, 128, 256, 512)
SIZE_DIVISOR = 32  # the backbones' stride; the extra levels round up
GRID_DESIGN_SIZE = 320  # ssd-grid sizes its priors to the cells of a 320 x 320 input
# The stride-16 map is the expansion (1x1 conv) of block 14, the first stride-2 block of the
# 160-channel stage: SSDLite's "expansion of layer 15" (Sandler et al. 2018, section 6.2).
_EXPANSION_BLOCK = 14


class MobileNetV2Features(nn.Module):
    """MobileNetV2 trunk with torchvision's keys (``features.0`` .. ``features.18``), returning
    the 576-channel expansion of block 14 (stride 16) and the 1280-channel last conv (stride 32).

    Args:
        width_multiple: torchvision's ``width_mult``.

    Attributes:
        out_channels: channels of the two maps; strides: (16, 32).
    """

    def __init__(self, width_multiple: float = 1.0):
        super().__init__()
        network = mobilenet_v2(1, width_multiple)  # the classifier is dropped below
        self.features = network.features
        expansion = self.features[_EXPANSION_BLOCK].conv[0]
        self.out_channels = [expansion[0].out_channels, network.last_channels]
        self.strides = [16, 32]

    def forward_features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, H, W) -> [(B, 576, H/16, W/16), (B, 1280, H/32, W/32)] at width 1.0."""
        x = self.features[:_EXPANSION_BLOCK](images)
        block = self.features[_EXPANSION_BLOCK]  # stride 2, no residual: safe to split
        expanded = block.conv[0](x)
        x = self.features[_EXPANSION_BLOCK + 1 :](block.conv[1:](expanded))
        return [expanded, x]

    def load_imagenet_state_dict(self, state_dict: Mapping[str, torch.Tensor]) -> list[str]:
        """Load a torchvision-layout MobileNetV2 classifier ``.pth``: every ``features.*`` key
        must match (a wrong width fails loudly); ``classifier.*`` keys are skipped.

        Returns:
            The skipped keys.
        """
        skipped = [key for key in state_dict if key.startswith("classifier.")]
        self.load_state_dict({k: v for k, v in state_dict.items() if k not in skipped}, strict=True)
        return skipped


class SSDExtras(nn.Module):
    """Neck: the backbone levels unchanged, then one extra stride-2 block per added level, each
    fed by the previous level (so sizes go ``ceil(prev / 2)``).

    Args:
        in_channels: channels of the backbone levels.
        extra_channels: output channels of each extra block.
        block: ``block(in_channels, out_channels)`` -> a stride-2 module.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        extra_channels: Sequence[int],
        block: Callable[[int, int], nn.Module],
    ):
        super().__init__()
        previous = [in_channels[-1], *extra_channels[:-1]]
        self.blocks = nn.ModuleList(
            block(a, b) for a, b in zip(previous, extra_channels, strict=True)
        )
        self.out_channels = [*in_channels, *extra_channels]

    def forward(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        levels = list(features)
        for block in self.blocks:
            levels.append(block(levels[-1]))
        return levels


def lite_extra_block(in_channels: int, out_channels: int, act: ActFactory = nn.ReLU6) -> nn.Module:
    """SSDLite's extra block: 1x1 to half width, depthwise 3x3 stride 2 (padding 1), 1x1 out."""
    hidden = out_channels // 2
    return nn.Sequential(
        ConvBNAct(in_channels, hidden, 1, act=act),
        ConvBNAct(hidden, hidden, 3, 2, groups=hidden, act=act),
        ConvBNAct(hidden, out_channels, 1, act=act),
    )


def grid_extra_block(in_channels: int, out_channels: int) -> nn.Module:
    """The fastai lesson's ``StdConv``: a full 3x3 stride-2 conv, BN, ReLU (dropout left out)."""
    return ConvBNAct(in_channels, out_channels, 3, 2, act=nn.ReLU)


def ssdlite_mnv2(num_classes: int, *, width_multiple: float = 1.0) -> Detector:
    """SSDLite with a MobileNetV2 backbone (320 px; Sandler et al. 2018).

    Levels: block-14 expansion (stride 16), last conv (stride 32), then four
    :func:`lite_extra_block` levels of 512, 256, 256, 128 channels (times ``width_multiple``);
    6 SSD priors per cell (:func:`ssd_prior_levels`: scales 0.2 .. 0.95, ratios 2 and 3, the
    table in ``models/codecs/ssd.py``); trained with mined softmax cross entropy.
    """
    backbone = MobileNetV2Features(width_multiple)
    extra_channels = [max(16, make_divisible(c * width_multiple)) for c in (512, 256, 256, 128)]
    neck = SSDExtras(backbone.out_channels, extra_channels, lite_extra_block)
    head = SSDHead(
        neck.out_channels, num_classes, ssd_prior_levels(len(SSD_STRIDES)), SIZE_DIVISOR,
        scores="softmax", act=nn.ReLU6,
    )  # fmt: skip
    return Detector(backbone, neck, head, SSD_STRIDES, size_divisor=SIZE_DIVISOR)


def ssd_grid(num_classes: int) -> Detector:
    """The fastai multi-grid SSD: ShuffleNetV2 x0.5 stage 3 (stride 16) and stage 4 (stride 32),
    four :func:`grid_extra_block` levels of 128 channels, 9 priors per cell from the cell size
    (:func:`grid_prior_levels`, the table in the module docstring), the SSDLite predictors, and
    sigmoid scores trained with the focal variant of ``SSDLoss`` (``head.loss_options``).
    """
    backbone = shufflenet_v2(0.5, out_stages=(3, 4))
    neck = SSDExtras(backbone.out_channels, [128] * 4, grid_extra_block)
    grids = [ceil_div(GRID_DESIGN_SIZE, stride) for stride in SSD_STRIDES]
    head = SSDHead(
        neck.out_channels, num_classes, grid_prior_levels(grids), SIZE_DIVISOR,
        scores="sigmoid", act=nn.ReLU,
    )  # fmt: skip
    return Detector(backbone, neck, head, SSD_STRIDES, size_divisor=SIZE_DIVISOR)


def prior_table(detector: Detector, input_hw: tuple[int, int]) -> str:
    """A text table of an SSD detector's priors per level at ``input_hw``: (w x h) in pixels,
    one group per zoom (the module docstring's table)."""
    height, width = input_hw
    codec = detector.codec
    lines = ["    level stride cells priors  (w x h) per cell, zoom by zoom"]
    for index, (level, stride, (rows, cols)) in enumerate(
        zip(codec.levels, codec.strides, codec.feature_sizes(input_hw), strict=True)
    ):
        sizes = [f"{w * width:.0f}x{h * height:.0f}" for w, h in level.sizes()]
        step = len(level.shapes)
        groups = " | ".join(" ".join(sizes[i : i + step]) for i in range(0, len(sizes), step))
        count = rows * cols * len(sizes)
        lines.append(f"    {index:<2}{stride:>4} {rows:>2}x{cols:<2}{count:>5}  {groups}")
    lines.append(f"    total priors {codec.num_priors(input_hw)}")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - prints the docstring's table
    for name, build in (("ssdlite-mnv2", ssdlite_mnv2), ("ssd-grid", ssd_grid)):
        print(name, "at 320 x 320\n" + prior_table(build(80), (320, 320)) + "\n")
