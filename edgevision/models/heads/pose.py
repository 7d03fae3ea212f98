"""Pose head: the anchor-free detection head plus a keypoint branch per level (YOLO-pose form).

Composed, not subclassed: :class:`PoseHead` holds an :class:`AnchorFreeHead` for boxes and
classes, unchanged, and a keypoint branch per pyramid level that reads the same neck features.
The keypoint branch is separate from the box branch (Ultralytics v8's ``cv4``): locating joints
needs other features than regressing box sides, and sharing would let one task's gradients
crowd out the other's in a thin nano head.

The output follows the pose raw contract (:mod:`edgevision.models.codecs.pose`): one
(B, A, 4 + C + 3K) tensor, the detection head's channels first, then per keypoint
``dx, dy, visibility logit``; levels in stride order, row-major within a level.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from edgevision.models.blocks import ActFactory, ConvBNAct, DepthwiseSeparable
from edgevision.models.codecs.pose import PoseCodec
from edgevision.models.heads.anchor_free import AnchorFreeHead


def _branch(width: int, num_convs: int, depthwise: bool, act: ActFactory) -> nn.Sequential:
    """``num_convs`` 3x3 convs at ``width``, as the detection head's class and box branches."""
    if depthwise:
        return nn.Sequential(
            *(DepthwiseSeparable(width, width, 3, act=act) for _ in range(num_convs))
        )
    return nn.Sequential(*(ConvBNAct(width, width, 3, act=act) for _ in range(num_convs)))


class KeypointLevel(nn.Module):
    """One pyramid level: (B, in_channels, h, w) -> (B, 3K, h, w) raw ``dx, dy, logit``."""

    def __init__(
        self,
        in_channels: int,
        num_keypoints: int,
        width: int,
        num_convs: int,
        depthwise: bool,
        act: ActFactory,
    ):
        super().__init__()
        self.stem = (
            ConvBNAct(in_channels, width, 1, act=act) if in_channels != width else nn.Identity()
        )
        self.branch = _branch(width, num_convs, depthwise, act)
        self.pred = nn.Conv2d(width, 3 * num_keypoints, 1)
        # Small weights and zero biases: a fresh head puts every keypoint on its cell centre with
        # visibility 0.5, and early gradients are not dominated by random offsets.
        nn.init.normal_(self.pred.weight, std=0.01)
        nn.init.zeros_(self.pred.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pred(self.branch(self.stem(x)))


class PoseHead(nn.Module):
    """Anchor-free detection head + per-level keypoint branches.

    Args:
        in_channels: channels of each neck output level.
        num_classes: number of object classes C.
        num_keypoints: keypoints per object K.
        width: channels inside the branches (the keypoint branch uses the same width).
        num_convs: convs stacked in each branch (class, box and keypoint).
        depthwise: depthwise-separable branch convs instead of full 3x3.
        act: activation factory.

    Attributes:
        num_classes: C.
        num_keypoints: K.
        detection: the :class:`AnchorFreeHead` that predicts boxes and classes.
        keypoint_levels: one :class:`KeypointLevel` per pyramid level.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        num_classes: int,
        num_keypoints: int,
        width: int = 96,
        num_convs: int = 2,
        depthwise: bool = True,
        act: ActFactory = nn.ReLU,
    ):
        super().__init__()
        if num_keypoints < 1:
            raise ValueError(f"num_keypoints must be at least 1, got {num_keypoints}")
        self.detection = AnchorFreeHead(in_channels, num_classes, width, num_convs, depthwise, act)
        self.num_classes = self.detection.num_classes
        self.num_keypoints = int(num_keypoints)
        self.keypoint_levels = nn.ModuleList(
            KeypointLevel(c, num_keypoints, width, num_convs, depthwise, act) for c in in_channels
        )

    def codec(self, strides: Sequence[int]) -> PoseCodec:
        """The codec that decodes this head's output (and names its family in checkpoints)."""
        return PoseCodec(strides, self.num_keypoints)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """Level maps (B, C_i, h_i, w_i) -> (B, A, 4 + C + 3K), A = sum of h_i * w_i."""
        keypoints = [
            level(x).flatten(2) for level, x in zip(self.keypoint_levels, features, strict=True)
        ]
        keypoints = torch.cat(keypoints, dim=2).transpose(1, 2)
        return torch.cat([self.detection(features), keypoints], dim=2)
