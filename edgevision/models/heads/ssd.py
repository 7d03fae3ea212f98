"""The SSDLite head: per level a depthwise-separable 3x3 predictor for the class logits and one
for the box offsets of every prior of every cell.

The output follows the SSD codec contract (``models/codecs/ssd.py``): one (B, N, 4 + C + 1)
tensor, levels in stride order, cells row-major, the A priors of a cell consecutive; channels
0:4 offsets, then C + 1 logits with background first. The head owns the prior table, so
``head.codec(strides)`` builds the codec that decodes its output.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from edgevision.models.blocks import ActFactory, ConvBNAct
from edgevision.models.codecs.ssd import PriorLevel, SSDCodec
from edgevision.models.heads.anchor_free import CLASS_PRIOR


class SSDHeadLevel(nn.Module):
    """One level: (B, in_channels, h, w) -> (B, h * w * A, 4 + C + 1).

    Each branch is SSDLite's predictor: a depthwise 3x3 conv (BN, activation) then a 1x1 conv to
    A x channels. Small initial weights make a fresh head predict the priors themselves (offsets
    ~0) with flat class logits.
    """

    def __init__(
        self, in_channels: int, num_priors: int, num_classes: int, sigmoid: bool, act: ActFactory
    ):
        super().__init__()
        self.num_priors, self.num_logits = num_priors, num_classes + 1
        self.cls_branch = ConvBNAct(in_channels, in_channels, 3, groups=in_channels, act=act)
        self.box_branch = ConvBNAct(in_channels, in_channels, 3, groups=in_channels, act=act)
        self.cls_pred = nn.Conv2d(in_channels, num_priors * (num_classes + 1), 1)
        self.box_pred = nn.Conv2d(in_channels, num_priors * 4, 1)
        for pred in (self.cls_pred, self.box_pred):
            nn.init.normal_(pred.weight, std=0.01)
            nn.init.zeros_(pred.bias)
        if sigmoid:
            # Focal-loss training: start every class at the 0.01 prior (RetinaNet's init) so the
            # thousands of background priors do not swamp the first steps. The background logit
            # (index 0 of each prior's C + 1) is unused by the sigmoid codec and stays 0.
            bias = self.cls_pred.bias.detach().view(num_priors, num_classes + 1)
            bias[:, 1:] = -math.log((1 - CLASS_PRIOR) / CLASS_PRIOR)

    def _per_prior(self, x: torch.Tensor, channels: int) -> torch.Tensor:
        # (B, A*K, h, w) -> (B, h*w*A, K) with constant sizes only, so a trace keeps B, h, w free.
        x = x.flatten(2).unflatten(1, (self.num_priors, channels))  # (B, A, K, h*w)
        return x.permute(0, 3, 1, 2).flatten(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        boxes = self._per_prior(self.box_pred(self.box_branch(x)), 4)
        logits = self._per_prior(self.cls_pred(self.cls_branch(x)), self.num_logits)
        return torch.cat([boxes, logits], dim=2)


class SSDHead(nn.Module):
    """SSDLite head over several levels, with the prior table of its codec.

    Args:
        in_channels: channels of each neck level.
        num_classes: object classes C (the output has C + 1 logits, background first).
        prior_levels: one :class:`PriorLevel` per level (sets A per cell).
        size_divisor: what input sides are multiples of, passed to the codec.
        scores: "softmax" (trained with mined cross entropy) or "sigmoid" (focal loss).
        act: activation of the depthwise convs.

    Attributes:
        num_classes: C.
        loss_options: keyword arguments the detection task passes to ``SSDLoss`` for this head
            (``{"focal": True}`` for a sigmoid head).
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        num_classes: int,
        prior_levels: Sequence[PriorLevel],
        size_divisor: int = 32,
        scores: str = "softmax",
        act: ActFactory = nn.ReLU6,
    ):
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}")
        if len(in_channels) != len(prior_levels):
            raise ValueError(
                f"{len(in_channels)} input levels but {len(prior_levels)} prior levels; give one "
                "PriorLevel per level"
            )
        self.num_classes = num_classes
        self.prior_levels = tuple(prior_levels)
        self.size_divisor = int(size_divisor)
        self.scores = scores
        self.loss_options = {"focal": scores == "sigmoid"}
        self.levels = nn.ModuleList(
            SSDHeadLevel(c, len(level.sizes()), num_classes, scores == "sigmoid", act)
            for c, level in zip(in_channels, self.prior_levels, strict=True)
        )

    def codec(self, strides: Sequence[int]) -> SSDCodec:
        """The codec that decodes this head's output (and names its family in checkpoints)."""
        return SSDCodec(self.prior_levels, strides, self.size_divisor, self.scores)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """Level maps (B, C_i, h_i, w_i) -> (B, N, 4 + C + 1), N = sum of h_i * w_i * A_i."""
        return torch.cat([level(x) for level, x in zip(self.levels, features, strict=True)], dim=1)
