"""Decoupled anchor-free detection head (YOLOX / NanoDet-Plus family).

Each level has its own weights (levels see objects of different scale, and unshared weights cost
parameters, not time). Per level: an optional 1x1 stem to the head width, a classification branch
and a box branch of ``num_convs`` convs each, then 1x1 predictors: C class logits and 4 raw
``l, t, r, b`` distances. The output follows the detector raw-output contract: one (B, A, 4 + C)
tensor, levels in stride order, row-major within a level, box channels first.
"""

from __future__ import annotations

import copy
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
        if hasattr(self, "fused"):
            return self.fused(x)
        return torch.cat([self.box_pred(self.box_branch(x)), self.cls_pred(self.cls_branch(x))], 1)

    def fuse_branches(self) -> None:
        """For deployment, after BN folding: run the box and class branches as one branch of
        twice the width (:class:`FusedBranches`), the same function in half the ops. Only
        depthwise-separable branches without attention are fused (else nothing changes);
        idempotent. The branch and predictor modules are replaced by ``fused``."""
        if hasattr(self, "fused") or not FusedBranches.fusable(self):
            return
        self.fused = FusedBranches(self)
        for name in ("box_branch", "cls_branch", "box_pred", "cls_pred"):
            delattr(self, name)


class FusedBranches(nn.Module):
    """A :class:`HeadLevel`'s two depthwise-separable branches and predictors as one path:
    ``Concat([x, x])``, then per conv a depthwise conv over both halves and a 1x1 conv with
    ``groups=2`` (box half, class half), then one 1x1 predictor whose cross blocks are zero.

    Exactly the level's function (BN already folded), and on ONNX Runtime 5-8 % less latency for
    nano-s at 320 px: half the head's conv calls and no output Concat (benchmarks/RESULTS.md).
    """

    def __init__(self, level: HeadLevel):
        super().__init__()
        width, classes = level.cls_pred.in_channels, level.cls_pred.out_channels
        layers: list[nn.Module] = []
        for box, cls in zip(level.box_branch, level.cls_branch, strict=True):
            for part in ("depthwise", "pointwise"):
                box_conv, cls_conv = getattr(box, part).conv, getattr(cls, part).conv
                layers.append(_stacked(box_conv, cls_conv, 2 * width if part == "depthwise" else 2))
                layers.append(copy.deepcopy(getattr(box, part).act))
        self.branch = nn.Sequential(*layers)
        self.pred = nn.Conv2d(2 * width, 4 + classes, 1).to(level.box_pred.weight)
        with torch.no_grad():
            self.pred.weight.zero_()
            self.pred.weight[:4, :width] = level.box_pred.weight
            self.pred.weight[4:, width:] = level.cls_pred.weight
            self.pred.bias.copy_(torch.cat([level.box_pred.bias, level.cls_pred.bias]))

    @staticmethod
    def fusable(level: HeadLevel) -> bool:
        """Depthwise-separable branches, BN folded (biased convs), no attention, and the box and
        class units alike (conv shapes and activation), since the fused path uses one of each."""
        units = [*level.box_branch, *level.cls_branch]
        folded = bool(units) and all(
            isinstance(unit, DepthwiseSeparable)
            and isinstance(unit.attention, nn.Identity)
            and all(
                isinstance(part.bn, nn.Identity) and part.conv.bias is not None
                for part in (unit.depthwise, unit.pointwise)
            )
            for unit in units
        )
        return folded and [repr(unit) for unit in level.box_branch] == [
            repr(unit) for unit in level.cls_branch
        ]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pred(self.branch(torch.cat([x, x], 1)))


@torch.no_grad()
def _stacked(box: nn.Conv2d, cls: nn.Conv2d, groups: int) -> nn.Conv2d:
    """One conv computing ``box`` on the first half of its input channels and ``cls`` on the
    second: weights and biases stacked, ``groups`` = 2 (or one group per channel, depthwise)."""
    conv = nn.Conv2d(
        2 * box.in_channels, 2 * box.out_channels, box.kernel_size, box.stride, box.padding,
        groups=groups,
    ).to(box.weight)  # fmt: skip
    conv.weight.copy_(torch.cat([box.weight, cls.weight]))
    conv.bias.copy_(torch.cat([box.bias, cls.bias]))
    return conv


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
