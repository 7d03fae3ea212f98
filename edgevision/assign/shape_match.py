"""Shape-ratio assignment for anchor-based heads (YOLOv5's ``build_targets``, as a pure function).

A ground truth is matched to every anchor whose shape is close to its own, on every level:
the worst side ratio ``max(w / aw, aw / w, h / ah, ah / h)`` must be below ``anchor_t`` (4.0). The
bound matches the codec, whose size can reach at most 4 anchors (``(2 * sigmoid) ** 2``); a
shape-only rule, unlike an IoU threshold, gives small and large boxes alike their anchors.

Each match is made positive in the cell holding the box centre and in up to two neighbours, the
cells that hold the centre shifted half a cell towards the nearer border in x and in y (the
"0.5 rule"). The codec's centre range (-0.5, 1.5) cells lets those neighbours reach the centre;
three positives per match instead of one speed up early training, where most cells see no
object. A neighbour outside the grid is left out; a centre exactly half-way across its cell
(fraction 0.5) has no neighbour on that axis. (YOLOv5 writes the rule as ``(x % 1 < 0.5) & (x >
1)``; the two differ only for centres exactly on a cell border, where YOLOv5 can repeat the own
cell.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

# How far the neighbour rule shifts a centre, in cells (YOLOv5's ``g``).
NEIGHBOUR_SHIFT = 0.5


@dataclass
class LevelMatch:
    """The positives of one level; every tensor has K rows, one per (target, anchor, cell).

    Attributes:
        image: (K,) int64 image index in the batch.
        anchor: (K,) int64 anchor index within the level.
        grid_y, grid_x: (K,) int64 cell of the positive.
        target: (K,) int64 row of ``targets`` it learns from.
        box: (K, 4) float32 target in cell-offset form, the form ``decode_offsets`` predicts:
            centre minus the cell's top-left corner (in cells, within (-0.5, 1.5)), then width
            and height in cells.
        anchor_wh: (K, 2) float32 the anchor's size in cells.
    """

    image: torch.Tensor
    anchor: torch.Tensor
    grid_y: torch.Tensor
    grid_x: torch.Tensor
    target: torch.Tensor
    box: torch.Tensor
    anchor_wh: torch.Tensor

    def __len__(self) -> int:
        return int(self.target.shape[0])


def match_anchors(wh: torch.Tensor, anchors: torch.Tensor, anchor_t: float) -> torch.Tensor:
    """(M, na) bool: box sizes (M, 2) whose worst side ratio to anchors (na, 2) is below
    ``anchor_t`` (same units for both). A zero-size box matches nothing."""
    ratio = wh[:, None, :] / anchors[None, :, :]
    worst = torch.maximum(ratio, 1 / ratio).amax(dim=-1)
    return worst < anchor_t


def _neighbour_step(centre: torch.Tensor) -> torch.Tensor:
    """(P, 2) centres in cells -> (P, 2) step -1, +1 or 0 (none) towards the nearer border."""
    fraction = centre - centre.floor()
    step = torch.zeros_like(centre, dtype=torch.int64)
    step[fraction < NEIGHBOUR_SHIFT] = -1
    step[fraction > NEIGHBOUR_SHIFT] = 1
    return step


def _level_match(
    targets: torch.Tensor,
    anchors: torch.Tensor,
    stride: int,
    size: tuple[int, int],
    anchor_t: float,
) -> LevelMatch:
    """Positives of one level: ``anchors`` (na, 2) in input pixels, ``size`` (h, w) of its grid."""
    height, width = size
    boxes = targets[:, 2:6] / stride
    centres, wh = (boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]
    anchors = anchors.to(targets) / stride
    target_index, anchor_index = match_anchors(wh, anchors, anchor_t).nonzero(as_tuple=True)
    centre = centres[target_index]
    limits = torch.tensor([width - 1, height - 1], device=targets.device)  # last cell x, y
    own = torch.minimum(centre.floor().long().clamp(min=0), limits)  # (P, 2) x, y
    step = _neighbour_step(centre)
    zero = torch.zeros_like(step[:, :1])
    x_neighbour = own + torch.cat([step[:, :1], zero], dim=1)
    y_neighbour = own + torch.cat([zero, step[:, 1:]], dim=1)
    cells = torch.cat([own, x_neighbour, y_neighbour])  # (3P, 2), YOLOv5's order
    has_cell = torch.cat(
        [torch.ones_like(step[:, 0], dtype=torch.bool), step[:, 0] != 0, step[:, 1] != 0]
    )
    valid = has_cell & (cells >= 0).all(dim=1) & (cells <= limits).all(dim=1)
    pairs = torch.arange(len(centre), device=targets.device).repeat(3)[valid]
    cells = cells[valid]
    rows, anchor_index = target_index[pairs], anchor_index[pairs]
    offsets = centres[rows] - cells.to(centres)
    return LevelMatch(
        image=targets[rows, 0].long(),
        anchor=anchor_index,
        grid_y=cells[:, 1],
        grid_x=cells[:, 0],
        target=rows,
        box=torch.cat([offsets, wh[rows]], dim=1),
        anchor_wh=anchors[anchor_index],
    )


@torch.no_grad()
def shape_match(
    targets: torch.Tensor,
    anchors: torch.Tensor,
    strides: Sequence[int],
    feature_sizes: Sequence[tuple[int, int]],
    anchor_t: float = 4.0,
) -> list[LevelMatch]:
    """Positives of every level for a batch.

    Args:
        targets: (M, 6) rows ``[image_index, class, x0, y0, x1, y1]`` in input pixels; M may be 0.
        anchors: (L, na, 2) anchor sizes in input pixels, finest level first.
        strides: L input pixels per cell.
        feature_sizes: L grid sizes (h, w).
        anchor_t: a box matches an anchor when its worst side ratio is below this.

    Returns:
        One :class:`LevelMatch` per level. A (target, anchor) pair appears up to three times (own
        cell and two neighbours); several targets may share a (image, anchor, cell), which the
        loss resolves.
    """
    targets = targets.float()
    return [
        _level_match(targets, level_anchors, stride, size, anchor_t)
        for level_anchors, stride, size in zip(anchors, strides, feature_sizes, strict=True)
    ]
