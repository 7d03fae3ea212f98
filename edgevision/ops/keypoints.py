"""Keypoint math: OKS (COCO's keypoint similarity), PCK, normalised error, and the offset
parameterisation dense pose heads predict keypoints in.

Every function takes numpy arrays or torch tensors and returns the same kind; like ``boxes.py``
this module does not import torch at import time (the pose evaluation runs where PyTorch is
absent). Keypoints are ``(..., K, 3)`` rows ``x, y, v`` in absolute pixels, where ``v > 0`` marks
a labelled point (COCO: 1 labelled but occluded, 2 visible) and ``0, 0, 0`` an unlabelled one;
predictions may be ``(..., K, 2)`` or ``(..., K, 3)`` (the third column, a visibility score, is
ignored by the similarity measures, as COCO ignores it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

Array = Any  # np.ndarray or torch.Tensor; the same kind comes back

# COCOeval's ``np.spacing(1)`` added to the object area: an area-0 object gives OKS 0 or 1, not NaN.
AREA_EPS = float(np.spacing(1))
# Pose heads predict ``keypoint = cell centre + OFFSET_SCALE * raw * stride`` (Ultralytics v8's
# factor 2): a keypoint two strides from its cell needs a raw value of 1, not 2.
OFFSET_SCALE = 2.0


def _namespace(like: Array):
    """``numpy`` for arrays, ``torch`` for tensors (torch is loaded when a tensor was passed)."""
    if isinstance(like, np.ndarray):
        return np
    import torch  # a tensor was passed, so torch is already loaded

    return torch


def _as_float(values, like: Array) -> Array:
    """``values`` as the kind of ``like``: float64 numpy (COCO's precision) or a float tensor on
    ``like``'s device (float64 kept, anything narrower computed in float32)."""
    if isinstance(like, np.ndarray):
        return np.asarray(values, dtype=np.float64)
    import torch

    dtype = torch.float64 if like.dtype == torch.float64 else torch.float32
    return torch.as_tensor(values, dtype=dtype, device=like.device)


def _squared_distances(pred: Array, gt: Array) -> Array:
    """(..., K) squared pixel distances of broadcast-compatible (..., K, 2|3) keypoints."""
    pred_xy, gt_xy = _as_float(pred[..., :2], gt), _as_float(gt[..., :2], gt)
    return ((pred_xy - gt_xy) ** 2).sum(-1)


def _box_rule_squared_distances(pred: Array, boxes: Array) -> Array:
    """COCO's distances for an object without labelled keypoints: how far each predicted point
    lies outside the gt box enlarged by its own width and height on every side."""
    boxes = _as_float(boxes, boxes)[..., None, :]  # (..., 1, 4) against (..., K)
    width, height = boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]
    x, y = _as_float(pred[..., 0], boxes), _as_float(pred[..., 1], boxes)
    dx = (boxes[..., 0] - width - x).clip(min=0) + (x - boxes[..., 2] - width).clip(min=0)
    dy = (boxes[..., 1] - height - y).clip(min=0) + (y - boxes[..., 3] - height).clip(min=0)
    return dx**2 + dy**2


def elementwise_oks(
    pred: Array,
    gt: Array,
    areas: Array,
    sigmas: Sequence[float] | Array,
    boxes: Array | None = None,
) -> Array:
    """OKS of broadcast-compatible pairs, exactly as ``COCOeval.computeOks``.

    ``OKS = mean over labelled points of exp(-d^2 / (2 * (area + eps) * (2 sigma)^2))``. An object
    with no labelled point uses COCO's box rule when ``boxes`` is given (d = distance outside the
    box enlarged by its size, averaged over all K points); without ``boxes`` its OKS is 0.

    Args:
        pred: (..., K, 2|3) predicted keypoints in pixels (a third column is ignored).
        gt: (..., K, 3) ground-truth ``x, y, v``.
        areas: (...) object areas in pixels^2 (COCO: the segment area; a loss: the box area).
        sigmas: (K,) per-keypoint standard deviations relative to the object scale.
        boxes: (..., 4) xyxy gt boxes, for objects without a labelled point.

    Returns:
        (...) OKS in [0, 1]; float64 for numpy, float32 (or float64) for torch.
    """
    xp = _namespace(gt)
    variances = (2 * _as_float(sigmas, gt)) ** 2
    areas = _as_float(areas, gt)[..., None]
    labelled = _as_float(gt[..., 2], gt) > 0
    squared = _squared_distances(pred, gt)
    similarity = xp.exp(-(squared / variances / (areas + AREA_EPS) / 2))
    count = labelled.sum(-1)
    oks = (similarity * labelled).sum(-1) / count.clip(min=1)
    if boxes is None:
        return oks
    box_squared = _box_rule_squared_distances(pred, boxes)
    box_oks = xp.exp(-(box_squared / variances / (areas + AREA_EPS) / 2)).mean(-1)
    return xp.where(count > 0, oks, box_oks)


def oks(
    pred: Array,
    gt: Array,
    areas: Array,
    sigmas: Sequence[float] | Array,
    boxes: Array | None = None,
) -> Array:
    """Pairwise OKS matrix, as ``COCOeval.computeOks`` (whose result is this matrix with the
    predictions sorted by decreasing score).

    Args:
        pred: (N, K, 2|3) predicted keypoints in pixels.
        gt: (M, K, 3) ground-truth ``x, y, v``.
        areas: (M,) object areas in pixels^2.
        sigmas: (K,) per-keypoint standard deviations.
        boxes: (M, 4) xyxy gt boxes, for COCO's rule on objects without labelled points
            (without them such an object scores 0 against every prediction).

    Returns:
        (N, M) OKS in [0, 1].
    """
    areas = _as_float(areas, gt)
    pair_boxes = None if boxes is None else boxes[None]
    return elementwise_oks(pred[:, None], gt[None], areas[None], sigmas, pair_boxes)


def _mean_over_labelled(values: Array, gt: Array) -> Array:
    """(..., K) values -> (...) mean over the labelled points of ``gt``; NaN where none is."""
    xp = _namespace(gt)
    labelled = _as_float(gt[..., 2], gt) > 0
    count = labelled.sum(-1)
    mean = (values * labelled).sum(-1) / count.clip(min=1)
    return xp.where(count > 0, mean, float("nan"))


def pck(pred: Array, gt: Array, boxes: Array, fraction: float = 0.2) -> Array:
    """Percentage of correct keypoints of matched pairs: a labelled point is correct when it lies
    within ``fraction`` of its gt box diagonal.

    Args:
        pred: (N, K, 2|3) predictions, each matched to the gt of the same row.
        gt: (N, K, 3) ground truth ``x, y, v``.
        boxes: (N, 4) xyxy gt boxes (the scale of each object).
        fraction: tolerance as a fraction of the box diagonal.

    Returns:
        (N,) fraction of each object's labelled points that are correct; NaN for an object
        without labelled points (``nanmean`` averages the objects that can be scored).
    """
    boxes = _as_float(boxes, gt)
    diagonal = ((boxes[..., 2:] - boxes[..., :2]) ** 2).sum(-1) ** 0.5
    correct = _squared_distances(pred, gt) ** 0.5 <= fraction * diagonal[..., None]
    return _mean_over_labelled(_as_float(correct, gt), gt)


def keypoint_error_normalised(pred: Array, gt: Array, areas: Array) -> Array:
    """Mean distance of the labelled points of matched pairs divided by the object scale.

    Args:
        pred: (N, K, 2|3) predictions, each matched to the gt of the same row.
        gt: (N, K, 3) ground truth ``x, y, v``.
        areas: (N,) object areas in pixels^2; the scale is ``sqrt(area)`` (floored at ``AREA_EPS``).

    Returns:
        (N,) normalised mean error; NaN for an object without labelled points.
    """
    scale = _as_float(areas, gt).clip(min=AREA_EPS) ** 0.5
    return _mean_over_labelled(_squared_distances(pred, gt) ** 0.5, gt) / scale


def offsets_to_keypoints(points: Array, strides: Array, offsets: Array) -> Array:
    """Decode a dense head's keypoint offsets: ``cell centre + OFFSET_SCALE * offset * stride``.

    Args:
        points: (A, 2) cell centres ``x, y`` in pixels.
        strides: (A,) stride of each cell.
        offsets: (..., A, K, 2) raw ``dx, dy``.

    Returns:
        (..., A, K, 2) keypoints in pixels.
    """
    return points[:, None, :] + OFFSET_SCALE * offsets * strides[:, None, None]


def keypoints_to_offsets(points: Array, strides: Array, keypoints: Array) -> Array:
    """Inverse of :func:`offsets_to_keypoints`: (..., A, K, 2|3) keypoints -> (..., A, K, 2)."""
    return (keypoints[..., :2] - points[:, None, :]) / (OFFSET_SCALE * strides[:, None, None])
