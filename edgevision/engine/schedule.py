"""Learning-rate schedule: linear warm-up, then cosine decay from lr0 to lr0 * lrf."""

from __future__ import annotations

import math

import torch


def cosine_factor(progress: float, lrf: float) -> float:
    """LR multiplier at ``progress`` in [0, 1] of the post-warm-up schedule: 1 -> lrf."""
    progress = min(max(progress, 0.0), 1.0)
    return lrf + (1 - lrf) * 0.5 * (1 + math.cos(math.pi * progress))


class WarmupCosine:
    """Per-iteration schedule for every parameter group of an optimiser.

    Warm-up (first ``warmup_iters`` iterations): weight groups rise linearly from 0 to their
    scheduled LR; the bias group falls from ``warmup_bias_lr`` (a large bias LR early on stabilises
    detection heads, as YOLOv5 found); SGD momentum rises from 0.8 to its set value.
    Each group's ``initial_lr`` (its lr0, e.g. a head LR multiplier) is respected.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        total_iters: int,
        warmup_iters: int,
        lrf: float,
        warmup_bias_lr: float = 0.1,
        momentum: float = 0.937,
    ):
        self.optimizer = optimizer
        self.total_iters = max(total_iters, 1)
        self.warmup_iters = warmup_iters
        self.lrf = lrf
        self.warmup_bias_lr = warmup_bias_lr
        self.momentum = momentum
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])

    def step(self, iteration: int) -> None:
        """Set the LR (and momentum during warm-up) for ``iteration`` (0-based, global)."""
        span = max(self.total_iters - self.warmup_iters, 1)
        factor = cosine_factor((iteration - self.warmup_iters) / span, self.lrf)
        for group in self.optimizer.param_groups:
            target = group["initial_lr"] * factor
            if iteration < self.warmup_iters:
                t = iteration / self.warmup_iters
                start = self.warmup_bias_lr if group.get("name") == "bias" else 0.0
                target = start + (target - start) * t
                if "momentum" in group:
                    group["momentum"] = 0.8 + (self.momentum - 0.8) * t
            group["lr"] = target

    def state_dict(self) -> dict:
        return {"total_iters": self.total_iters, "warmup_iters": self.warmup_iters, "lrf": self.lrf}

    def load_state_dict(self, state: dict) -> None:
        self.total_iters = state["total_iters"]
        self.warmup_iters = state["warmup_iters"]
        self.lrf = state["lrf"]
