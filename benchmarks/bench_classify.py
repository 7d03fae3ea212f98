"""Classification benchmarks: training throughput of every cls model, and the demo accuracy curve.

Run:  .venv/bin/python benchmarks/bench_classify.py                 # both parts, ~7 minutes
      .venv/bin/python benchmarks/bench_classify.py --part throughput --imgsz 224
      .venv/bin/python benchmarks/bench_classify.py --part curve --minutes 5
      .venv/bin/python benchmarks/bench_classify.py --quick           # ~20 s smoke check

Throughput: images/s of one training step (uint8 batch -> normalise -> forward -> cross-entropy
-> backward -> AdamW step), channels-last as the Trainer runs it, at ``--batch`` random images of
``--imgsz``, median of timed steps after warm-up, ``--threads`` intra-op threads (data loading
excluded).

Curve (the issue's target): ``data synth --task classify`` defaults (600 train / 150 val images),
``cls-shufflenetv2-x0.5`` at 128 px trained from scratch through the shared Trainer for
``--minutes`` of wall-clock (the cosine schedule follows the clock); prints top-1 on val after
every epoch and when it first reached 95 %. Target: >= 95 % within 5 minutes on 2 CPU cores.
Numbers are noisy when other processes share the CPU; run on an idle machine for RESULTS.md.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch.nn import functional as F

from edgevision.config import TrainConfig
from edgevision.data.datasets.classify import normalize_images
from edgevision.data.synth.classify import synthesize_classification
from edgevision.engine.callbacks import Callback
from edgevision.engine.trainer import Trainer
from edgevision.models.zoo import build_model, model_names
from edgevision.tasks.classify.train import build_task

TARGET_TOP1 = 0.95


def training_throughput(name: str, imgsz: int, batch: int, steps: int, warmup: int) -> float:
    """Median images/s of full training steps of zoo classifier ``name`` (5 classes)."""
    torch.manual_seed(0)
    model = build_model(name, 5).train().to(memory_format=torch.channels_last)  # as the Trainer
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    images = torch.randint(0, 256, (batch, 3, imgsz, imgsz), dtype=torch.uint8)
    images = images.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 5, (batch,))
    times = []
    for step in range(warmup + steps):
        start = time.perf_counter()
        loss = F.cross_entropy(model(normalize_images(images)), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step >= warmup:
            times.append(time.perf_counter() - start)
    return batch / statistics.median(times)


class CurveRecorder(Callback):
    """Keeps (minutes, epoch, top-1, train loss) after every validation and prints it."""

    def __init__(self) -> None:
        self.rows: list[tuple[float, int, float, float]] = []

    def on_epoch_end(self, trainer, epoch, record):
        if "top1" in record:
            row = (
                record["time_min"],
                record["epoch"],
                record["top1"],
                record.get("train_ce", float("nan")),
            )
            self.rows.append(row)
            print(
                f"  {row[0]:6.2f} min  epoch {row[1]:3d}  top-1 {row[2]:.3f}  train ce {row[3]:.3f}",
                flush=True,
            )


def accuracy_curve(
    data: Path, minutes: float, imgsz: int, batch: int, workers: int, out: Path
) -> dict:
    """Train the demo classifier for ``minutes``; the first time top-1 reached the target."""
    config = TrainConfig(
        data=str(data),
        model="cls-shufflenetv2-x0.5",
        task="classify",
        epochs=10_000,
        time=minutes,
        imgsz=imgsz,
        batch=batch,
        nbs=batch,
        workers=workers,
        cache="ram",
        verbose=False,
        plots=False,
        project=str(out),
        name="curve",
    )
    (out / "curve" / "weights").mkdir(parents=True, exist_ok=True)
    recorder = CurveRecorder()
    task = build_task(config, torch.device("cpu"))
    summary = Trainer(task, config, out / "curve", torch.device("cpu"), [recorder]).fit()
    reached = next((row for row in recorder.rows if row[2] >= TARGET_TOP1), None)
    return {"summary": summary, "rows": recorder.rows, "reached": reached}


def _print_throughput(args) -> None:
    print(
        f"training throughput, imgsz {args.imgsz}, batch {args.batch}, {torch.get_num_threads()} threads"
    )
    print("| model | images/s |\n| --- | --- |")
    for name in model_names("classify"):
        rate = training_throughput(name, args.imgsz, args.batch, args.steps, args.warmup)
        print(f"| {name} | {rate:.1f} |", flush=True)


def _print_curve(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = (
            Path(args.data)
            if args.data
            else synthesize_classification(Path(tmp) / "data", args.n_train, args.n_val)
        )
        print(
            f"accuracy curve: cls-shufflenetv2-x0.5, {args.curve_imgsz} px, {args.minutes} min budget, "
            f"data {data}"
        )
        result = accuracy_curve(
            data, args.minutes, args.curve_imgsz, args.curve_batch, args.workers, Path(tmp)
        )
    best = max((row[2] for row in result["rows"]), default=float("nan"))
    reached = result["reached"]
    verdict = (
        f"reached {TARGET_TOP1:.0%} at {reached[0]:.2f} min (epoch {reached[1]})"
        if reached
        else f"did not reach {TARGET_TOP1:.0%} (best {best:.3f})"
    )
    print(
        f"{result['summary']['epochs']} epochs in {result['summary']['minutes']:.2f} min; {verdict}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--part", choices=["all", "throughput", "curve"], default="all")
    parser.add_argument("--imgsz", type=int, default=224, help="throughput input size")
    parser.add_argument("--batch", type=int, default=32, help="throughput batch")
    parser.add_argument("--steps", type=int, default=10, help="timed throughput steps per model")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, default=0, help="intra-op threads; 0 = torch's default"
    )
    parser.add_argument("--minutes", type=float, default=5.0, help="curve: training budget")
    parser.add_argument("--curve-imgsz", type=int, default=128)
    parser.add_argument("--curve-batch", type=int, default=32)
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="curve: data-loading processes (0: on 2 cores a worker stalls the 2 compute threads)",
    )
    parser.add_argument(
        "--data", default="", help="curve: dataset (default: generate the demo set)"
    )
    parser.add_argument("--n-train", type=int, default=600)
    parser.add_argument("--n-val", type=int, default=150)
    parser.add_argument("--quick", action="store_true", help="seconds-long smoke run of both parts")
    args = parser.parse_args()
    if args.quick:
        args.imgsz, args.batch, args.steps, args.warmup = 64, 4, 2, 1
        args.minutes, args.curve_imgsz, args.n_train, args.n_val, args.workers = 0.1, 64, 40, 20, 0
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.part in ("all", "throughput"):
        _print_throughput(args)
    if args.part in ("all", "curve"):
        _print_curve(args)


if __name__ == "__main__":
    main()
