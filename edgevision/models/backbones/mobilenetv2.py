"""MobileNetV2 (Sandler et al., 2018) with torchvision's parameter names and shapes.

The layout (``features.0`` stem, ``features.1`` .. ``features.17`` inverted residuals whose layers
sit in ``.conv``, ``features.18`` the 1x1 to 1280 channels, ``classifier.1`` the linear layer) is
kept exactly so a user's torchvision ``mobilenet_v2`` ``.pth`` loads with ``load_state_dict``.
That is why the blocks are positional ``nn.Sequential`` rather than named sub-modules.
"""

from __future__ import annotations

import torch
from torch import nn

# (expansion t, output channels c, repeats n, first stride s) per stage: the paper's Table 2.
INVERTED_RESIDUAL_SETTING: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of ``divisor`` (never down by more than 10%).

    Multiples of 8 keep vectorised kernels and tensor cores fully used; the rule is torchvision's
    ``_make_divisible``, so widths other than 1.0 also give torchvision's shapes.
    """
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def conv_bn_relu6(
    in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, groups: int = 1
) -> nn.Sequential:
    """Conv (no bias) -> BN -> ReLU6 as a positional Sequential (torchvision's
    ``Conv2dNormActivation``: keys ``.0.weight``, ``.1.*``)."""
    return nn.Sequential(
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            (kernel_size - 1) // 2,
            groups=groups,
            bias=False,
        ),
        nn.BatchNorm2d(out_channels),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    """1x1 expand (skipped when ``expand_ratio`` is 1) -> depthwise 3x3 -> linear 1x1 project.

    The projection has no activation: the paper shows ReLU in the narrow bottleneck destroys
    information. The input is added back when the shapes allow (stride 1, same channels).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, expand_ratio: int):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"InvertedResidual stride must be 1 or 2, got {stride}")
        hidden = int(round(in_channels * expand_ratio))
        self.use_residual = stride == 1 and in_channels == out_channels
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(conv_bn_relu6(in_channels, hidden, kernel_size=1))
        layers += [
            conv_bn_relu6(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, out_channels, 1, 1, 0, bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 classifier: (B, 3, H, W) ImageNet-normalised RGB -> (B, num_classes) logits.

    Args:
        num_classes: classifier outputs.
        width_multiple: scales every layer's channels (torchvision's ``width_mult``).
        dropout: dropout before the linear layer (``classifier.0``).

    Attributes:
        last_channels: features entering the classifier (1280 at width <= 1.0).
    """

    def __init__(self, num_classes: int = 1000, width_multiple: float = 1.0, dropout: float = 0.2):
        super().__init__()
        in_channels = make_divisible(32 * width_multiple)
        self.last_channels = make_divisible(1280 * max(1.0, width_multiple))
        layers: list[nn.Module] = [conv_bn_relu6(3, in_channels, stride=2)]
        for expand_ratio, channels, repeats, stride in INVERTED_RESIDUAL_SETTING:
            out_channels = make_divisible(channels * width_multiple)
            for index in range(repeats):
                layers.append(
                    InvertedResidual(
                        in_channels, out_channels, stride if index == 0 else 1, expand_ratio
                    )
                )
                in_channels = out_channels
        layers.append(conv_bn_relu6(in_channels, self.last_channels, kernel_size=1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout), nn.Linear(self.last_channels, num_classes)
        )
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean(dim=(2, 3)))


def _init_weights(model: nn.Module) -> None:
    """torchvision's initialisation: He (fan-out) convs, unit BN, small-normal linear layer."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0, 0.01)
            nn.init.zeros_(module.bias)


def mobilenet_v2(
    num_classes: int = 1000, width_multiple: float = 1.0, dropout: float = 0.2
) -> MobileNetV2:
    """torchvision's ``mobilenet_v2`` (3,504,872 parameters at 1000 classes, width 1.0)."""
    return MobileNetV2(num_classes, width_multiple, dropout)
