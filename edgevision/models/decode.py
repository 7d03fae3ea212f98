"""Raw head output -> boxes and scores -> per-image detections. Pure functions, shared by
evaluation, prediction and export (the numpy twin lives in ``runtime/``)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional

from edgevision.ops import batched_nms, distance_to_xyxy, make_anchor_points


def anchor_grid(
    strides: Sequence[int], input_hw: tuple[int, int], device=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(A, 2) cell centres and (A,) strides of the head's grid for an input of ``input_hw``."""
    height, width = int(input_hw[0]), int(input_hw[1])
    return make_anchor_points(
        [(height // s, width // s) for s in strides], list(strides), device=device
    )


def decode(
    raw: torch.Tensor, strides: Sequence[int], input_hw: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Turn the detector's raw output into boxes in input pixels and class scores.

    Distances are ``softplus(raw[..., :4]) * stride`` (softplus keeps them positive with a smooth
    gradient, and scaling by the stride lets every level predict in its own units).

    Args:
        raw: (B, A, 4 + C) from ``Detector.forward``.
        strides: the detector's level strides, finest first.
        input_hw: (H, W) of the network input the raw output came from.

    Returns:
        boxes: (B, A, 4) float32 xyxy in input pixels.
        scores: (B, A, C) float32 sigmoid class scores in [0, 1].

    Raises:
        ValueError: A does not match the feature grid of ``input_hw`` (wrong size or strides, or
            an input not divisible by the largest stride).
    """
    height, width = int(input_hw[0]), int(input_hw[1])
    points, point_strides = anchor_grid(strides, (height, width), raw.device)
    if raw.dim() != 3 or raw.shape[1] != points.shape[0] or raw.shape[2] < 5:
        raise ValueError(
            f"raw output of shape {tuple(raw.shape)} does not fit input {height}x{width} with "
            f"strides {tuple(strides)}: expected (B, {points.shape[0]}, 4 + classes); the input "
            f"size must be divisible by {max(strides)}"
        )
    # float32 even under AMP: fp16 cannot place a corner at 600 px closer than 0.5 px.
    raw = raw.float()
    distances = functional.softplus(raw[..., :4]) * point_strides[:, None]
    return distance_to_xyxy(points, distances), raw[..., 4:].sigmoid()


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
        B dicts with ``boxes`` (K, 4) xyxy, ``scores`` (K,) and ``classes`` (K,) int64, sorted by
        decreasing score.
    """
    best_scores, best_classes = scores.max(dim=-1)
    num_candidates = min(max_candidates, best_scores.shape[1])
    top_scores, top_index = best_scores.topk(num_candidates, dim=1)
    top_boxes = boxes.gather(1, top_index[..., None].expand(-1, -1, 4))
    top_classes = best_classes.gather(1, top_index)
    passing = top_scores > conf
    results = []
    for image_boxes, image_scores, image_classes, mask in zip(
        top_boxes, top_scores, top_classes, passing, strict=True
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
            }
        )
    return results
