"""Running one training job for any task: device, processes, seeds, run folder, callbacks, the
trainer, the curves. What the job trains comes from a ``build`` function the caller passes (a task
folder's), so nothing here knows which task it runs."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from edgevision.config import TrainConfig
from edgevision.core.errors import ConfigError
from edgevision.engine import dist
from edgevision.engine.callbacks import CSVLogger, ProgressBar, TensorBoardLogger
from edgevision.engine.checkpoint import load_checkpoint
from edgevision.engine.run_dir import prepare_run_dir, save_args
from edgevision.engine.task import Task
from edgevision.engine.trainer import Trainer
from edgevision.viz.training import plot_results

Build = Callable[[TrainConfig, torch.device, bool], Task]


def select_device(device: str = "") -> torch.device:
    """``""`` -> CUDA when available else CPU; ``cpu``, ``cuda``, ``cuda:N`` as given."""
    if not device:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"--device {device}: CUDA is not available on this machine; use --device cpu"
        )
    try:
        return torch.device(device)
    except RuntimeError as e:
        raise ConfigError(f"--device {device!r} is not a device; use cpu, cuda or cuda:N") from e


def seed_everything(seed: int, deterministic: bool = True) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)


def resolve_resume(config: TrainConfig) -> TrainConfig:
    """``--resume RUN`` continues with the run's saved config (its epochs, data, seed...)."""
    if not config.resume:
        return config
    path = Path(config.resume)
    run_dir = path if path.is_dir() else path.parent.parent
    last = run_dir / "weights" / "last.pt"
    if not last.is_file():
        raise ConfigError(
            f"--resume {config.resume}: no {last}; pass the run folder of an earlier training"
        )
    saved = TrainConfig.from_dict(load_checkpoint(last)["config"])
    saved.resume = str(run_dir)
    saved.device = config.device or saved.device
    return saved


def shared_run_dir(config: TrainConfig) -> Path:
    """The run folder: ``--resume``'s, or a new one created by rank 0 alone and shared with all ranks."""
    if config.resume:
        return Path(config.resume)
    path = prepare_run_dir(config.project, config.name, config.exist_ok) if dist.is_main() else None
    return Path(dist.broadcast_object(path))


def fit(build: Build, config: TrainConfig) -> dict:
    """Build the task on this process's device and train it (see :class:`Trainer`).

    Returns:
        Summary dict: ``epochs``, ``best_fitness``, ``minutes``, ``last`` (the last epoch's
        record), ``run_dir`` and ``model`` (the trained model; best.pt holds the EMA weights).
    """
    device = select_device(config.device)
    distributed = dist.init_from_env(device)
    seed_everything(config.seed + dist.rank(), config.deterministic)
    task = build(config, device, distributed)  # data, model, --weights, --freeze
    run_dir = shared_run_dir(config)
    callbacks = []
    if dist.is_main():  # one writer of logs and event files, whatever the number of processes
        save_args(run_dir, config)
        graph_size = task.imgsz if config.plots else 0
        callbacks = [CSVLogger(run_dir / "results.csv"), TensorBoardLogger(run_dir, graph_size)]
        if config.verbose:
            callbacks.insert(0, ProgressBar())
    summary = Trainer(task, config, run_dir, device, callbacks).fit()
    summary["run_dir"] = str(run_dir)
    summary["model"] = task.model
    if dist.is_main() and config.plots:
        plot_results(run_dir / "results.csv", run_dir / "results.png")
        task.on_train_end(run_dir)
    return summary
