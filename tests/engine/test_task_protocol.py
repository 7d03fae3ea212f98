"""The trainer's contract is written once (``engine.task.Task``) and every task meets all of it."""

from __future__ import annotations

import inspect

import pytest
import torch

from edgevision.config import TrainConfig
from edgevision.data.synth import synthesize
from edgevision.engine.task import Task
from edgevision.tasks import TASKS


def _members(protocol) -> set[str]:
    methods = {name for name, _ in inspect.getmembers(protocol, inspect.isfunction)}
    return (set(protocol.__annotations__) | methods) - set(dir(object))


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_task_builds_an_object_with_the_whole_protocol(task, tmp_path):
    data = synthesize(tmp_path / task, task=task, n_train=6, n_val=5, seed=0)
    config = TrainConfig(data=str(data), task=task, workers=0, batch=2, imgsz=64, verbose=False)
    spec = TASKS[task]
    config.model = spec.default_model
    built = spec.build(config, torch.device("cpu"), False)
    missing = {name for name in _members(Task) if not hasattr(built, name)}
    assert not missing and built.name == task
    for name in ("on_epoch_start", "loss", "evaluate", "checkpoint_meta", "on_train_end"):
        assert callable(getattr(built, name))
    built.on_epoch_start(0, epochs_left=1)  # the last epoch: a detector turns mosaic off
    meta = built.checkpoint_meta()
    assert {"task", "model_name", "num_classes", "class_names", "imgsz"} <= set(meta)
    losses = built.loss(built.model.train(), next(iter(built.train_loader)))
    assert losses["loss"].requires_grad and torch.isfinite(losses["loss"])
