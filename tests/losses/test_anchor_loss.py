"""The anchor-based loss: a hand-computed case, duplicates, no targets, errors, and training."""

from __future__ import annotations

import math

import pytest
import torch

from edgevision.losses.anchor_based import AnchorLoss
from edgevision.models.anchor_detector import tiny_anchor_detector
from edgevision.models.codecs.anchor_based import AnchorCodec

HW = (64, 64)  # level 0: 4 x 4 cells of 16 px, level 1: 2 x 2 cells of 32 px
ANCHORS = torch.tensor([[[16.0, 16.0]], [[100.0, 100.0]]])  # one anchor per level
POSITIVE = 5  # level 0, cell (x=1, y=1): index 1 * 4 + 1


def _softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def _hand_raw() -> torch.Tensor:
    """Raw output (1, 20, 7): 2 classes. The positive predicts a 32 x 16 box centred at (24, 24)
    (tw makes (2 sigmoid)^2 = 2), objectness logit 2, class logits (1, -1); every other level-0
    objectness logit is 0, every level-1 one is -1."""
    raw = torch.zeros(1, 16 + 4, 7)
    raw[0, POSITIVE, 2] = math.log(math.sqrt(0.5) / (1 - math.sqrt(0.5)))
    raw[0, POSITIVE, 4] = 2.0
    raw[0, POSITIVE, 5:] = torch.tensor([1.0, -1.0])
    raw[0, 16:, 4] = -1.0
    return raw


def _ciou_same_centre(w_pred: float, h_pred: float, w_true: float, h_true: float) -> float:
    """CIoU of two boxes sharing their centre (no distance term)."""
    iou = (
        min(w_pred, w_true)
        * min(h_pred, h_true)
        / (w_pred * h_pred + w_true * h_true - min(w_pred, w_true) * min(h_pred, h_true))
    )
    v = 4 / math.pi**2 * (math.atan(w_true / h_true) - math.atan(w_pred / h_pred)) ** 2
    return iou - v / (v - iou + 1) * v


def test_a_hand_computed_case():
    loss_fn = AnchorLoss(2, AnchorCodec((16, 32), ANCHORS))
    # A 16 x 16 target at (24, 24): centre 1.5 cells (no neighbours), anchor-sized on level 0,
    # 6.25x too small for level 1's anchor: one positive, the prediction above.
    targets = torch.tensor([[0, 0, 16.0, 16.0, 32.0, 32.0]])
    losses = loss_fn(_hand_raw(), targets, HW)

    ciou = _ciou_same_centre(32, 16, 16, 16)  # IoU 0.5 and the aspect penalty
    level0 = (15 * math.log(2) + _softplus(2.0) - 2.0 * ciou) / 16  # BCE(z, t) = softplus(z) - z t
    level1 = _softplus(-1.0)
    scale = 64 * 3 / 2  # nominal batch, 3 / levels
    box = 0.05 * scale * (1 - ciou)
    obj = 1.0 * scale * (64 * 64 / 640**2) * (4.0 * level0 + 1.0 * level1)
    cls = 0.5 * scale * 2 / 80 * _softplus(-1.0)  # BCE(1, 1) = BCE(-1, 0) = softplus(-1)
    assert losses["box"].item() == pytest.approx(box, rel=1e-5)
    assert losses["obj"].item() == pytest.approx(obj, rel=1e-5)
    assert losses["cls"].item() == pytest.approx(cls, rel=1e-5)
    assert losses["loss"].item() == pytest.approx(box + obj + cls, rel=1e-5)
    assert not losses["box"].requires_grad


def test_a_shared_cell_learns_the_best_ciou_whatever_the_order():
    loss_fn = AnchorLoss(2, AnchorCodec((16, 32), ANCHORS))
    exact = [0, 1, 8.0, 16.0, 40.0, 32.0]  # 32 x 16 at (24, 24): what the positive predicts
    square = [0, 0, 16.0, 16.0, 32.0, 32.0]
    first = loss_fn(_hand_raw(), torch.tensor([square, exact]), HW)
    second = loss_fn(_hand_raw(), torch.tensor([exact, square]), HW)
    for key in ("loss", "box", "obj", "cls"):
        assert first[key].item() == pytest.approx(second[key].item(), rel=1e-6)
    ciou = _ciou_same_centre(32, 16, 16, 16)
    assert first["box"].item() == pytest.approx(0.05 * 96 * (1 - ciou) / 2, rel=1e-5)
    level0 = (15 * math.log(2) + _softplus(-2.0)) / 16  # objectness target 1 = the exact CIoU
    obj = 96 * (64 * 64 / 640**2) * (4.0 * level0 + _softplus(-1.0))
    assert first["obj"].item() == pytest.approx(obj, rel=1e-5)


def test_no_targets_give_zero_box_and_class_terms_and_a_finite_loss():
    raw = _hand_raw().requires_grad_()
    losses = AnchorLoss(2, AnchorCodec((16, 32), ANCHORS))(raw, torch.zeros((0, 6)), HW)
    assert losses["box"].item() == 0.0 and losses["cls"].item() == 0.0
    assert torch.isfinite(losses["loss"]) and losses["loss"].item() == pytest.approx(
        losses["obj"].item()
    )
    losses["loss"].backward()
    assert torch.isfinite(raw.grad).all() and raw.grad[..., 4].abs().sum() > 0
    assert raw.grad[..., :4].abs().sum() == 0  # no positive, no box gradient


def test_the_loss_matches_with_the_codecs_current_anchors():
    anchors = ANCHORS.clone()
    loss_fn = AnchorLoss(2, AnchorCodec((16, 32), anchors))
    targets = torch.tensor([[0, 0, 16.0, 16.0, 32.0, 32.0]])
    assert loss_fn(_hand_raw(), targets, HW)["box"].item() > 0
    anchors[0, 0] = torch.tensor([80.0, 80.0])  # 5x the target: nothing matches any more
    assert loss_fn(_hand_raw(), targets, HW)["box"].item() == 0.0


def test_readable_errors():
    loss_fn = AnchorLoss(2, AnchorCodec((16, 32), ANCHORS))
    with pytest.raises(ValueError, match=r"expected \(B, 20, 7\) for 2 classes"):
        loss_fn(torch.zeros(1, 20, 8), torch.zeros((0, 6)), HW)
    with pytest.raises(ValueError, match="classes span 2..2 but the loss has 2"):
        loss_fn(_hand_raw(), torch.tensor([[0, 2, 16.0, 16.0, 32.0, 32.0]]), HW)
    with pytest.raises(ValueError, match="balance"):
        AnchorLoss(2, AnchorCodec((16, 32), ANCHORS), balance=[1.0])


def test_a_few_training_steps_lower_the_loss():
    torch.manual_seed(0)
    model = tiny_anchor_detector(3, width_multiple=0.25)
    loss_fn = AnchorLoss(3, model.codec)
    images = torch.rand(2, 3, 128, 128)
    targets = torch.tensor(
        [
            [0, 0, 10.0, 20.0, 50.0, 60.0],
            [0, 1, 60.0, 70.0, 120.0, 100.0],
            [1, 2, 30.0, 30.0, 90.0, 110.0],
        ]
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    history = []
    for _ in range(8):
        losses = loss_fn(model(images), targets, (128, 128))
        optimizer.zero_grad()
        losses["loss"].backward()
        optimizer.step()
        history.append(losses["loss"].item())
    assert all(math.isfinite(v) for v in history)
    assert history[-1] < 0.7 * history[0]
