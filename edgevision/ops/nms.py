"""Non-maximum suppression in pure torch (no torchvision needed)."""

from __future__ import annotations

import torch

from edgevision.ops.boxes import box_iou


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy NMS.

    Args:
        boxes: (N, 4) xyxy.
        scores: (N,).
        iou_threshold: a box is dropped when its IoU with a kept, higher-scoring box is *above* it.

    Returns:
        (K,) int64 indices of kept boxes, by decreasing score (ties keep the lower index first).
    """
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.int64, device=boxes.device)
    order = torch.sort(scores, descending=True, stable=True).indices
    iou = box_iou(boxes[order], boxes[order])
    # Upper triangle: overlap[i, j] means the better-ranked i would suppress j.
    overlap = (iou > iou_threshold).triu(diagonal=1)
    n = len(order)
    keep = torch.ones(n, dtype=torch.bool, device=boxes.device)
    # One pass over ranks; each step is a vector op, so cost is O(N) Python steps on a (N, N) mask.
    # Candidates arrive after score thresholding and top-k, so N stays in the low thousands.
    overlap_cpu = overlap.cpu()
    keep_cpu = keep.cpu()
    for i in range(n):
        if keep_cpu[i]:
            keep_cpu &= ~overlap_cpu[i]
    return order[keep_cpu.to(boxes.device)]


def batched_nms(
    boxes: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor, iou_threshold: float
) -> torch.Tensor:
    """Class-aware NMS: boxes of different classes never suppress each other.

    Offsets each class's boxes by ``class * (max coordinate + 1)`` so classes cannot overlap, then
    runs one NMS (the torchvision trick; one sort instead of one per class).

    Args:
        boxes: (N, 4) xyxy; scores: (N,); classes: (N,) int.

    Returns:
        (K,) int64 indices of kept boxes, by decreasing score.
    """
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.int64, device=boxes.device)
    offsets = classes.to(boxes) * (boxes.max() - boxes.min() + 1)
    return nms(boxes + offsets[:, None] - boxes.min(), scores, iou_threshold)
