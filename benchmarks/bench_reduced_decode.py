"""Detection loader on photo-sized JPEGs: full decode vs reduced (1/2, 1/4, 1/8) decode.

Generates ``--num-images`` photo-like JPEGs (``--size`` W x H, quality 90: a 1/f noise
background, hard-edged shapes and sensor noise, so the files carry about as much entropy per pixel
as camera photos) and times, single process with one OpenCV thread, median of ``--repeats``:

- ``decode``: :func:`load_image` alone (decode + resize so the long side is ``--imgsz``);
- ``val``: ``dataset[i]`` of a val dataset (decode + letterbox + tensor);
- ``train``: ``dataset[i]`` of a training dataset with mosaic (4 decodes a sample), no cache.

    python benchmarks/bench_reduced_decode.py --num-images 100 --imgsz 320
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from edgevision.core.records import ImageRecord, RecordSet
from edgevision.data.datasets.detect import DetectionDataset, load_image


def photo_like(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """(h, w, 3) uint8: noise at every scale (amplitude ~ scale), shapes, then fine noise."""
    image = np.zeros((height, width, 3), np.float32)
    for cell in (256, 64, 16, 4):
        coarse = rng.normal(0, cell / 4, (height // cell + 2, width // cell + 2, 3))
        image += cv2.resize(coarse.astype(np.float32), (width, height), cv2.INTER_CUBIC)
    image += 120
    for _ in range(12):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        colour = rng.uniform(0, 255, 3).tolist()
        cv2.circle(image, (x, y), int(rng.integers(10, 120)), colour, -1)
    image += rng.normal(0, 4, image.shape).astype(np.float32)
    return image.clip(0, 255).astype(np.uint8)


def make_photos(folder: Path, count: int, width: int, height: int) -> RecordSet:
    rng = np.random.default_rng(0)
    records = []
    for index in range(count):
        path = folder / f"{index:04d}.jpg"
        cv2.imwrite(str(path), photo_like(height, width, rng), [cv2.IMWRITE_JPEG_QUALITY, 90])
        box = [0.2 * width, 0.2 * height, 0.6 * width, 0.7 * height]
        records.append(ImageRecord(path, width, height, [box], [0]))
    return RecordSet(records, ["thing"], folder, "voc")


def images_per_second(run, count: int, repeats: int) -> float:
    """Median over ``repeats`` of ``count / seconds`` for one call of ``run``."""
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        rates.append(count / (time.perf_counter() - start))
    return statistics.median(rates)


def decode_rate(records: RecordSet, imgsz: int, reduced: bool, repeats: int) -> float:
    """Images/s of :func:`load_image` alone (sizes from the records, as the dataset passes)."""

    def run() -> None:
        for record in records.records:
            load_image(record.image_path, imgsz, (record.height, record.width), reduced=reduced)

    return images_per_second(run, len(records), repeats)


def dataset_rate(
    records: RecordSet, imgsz: int, augment: bool, reduced: bool, repeats: int
) -> float:
    """Images/s of ``dataset[i]`` over the whole set, no cache."""
    dataset = DetectionDataset(
        records, imgsz, augment=augment, cache="none", reduced_decode=reduced
    )

    def run() -> None:
        for index in range(len(dataset)):
            dataset[index]

    return images_per_second(run, len(dataset), repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-images", type=int, default=100)
    parser.add_argument("--size", type=int, nargs=2, default=(800, 600), metavar=("W", "H"))
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cv2.setNumThreads(1)  # single process, single thread: what one loader worker gets

    with tempfile.TemporaryDirectory() as folder:
        records = make_photos(Path(folder), args.num_images, *args.size)
        kib = sum(r.image_path.stat().st_size for r in records.records) / len(records) / 1024
        print(
            f"{len(records)} JPEGs {args.size[0]}x{args.size[1]}, {kib:.0f} KiB each; "
            f"imgsz {args.imgsz}; load {os.getloadavg()[0]:.1f}"
        )
        print(f"{'what':>7} {'full img/s':>10} {'reduced img/s':>13} {'speed-up':>8}")
        for what in ("decode", "val", "train"):
            full, fast = (
                decode_rate(records, args.imgsz, reduced, args.repeats)
                if what == "decode"
                else dataset_rate(records, args.imgsz, what == "train", reduced, args.repeats)
                for reduced in (False, True)
            )
            print(f"{what:>7} {full:>10.1f} {fast:>13.1f} {fast / full:>7.2f}x")


if __name__ == "__main__":
    main()
