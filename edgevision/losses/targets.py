"""The checks every detection loss makes on its ``targets`` before assigning."""

from __future__ import annotations

import torch


def check_targets(targets: torch.Tensor, num_classes: int) -> None:
    """Fail with a readable message instead of an index error deep in an assigner.

    Args:
        targets: (M, 6) rows ``[image_index, class, x0, y0, x1, y1]``.
        num_classes: the loss's class count C; classes must lie in ``0..C-1``.

    Raises:
        ValueError: another shape, or a class outside the model's range.
    """
    if targets.ndim != 2 or targets.shape[-1] != 6:
        raise ValueError(f"targets have shape {tuple(targets.shape)}; expected (M, 6)")
    if targets.numel() == 0:
        return
    lowest, highest = int(targets[:, 1].min()), int(targets[:, 1].max())
    if lowest < 0 or highest >= num_classes:
        raise ValueError(
            f"target classes span {lowest}..{highest} but the loss has {num_classes} "
            "classes; check the model's num_classes against the data's class list"
        )
