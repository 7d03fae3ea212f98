"""best.pt holds the best validated epoch, also when --val-interval skips epochs."""

from __future__ import annotations

import torch
from torch import nn

from edgevision.config import TrainConfig
from edgevision.engine.checkpoint import load_checkpoint
from edgevision.engine.trainer import Trainer


class ScriptedTask:
    """A one-layer task whose validations return the fitness values it is given, in order."""

    name = "scripted"
    imgsz = 8
    head_prefixes: tuple[str, ...] = ()
    head_lr_mult = 1.0

    def __init__(self, fitness: list[float]):
        torch.manual_seed(0)
        self.model = nn.Conv2d(1, 1, 1)
        self.train_loader = [{"x": torch.randn(2, 1, 4, 4)} for _ in range(3)]
        self.fitness = list(fitness)
        self.validated_at: list[int] = []
        self.progress: list[float] = []

    def on_epoch_start(self, epoch: int, epochs_left: float, progress: float = 0.0) -> None:
        self.epoch = epoch
        self.progress.append(progress)

    def loss(self, model: nn.Module, batch: dict) -> dict:
        loss = model(batch["x"]).square().mean()
        return {"loss": loss, "l2": loss.detach()}

    def evaluate(self, model: nn.Module) -> dict:
        self.validated_at.append(self.epoch + 1)
        return {"fitness": self.fitness.pop(0)}

    def checkpoint_meta(self) -> dict:
        return {"task": self.name}

    def model_for_graph(self) -> nn.Module:
        return self.model

    def on_train_end(self, run_dir) -> None:
        pass


def _fit(tmp_path, fitness: list[float], **options) -> ScriptedTask:
    task = ScriptedTask(fitness)
    config = TrainConfig(epochs=5, batch=2, warmup_epochs=0, verbose=False, **options)
    Trainer(task, config, tmp_path, torch.device("cpu")).fit()
    return task


def test_an_unvalidated_epoch_does_not_replace_the_best(tmp_path):
    # Validated: epoch 2 (0.5, the best), epoch 4 (0.3) and the last, 5 (0.2). Epoch 3 has no
    # score and must not overwrite best.pt with its weights.
    task = _fit(tmp_path, [0.5, 0.3, 0.2], val_interval=2)
    assert task.validated_at == [2, 4, 5]
    best = load_checkpoint(tmp_path / "weights" / "best.pt")
    assert best["epoch"] + 1 == 2 and best["best_fitness"] == 0.5
    assert load_checkpoint(tmp_path / "weights" / "last.pt")["epoch"] + 1 == 5


def test_before_any_validation_best_follows_the_latest_epoch(tmp_path):
    _fit(tmp_path, [], val=False)
    best = load_checkpoint(tmp_path / "weights" / "best.pt")
    assert best["epoch"] + 1 == 5  # no scores at all: best.pt is the last epoch's weights


def test_tasks_hear_the_share_of_the_run_done(tmp_path):
    task = _fit(tmp_path, [], val=False)
    assert task.progress == [0.0, 0.2, 0.4, 0.6, 0.8]  # epochs / 5: what a classifier grows by


def test_under_a_time_budget_progress_follows_the_clock_when_it_is_further(tmp_path):
    config = TrainConfig(epochs=10, time=1.0)
    trainer = Trainer(ScriptedTask([]), config, tmp_path, torch.device("cpu"))
    clock = type("Clock", (), {"seconds": 30.0})()  # half of the 1-minute budget spent
    assert trainer._progress(2, clock) == 0.5 and trainer._progress(8, clock) == 0.8
    clock.seconds = 90.0
    assert trainer._progress(1, clock) == 1.0
