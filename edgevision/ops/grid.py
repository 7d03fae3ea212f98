"""Feature-grid geometry on torch tensors: the cell centres a dense head predicts from, and boxes
as distances from a point (the anchor-free parameterisation)."""

from __future__ import annotations

import torch


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
