"""One training loop for every task.

A step in three sentences (after detectron2's SimpleTrainer): the task turns a batch into a dict of
losses; the trainer backpropagates ``loss``, accumulating gradients up to a nominal batch; every
optimiser step updates the EMA weights, which are what validation, checkpoints and export use.
"""

from __future__ import annotations

import math
import signal
import threading
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from edgevision.config import TrainConfig
from edgevision.engine import dist
from edgevision.engine.callbacks import Callback, Timer
from edgevision.engine.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from edgevision.engine.ema import ModelEMA, unwrap
from edgevision.engine.optim import build_optimizer, parameter_groups
from edgevision.engine.precision import (
    Precision,
    choose_by_timing,
    guard_strided_convs_on_one_pixel,
    training_precision,
)
from edgevision.engine.recipe import Recipe, plan_recipe
from edgevision.engine.schedule import WarmupCosine
from edgevision.engine.task import Task


class Trainer:
    """Runs ``task`` under ``config`` and writes everything into ``run_dir``.

    ``task`` is anything that meets :class:`edgevision.engine.task.Task`; the trainer never asks
    which task it is.
    """

    def __init__(
        self,
        task: Task,
        config: TrainConfig,
        run_dir: Path,
        device: torch.device,
        callbacks: list[Callback] = (),
    ):
        self.task = task
        self.config = config
        self.run_dir = Path(run_dir)
        self.device = device
        self.callbacks = list(callbacks)
        self.best_fitness = -math.inf
        self.start_epoch = 0
        self.elapsed_before = 0.0  # seconds trained before a resume (counts against --time)
        self.history: list[dict] = []
        self.interrupted = False
        self.recipe: Recipe | None = None  # set when the optimiser is built
        self.precision_name = "float32"  # the training step's precision, kept in checkpoints
        self.resumed_precision: str | None = None  # the checkpoint's, on --resume
        self.optimizer_steps = 0  # taken by this process's fit()

    def fit(self) -> dict:
        """Train to the last epoch (or the time budget), validating and checkpointing as set."""
        cfg, task, device = self.config, self.task, self.device
        # channels_last: ~1.6x faster depthwise-conv backward on CPU, and the usual choice for AMP on GPU.
        model = task.model.to(device, memory_format=torch.channels_last)
        if dist.world_size() > 1:
            if cfg.sync_bn and device.type == "cuda":
                model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
            elif cfg.sync_bn and dist.is_main():
                print("--sync-bn needs CUDA (PyTorch's SyncBatchNorm); using per-process BatchNorm")
            model = nn.parallel.DistributedDataParallel(
                model, device_ids=None if device.type == "cpu" else [device]
            )
        iters_per_epoch = len(task.train_loader)
        total_iters = cfg.epochs * iters_per_epoch
        optimizer, scheduler = self._build_optimizer(model, total_iters, iters_per_epoch)
        if dist.is_main():
            print(self.recipe.header(cfg.time))
        ema = ModelEMA(model, cfg.ema_decay) if cfg.ema else None
        precision = training_precision(self.device, cfg.amp)
        if cfg.resume:
            self._restore(cfg.resume, model, ema, optimizer, precision.scaler)
        precision = self._settle_precision(precision, model)
        scaler, autocast = precision.scaler, precision.autocast
        guards = guard_strided_convs_on_one_pixel(model) if precision.cpu_flag else []
        if dist.is_main():
            print(precision.text)
        accumulate = self.recipe.accumulate
        timer = Timer()
        self._emit("on_train_start")
        stop = False
        previous_handler = self._catch_sigint()
        for epoch in range(self.start_epoch, cfg.epochs):
            task.on_epoch_start(
                epoch, self._epochs_left(epoch, timer), self._progress(epoch, timer)
            )
            model.train()
            self._emit("on_epoch_start", epoch, iters_per_epoch)
            optimizer.zero_grad(set_to_none=True)
            sums: dict[str, float] = {}
            for i, batch in enumerate(task.train_loader):
                iteration = epoch * iters_per_epoch + i
                scheduler.step(self._schedule_position(iteration, total_iters, timer))
                with autocast():
                    losses = task.loss(model, batch)
                scaler.scale(losses["loss"] / accumulate).backward()
                if (i + 1) % accumulate == 0 or i + 1 == iters_per_epoch:
                    self._optimizer_step(model, optimizer, scaler)
                    self.optimizer_steps += 1
                    if ema is not None:
                        ema.update(model)
                parts = {k: float(v) for k, v in losses.items() if k != "loss"}
                for key, value in parts.items():
                    sums[key] = sums.get(key, 0.0) + value
                self._emit("on_batch_end", epoch, i, parts)
                stop = dist.broadcast_flag(self._out_of_time(timer) or self.interrupted)
                if stop:
                    break
            record = {
                "epoch": epoch + 1,
                **{f"train_{k}": v / max(i + 1, 1) for k, v in sums.items()},
            }
            record["lr"] = optimizer.param_groups[0]["lr"]
            final = stop or epoch + 1 == cfg.epochs
            due = final or (epoch + 1) % cfg.val_interval == 0
            if cfg.val and dist.is_main() and due and not self.interrupted:
                record.update(task.evaluate(ema.module if ema else unwrap(model)))
            record["time_min"] = (self.elapsed_before + timer.seconds) / 60
            self.history.append(record)
            # Log before checkpointing: a kill between the two replays this epoch on --resume, and
            # the replay replaces its results row, so no epoch is ever missing from the log.
            self._emit("on_epoch_end", epoch, record)
            if dist.is_main():
                self._save(epoch, model, ema, optimizer, scaler, record, timer)
            if stop or self._patience_exhausted():
                break
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, previous_handler)
        for guard in guards:  # the model leaves the trainer as it came
            guard.remove()
        if self.interrupted and dist.is_main():
            print(
                f"interrupted: saved {self.run_dir / 'weights' / 'last.pt'}; continue with --resume {self.run_dir}"
            )
        summary = {
            "epochs": len(self.history),
            "best_fitness": self.best_fitness,
            "minutes": record["time_min"] if self.history else 0.0,
            "optimizer_steps": self.optimizer_steps,
            "last": self.history[-1] if self.history else {},
        }
        self._emit("on_train_end", summary)
        return summary

    # -- pieces of the loop -------------------------------------------------------------------

    def _catch_sigint(self):
        """Ctrl-C ends the current batch, saves ``last.pt`` (the epoch counts as done) and returns."""
        self.interrupted = False

        def handler(signum, frame):
            if self.interrupted:  # a second Ctrl-C means "now"
                raise KeyboardInterrupt
            self.interrupted = True
            print("\nCtrl-C: finishing this batch and saving last.pt (press again to abort)")

        if threading.current_thread() is not threading.main_thread():
            return signal.getsignal(signal.SIGINT)
        return signal.signal(signal.SIGINT, handler)

    def _emit(self, hook: str, *args) -> None:
        if dist.is_main():
            for callback in self.callbacks:
                getattr(callback, hook)(self, *args)

    def _build_optimizer(self, model, total_iters, iters_per_epoch):
        """The optimiser and schedule of the default-recipe rule (``engine/recipe.py``)."""
        cfg = self.config
        self.recipe = plan_recipe(
            cfg.batch * dist.world_size(),
            iters_per_epoch,
            cfg.epochs,
            cfg.time,
            cfg.nbs,
            cfg.optimizer,
            cfg.lr0,
        )
        name, lr0 = self.recipe.optimizer, self.recipe.lr0
        groups = parameter_groups(
            unwrap(model),
            cfg.weight_decay,
            tuple(self.task.head_prefixes),
            self.task.head_lr_mult,
            lr0,
        )
        optimizer = build_optimizer(name, groups, lr0, cfg.momentum)
        warmup = (
            max(round(cfg.warmup_epochs * iters_per_epoch), 100) if cfg.warmup_epochs > 0 else 0
        )
        warmup = min(warmup, max(total_iters // 2, 1))
        bias_lr = cfg.warmup_bias_lr if name == "sgd" else 0.0  # a 0.1 bias LR destabilises AdamW
        scheduler = WarmupCosine(optimizer, total_iters, warmup, cfg.lrf, bias_lr, cfg.momentum)
        return optimizer, scheduler

    def _settle_precision(self, precision: Precision, model: nn.Module) -> Precision:
        """CPU bfloat16 only where it is faster (timed; under torchrun every process keeps the
        hardware rule, so all train alike) or where the resumed checkpoint trained in it; see
        :mod:`edgevision.engine.precision`. ``--deterministic`` keeps the hardware rule untimed:
        a timing on a busy machine can fall either way, and two runs of one command would then
        train in different precisions."""
        if precision.cpu_flag:
            if self.resumed_precision is not None:
                if self.resumed_precision != "bfloat16":
                    precision = training_precision(self.device, amp=False)
                    precision = replace(precision, text="precision: float32 (as the resumed run)")
            elif self.config.deterministic:
                precision = replace(
                    precision,
                    text=f"precision: bfloat16 autocast (the CPU has {precision.cpu_flag}; "
                    "not timed under --deterministic; --no-amp for float32)",
                )
            elif dist.world_size() == 1:
                imgsz = self.task.imgsz
                precision = choose_by_timing(precision, unwrap(model), self.config.batch, imgsz)
        self.precision_name = precision.name
        return precision

    def _optimizer_step(self, model, optimizer, scaler) -> None:
        if self.config.clip_grad > 0:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), self.config.clip_grad)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)

    def _budget_seconds(self) -> float:
        return self.config.time * 60

    def _schedule_position(self, iteration: int, total_iters: int, timer: Timer) -> float:
        """Iteration as the LR schedule sees it: with a time budget, the cosine follows the clock."""
        if self._budget_seconds() <= 0:
            return iteration
        by_time = (self.elapsed_before + timer.seconds) / self._budget_seconds() * total_iters
        return max(iteration, by_time)

    def _out_of_time(self, timer: Timer) -> bool:
        budget = self._budget_seconds()
        return budget > 0 and self.elapsed_before + timer.seconds >= budget

    def _epochs_left(self, epoch: int, timer: Timer) -> float:
        left = self.config.epochs - epoch
        epochs_done = epoch - self.start_epoch
        if self._budget_seconds() <= 0 or epochs_done == 0:
            return left
        per_epoch = timer.seconds / epochs_done
        remaining = self._budget_seconds() - self.elapsed_before - timer.seconds
        return min(left, remaining / max(per_epoch, 1e-9))

    def _progress(self, epoch: int, timer: Timer) -> float:
        """Share of the run done before ``epoch``: epochs, or the clock of a ``--time`` budget,
        whichever is further (the LR schedule's position, as a fraction)."""
        done = epoch / max(self.config.epochs, 1)
        budget = self._budget_seconds()
        if budget > 0:
            done = max(done, (self.elapsed_before + timer.seconds) / budget)
        return min(done, 1.0)

    def _patience_exhausted(self) -> bool:
        patience = self.config.patience
        if patience <= 0 or not self.history or "fitness" not in self.history[-1]:
            return False
        best_epoch = max(range(len(self.history)), key=lambda k: self.history[k].get("fitness", -1))
        return len(self.history) - 1 - best_epoch >= patience

    # -- checkpoints --------------------------------------------------------------------------

    def _save(self, epoch, model, ema, optimizer, scaler, record, timer) -> None:
        fitness = record.get("fitness")
        improved = fitness is not None and fitness > self.best_fitness
        if improved:
            self.best_fitness = fitness
        state = {
            "task": self.task.name,
            "meta": self.task.checkpoint_meta(),
            "model": unwrap(model).state_dict(),
            "ema": ema.state_dict() if ema else None,
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict(),
            "epoch": epoch,
            "best_fitness": self.best_fitness,
            "elapsed": self.elapsed_before + timer.seconds,
            "rng": rng_state(),
            "config": self.config.to_dict(),
            "precision": self.precision_name,
            "metrics": {k: v for k, v in record.items() if isinstance(v, (int, float))},
        }
        weights = self.run_dir / "weights"
        # Until an epoch is validated (no val split, or before the first --val-interval epoch)
        # best.pt follows the latest weights; after that only a better fitness replaces it.
        unscored = fitness is None and self.best_fitness == -math.inf
        # last.pt is written last: it marks the epoch as done, so a kill before it replays the
        # epoch and rewrites best.pt / epochN.pt with the same content.
        if improved or unscored:
            save_checkpoint(weights / "best.pt", state)
        if self.config.save_period and (epoch + 1) % self.config.save_period == 0:
            save_checkpoint(weights / f"epoch{epoch + 1}.pt", state)
        save_checkpoint(weights / "last.pt", state)

    def _restore(self, resume: str, model, ema, optimizer, scaler) -> None:
        path = Path(resume)
        path = path / "weights" / "last.pt" if path.is_dir() else path
        state = load_checkpoint(path)
        unwrap(model).load_state_dict(state["model"])
        if ema is not None and state.get("ema"):
            ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        self.start_epoch = int(state["epoch"]) + 1
        self.best_fitness = float(state["best_fitness"])
        self.elapsed_before = float(state.get("elapsed", 0.0))
        self.resumed_precision = state.get("precision")
        if dist.is_main():
            print(f"resumed from {path} at epoch {self.start_epoch + 1}")
