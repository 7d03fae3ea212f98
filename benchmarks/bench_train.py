"""End-to-end training throughput of every zoo model, with the loader's own throughput beside it,
and the learning curve (mAP50-95 against wall-clock minutes) of chosen models.

Throughput (``--throughput``): for each model, ``edgevision.train`` runs ``--epochs`` epochs
(default 3) on ``--num-images`` synthetic images at ``--imgsz``, batch ``--batch``, ``--workers``
loader processes, validation off; images/s is taken from the epochs after the first (start-up,
worker spawn and cache fill excluded) using the run's ``results.csv`` clock. The loader alone is
timed on the same dataset and settings by ``bench_loader.loader_images_per_second``.

Learning curve (``--curve nano-s yolo-n --minutes 30``): trains each model on the demo data
(600 / 150 images, the demo recipe: batch 8 without accumulation, no mosaic, RAM cache) for a wall-clock budget, validating every ``--val-interval``
epochs, and prints minutes vs mAP50-95 / mAP50 from ``results.csv``.

    python benchmarks/bench_train.py --throughput
    python benchmarks/bench_train.py --curve nano-s yolo-n --minutes 30

Run on a quiet machine: the load average is printed with each row.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
from pathlib import Path

from edgevision import api
from edgevision.data.datasets.detect import AugmentConfig, DetectionDataset
from edgevision.data.formats.voc import read_voc
from edgevision.data.synth.detect import synthesize_detection
from edgevision.models.zoo import model_names

sys.path.insert(0, str(Path(__file__).parent))
from bench_loader import loader_images_per_second  # noqa: E402


def _rows(run_dir: Path) -> list[dict]:
    with open(run_dir / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


def steady_images_per_second(run_dir: Path, num_images: int) -> float:
    """Images/s over the epochs after the first, from the run's own clock."""
    rows = _rows(run_dir)
    minutes = float(rows[-1]["time_min"]) - float(rows[0]["time_min"])
    return (len(rows) - 1) * num_images / (minutes * 60)


def throughput(args, data: Path, folder: Path) -> None:
    train_set, _ = read_voc(data, split="train")
    print("| model | train img/s (end to end) | loader img/s (alone) | load |")
    print("| --- | ---: | ---: | ---: |")
    for name in args.models or model_names("detect"):
        summary = api.train(
            data=str(data),
            model=name,
            imgsz=args.imgsz,
            epochs=args.epochs,
            batch=args.batch,
            workers=args.workers,
            cache="ram",
            mosaic=args.mosaic,
            close_mosaic=0,
            val=False,
            plots=False,
            verbose=False,
            project=str(folder),
            name=name,
            exist_ok=True,
        )
        train_rate = steady_images_per_second(Path(summary["run_dir"]), len(train_set))
        dataset = DetectionDataset(
            train_set, args.imgsz, augment=True, hyp=AugmentConfig(mosaic=args.mosaic), cache="ram"
        )
        loader_rate = loader_images_per_second(dataset, args.batch, args.workers, 2)
        print(
            f"| {name} | {train_rate:.1f} | {loader_rate:.1f} | {os.getloadavg()[0]:.1f} |",
            flush=True,
        )


def curve(args, data: Path, folder: Path) -> None:
    for name in args.curve:
        summary = api.train(
            data=str(data),
            model=name,
            imgsz=args.imgsz,
            epochs=1000,
            time=args.minutes,
            batch=args.curve_batch,
            nbs=args.curve_batch,
            workers=args.workers,
            cache="ram",
            mosaic=0.0,
            close_mosaic=0,
            val_interval=args.val_interval,
            plots=False,
            verbose=False,
            project=str(folder),
            name=f"curve-{name}",
            exist_ok=True,
        )
        rows = [r for r in _rows(Path(summary["run_dir"])) if r.get("mAP50-95")]
        print(
            f"\n{name}: {summary['epochs']} epochs in {summary['minutes']:.1f} min "
            f"(load {os.getloadavg()[0]:.1f})"
        )
        print("| minutes | epoch | mAP50-95 | mAP50 |\n| ---: | ---: | ---: | ---: |")
        for row in rows:
            print(
                f"| {float(row['time_min']):.1f} | {row['epoch']} | {float(row['mAP50-95']):.3f} "
                f"| {float(row['mAP50']):.3f} |",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--throughput", action="store_true", help="end-to-end training + loader img/s"
    )
    parser.add_argument(
        "--models", nargs="*", help="models for --throughput (default: every zoo detector)"
    )
    parser.add_argument(
        "--curve", nargs="*", default=[], help="models to draw a learning curve for"
    )
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--val-interval", type=int, default=3)
    parser.add_argument("--num-images", type=int, default=320)
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument(
        "--curve-batch", type=int, default=8, help="the demo recipe: batch 8, no accumulation"
    )
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--mosaic", type=float, default=1.0)
    parser.add_argument("--out", default="", help="keep runs here instead of a temporary folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.out or tmp)
        print(f"cpus={os.cpu_count()} torch threads={__import__('torch').get_num_threads()}")
        if args.throughput:
            data = synthesize_detection(
                folder / "throughput-data", n_train=args.num_images, n_val=0, seed=0, force=True
            )
            throughput(args, data, folder)
        if args.curve:
            data = synthesize_detection(
                folder / "demo-data", n_train=600, n_val=150, seed=0, force=True
            )
            curve(args, data, folder)


if __name__ == "__main__":
    main()
