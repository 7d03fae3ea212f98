"""The detector: backbone -> neck -> head, returning the raw head tensor and nothing else."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class Detector(nn.Module):
    """A one-stage detector composed from plain modules (YOLOX's ``YOLOX(backbone, head)`` idea).

    ``forward`` is pure: no loss, no decoding, no NMS, no export switch. Losses live in
    ``losses/``, decoding in :mod:`edgevision.models.decode`, so training, evaluation, prediction
    and export all share one forward.

    Args:
        backbone: module with ``forward_features(images) -> list`` of stride 8/16/32 maps.
        neck: module mapping that list to a list of the same length.
        head: module mapping the neck's list to (B, A, 4 + C); has ``num_classes``.
        strides: input pixels per cell of each level, finest first.
        default_imgsz: the square input size the model was designed for; used when a caller
            (predict, export, bench) is given no size.

    Attributes:
        num_classes: C.
        strides: tuple of level strides.
        default_imgsz: see above.
    """

    def __init__(
        self,
        backbone: nn.Module,
        neck: nn.Module,
        head: nn.Module,
        strides: Sequence[int] = (8, 16, 32),
        *,
        default_imgsz: int = 640,
    ):
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.head = head
        self.strides = tuple(int(s) for s in strides)
        self.num_classes = int(head.num_classes)
        self.default_imgsz = int(default_imgsz)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Raw predictions.

        Args:
            images: (B, 3, H, W) float RGB in [0, 1]; H and W divisible by the largest stride.

        Returns:
            (B, A, 4 + C): A = sum over strides s of (H/s)*(W/s), levels in stride order, row-major
            within a level (the order of ``ops.make_anchor_points``). Channels 0:4 are raw
            ``l, t, r, b`` distances (softplus * stride in decode), 4: are raw class logits.
        """
        return self.head(self.neck(self.backbone.forward_features(images)))
