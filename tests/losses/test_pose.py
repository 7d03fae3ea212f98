"""PoseLoss on raw tensors small enough to reason about: exact OKS terms, one assignment, no NaN."""

from __future__ import annotations

import math

import pytest
import torch

from edgevision.assign.simota import SimOTAAssigner
from edgevision.losses.detection import DetectionLoss
from edgevision.losses.pose import PoseLoss
from edgevision.models.codecs.pose import PoseCodec
from edgevision.ops.grid import xyxy_to_distance

INPUT_HW = (64, 64)
NUM_CLASSES = 2
NUM_KEYPOINTS = 3
NUM_POINTS = 8 * 8 + 4 * 4 + 2 * 2  # strides 8, 16, 32 on a 64 x 64 input
CHANNELS = 4 + NUM_CLASSES + 3 * NUM_KEYPOINTS
GT = [16.0, 12.0, 44.0, 52.0]  # 28 x 40: area 1120
AREA = 28.0 * 40.0
SIGMAS = [0.05, 0.1, 0.2]
CODEC = PoseCodec((8, 16, 32), NUM_KEYPOINTS)
# Point 2 is unlabelled (0, 0, 0): it must not count anywhere.
GT_KEYPOINTS = torch.tensor([[[20.0, 20.0, 2.0], [30.0, 40.0, 1.0], [0.0, 0.0, 0.0]]])
TARGETS = torch.tensor([[0.0, 1.0, *GT]])


def perfect_raw(keypoints: torch.Tensor = GT_KEYPOINTS[0]) -> torch.Tensor:
    """(1, A, CHANNELS): the points inside GT decode to GT exactly, every point decodes its
    keypoints to ``keypoints`` (K, 2|3), every logit is 0."""
    points, strides = CODEC.points(INPUT_HW)
    raw = torch.zeros(1, NUM_POINTS, CHANNELS)
    gt = torch.tensor(GT)
    inside = xyxy_to_distance(points, gt.expand(NUM_POINTS, 4)).amin(dim=1) > 0
    distances = xyxy_to_distance(points[inside], gt) / strides[inside, None]
    raw[0, inside, :4] = distances + torch.log(-torch.expm1(-distances))  # inverse softplus
    offsets = CODEC.encode_keypoints(keypoints[..., :2].expand(NUM_POINTS, -1, 2), INPUT_HW)
    keypoint_raw = raw[..., 4 + NUM_CLASSES :].view(1, NUM_POINTS, NUM_KEYPOINTS, 3)
    keypoint_raw[..., :2] = offsets
    return raw


def test_perfect_keypoints_have_no_keypoint_loss_and_the_detection_terms_are_unchanged():
    raw = perfect_raw()
    out = PoseLoss(NUM_CLASSES, CODEC, SIGMAS)(raw, TARGETS, GT_KEYPOINTS, INPUT_HW)
    assert float(out["kpt"]) < 1e-6
    detection = DetectionLoss(NUM_CLASSES, CODEC.box_codec)(raw[..., :6], TARGETS, INPUT_HW)
    for key in ("cls", "box"):
        assert torch.equal(out[key], detection[key])
    # Every visibility logit is 0: BCE ln 2 per keypoint, averaged over K, summed over the
    # positives and divided by their number.
    assert math.isclose(float(out["kobj"]), math.log(2.0), rel_tol=1e-6)
    total = detection["loss"] + out["kpt"] + out["kobj"]
    assert math.isclose(float(out["loss"]), float(total), rel_tol=1e-6)


@pytest.mark.parametrize(("kpt_weight", "distance"), [(4.0, 5.0), (1.0, 12.0)])
def test_one_point_off_by_a_known_distance(kpt_weight, distance):
    predicted = GT_KEYPOINTS[0].clone()
    predicted[1, :2] += torch.tensor([0.6, 0.8]) * distance  # keypoint 1 (sigma 0.1) moves
    predicted[2, :2] = torch.tensor([63.0, 1.0])  # the unlabelled point may be anywhere
    loss = PoseLoss(NUM_CLASSES, CODEC, SIGMAS, kpt_weight=kpt_weight)
    out = loss(perfect_raw(predicted), TARGETS, GT_KEYPOINTS, INPUT_HW)
    # Two labelled points, one exact: OKS = (1 + exp(-d^2 / (2 s^2 (2 sigma)^2))) / 2 with
    # s^2 the box area, the same at every positive, so the mean over positives is that value.
    similarity = (1 + math.exp(-(distance**2) / (2 * AREA * (2 * 0.1) ** 2))) / 2
    # Plus the L1 term: mean over the two labelled points of distance / sqrt(area).
    l1 = (distance / math.sqrt(AREA)) / 2
    expected = kpt_weight * (1 - similarity) + 1.0 * l1
    assert math.isclose(float(out["kpt"]), expected, rel_tol=1e-4)
    only_oks = PoseLoss(NUM_CLASSES, CODEC, SIGMAS, kpt_weight=kpt_weight, kpt_l1_weight=0.0)
    out = only_oks(perfect_raw(predicted), TARGETS, GT_KEYPOINTS, INPUT_HW)
    assert math.isclose(float(out["kpt"]), kpt_weight * (1 - similarity), rel_tol=1e-4)


def test_far_points_still_get_a_gradient():
    # Half an object away with sigma 0.05, OKS is ~exp(-12): the L1 term keeps points moving.
    predicted = GT_KEYPOINTS[0].clone()
    predicted[:2, :2] += 20.0
    raw = perfect_raw(predicted).requires_grad_(True)
    for l1_weight, moves in ((0.0, False), (1.0, True)):
        loss = PoseLoss(NUM_CLASSES, CODEC, [0.05] * 3, kpt_l1_weight=l1_weight)
        (grad,) = torch.autograd.grad(loss(raw, TARGETS, GT_KEYPOINTS, INPUT_HW)["loss"], raw)
        keypoint_grad = grad[..., 4 + NUM_CLASSES :].view(-1, NUM_KEYPOINTS, 3)[..., :2]
        assert (float(keypoint_grad.abs().max()) > 1e-3) == moves


class CountingAssigner(SimOTAAssigner):
    calls = 0

    def assign_batch(self, *args, **kwargs):
        CountingAssigner.calls += 1
        return super().assign_batch(*args, **kwargs)


def test_one_assignment_and_keypoint_gradients_only_at_positives():
    torch.manual_seed(0)
    raw = (perfect_raw() + 0.1 * torch.randn(1, NUM_POINTS, CHANNELS)).requires_grad_(True)
    loss = PoseLoss(NUM_CLASSES, CODEC, SIGMAS, assigner=CountingAssigner())
    out = loss(raw, TARGETS, GT_KEYPOINTS, INPUT_HW)
    assert CountingAssigner.calls == 1
    out["loss"].backward()
    keypoint_grad = raw.grad[0, :, 6:].view(NUM_POINTS, NUM_KEYPOINTS, 3)
    with_grad = keypoint_grad.abs().sum(dim=(1, 2)) > 0
    _, assignment = loss.detection.compute(raw.detach()[..., :6], TARGETS, INPUT_HW)
    assert torch.equal(with_grad, assignment.fg_mask[0]) and with_grad.sum() > 0
    # The unlabelled keypoint's position gets no gradient; its visibility (target 0) does.
    assert not keypoint_grad[:, 2, :2].any() and keypoint_grad[with_grad, 2, 2].all()


def test_optimising_raw_outputs_fits_the_keypoints():
    torch.manual_seed(0)
    raw = (0.01 * torch.randn(1, NUM_POINTS, CHANNELS)).requires_grad_(True)
    loss = PoseLoss(NUM_CLASSES, CODEC, SIGMAS)
    optimizer = torch.optim.Adam([raw], lr=0.05)
    first = None
    for _ in range(60):
        out = loss(raw, TARGETS, GT_KEYPOINTS, INPUT_HW)
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
        first = first if first is not None else out
    assert float(out["kpt"]) < 0.25 * float(first["kpt"])
    assert float(out["kobj"]) < 0.5 * float(first["kobj"])


def test_no_positives_and_no_labelled_points_give_zero_keypoint_terms_and_no_nan():
    raw = torch.zeros(2, NUM_POINTS, CHANNELS, requires_grad=True)
    loss = PoseLoss(NUM_CLASSES, CODEC, SIGMAS)
    empty = loss(raw, torch.zeros(0, 6), torch.zeros(0, NUM_KEYPOINTS, 3), INPUT_HW)
    unlabelled = loss(raw, TARGETS, torch.zeros(1, NUM_KEYPOINTS, 3), INPUT_HW)
    for out in (empty, unlabelled):
        assert float(out["kpt"]) == 0.0 and float(out["kobj"]) == 0.0
        assert torch.isfinite(out["loss"])
        raw.grad = None
        out["loss"].backward()
        assert torch.isfinite(raw.grad).all() and not raw.grad[..., 6:].any()
    assert float(unlabelled["box"]) > 0  # the box is still trained


def test_mismatched_inputs_are_explained():
    with pytest.raises(ValueError, match="sigmas must be 3 positive values"):
        PoseLoss(NUM_CLASSES, CODEC, [0.1, 0.1])
    with pytest.raises(ValueError, match="sigmas must be 3 positive values"):
        PoseLoss(NUM_CLASSES, CODEC, [0.1, 0.0, 0.1])
    loss = PoseLoss(NUM_CLASSES, CODEC, SIGMAS)
    with pytest.raises(ValueError, match="expected \\(1, 3, 3\\)"):
        loss(perfect_raw(), TARGETS, torch.zeros(2, NUM_KEYPOINTS, 3), INPUT_HW)
    with pytest.raises(ValueError, match="3 keypoints: expected"):
        loss(torch.zeros(1, NUM_POINTS, 6), TARGETS, GT_KEYPOINTS, INPUT_HW)


def test_detection_compute_returns_the_call_result_and_its_assignment():
    raw = perfect_raw()[..., :6]
    detection = DetectionLoss(NUM_CLASSES, CODEC.box_codec)
    losses, assignment = detection.compute(raw, TARGETS, INPUT_HW)
    called = detection(raw, TARGETS, INPUT_HW)
    assert all(torch.equal(losses[key], called[key]) for key in called)
    assert assignment.fg_mask.shape == (1, NUM_POINTS) and int(assignment.fg_mask.sum()) == 10
    assert set(assignment.matched_gt[assignment.fg_mask].tolist()) == {0}
