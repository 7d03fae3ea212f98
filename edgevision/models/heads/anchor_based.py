"""Anchor-based YOLO head (YOLOv3/v4-tiny/v5 family): one 1x1 predictor per level.

Each cell of a level predicts, for each of the level's ``na`` anchors, ``5 + C`` values:
``tx, ty, tw, th`` (decoded by ``models/codecs/anchor_based.py``), an objectness logit and C class
logits. The output follows the detector raw-output contract as ONE (B, N, 5 + C) tensor,
N = sum over levels of ``h * w * na``, in the order level (finest first) -> cell (row-major:
``y * w + x``) -> anchor. So prediction ``n`` of level ``l`` at cell ``(gx, gy)`` with anchor
``a`` sits at ``start_l + (gy * w + gx) * na + a``.

The anchors (L, na, 2), in input pixels, are a registered buffer named ``anchors``: they are
saved in the state dict, so a checkpoint trained with re-clustered anchors (autoanchor) loads
them back, and ``set_anchors`` changes them in place for the codec to see.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from edgevision.models.codecs.anchor_based import AnchorCodec, anchors_by_level

# YOLOv5's priors: about 8 objects per 640 x 640 image spread over a level's cells, and a 0.6
# probability for the right class. Starting the objectness near the true (tiny) positive rate
# keeps the thousands of negative cells from producing a huge, destabilising first gradient.
OBJECTS_PER_IMAGE = 8.0
REFERENCE_SIZE = 640
CLASS_PROBABILITY = 0.6


class AnchorHead(nn.Module):
    """Per level a 1x1 conv to ``na * (5 + C)`` channels, flattened into one tensor.

    Args:
        in_channels: channels of each neck output level, finest first.
        num_classes: number of object classes C.
        anchors: (L, na, 2) anchor sizes in input pixels per level (or a flat (K, 2) list, split
            by area as :func:`anchors_by_level` does).
        strides: input pixels per cell of each level; sets the objectness prior per level.

    Attributes:
        num_classes: C.
        num_anchors: na, anchors per cell.
        anchors: (L, na, 2) float32 buffer, in input pixels.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        num_classes: int,
        anchors,
        strides: Sequence[int],
    ):
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}")
        if len(in_channels) != len(strides):
            raise ValueError(f"{len(in_channels)} input levels but {len(strides)} strides")
        self.num_classes = num_classes
        self.register_buffer("anchors", anchors_by_level(anchors, len(strides)))
        self.num_anchors = int(self.anchors.shape[1])
        self.num_outputs = 5 + num_classes
        self.preds = nn.ModuleList(
            nn.Conv2d(channels, self.num_anchors * self.num_outputs, 1) for channels in in_channels
        )
        for pred, stride in zip(self.preds, strides, strict=True):
            self._init_pred(pred, stride)

    def _init_pred(self, pred: nn.Conv2d, stride: int) -> None:
        """Small weights, so the first outputs are the priors set in the bias (YOLOv5's init)."""
        nn.init.normal_(pred.weight, std=0.01)
        with torch.no_grad():
            bias = pred.bias.view(self.num_anchors, self.num_outputs)
            bias.zero_()  # box: sigmoid(0) = 0.5, a centred box of exactly the anchor's size
            cells = (REFERENCE_SIZE / stride) ** 2
            bias[:, 4] = math.log(OBJECTS_PER_IMAGE / cells)
            bias[:, 5:] = math.log(CLASS_PROBABILITY / (self.num_classes - 0.99))

    @torch.no_grad()
    def set_anchors(self, anchors) -> None:
        """Replace the anchor sizes in place (the codec reads this same buffer).

        Args:
            anchors: (L, na, 2) in input pixels, or a flat (L * na, 2) list split by area.

        Raises:
            ValueError: a shape other than the head's (the predictor convs are sized for na).
        """
        new = anchors_by_level(anchors, self.anchors.shape[0])
        if new.shape != self.anchors.shape:
            raise ValueError(
                f"anchors of shape {tuple(new.shape)} for a head built with "
                f"{tuple(self.anchors.shape)}; give {self.anchors.shape[0] * self.num_anchors} "
                "anchors (the number the model was built with)"
            )
        self.anchors.copy_(new)

    def codec(self, strides: Sequence[int]) -> AnchorCodec:
        """The codec that decodes this head's output; it reads this head's ``anchors`` buffer."""
        return AnchorCodec(strides, self)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """Level maps (B, C_i, h_i, w_i) -> (B, N, 5 + C), N = sum of h_i * w_i * na."""
        outputs = []
        for pred, x in zip(self.preds, features, strict=True):
            y = pred(x)
            batch, height, width = y.shape[0], y.shape[2], y.shape[3]
            y = y.reshape(batch, self.num_anchors, self.num_outputs, height, width)
            # (B, na, 5 + C, h, w) -> (B, h, w, na, 5 + C): cell-major, anchor-minor.
            outputs.append(y.permute(0, 3, 4, 1, 2).reshape(batch, -1, self.num_outputs))
        return torch.cat(outputs, dim=1)
