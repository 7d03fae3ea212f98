"""SimOTA on hand-made grids where the right answer can be worked out on paper."""

from __future__ import annotations

import math

import pytest
import torch

from edgevision.assign.simota import SimOTAAssigner
from edgevision.ops.boxes import xyxy_to_cxcywh
from edgevision.ops.grid import make_anchor_points
from edgevision.ops.iou import box_iou

STRIDE = 8
NUM_CLASSES = 2


def grid(size: int = 64, stride: int = STRIDE) -> tuple[torch.Tensor, torch.Tensor]:
    """(A, 2) points and (A,) strides of one level over a size x size input."""
    return make_anchor_points([(size // stride, size // stride)], [stride])


def far_boxes(num_points: int) -> torch.Tensor:
    """Predictions that overlap nothing in the 64 x 64 image."""
    return torch.tensor([[500.0, 500.0, 501.0, 501.0]]).repeat(num_points, 1)


def point_index(points: torch.Tensor, x: float, y: float) -> int:
    return int(((points[:, 0] == x) & (points[:, 1] == y)).nonzero())


def test_perfect_predictions_inside_the_box_are_the_positives() -> None:
    points, strides = grid()
    gt = torch.tensor([[16.0, 16.0, 32.0, 32.0]])
    boxes, scores = far_boxes(len(points)), torch.full((len(points), NUM_CLASSES), 0.1)
    # Points strictly inside [16, 32]^2 are the 2 x 2 centres at 20 and 28.
    inside = [point_index(points, x, y) for x in (20.0, 28.0) for y in (20.0, 28.0)]
    boxes[inside] = gt
    scores[inside, 1] = 0.9
    result = SimOTAAssigner().assign(scores, boxes, points, strides, gt, torch.tensor([1]))
    # Four IoUs of 1 give k = 4: exactly the four perfect points.
    assert sorted(result.fg_mask.nonzero().squeeze(1).tolist()) == sorted(inside)
    assert result.matched_gt[inside].tolist() == [0, 0, 0, 0]
    assert torch.allclose(result.matched_iou[inside], torch.ones(4))
    background = ~result.fg_mask
    assert (result.matched_gt[background] == -1).all()
    assert (result.matched_iou[background] == 0).all()


def test_a_point_wanted_by_two_gts_goes_to_the_cheaper_one() -> None:
    points, strides = grid()
    gts = torch.tensor([[0.0, 0.0, 40.0, 40.0], [16.0, 16.0, 56.0, 56.0]])
    labels = torch.tensor([0, 1])
    # Every other point predicts a 1 x 1 box around itself: tiny IoU, so the shared point is the
    # cheapest pair for both gts and both select it (dynamic k = 1 for each).
    boxes = torch.cat([points - 0.5, points + 0.5], dim=1)
    scores = torch.full((len(points), NUM_CLASSES), 0.5)
    shared = point_index(points, 28.0, 28.0)
    boxes[shared] = torch.tensor([4.0, 4.0, 44.0, 44.0])
    scores[shared] = torch.tensor([0.05, 0.95])
    ious = box_iou(boxes[shared : shared + 1], gts)[0]
    assert ious[0] > ious[1]  # gt 0 overlaps more, but the class score favours gt 1
    costs = -torch.log(scores[shared, labels]) + 3.0 * -torch.log(ious + 1e-8)
    assert costs[1] < costs[0]

    result = SimOTAAssigner().assign(scores, boxes, points, strides, gts, labels)
    assert result.fg_mask.nonzero().squeeze(1).tolist() == [shared]
    assert int(result.matched_gt[shared]) == 1
    assert math.isclose(float(result.matched_iou[shared]), float(ious[1]), rel_tol=1e-6)


@pytest.mark.parametrize(
    ("predicted_ious", "expected_k"),
    [
        ([0.9, 0.8, 0.2], 1),  # sum 1.9
        ([0.9, 0.8, 0.5, 0.3], 2),  # sum 2.5
        ([0.95] * 10 + [0.9] * 5, 9),  # only the top 10 count: 9.5, not 14
    ],
)
def test_dynamic_k_is_the_floor_of_the_top_iou_sum(
    predicted_ious: list[float], expected_k: int
) -> None:
    points, strides = grid()
    gt = torch.tensor([[0.0, 0.0, 64.0, 64.0]])
    boxes, scores = far_boxes(len(points)), torch.full((len(points), NUM_CLASSES), 0.5)
    # Use points both inside the box and within 2.5 strides of its centre (32, 32), so that no
    # 1e5 "outside" cost reorders them; a box inside the gt covering a fraction f has IoU f.
    central = ((points - 32.0).abs().amax(dim=1) < 2.5 * STRIDE).nonzero().squeeze(1)
    chosen = central[: len(predicted_ious)]
    for index, fraction in zip(chosen.tolist(), predicted_ious, strict=True):
        boxes[index] = torch.tensor([0.0, 0.0, 64.0, 64.0 * fraction])
    result = SimOTAAssigner().assign(scores, boxes, points, strides, gt, torch.tensor([0]))
    assert int(result.fg_mask.sum()) == expected_k
    # Equal scores: the cheapest points are the best-overlapping ones (ties may go either way).
    best = sorted(predicted_ious, reverse=True)[:expected_k]
    positive_ious = result.matched_iou[result.fg_mask].sort(descending=True).values
    assert torch.allclose(positive_ious, torch.tensor(best), atol=1e-6)


def test_no_ground_truth_means_all_background() -> None:
    points, strides = grid()
    scores = torch.rand(len(points), NUM_CLASSES, generator=torch.Generator().manual_seed(0))
    result = SimOTAAssigner().assign(
        scores, far_boxes(len(points)), points, strides, torch.zeros(0, 4), torch.zeros(0)
    )
    assert not result.fg_mask.any()
    assert (result.matched_gt == -1).all()
    assert (result.matched_iou == 0).all()


def test_a_gt_far_outside_every_candidate_region_gets_nothing() -> None:
    points, strides = grid()
    gt = torch.tensor([[1000.0, 1000.0, 1010.0, 1010.0]])
    scores = torch.full((len(points), NUM_CLASSES), 0.5)
    result = SimOTAAssigner().assign(
        scores, far_boxes(len(points)), points, strides, gt, torch.tensor([0])
    )
    assert not result.fg_mask.any()


def test_a_gt_smaller_than_a_stride_still_gets_a_positive() -> None:
    points, strides = grid()
    # 2 x 2 box between the point centres at 4 and 12: no point is inside it.
    gt = torch.tensor([[5.0, 5.0, 7.0, 7.0]])
    boxes = torch.cat([points - 0.5, points + 0.5], dim=1)
    scores = torch.full((len(points), NUM_CLASSES), 0.5)
    result = SimOTAAssigner().assign(scores, boxes, points, strides, gt, torch.tensor([0]))
    assert int(result.fg_mask.sum()) == 1
    positive = points[result.fg_mask][0]
    # The positive comes from the centre region (within 2.5 strides of the centre at 6, 6).
    assert (positive - 6.0).abs().max() < 2.5 * STRIDE


def test_batch_assignment_indexes_target_rows_per_image() -> None:
    points, strides = grid()
    num_points = len(points)
    gt = torch.tensor([16.0, 16.0, 32.0, 32.0])
    # Image 1 holds targets rows 0 and 2, image 0 holds row 1; image 2 has no objects.
    targets = torch.tensor(
        [
            [1.0, 0.0, *gt.tolist()],
            [0.0, 1.0, 40.0, 40.0, 56.0, 56.0],
            [1.0, 1.0, 40.0, 8.0, 56.0, 24.0],
        ]
    )
    boxes = torch.cat([points - 0.5, points + 0.5], dim=1).repeat(3, 1, 1)
    scores = torch.full((3, num_points, NUM_CLASSES), 0.5)
    result = SimOTAAssigner().assign_batch(scores, boxes, points, strides, targets)
    assert result.fg_mask.shape == (3, num_points)
    assert set(result.matched_gt[0][result.fg_mask[0]].tolist()) == {1}
    assert set(result.matched_gt[1][result.fg_mask[1]].tolist()) == {0, 2}
    assert not result.fg_mask[2].any()
    # Every image-1 positive sits near the box it was matched to.
    for point, row in zip(
        points[result.fg_mask[1]], result.matched_gt[1][result.fg_mask[1]], strict=True
    ):
        centre = xyxy_to_cxcywh(targets[row, 2:6])[:2]
        assert (point - centre).abs().max() < 2.5 * STRIDE
