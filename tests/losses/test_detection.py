"""DetectionLoss end to end on raw tensors small enough to reason about."""

from __future__ import annotations

import math

import pytest
import torch

from edgevision.losses.detection import DetectionLoss
from edgevision.models.codecs.anchor_free import AnchorFreeCodec
from edgevision.ops.grid import distance_to_xyxy, make_anchor_points, xyxy_to_distance
from edgevision.ops.iou import box_iou

INPUT_HW = (64, 64)
NUM_CLASSES = 2
NUM_POINTS = 8 * 8 + 4 * 4 + 2 * 2  # strides 8, 16, 32 on a 64 x 64 input
GT = [16.0, 12.0, 44.0, 52.0]
CODEC = AnchorFreeCodec((8, 16, 32))


def points_and_strides() -> tuple[torch.Tensor, torch.Tensor]:
    sizes = [(64 // stride, 64 // stride) for stride in (8, 16, 32)]
    return make_anchor_points(sizes, [8, 16, 32])


def decode(raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The decode contract, written out independently of the loss's own code."""
    points, strides = points_and_strides()
    distances = torch.nn.functional.softplus(raw[..., :4]) * strides[:, None]
    return distance_to_xyxy(points, distances), raw[..., 4:].sigmoid()


def test_zero_targets_give_pure_background_loss_and_no_nan() -> None:
    raw = torch.zeros(2, NUM_POINTS, 4 + NUM_CLASSES, requires_grad=True)
    out = DetectionLoss(NUM_CLASSES, CODEC)(raw, torch.zeros(0, 6), INPUT_HW)
    # Every logit 0 against target 0: QFL = ln 2 * 0.5^2 per entry, divided by max(0 positives, 1).
    expected_cls = 2 * NUM_POINTS * NUM_CLASSES * math.log(2.0) * 0.25
    assert math.isclose(float(out["cls"]), expected_cls, rel_tol=1e-5)
    assert float(out["box"]) == 0.0
    out["loss"].backward()
    assert torch.isfinite(raw.grad).all()
    assert raw.grad[..., :4].abs().sum() == 0  # no positives: boxes get no gradient


def test_perfect_predictions_have_no_box_loss() -> None:
    points, strides = points_and_strides()
    gt = torch.tensor(GT)
    inside = xyxy_to_distance(points, gt.expand(NUM_POINTS, 4)).amin(dim=1) > 0
    assert int(inside.sum()) == 16  # 12 stride-8 and 4 stride-16 points
    raw = torch.zeros(1, NUM_POINTS, 4 + NUM_CLASSES)
    # Inverse softplus of the exact distances: these points decode to the gt box itself.
    distances = xyxy_to_distance(points[inside], gt) / strides[inside, None]
    raw[0, inside, :4] = distances + torch.log(-torch.expm1(-distances))
    assert torch.allclose(decode(raw)[0][0, inside], gt.expand(16, 4), atol=1e-4)
    targets = torch.tensor([[0.0, 1.0, *GT]])
    out = DetectionLoss(NUM_CLASSES, CODEC)(raw, targets, INPUT_HW)
    assert float(out["box"]) < 1e-4
    # Ten IoU-1 points fill the top 10, so k = 10 positives, each with quality target 1. Logits
    # 0 cost ln 2 * 0.5^2 against target 0 or 1 alike, and the sum is divided by the 10 positives.
    expected_cls = NUM_POINTS * NUM_CLASSES * math.log(2.0) * 0.25 / 10
    assert math.isclose(float(out["cls"]), expected_cls, rel_tol=1e-4)


def test_optimising_raw_outputs_fits_the_ground_truth() -> None:
    torch.manual_seed(0)
    raw = (0.01 * torch.randn(1, NUM_POINTS, 4 + NUM_CLASSES)).requires_grad_(True)
    targets = torch.tensor([[0.0, 1.0, *GT]])
    loss_fn = DetectionLoss(NUM_CLASSES, CODEC)
    optimizer = torch.optim.Adam([raw], lr=0.05)
    losses = []
    for _ in range(100):
        out = loss_fn(raw, targets, INPUT_HW)
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
        losses.append(float(out["loss"].detach()))
    assert all(math.isfinite(value) for value in losses)
    assert losses[-1] < 0.5 * losses[0]
    # What inference would keep: the highest class-1 score's box overlaps the gt well.
    boxes, scores = decode(raw.detach())
    best = int(scores[0, :, 1].argmax())
    assert float(box_iou(boxes[0, best : best + 1], torch.tensor([GT]))) > 0.7


def test_targets_are_matched_to_their_own_image() -> None:
    raw = torch.zeros(2, NUM_POINTS, 4 + NUM_CLASSES)
    one_image = DetectionLoss(NUM_CLASSES, CODEC)(
        raw[:1], torch.tensor([[0.0, 1.0, *GT]]), INPUT_HW
    )
    both = DetectionLoss(NUM_CLASSES, CODEC)(raw, torch.tensor([[1.0, 1.0, *GT]]), INPUT_HW)
    # Same positives (now in image 1) plus an all-background image 0 with the same background loss.
    assert math.isclose(float(both["box"]), float(one_image["box"]), rel_tol=1e-5)
    assert float(both["cls"]) > float(one_image["cls"])


@pytest.mark.parametrize(
    ("raw_shape", "targets", "message"),
    [
        ((1, NUM_POINTS, 5), torch.zeros(0, 6), "expected \\(B, A, 6\\)"),
        ((1, NUM_POINTS - 1, 6), torch.zeros(0, 6), "divisible by 32"),
        ((1, NUM_POINTS, 6), torch.tensor([[0.0, 2.0, *GT]]), "target classes span 2..2"),
        ((1, NUM_POINTS, 6), torch.zeros(3, 5), "expected \\(M, 6\\)"),
    ],
)
def test_mismatched_inputs_are_explained(
    raw_shape: tuple[int, ...], targets: torch.Tensor, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        DetectionLoss(NUM_CLASSES, CODEC)(torch.zeros(raw_shape), targets, INPUT_HW)
