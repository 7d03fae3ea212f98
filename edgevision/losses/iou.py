"""IoU-family box regression loss; the geometry itself lives in :mod:`edgevision.ops`."""

from __future__ import annotations

import torch

from edgevision.ops.iou import elementwise_iou


def iou_loss(pred: torch.Tensor, target: torch.Tensor, kind: str = "giou") -> torch.Tensor:
    """``1 - IoU`` of matching rows, in one of the IoU family.

    GIoU is the default because it still has a gradient when a predicted box does not overlap its
    target yet (plain IoU is flat at 0 there), which is common early in training.

    Args:
        pred: (N, 4) predicted xyxy boxes.
        target: (N, 4) target xyxy boxes.
        kind: "iou", "giou", "diou" or "ciou".

    Returns:
        (N,) unreduced loss: 0 for identical boxes; up to 1 for IoU, 2 for GIoU/DIoU, 2.5 for CIoU.
    """
    return 1 - elementwise_iou(pred, target, kind=kind)
