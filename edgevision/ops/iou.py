"""The IoU family on torch tensors: IoU, GIoU, DIoU, CIoU, pairwise and row by row."""

from __future__ import annotations

import math

import torch

from edgevision.ops.boxes import box_area


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
