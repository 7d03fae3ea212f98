"""Non-maximum suppression in pure torch (no torchvision needed), and the per-image selection of
detections from decoded boxes and scores that every box codec shares."""

from __future__ import annotations

import torch

from edgevision.ops.iou import box_iou


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


def postprocess(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    conf: float = 0.25,
    iou: float = 0.45,
    max_det: int = 300,
    class_agnostic: bool = False,
    max_candidates: int = 1000,
) -> list[dict[str, torch.Tensor]]:
    """Best class per point, score threshold, top candidates, NMS, ``max_det`` per image.

    One label per point (its best class), as the quality-aware score is trained for. Thresholding
    and top-k run on the whole batch at once; only NMS loops over images, because a batch-wide
    IoU matrix grows with the square of the batch.

    Args:
        boxes: (B, A, 4) xyxy from :func:`decode`.
        scores: (B, A, C) in [0, 1].
        conf: keep points whose best score is above this.
        iou: NMS IoU threshold (a box overlapping a better one by more is dropped).
        max_det: detections kept per image, best first.
        class_agnostic: let boxes of different classes suppress each other.
        max_candidates: best-scoring points per image that enter NMS (bounds its cost).

    Returns:
        B dicts with ``boxes`` (K, 4) xyxy, ``scores`` (K,), ``classes`` (K,) int64 and ``index``
        (K,) int64 (the points kept: a codec with more per-point outputs, such as keypoints,
        gathers them with it), sorted by decreasing score.
    """
    best_scores, best_classes = scores.max(dim=-1)
    num_candidates = min(max_candidates, best_scores.shape[1])
    top_scores, top_index = best_scores.topk(num_candidates, dim=1)
    top_boxes = boxes.gather(1, top_index[..., None].expand(-1, -1, 4))
    top_classes = best_classes.gather(1, top_index)
    passing = top_scores > conf
    results = []
    for image_boxes, image_scores, image_classes, image_index, mask in zip(
        top_boxes, top_scores, top_classes, top_index, passing, strict=True
    ):
        image_boxes, image_scores, image_classes = (
            image_boxes[mask],
            image_scores[mask],
            image_classes[mask],
        )
        groups = torch.zeros_like(image_classes) if class_agnostic else image_classes
        keep = batched_nms(image_boxes, image_scores, groups, iou)[:max_det]
        results.append(
            {
                "boxes": image_boxes[keep],
                "scores": image_scores[keep],
                "classes": image_classes[keep],
                "index": image_index[mask][keep],
            }
        )
    return results
