"""Callbacks observe training (progress bar, CSV, TensorBoard); they never steer the loop."""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path

import torch

from edgevision.core.fileio import atomic_write


class Callback:
    """Hooks the trainer calls; every one is optional."""

    def on_train_start(self, trainer) -> None: ...
    def on_epoch_start(self, trainer, epoch: int, num_batches: int) -> None: ...
    def on_batch_end(self, trainer, epoch: int, batch_index: int, losses: dict) -> None: ...
    def on_epoch_end(self, trainer, epoch: int, record: dict) -> None: ...
    def on_train_end(self, trainer, summary: dict) -> None: ...


def _memory_text(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.memory_reserved(device) / 2**30:.1f}G"
    try:  # resident set size of this process, from /proc (no psutil dependency)
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return f"{pages * 4096 / 2**30:.1f}G"
    except (OSError, ValueError, IndexError):
        return "-"


class ProgressBar(Callback):
    """tqdm bar per epoch with running loss parts, it/s, ETA and memory; a summary line per epoch."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.bar = None
        self.running: dict[str, float] = {}

    def on_epoch_start(self, trainer, epoch, num_batches):
        from tqdm import tqdm

        self.running = {}
        desc = f"epoch {epoch + 1}/{trainer.config.epochs}"
        self.bar = tqdm(total=num_batches, desc=desc, file=self.stream, leave=False, ncols=110)

    def on_batch_end(self, trainer, epoch, batch_index, losses):
        n = batch_index + 1
        for key, value in losses.items():  # running mean over the epoch
            self.running[key] = (
                self.running.get(key, 0.0) + (float(value) - self.running.get(key, 0.0)) / n
            )
        parts = " ".join(f"{k}={v:.3f}" for k, v in self.running.items())
        self.bar.set_postfix_str(f"{parts} mem={_memory_text(trainer.device)}")
        self.bar.update(1)

    def on_epoch_end(self, trainer, epoch, record):
        if self.bar is not None:
            self.bar.close()
        shown = {k: v for k, v in record.items() if k not in ("epoch",)}
        text = "  ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items()
        )
        print(f"epoch {epoch + 1}/{trainer.config.epochs}  {text}", file=self.stream, flush=True)


class CSVLogger(Callback):
    """``results.csv``: one row per epoch (loss parts, lr, metrics, time).

    Columns are the union of every row so far: metrics that first appear at the first validation
    (epoch N) get a column, and the file is rewritten with the wider header when that happens.
    """

    def __init__(self, path: Path):
        self.path = path
        self.rows: list[dict] = []
        if path.exists() and path.stat().st_size:  # resuming: keep the earlier epochs
            with open(path, newline="") as f:
                self.rows = list(csv.DictReader(f))

    def on_epoch_end(self, trainer, epoch, record):
        self.rows = [r for r in self.rows if str(r.get("epoch")) != str(record["epoch"])] + [record]
        fields = list(dict.fromkeys(key for row in self.rows for key in row))

        def write(tmp: Path) -> None:
            with open(tmp, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=fields, restval="")
                writer.writeheader()
                writer.writerows(self.rows)

        atomic_write(self.path, write)


class TensorBoardLogger(Callback):
    """Event files for every loss part, lr and metric, and the model graph once.

    Optional: without the ``tensorboard`` package it says how to install it and does nothing.
    """

    def __init__(self, log_dir: Path, graph_input_size: int = 0):
        self.writer = None
        self.graph_input_size = graph_input_size
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            print("TensorBoard not installed: pip install tensorboard (logging skipped)")
            return
        self.writer = SummaryWriter(log_dir=str(log_dir))
        self.step = 0

    def on_train_start(self, trainer):
        if self.writer is None or not self.graph_input_size:
            return
        model = trainer.task.model_for_graph()
        size = self.graph_input_size
        try:
            with torch.no_grad():
                self.writer.add_graph(model, torch.zeros(1, 3, size, size, device=trainer.device))
        except Exception as e:  # a graph is a nicety; tracing failures must not stop training
            print(f"TensorBoard graph skipped: {type(e).__name__}: {e}")

    def on_batch_end(self, trainer, epoch, batch_index, losses):
        if self.writer is None:
            return
        self.step += 1
        if self.step % 10 == 0:
            for key, value in losses.items():
                self.writer.add_scalar(f"train_batch/{key}", float(value), self.step)

    def on_epoch_end(self, trainer, epoch, record):
        if self.writer is None:
            return
        for key, value in record.items():
            if isinstance(value, (int, float)) and key != "epoch":
                self.writer.add_scalar(
                    key.replace("_", "/", 1) if "/" not in key else key, value, epoch + 1
                )
        self.writer.flush()

    def on_train_end(self, trainer, summary):
        if self.writer is not None:
            self.writer.close()


class Timer:
    """Wall-clock since construction, in seconds and minutes."""

    def __init__(self):
        self.start = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start
