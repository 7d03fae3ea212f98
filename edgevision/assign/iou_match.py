"""SSD's IoU matching of priors to ground-truth boxes (Liu et al. 2016, "matching strategy").

Two rules, the second overriding the first:

1. every prior takes the gt it overlaps most when that IoU is at least ``threshold`` (0.5),
   otherwise it is background;
2. every gt takes its best prior, even below the threshold, so no object is left without a
   positive (small or oddly shaped objects often overlap no prior by 0.5).

When gts compete for the same best prior, the gt with the higher IoU keeps it and the other takes
its best prior not yet claimed (greedy, gts by decreasing best IoU), so every gt still gets a
prior of its own; the reference implementations give the prior to the last gt and leave the other
one without its forced match. A gt with IoU 0 against every prior (a degenerate box) forces
nothing.
"""

from __future__ import annotations

import torch

from edgevision.ops.iou import box_iou


def match_priors(iou: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Matched gt per prior.

    Args:
        iou: (G, N) IoU of each gt with each prior.
        threshold: a prior whose best IoU reaches this matches that gt (rule 1).

    Returns:
        (N,) int64: the matched gt index, or -1 for background.
    """
    num_gts, num_priors = iou.shape
    if num_gts == 0:
        return torch.full((num_priors,), -1, dtype=torch.long, device=iou.device)
    best_iou, best_gt = iou.max(dim=0)
    matched = torch.where(best_iou >= threshold, best_gt, torch.full_like(best_gt, -1))
    gt_index, prior_index = _forced_pairs(iou)
    matched[prior_index] = gt_index
    return matched


def _forced_pairs(iou: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(K,) gt indices and (K,) distinct prior indices: rule 2, conflicts resolved greedily."""
    best_iou, best_prior = iou.max(dim=1)
    gt_index = torch.arange(iou.shape[0], device=iou.device)
    has_overlap = best_iou > 0
    if best_prior[has_overlap].unique().numel() == int(has_overlap.sum()):
        return gt_index[has_overlap], best_prior[has_overlap]  # the usual case: no conflict
    taken = torch.zeros(iou.shape[1], dtype=torch.bool, device=iou.device)
    gts, priors = [], []
    # A loop over the gts of one image, and only when two of them want the same prior (rare).
    for gt in torch.argsort(best_iou, descending=True, stable=True).tolist():
        candidates = iou[gt].masked_fill(taken, -1.0)
        value, prior = candidates.max(dim=0)
        if value <= 0:
            continue
        taken[prior] = True
        gts.append(gt)
        priors.append(int(prior))
    device = iou.device
    return torch.tensor(gts, dtype=torch.long, device=device), torch.tensor(
        priors, dtype=torch.long, device=device
    )


def match_boxes(
    gt_xyxy: torch.Tensor, prior_xyxy: torch.Tensor, threshold: float = 0.5
) -> torch.Tensor:
    """:func:`match_priors` on the IoU of (G, 4) gt boxes and (N, 4) prior boxes (same units,
    xyxy). Returns (N,) matched gt index or -1."""
    return match_priors(box_iou(gt_xyxy.float(), prior_xyxy.float()), threshold)
