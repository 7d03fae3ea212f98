"""Box math: the only place in edgevision that converts, measures or compares boxes.

Every function takes ``(..., 4)`` boxes and works on torch tensors; the conversions, area and clip
also accept numpy arrays (the data layer works in numpy before tensors exist). Boxes are absolute
pixel ``xyxy`` unless a name says otherwise (``cxcywh``, ``xywh`` = COCO top-left + size).
"""

from __future__ import annotations

import math

import numpy as np
import torch

Boxes = torch.Tensor | np.ndarray


def _stack(parts: list, like: Boxes) -> Boxes:
    if isinstance(like, np.ndarray):
        return np.stack(parts, axis=-1)
    return torch.stack(parts, dim=-1)


def xyxy_to_cxcywh(boxes: Boxes) -> Boxes:
    """(..., 4) xyxy -> (..., 4) centre x, centre y, width, height."""
    x0, y0, x1, y1 = boxes[..., 0], boxes[..., 1], boxes[..., 2], boxes[..., 3]
    return _stack([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0], boxes)


def cxcywh_to_xyxy(boxes: Boxes) -> Boxes:
    """(..., 4) centre x, centre y, width, height -> (..., 4) xyxy."""
    cx, cy, w, h = boxes[..., 0], boxes[..., 1], boxes[..., 2], boxes[..., 3]
    return _stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], boxes)


def xyxy_to_xywh(boxes: Boxes) -> Boxes:
    """(..., 4) xyxy -> (..., 4) COCO ``[x, y, w, h]`` (top-left corner and size)."""
    x0, y0, x1, y1 = boxes[..., 0], boxes[..., 1], boxes[..., 2], boxes[..., 3]
    return _stack([x0, y0, x1 - x0, y1 - y0], boxes)


def xywh_to_xyxy(boxes: Boxes) -> Boxes:
    """(..., 4) COCO ``[x, y, w, h]`` -> (..., 4) xyxy."""
    x, y, w, h = boxes[..., 0], boxes[..., 1], boxes[..., 2], boxes[..., 3]
    return _stack([x, y, x + w, y + h], boxes)


def box_area(boxes: Boxes) -> Boxes:
    """(..., 4) xyxy -> (...) area; negative when a box is swapped (the doctor relies on that)."""
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def clip_boxes(boxes: Boxes, width: float, height: float) -> Boxes:
    """(..., 4) xyxy clipped to the image ``[0, width] x [0, height]`` (returns a copy)."""
    out = boxes.copy() if isinstance(boxes, np.ndarray) else boxes.clone()
    out[..., 0::2] = out[..., 0::2].clip(0, width)
    out[..., 1::2] = out[..., 1::2].clip(0, height)
    return out


def order_corners(boxes: Boxes) -> Boxes:
    """(..., 4) boxes with swapped corners put back in ``x0 <= x1, y0 <= y1`` order."""
    if isinstance(boxes, np.ndarray):
        xs, ys = np.sort(boxes[..., 0::2], axis=-1), np.sort(boxes[..., 1::2], axis=-1)
    else:
        xs, ys = boxes[..., 0::2].sort(dim=-1).values, boxes[..., 1::2].sort(dim=-1).values
    return _stack([xs[..., 0], ys[..., 0], xs[..., 1], ys[..., 1]], boxes)


def _inter_union(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Broadcasting intersection and union of xyxy boxes ``a`` and ``b``."""
    lt = torch.maximum(a[..., :2], b[..., :2])
    rb = torch.minimum(a[..., 2:], b[..., 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter, box_area(a) + box_area(b) - inter


def _iou_family(a: torch.Tensor, b: torch.Tensor, kind: str, eps: float) -> torch.Tensor:
    """IoU / GIoU / DIoU / CIoU of broadcast-compatible xyxy boxes (last dim 4)."""
    inter, union = _inter_union(a, b)
    iou = inter / (union + eps)
    if kind == "iou":
        return iou
    enclose_lt = torch.minimum(a[..., :2], b[..., :2])
    enclose_rb = torch.maximum(a[..., 2:], b[..., 2:])
    enclose_wh = (enclose_rb - enclose_lt).clamp(min=0)
    if kind == "giou":
        enclose = enclose_wh[..., 0] * enclose_wh[..., 1]
        return iou - (enclose - union) / (enclose + eps)
    # DIoU/CIoU: penalise centre distance relative to the enclosing box diagonal.
    diag = enclose_wh.pow(2).sum(-1) + eps
    centre_a = (a[..., :2] + a[..., 2:]) / 2
    centre_b = (b[..., :2] + b[..., 2:]) / 2
    dist = (centre_a - centre_b).pow(2).sum(-1)
    if kind == "diou":
        return iou - dist / diag
    wa, ha = a[..., 2] - a[..., 0], (a[..., 3] - a[..., 1]).clamp(min=eps)
    wb, hb = b[..., 2] - b[..., 0], (b[..., 3] - b[..., 1]).clamp(min=eps)
    v = (4 / math.pi**2) * (torch.atan(wb / hb) - torch.atan(wa / ha)).pow(2)
    with torch.no_grad():  # alpha is a weight, not a path for gradients (as in the CIoU paper)
        alpha = v / (v - iou + 1 + eps)
    return iou - dist / diag - alpha * v


_KINDS = ("iou", "giou", "diou", "ciou")


def box_iou(a: torch.Tensor, b: torch.Tensor, kind: str = "iou", eps: float = 1e-7) -> torch.Tensor:
    """Pairwise IoU-family matrix.

    Args:
        a: (N, 4) xyxy.
        b: (M, 4) xyxy.
        kind: "iou", "giou", "diou" or "ciou".

    Returns:
        (N, M) values; IoU in [0, 1], GIoU/DIoU in [-1, 1], CIoU in [-1.5, 1].
    """
    if kind not in _KINDS:
        raise ValueError(f"unknown IoU kind {kind!r}; choose one of {_KINDS}")
    return _iou_family(a[:, None, :], b[None, :, :], kind, eps)


def elementwise_iou(
    a: torch.Tensor, b: torch.Tensor, kind: str = "iou", eps: float = 1e-7
) -> torch.Tensor:
    """IoU-family of matching rows: (..., 4) and (..., 4) -> (...). Used by box losses."""
    if kind not in _KINDS:
        raise ValueError(f"unknown IoU kind {kind!r}; choose one of {_KINDS}")
    return _iou_family(a, b, kind, eps)


def box_iou_numpy(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU for numpy (N, 4) x (M, 4) xyxy -> (N, M); for the data layer (duplicates)."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return inter / np.maximum(union, 1e-12)


def distance_to_xyxy(points: torch.Tensor, distances: torch.Tensor) -> torch.Tensor:
    """Anchor-free box decoding: points (..., 2) and ``l, t, r, b`` distances (..., 4) -> xyxy."""
    return torch.cat([points - distances[..., :2], points + distances[..., 2:]], dim=-1)


def xyxy_to_distance(points: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`distance_to_xyxy`: (..., 2) points and (..., 4) xyxy -> ``l, t, r, b``."""
    return torch.cat([points - boxes[..., :2], boxes[..., 2:] - points], dim=-1)


def make_anchor_points(
    feature_sizes: list[tuple[int, int]], strides: list[int], device=None, dtype=torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cell centres of every feature level, flattened in the order heads emit predictions.

    Args:
        feature_sizes: (height, width) of each level's feature map.
        strides: input pixels per feature cell for each level.

    Returns:
        points: (A, 2) centre ``x, y`` in input pixels, level by level, row-major in each level.
        point_strides: (A,) the stride of each point.
    """
    points, point_strides = [], []
    for (h, w), stride in zip(feature_sizes, strides, strict=True):
        ys = (torch.arange(h, device=device, dtype=dtype) + 0.5) * stride
        xs = (torch.arange(w, device=device, dtype=dtype) + 0.5) * stride
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        points.append(torch.stack([grid_x, grid_y], dim=-1).reshape(-1, 2))
        point_strides.append(torch.full((h * w,), float(stride), device=device, dtype=dtype))
    return torch.cat(points), torch.cat(point_strides)


def unletterbox_boxes(
    boxes: Boxes, ratio: float, pad: tuple[float, float], orig_hw: tuple[int, int]
) -> Boxes:
    """Map (..., 4) xyxy boxes from letterboxed input pixels back to the original image.

    ``x_orig = (x - pad_left) / ratio`` (same for y), then clipped to the original image.
    """
    out = boxes.copy() if isinstance(boxes, np.ndarray) else boxes.clone()
    out[..., 0::2] = (out[..., 0::2] - pad[0]) / ratio
    out[..., 1::2] = (out[..., 1::2] - pad[1]) / ratio
    return clip_boxes(out, orig_hw[1], orig_hw[0])
