"""Shared test helpers for models: make a fresh model's output depend on every layer and pixel."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


@torch.no_grad()
def randomise_for_parity(model: nn.Module, seed: int = 0, image_hw=(128, 128)) -> nn.Module:
    """Calibrated BN statistics and random BN affine terms; returns the model in eval mode.

    A fresh model in eval mode has identity BNs, so the signal fades layer by layer (default conv
    init shrinks it) and the raw output is nearly a constant: a wrong fold or a mis-exported layer
    would hide below a 1e-4 tolerance. Running one random batch in train mode sets real
    statistics, so every layer's output stays O(1) and the raw output moves by ~0.1-1 with the
    input (the head's 0.01-scale predictors keep it there, like a trained model's logits and
    float32 rounding stays ~1e-5).
    """
    generator = torch.Generator().manual_seed(seed)
    batch_norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for module in batch_norms:
        module.reset_running_stats()
        module.momentum = None  # cumulative average: one batch gives exactly its statistics
        module.weight.copy_(torch.rand(module.weight.shape, generator=generator) * 0.5 + 0.5)
        module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.1)
    model.train()(torch.rand(8, 3, *image_hw, generator=generator))
    for module in batch_norms:
        module.momentum = 0.1
        # A 1x1 level (SSD's coarsest) sees 8 values per channel: a near-zero variance would
        # turn float32 rounding into 1e-3 differences that no real model has.
        module.running_var.clamp_(min=0.05)
    return model.eval()


def assert_parity(actual, expected) -> None:
    """Within 1e-4 absolute plus 1e-5 relative (``np.allclose`` semantics).

    The relative term matters only for raw values above ~1 (box distances, confident logits),
    where float32 rounding through 50+ layers alone reaches ~1e-4; a real export or folding error
    shows up as differences of 1e-2 or more on these sensitive models.
    """
    actual = actual.detach().numpy() if isinstance(actual, torch.Tensor) else actual
    expected = expected.detach().numpy() if isinstance(expected, torch.Tensor) else expected
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-4)
