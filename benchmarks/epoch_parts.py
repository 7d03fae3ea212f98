"""Where a detection training epoch goes: waiting for the loader, forward, loss, backward, the
optimiser step, EMA, validation and checkpointing, for each ``--workers`` value given.

Runs ``edgevision.train`` as a user would (defaults except the flags below) with timers wrapped
around the trainer's pieces, one run per workers value, in the order given (repeat a value to
alternate), and prints one line of seconds per run. On a shared machine alternate the values and
compare medians; the load average at each start is printed.

    .venv/bin/python benchmarks/epoch_parts.py --data /work/photo_set --epochs 2 --workers 0 2 0 2
"""

from __future__ import annotations

import argparse
import collections
import functools
import os
import tempfile
import time

import torch

from edgevision import api
from edgevision.engine import ema as ema_module
from edgevision.engine import trainer as trainer_module
from edgevision.tasks.detect import skips
from edgevision.tasks.detect import train as detect_train

SECONDS: dict[str, float] = collections.defaultdict(float)


def timed(name: str, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            SECONDS[name] += time.perf_counter() - start

    return wrapper


def timed_iter(original):
    def iterate(self):
        batches = original(self)
        while True:
            start = time.perf_counter()
            try:
                batch = next(batches)
            except StopIteration:
                return
            finally:
                SECONDS["loader wait"] += time.perf_counter() - start
            yield batch

    return iterate


def instrument() -> None:
    # The task's own loss step, timed whole; its loss function timed inside it: forward = the
    # difference (no copy of DetectionTask.loss to drift from it).
    detect_train.DetectionTask.loss = timed("forward + loss", detect_train.DetectionTask.loss)
    build_loss = detect_train.detection_loss
    detect_train.detection_loss = lambda *a, **k: timed("loss", build_loss(*a, **k))
    detect_train.DetectionTask.evaluate = timed("val", detect_train.DetectionTask.evaluate)
    trainer_module.Trainer._optimizer_step = timed("step", trainer_module.Trainer._optimizer_step)
    trainer_module.Trainer._save = timed("save", trainer_module.Trainer._save)
    ema_module.ModelEMA.update = timed("ema", ema_module.ModelEMA.update)
    torch.Tensor.backward = timed("backward", torch.Tensor.backward)
    skips.SkipReportingLoader.__iter__ = timed_iter(skips.SkipReportingLoader.__iter__)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", default="nano-s")
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--cache", default="auto")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    args = parser.parse_args()
    instrument()
    for workers in args.workers:
        SECONDS.clear()
        load = os.getloadavg()[0]
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as project:
            api.train(
                data=args.data, model=args.model, imgsz=args.imgsz, epochs=args.epochs,
                batch=args.batch, workers=workers, cache=args.cache, plots=False, verbose=False,
                project=project, name="run",
            )  # fmt: skip
        total = time.perf_counter() - start
        SECONDS["forward"] = SECONDS.pop("forward + loss", 0.0) - SECONDS["loss"]
        parts = ", ".join(f"{name} {seconds:.2f}" for name, seconds in SECONDS.items())
        print(f"workers {workers} (load {load:.2f}): {parts}; whole call {total:.1f} s", flush=True)


if __name__ == "__main__":
    main()
