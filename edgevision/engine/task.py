"""The contract between the one trainer and every task, written once.

A task (``edgevision/tasks/<task>/train.py``) hands the loop a model, batches and three verbs:
turn a batch into losses, evaluate a model, describe the checkpoint. The trainer calls nothing
else and never asks which task it runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # annotations only: this module is imported where torch is absent
    import torch
    from torch import nn


class Task(Protocol):
    """What :class:`edgevision.engine.trainer.Trainer` consumes."""

    name: str  # written into checkpoints: the task folder that reads them back
    model: nn.Module  # trained in place; the trainer moves it to the device
    imgsz: int  # square input size (checkpoint meta, TensorBoard graph)
    train_loader: Iterable[dict]  # batches for loss(); len() = iterations per epoch
    head_prefixes: tuple[str, ...]  # parameter-name prefixes trained at head_lr_mult x the LR
    head_lr_mult: float  # learning-rate multiplier of those parameters (transfer learning)

    def on_epoch_start(self, epoch: int, epochs_left: float, progress: float = 0.0) -> None:
        """Before each epoch: reseed the epoch's augmentation; switch augmentation stages (a
        detector turns mosaic off for its last epochs, a classifier grows its training size).
        ``epochs_left`` counts this one and follows the clock under a ``--time`` budget;
        ``progress`` is the share of the run done, in epochs or on the clock, whichever is
        further."""

    def loss(self, model: nn.Module, batch: dict) -> dict[str, torch.Tensor]:
        """``loss`` (with its graph, for backward) and detached parts to log."""

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Validation metrics with a ``fitness`` key (higher is better; best.pt follows it);
        ``{}`` when there is no validation split."""

    def checkpoint_meta(self) -> dict:
        """What reading the checkpoint back needs: ``task``, ``model_name``, ``num_classes``,
        ``class_names``, ``imgsz`` and the task's own keys (a detector's ``head``)."""

    def model_for_graph(self) -> nn.Module:
        """The module TensorBoard traces for its graph view."""

    def on_train_end(self, run_dir: Path) -> None:
        """After the last epoch, on the main process: the task's final report into ``run_dir``."""
