"""Box math: the only place in edgevision that converts, measures or compares boxes.

Every function takes ``(..., 4)`` boxes as numpy arrays or torch tensors and returns the same
kind. Boxes are absolute pixel ``xyxy`` unless a name says otherwise (``cxcywh``, ``xywh`` = COCO
top-left + size). This module does not import torch: the data layer and the data commands use it
on machines without PyTorch; the torch-only geometry is in ``iou.py`` (IoU family) and
``grid.py`` (feature-grid points and distance boxes).
"""

from __future__ import annotations

from typing import Any

import numpy as np

Boxes = Any  # np.ndarray or torch.Tensor; the same kind comes back


def _stack(parts: list, like: Boxes) -> Boxes:
    if isinstance(like, np.ndarray):
        return np.stack(parts, axis=-1)
    import torch  # a tensor was passed, so torch is already loaded

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


def box_iou_numpy(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU for numpy (N, 4) x (M, 4) xyxy -> (N, M); for the data layer (duplicates)."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return inter / np.maximum(union, 1e-12)
