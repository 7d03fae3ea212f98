"""Focal-family classification losses for dense detectors.

Plain binary cross entropy needs nothing here: use ``torch.nn.functional.binary_cross_entropy_with_logits``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def quality_focal_loss(
    logits: torch.Tensor, target_scores: torch.Tensor, beta: float = 2.0
) -> torch.Tensor:
    """Quality focal loss (Generalized Focal Loss, Li et al. 2020, arXiv:2006.04388).

    The class score is trained towards a soft target (the IoU of the predicted box with its gt for
    positives, 0 elsewhere) so that one number ranks detections by class *and* box quality, which
    is why our heads have no objectness branch. The ``|sigmoid - target|^beta`` factor is the focal
    idea for soft labels: points already close to their target contribute little, so the thousands
    of easy background points do not swamp the few positives.

    Args:
        logits: (N, C) raw class logits (any leading shape works elementwise).
        target_scores: (N, C) soft targets in [0, 1], same shape as ``logits``.
        beta: focusing exponent; 2 as in the paper.

    Returns:
        (N, C) unreduced loss.
    """
    bce = F.binary_cross_entropy_with_logits(logits, target_scores, reduction="none")
    # The modulating factor keeps its gradient, as in the reference GFL implementation.
    modulating = (logits.sigmoid() - target_scores).abs().pow(beta)
    return bce * modulating


def sigmoid_focal_loss(
    logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0
) -> torch.Tensor:
    """Focal loss for binary (hard) targets (RetinaNet, Lin et al. 2017, arXiv:1708.02002).

    Down-weights well-classified points by ``(1 - p_t)^gamma`` and balances positives against
    negatives with ``alpha``; used by the anchor-based heads whose targets are 0/1.

    Args:
        logits: (N, C) raw logits (any shape).
        targets: (N, C) targets in {0, 1}, same shape as ``logits``.
        alpha: weight of the positive class in [0, 1]; a negative value disables balancing.
        gamma: focusing exponent.

    Returns:
        (N, C) unreduced loss.
    """
    probs = logits.sigmoid()
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    prob_true = probs * targets + (1 - probs) * (1 - targets)
    loss = bce * (1 - prob_true).pow(gamma)
    if alpha >= 0:
        loss = loss * (alpha * targets + (1 - alpha) * (1 - targets))
    return loss
