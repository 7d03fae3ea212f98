"""The detector: backbone -> neck -> head, returning the raw head tensor and nothing else."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class Detector(nn.Module):
    """A one-stage detector composed from plain modules (YOLOX's ``YOLOX(backbone, head)`` idea).

    ``forward`` is pure: no loss, no decoding, no NMS, no export switch. Losses live in
    ``losses/``; decoding is the head's codec (``detector.codec``, :mod:`edgevision.models.codecs`),
    so training, evaluation, prediction and export all share one forward and one decode.

    Args:
        backbone: module with ``forward_features(images) -> list`` of stride 8/16/32 maps.
        neck: module mapping that list to a list of the same length.
        head: module mapping the neck's list to its raw output; has ``num_classes`` and
            ``codec(strides)``, the codec of its family (a pose head also ``num_keypoints``).
        strides: input pixels per cell of each level, finest first.
        size_divisor: what the input's sides must be divisible by; ``max(strides)`` when None.
            SSD heads set it to the backbone's stride: their coarse extra levels round up
            (``ceil``), so a 320 input need not be a multiple of their 2**k nominal strides.

    Attributes:
        num_classes: C.
        num_keypoints: K keypoints per object for a pose head, 0 for a box-only head.
        strides: tuple of level strides.
        size_divisor: input sides are multiples of this (letterbox, export, parity checks).
        codec: decodes ``forward``'s output (``codec.decode(raw, input_hw)``).
    """

    def __init__(
        self,
        backbone: nn.Module,
        neck: nn.Module,
        head: nn.Module,
        strides: Sequence[int] = (8, 16, 32),
        size_divisor: int | None = None,
    ):
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.head = head
        self.strides = tuple(int(s) for s in strides)
        self.size_divisor = int(size_divisor or max(self.strides))
        self.num_classes = int(head.num_classes)
        self.num_keypoints = int(getattr(head, "num_keypoints", 0))
        self.codec = head.codec(self.strides)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Raw predictions.

        Args:
            images: (B, 3, H, W) float RGB in [0, 1]; H and W divisible by the largest stride.

        Returns:
            The head's raw tensor; for the anchor-free head (B, A, 4 + C): A = sum over strides s
            of (H/s)*(W/s), levels in stride order, row-major within a level (the order of
            ``ops.grid.make_anchor_points``). Channels 0:4 are raw ``l, t, r, b`` distances
            (softplus * stride in the codec), 4: are raw class logits. The pose head appends 3K
            channels, per keypoint ``dx, dy, visibility logit`` (``models/codecs/pose.py``).
        """
        return self.head(self.neck(self.backbone.forward_features(images)))
