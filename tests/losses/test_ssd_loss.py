"""SSDLoss on raw tensors small enough to compute by hand, and a few training steps of both SSD
models."""

from __future__ import annotations

import math

import pytest
import torch

from edgevision.losses.ssd import SSDLoss, hard_negative_mask
from edgevision.models.codecs.ssd import PriorLevel, SSDCodec, encode
from edgevision.models.ssd_detector import ssd_grid, ssdlite_mnv2
from tests.detector import one_torch_thread

__all__ = ["one_torch_thread"]
pytestmark = pytest.mark.usefixtures("one_torch_thread")

# A 128 x 128 input, one level of 4 x 4 cells, one 32 px prior per cell: prior k (row-major) is
# the box (32 * col, 32 * row, 32 * col + 32, 32 * row + 32), so a gt equal to it has IoU 1 with
# prior k and 0 with every other.
INPUT_HW = (128, 128)
NUM_CLASSES = 2
LEVELS = [PriorLevel(0.25, ((1.0, 1.0),))]


def codec(scores: str = "softmax") -> SSDCodec:
    return SSDCodec(LEVELS, strides=(32,), scores=scores)


def cell_box(k: int) -> list[float]:
    row, col = divmod(k, 4)
    return [32.0 * col, 32.0 * row, 32.0 * col + 32, 32.0 * row + 32]


def cross_entropy(logits: list[float], label: int) -> float:
    return math.log(sum(math.exp(v) for v in logits)) - logits[label]


def test_hard_negative_mask_takes_exactly_three_negatives_per_positive():
    generator = torch.Generator().manual_seed(0)
    loss = torch.rand(3, 20, generator=generator)
    positive = torch.zeros(3, 20, dtype=torch.bool)
    positive[0, [1, 5]] = True  # P = 2 -> 6 negatives
    positive[2, 7] = True  # P = 1 -> 3 negatives; image 1 has none
    mask = hard_negative_mask(loss, positive)
    assert mask.sum(dim=1).tolist() == [6, 3, 3]  # empty image: 3 * round(mean P = 1)
    assert not (mask & positive).any()
    for image in range(3):
        negatives = loss[image].masked_fill(positive[image], -1.0)
        want = negatives.argsort(descending=True)[: int(mask[image].sum())]
        assert set(want.tolist()) == set(mask[image].nonzero().flatten().tolist())


def test_hard_negative_mask_is_capped_by_the_negatives_there_are():
    positive = torch.tensor([[True, True, False, False, False]])
    assert hard_negative_mask(torch.rand(1, 5), positive).sum() == 3  # 6 wanted, 3 exist


def test_softmax_loss_counts_the_positive_and_its_three_hardest_negatives():
    raw = torch.zeros(1, 16, 4 + NUM_CLASSES + 1)
    # Prior k's logits (background, class 0, class 1) = (0, 0.1 k, 0): background loss grows with k.
    raw[0, :, 5] = torch.arange(16) * 0.1
    raw[0, 5, 4:] = torch.tensor([0.3, -0.2, 0.4])
    targets = torch.tensor([[0.0, 1.0, *cell_box(5)]])  # class 1 on prior 5: P = 1
    out = SSDLoss(NUM_CLASSES, codec())(raw, targets, INPUT_HW)
    positive_ce = cross_entropy([0.3, -0.2, 0.4], 2)
    negative_ce = sum(cross_entropy([0.0, 0.1 * k, 0.0], 0) for k in (15, 14, 13))
    assert math.isclose(float(out["cls"]), positive_ce + negative_ce, rel_tol=1e-5)
    assert float(out["box"]) < 1e-6  # zero offsets on a prior equal to its gt


def test_box_losses_are_zero_for_exact_offsets_and_known_otherwise():
    gt = [40.0, 10.0, 80.0, 50.0]  # IoU 0.25 with prior 1 (32..64, 0..32): its best prior
    targets = torch.tensor([[0.0, 0.0, *gt]])
    prior = codec().pixel_priors(INPUT_HW)[1]
    raw = torch.zeros(1, 16, 4 + NUM_CLASSES + 1)
    raw[0, 1, :4] = encode(torch.tensor(gt), prior)
    for kind in ("smooth_l1", "giou"):
        out = SSDLoss(NUM_CLASSES, codec(), box_kind=kind)(raw, targets, INPUT_HW)
        assert float(out["box"]) < 1e-5
    raw[0, 1, :4] += torch.tensor([0.5, 0.0, 0.0, 2.0])  # smooth L1: 0.5 * 0.5^2 + (2 - 0.5)
    out = SSDLoss(NUM_CLASSES, codec(), box_weight=2.0)(raw, targets, INPUT_HW)
    assert math.isclose(float(out["box"]), 2.0 * (0.125 + 1.5), rel_tol=1e-5)


def test_focal_loss_equals_the_direct_formula_over_every_prior():
    generator = torch.Generator().manual_seed(0)
    raw = torch.randn(1, 16, 4 + NUM_CLASSES + 1, generator=generator)
    targets = torch.tensor([[0.0, 0.0, *cell_box(2)], [0.0, 1.0, *cell_box(9)]])
    gamma, alpha = 2.0, 0.25
    loss = SSDLoss(NUM_CLASSES, codec("sigmoid"), focal=True, gamma=gamma, alpha=alpha)
    out = loss(raw, targets, INPUT_HW)
    want = 0.0
    for k in range(16):
        for c in range(NUM_CLASSES):
            target = 1.0 if (k, c) in {(2, 0), (9, 1)} else 0.0
            p = 1 / (1 + math.exp(-float(raw[0, k, 5 + c])))
            p_t = p if target else 1 - p
            alpha_t = alpha if target else 1 - alpha
            want += -alpha_t * (1 - p_t) ** gamma * math.log(p_t)
    assert math.isclose(float(out["cls"]), want / 2, rel_tol=1e-5)  # two positives


def test_no_targets_give_a_finite_background_only_loss():
    raw = torch.randn(2, 16, 4 + NUM_CLASSES + 1, requires_grad=True)
    for focal in (False, True):
        loss = SSDLoss(NUM_CLASSES, codec("sigmoid" if focal else "softmax"), focal=focal)
        out = loss(raw, torch.zeros(0, 6), INPUT_HW)
        assert torch.isfinite(out["loss"]) and float(out["cls"]) > 0 and float(out["box"]) == 0
        raw.grad = None
        out["loss"].backward()
        assert torch.isfinite(raw.grad).all() and raw.grad[..., :4].abs().sum() == 0
        # Mined cross entropy: 3 negatives per empty image (P = 1 as a batch with none).
        assert int((raw.grad[..., 4:].abs().sum(-1) > 0).sum()) == (32 if focal else 6)


def test_mismatched_focal_mode_shapes_and_classes_are_readable_errors():
    with pytest.raises(ValueError, match="loss_options"):
        SSDLoss(NUM_CLASSES, codec("softmax"), focal=True)
    loss = SSDLoss(NUM_CLASSES, codec())
    with pytest.raises(ValueError, match=r"expected \(B, 16, 7\)"):
        loss(torch.zeros(1, 16, 6), torch.zeros(0, 6), INPUT_HW)
    with pytest.raises(ValueError, match="num_classes"):
        loss(torch.zeros(1, 16, 7), torch.tensor([[0.0, 2.0, 0, 0, 10, 10]]), INPUT_HW)


@pytest.mark.parametrize("build, imgsz", [(ssdlite_mnv2, 128), (ssd_grid, 160)])
def test_a_few_training_steps_lower_the_loss(build, imgsz):
    torch.manual_seed(0)
    model = build(3).train()
    loss_fn = SSDLoss(3, model.codec, **model.head.loss_options)
    images = torch.rand(2, 3, imgsz, imgsz)
    targets = torch.tensor(
        [
            [0.0, 0.0, 10.0, 20.0, 70.0, 90.0],
            [0.0, 2.0, 60.0, 60.0, 120.0, 110.0],
            [1.0, 1.0, 30.0, 5.0, 60.0, 40.0],
        ]
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(6):
        out = loss_fn(model(images), targets, (imgsz, imgsz))
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
        losses.append(float(out["loss"].detach()))
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.8 * losses[0], losses
