"""The default-recipe rule: how ``--batch``, the dataset size and ``--epochs`` (or ``--time``)
become gradient accumulation, optimiser steps and a learning rate.

A from-scratch model on a CPU budget is short of optimiser steps, not of images: on the demo set,
batch 32 accumulated to 64 images per step learned almost nothing in 7.5 minutes (mAP50 0.21)
where batch 4 with a step per batch reached 0.78 (benchmarks/RESULTS.md). So:

1. Accumulation. With ``--nbs N`` given, gradients accumulate to N images per step (Ultralytics'
   rule). With ``--nbs 0`` (the default) they accumulate to 64 images only when the run still gets
   at least :data:`MIN_STEPS` optimiser steps that way (a long run on a large set, where the
   nominal batch steadies the statistics); otherwise every batch is a step. ``--time`` runs do not
   know their length in advance and step on every batch.
2. Learning rate. ``--lr0`` given: used as is. Otherwise AdamW starts from 0.003 for
   :data:`REFERENCE_BATCH` images per step; below that it scales with the square root of the
   images per step (Adam's square-root rule, Malladi et al. 2022), above it linearly, kept within
   [0.0005, 0.01]. Above 16 images a run is short of steps (the photo set at batch 64 gets 380 in
   20 epochs), and the square root left it 24 % behind batch 8 (benchmarks/RESULTS.md); linear
   scaling moves the weights about as far per epoch. The base was 0.002 until a 20-epoch sweep on
   the photo set measured 0.003 ahead at every batch size (RESULTS, "The default learning rate
   at 0.003"). SGD starts from 0.01 for 64 images per step and scales linearly (Goyal et al.
   2017), within [0.00125, 0.02].
3. Optimiser: ``--optimizer auto`` is AdamW below 10,000 iterations or with ``--time`` up to an
   hour, else SGD (as Ultralytics decides).

The run header prints the outcome (:meth:`Recipe.header`); the README states the rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from edgevision.core.errors import ConfigError

NOMINAL_BATCH = 64  # images per optimiser step that accumulation aims at when steps are plentiful
MIN_STEPS = 2000  # fewer planned steps than this at the nominal batch: step on every batch
REFERENCE_BATCH = 16  # AdamW's base lr0 (0.003) is for this many images per step
BASE_LR = {"adamw": 0.003, "sgd": 0.01}
BASE_BATCH = {"adamw": REFERENCE_BATCH, "sgd": 64}
LR_RANGE = {"adamw": (0.0005, 0.01), "sgd": (0.00125, 0.02)}
AUTO_SGD_ITERATIONS = 10_000  # --optimizer auto: SGD from this many planned iterations


@dataclass(frozen=True)
class Recipe:
    """What a run does with its batches: the header line and the trainer's numbers."""

    batch: int  # images per iteration, all processes together
    iterations_per_epoch: int
    epochs: int
    accumulate: int
    optimizer: str
    lr0: float
    reason: str  # why this accumulation and learning rate, for the header

    @property
    def images_per_step(self) -> int:
        return self.batch * self.accumulate

    @property
    def steps_per_epoch(self) -> int:
        """Optimiser steps in a full epoch (the epoch's last partial group steps too)."""
        return math.ceil(self.iterations_per_epoch / self.accumulate)

    def header(self, time_minutes: float = 0.0) -> str:
        span = (
            # both stop a run: a 46.5-minute budget with --epochs 20 once ended at epoch 20
            f"until the {time_minutes:g}-minute budget or epoch {self.epochs}, whichever is first"
            if time_minutes > 0
            else f"{self.steps_per_epoch * self.epochs} in {self.epochs} epochs"
        )
        return (
            f"recipe: batch {self.batch}, {self.iterations_per_epoch} batches per epoch -> "
            f"accumulating {self.accumulate}, {self.steps_per_epoch} optimiser steps per epoch "
            f"({span}), {self.optimizer} lr0 {self.lr0:.4g} ({self.reason})"
        )


def plan_recipe(
    batch: int,
    iterations_per_epoch: int,
    epochs: int,
    time_minutes: float = 0.0,
    nbs: int = 0,
    optimizer: str = "auto",
    lr0: float = 0.0,
) -> Recipe:
    """The rule of the module docstring, for ``batch`` images per iteration (all processes).

    Raises:
        ConfigError: an unknown optimiser name, or a batch / nbs below what the rule accepts.
    """
    if batch < 1:
        raise ConfigError(f"--batch {batch}: use 1 or more images per batch")
    if nbs < 0:
        raise ConfigError(f"--nbs {nbs}: use 0 (the default rule) or a number of images")
    iterations = max(iterations_per_epoch, 1) * max(epochs, 1)
    timed = time_minutes > 0
    name = optimizer
    if name == "auto":
        short = timed and time_minutes <= 60
        name = "adamw" if short or iterations < AUTO_SGD_ITERATIONS else "sgd"
    if name not in BASE_LR:
        raise ConfigError(f"unknown optimizer {optimizer!r}; choose sgd, adamw or auto")
    nominal = max(round(NOMINAL_BATCH / batch), 1)
    if nbs:
        accumulate = max(round(nbs / batch), 1)
        why = f"--nbs {nbs}"
    elif timed:
        accumulate, why = 1, "--time: a step per batch"
    elif iterations // nominal >= MIN_STEPS:
        accumulate, why = nominal, f"{iterations // nominal} steps at {NOMINAL_BATCH} images"
    else:
        accumulate = 1
        why = f"under {MIN_STEPS} steps at {NOMINAL_BATCH} images: a step per batch"
    if lr0 > 0:
        return Recipe(
            batch, iterations_per_epoch, epochs, accumulate, name, lr0, f"{why}; your lr0"
        )
    images = batch * accumulate
    ratio = images / BASE_BATCH[name]
    root = name == "adamw" and ratio < 1  # AdamW: square root below 16 images, linear above
    scaled = BASE_LR[name] * (math.sqrt(ratio) if root else ratio)
    low, high = LR_RANGE[name]
    rate = min(max(scaled, low), high)
    rule = "sqrt" if root else "linear"
    how = f"{BASE_LR[name]:g} x {rule}({images}/{BASE_BATCH[name]})"
    if rate != scaled:
        how += f", kept within [{low:g}, {high:g}]"
    return Recipe(batch, iterations_per_epoch, epochs, accumulate, name, rate, f"{why}; {how}")
