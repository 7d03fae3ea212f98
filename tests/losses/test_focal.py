"""Focal losses against values worked out by hand."""

from __future__ import annotations

import math

import torch

from edgevision.losses.focal import quality_focal_loss, sigmoid_focal_loss

LN2 = math.log(2.0)


def test_quality_focal_loss_known_values() -> None:
    logit_075 = math.log(3.0)  # sigmoid(ln 3) = 0.75
    logits = torch.tensor([[0.0, 0.0, 0.0, logit_075]])
    targets = torch.tensor([[0.5, 0.0, 1.0, 0.25]])
    loss = quality_focal_loss(logits, targets)
    bce_075_vs_025 = -(0.25 * math.log(0.75) + 0.75 * math.log(0.25))  # 1.11164
    expected = torch.tensor(
        [
            [
                LN2 * 0.0,  # prediction equals the soft target: no loss at all
                LN2 * 0.5**2,  # easy background: BCE scaled by sigmoid^2
                LN2 * 0.5**2,
                bce_075_vs_025 * 0.5**2,  # |0.75 - 0.25|^2
            ]
        ]
    )
    assert torch.allclose(loss, expected, atol=1e-6)


def test_quality_focal_loss_beta_changes_the_focus() -> None:
    loss = quality_focal_loss(torch.tensor([0.0]), torch.tensor([0.0]), beta=1.0)
    assert math.isclose(float(loss), LN2 * 0.5, rel_tol=1e-6)


def test_quality_focal_loss_pulls_the_score_towards_the_soft_target() -> None:
    logits = torch.zeros(3, requires_grad=True)
    quality_focal_loss(logits, torch.tensor([0.9, 0.5, 0.1])).sum().backward()
    # Below target -> negative gradient (raise the logit); at target -> none; above -> positive.
    assert logits.grad[0] < 0
    assert math.isclose(float(logits.grad[1]), 0.0, abs_tol=1e-7)
    assert logits.grad[2] > 0


def test_sigmoid_focal_loss_known_values() -> None:
    logits = torch.tensor([0.0, 0.0, math.log(3.0)])
    targets = torch.tensor([1.0, 0.0, 1.0])
    loss = sigmoid_focal_loss(logits, targets, alpha=0.25, gamma=2.0)
    expected = torch.tensor(
        [
            LN2 * 0.5**2 * 0.25,  # positive: alpha = 0.25
            LN2 * 0.5**2 * 0.75,  # negative: 1 - alpha
            -math.log(0.75) * 0.25**2 * 0.25,  # p_t = 0.75
        ]
    )
    assert torch.allclose(loss, expected, atol=1e-7)


def test_sigmoid_focal_loss_without_alpha_or_gamma_is_bce() -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 3, generator=generator)
    targets = (torch.rand(4, 3, generator=generator) > 0.5).float()
    loss = sigmoid_focal_loss(logits, targets, alpha=-1.0, gamma=0.0)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    assert torch.allclose(loss, bce)
