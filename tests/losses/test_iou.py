"""IoU-family loss against values worked out by hand."""

from __future__ import annotations

import pytest
import torch

from edgevision.losses.iou import iou_loss

UNIT = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
DISJOINT = torch.tensor([[2.0, 0.0, 3.0, 1.0]])  # one unit gap to the right of UNIT
HALF = torch.tensor([[0.0, 0.0, 2.0, 1.0]]), torch.tensor([[1.0, 0.0, 3.0, 1.0]])


@pytest.mark.parametrize("kind", ["iou", "giou", "diou", "ciou"])
def test_identical_boxes_cost_nothing(kind: str) -> None:
    boxes = torch.tensor([[0.0, 0.0, 10.0, 5.0], [3.0, 4.0, 7.0, 20.0]])
    assert torch.allclose(iou_loss(boxes, boxes.clone(), kind=kind), torch.zeros(2), atol=1e-6)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("iou", 1.0),  # no overlap: IoU 0
        ("giou", 4 / 3),  # enclosing box area 3, union 2: GIoU = 0 - 1/3
        ("diou", 1.4),  # centre distance^2 4, enclosing diagonal^2 10: DIoU = -0.4
    ],
)
def test_disjoint_boxes(kind: str, expected: float) -> None:
    assert torch.allclose(iou_loss(UNIT, DISJOINT, kind=kind), torch.tensor([expected]), atol=1e-6)


def test_half_overlap() -> None:
    # Intersection 1, union 3, enclosing box 3 (no gap): IoU = GIoU = 1/3.
    for kind in ("iou", "giou"):
        assert torch.allclose(iou_loss(*HALF, kind=kind), torch.tensor([2 / 3]), atol=1e-6)


def test_giou_gradient_reaches_boxes_that_do_not_overlap() -> None:
    pred = DISJOINT.clone().requires_grad_(True)
    iou_loss(pred, UNIT, kind="giou").sum().backward()
    assert pred.grad.abs().sum() > 0


def test_unknown_kind_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown IoU kind"):
        iou_loss(UNIT, UNIT, kind="siou2")
