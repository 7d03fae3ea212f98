"""ResNet-18/34 (He et al., 2016) with torchvision's parameter names and shapes.

Names follow torchvision's ``ResNet`` (``conv1``, ``bn1``, ``layer1.0.conv1``, ...,
``layer2.0.downsample.0``, ``fc``), so a user's torchvision ``resnet18`` ``.pth`` loads with
``load_state_dict``. Only the basic (two 3x3 convs) block is here: the bottleneck variants
(ResNet-50 and up) are too heavy for the CPU targets this project serves.
"""

from __future__ import annotations

import torch
from torch import nn

# Basic blocks per stage for each depth (paper Table 1).
BLOCKS_PER_STAGE: dict[int, tuple[int, int, int, int]] = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}
STAGE_CHANNELS = (64, 128, 256, 512)


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers plus the input (projected by a strided 1x1 conv when shapes change)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = _conv3x3(in_channels, out_channels, stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(out_channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


def _stage(in_channels: int, out_channels: int, blocks: int, stride: int) -> nn.Sequential:
    layers = [BasicBlock(in_channels, out_channels, stride)]
    layers += [BasicBlock(out_channels, out_channels) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class ResNet(nn.Module):
    """ResNet classifier: (B, 3, H, W) ImageNet-normalised RGB -> (B, num_classes) logits.

    Args:
        blocks_per_stage: basic blocks in ``layer1`` .. ``layer4``.
        num_classes: classifier outputs.

    The module order (stem, pool, four stages, ``avgpool``, ``fc``) is torchvision's, so
    ``list(model.children())[:N]`` means the same layers as there.
    """

    def __init__(self, blocks_per_stage: tuple[int, int, int, int], num_classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, STAGE_CHANNELS[0], 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(STAGE_CHANNELS[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        c1, c2, c3, c4 = STAGE_CHANNELS
        self.layer1 = _stage(c1, c1, blocks_per_stage[0], stride=1)
        self.layer2 = _stage(c1, c2, blocks_per_stage[1], stride=2)
        self.layer3 = _stage(c2, c3, blocks_per_stage[2], stride=2)
        self.layer4 = _stage(c3, c4, blocks_per_stage[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c4, num_classes)
        for module in self.modules():  # torchvision's init; fc keeps PyTorch's default
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet(depth: int = 18, num_classes: int = 1000) -> ResNet:
    """torchvision's ``resnet18`` (11,689,512 parameters at 1000 classes) or ``resnet34``."""
    if depth not in BLOCKS_PER_STAGE:
        raise ValueError(f"ResNet depth {depth} is not one of {sorted(BLOCKS_PER_STAGE)}")
    return ResNet(BLOCKS_PER_STAGE[depth], num_classes)
