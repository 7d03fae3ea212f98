"""Tasks: one folder per task (``detect/``, ``classify/``), one literal table that dispatches every
command, and the one way to read a model back (:func:`load_model`).

A new task is a folder with ``train``, ``val``, ``predict`` and ``export`` modules, a ``SPEC`` in
its ``__init__`` and one line in :data:`TASKS`; ``api.py``, ``cli.py`` and ``engine/`` stay as
they are. Importing this package imports no torch.
"""

from __future__ import annotations

import difflib

from edgevision.config import TrainConfig
from edgevision.core.errors import ConfigError
from edgevision.tasks import classify, detect, pose
from edgevision.tasks.base import TaskSpec
from edgevision.tasks.load import load_model

__all__ = ["TASKS", "get_task", "load_model", "task_for_training"]

TASKS: dict[str, TaskSpec] = {"detect": detect.SPEC, "classify": classify.SPEC, "pose": pose.SPEC}
PLANNED = ("segment", "denoise")  # named in --task help; not trainable yet


def get_task(name: str) -> TaskSpec:
    """``TASKS[name]``, or a ConfigError that says what exists.

    Raises:
        ConfigError: a planned task, or an unknown name (close matches listed).
    """
    if name in TASKS:
        return TASKS[name]
    available = ", ".join(TASKS)
    if name in PLANNED:
        raise ConfigError(f"--task {name} is not available yet; use {available}")
    close = difflib.get_close_matches(name, list(TASKS), n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    raise ConfigError(f"unknown task {name!r}; {hint}available: {available}")


def task_for_training(config: TrainConfig) -> TaskSpec:
    """The task a training run belongs to, from ``--model`` (the zoo says its task) and ``--task``.

    ``--task`` alone picks that task's default model; ``--model`` alone picks the model's task;
    both must agree. ``config.task`` and ``config.model`` are set to what was chosen, so the saved
    config says it.

    Raises:
        ConfigError: the two disagree, or the task is unknown.
        UnknownModelError: ``--model`` is not in the zoo (close matches listed).
    """
    from edgevision.models.zoo import task_of_model  # the zoo imports PyTorch: training only

    default_model = TrainConfig().model
    if config.task and config.model == default_model:
        spec = get_task(config.task)
        config.model = spec.default_model
    model_task = task_of_model(config.model)
    if config.task and config.task != model_task:
        raise ConfigError(
            f"--model {config.model} is a {model_task} model but --task is {config.task}; "
            f"drop --task or pick a {config.task} model (`edgevision models --task {config.task}`)"
        )
    config.task = model_task
    return get_task(model_task)
