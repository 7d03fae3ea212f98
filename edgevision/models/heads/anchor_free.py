"""Decoupled anchor-free detection head (YOLOX / NanoDet-Plus family).

Each level has its own weights (levels see objects of different scale, and unshared weights cost
parameters, not time). Per level: an optional 1x1 stem to the head width, a classification branch
and a box branch of ``num_convs`` convs each, then 1x1 predictors: C class logits and 4 raw
``l, t, r, b`` distances. The output follows the detector raw-output contract: one (B, A, 4 + C)
tensor, levels in stride order, row-major within a level, box channels first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from edgevision.models.blocks import ActFactory, ConvBNAct, DepthwiseSeparable
from edgevision.models.codecs.anchor_free import AnchorFreeCodec

# Class prior 0.01: at the start every point predicts "background" with 99 % confidence, so the
# thousands of negatives do not swamp the loss in the first iterations (RetinaNet's focal-loss init).
CLASS_PRIOR = 0.01
# Initial distance of each box side from its point, in strides: softplus(bias) = 2, so a fresh
# model predicts boxes 4 strides wide (32 px at stride 8, 128 px at stride 32) -- the middle of the
# object sizes an assigner usually gives each level -- and the IoU loss starts with overlap to
# learn from instead of near-zero boxes.
INITIAL_DISTANCE_STRIDES = 2.0


def _inverse_softplus(value: float) -> float:
    return math.log(math.expm1(value))


class HeadLevel(nn.Module):
    """One pyramid level: (B, in_channels, h, w) -> (B, 4 + C, h, w) raw box distances + logits."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        width: int,
        num_convs: int,
        depthwise: bool,
        act: ActFactory,
    ):
        super().__init__()
        self.stem = (
            ConvBNAct(in_channels, width, 1, act=act) if in_channels != width else nn.Identity()
        )
        self.cls_branch = self._branch(width, num_convs, depthwise, act)
        self.box_branch = self._branch(width, num_convs, depthwise, act)
        self.cls_pred = nn.Conv2d(width, num_classes, 1)
        self.box_pred = nn.Conv2d(width, 4, 1)
        for pred in (self.cls_pred, self.box_pred):
            # Small weights so the initial outputs are essentially the biases below.
            nn.init.normal_(pred.weight, std=0.01)
        nn.init.constant_(self.cls_pred.bias, -math.log((1 - CLASS_PRIOR) / CLASS_PRIOR))
        nn.init.constant_(self.box_pred.bias, _inverse_softplus(INITIAL_DISTANCE_STRIDES))

    @staticmethod
    def _branch(width: int, num_convs: int, depthwise: bool, act: ActFactory) -> nn.Sequential:
        if depthwise:
            return nn.Sequential(
                *(DepthwiseSeparable(width, width, 3, act=act) for _ in range(num_convs))
            )
        return nn.Sequential(*(ConvBNAct(width, width, 3, act=act) for _ in range(num_convs)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        return torch.cat([self.box_pred(self.box_branch(x)), self.cls_pred(self.cls_branch(x))], 1)


class AnchorFreeHead(nn.Module):
    """Decoupled anchor-free head over several pyramid levels.

    Args:
        in_channels: channels of each neck output level.
        num_classes: number of object classes C.
        width: channels inside the branches (a 1x1 stem adapts levels of another width).
        num_convs: convs stacked in each of the class and box branches.
        depthwise: depthwise-separable branch convs (nano, CPU-friendly) instead of full 3x3.
        act: activation factory.

    Attributes:
        num_classes: C.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        num_classes: int,
        width: int = 96,
        num_convs: int = 2,
        depthwise: bool = True,
        act: ActFactory = nn.ReLU,
    ):
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}")
        self.num_classes = num_classes
        self.levels = nn.ModuleList(
            HeadLevel(c, num_classes, width, num_convs, depthwise, act) for c in in_channels
        )

    @staticmethod
    def codec(strides: Sequence[int]) -> AnchorFreeCodec:
        """The codec that decodes this head's output (and names its family in checkpoints)."""
        return AnchorFreeCodec(strides)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """Level maps (B, C_i, h_i, w_i) -> (B, A, 4 + num_classes), A = sum of h_i * w_i."""
        outputs = [level(x).flatten(2) for level, x in zip(self.levels, features, strict=True)]
        return torch.cat(outputs, dim=2).transpose(1, 2)
