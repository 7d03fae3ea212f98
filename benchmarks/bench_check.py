"""Data doctor speed: ``check_dataset`` on a 10,000-image VOC set, header mode and deep mode.

Targets (2 CPU cores, ``workers=2``): header mode >= 3,000 images/s, deep (decode every image)
>= 400 images/s; reading the annotations (the VOC reader's share) <= 3 s.

Generates a seeded VOC tree in a temporary folder: ``--num-images`` small JPEGs (64x48 to 160x120,
a few pre-encoded variants per size so writing is fast), one XML each with 1-4 boxes, a few
defects sprinkled in (swapped, outside, duplicate boxes), and ImageSets lists. Then times, best of
``--repeat`` runs on a warm file cache: the whole ``check_dataset`` call and its parts (annotation
reading alone, image checks alone, and the whole check, where annotation reading and image checks
overlap), for each ``--workers`` value.

    PYTHONPATH=. python benchmarks/bench_check.py --num-images 10000 --workers 1 2

The load average is printed: other jobs on a shared machine slow every figure down.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from edgevision.data.doctor.check import check_dataset
from edgevision.data.doctor.images import inspect_images
from edgevision.data.doctor.read_all import read_whole_dataset

CLASS_NAMES = ("aircraft", "bus", "car", "person", "tug")
SIZES = [(64, 48), (96, 72), (128, 96), (160, 120), (120, 160)]


def encoded_variants(seed: int, per_size: int = 4) -> dict[tuple[int, int], list[bytes]]:
    """A few JPEG encodings per image size: writing bytes is much faster than encoding 10k."""
    rng = np.random.default_rng(seed)
    variants = {}
    for width, height in SIZES:
        images = [rng.integers(0, 255, (height, width, 3), dtype=np.uint8) for _ in range(per_size)]
        variants[(width, height)] = [cv2.imencode(".jpg", image)[1].tobytes() for image in images]
    return variants


def annotation_text(stem: str, size: tuple[int, int], rng: random.Random) -> str:
    width, height = size
    objects = []
    for _ in range(rng.randint(1, 4)):
        xmin, ymin = rng.randint(1, width - 20), rng.randint(1, height - 20)
        box = [xmin, ymin, xmin + rng.randint(5, 19), ymin + rng.randint(5, 19)]
        defect = rng.random()
        if defect < 0.01:
            box[0], box[2] = box[2], box[0]  # swapped
        elif defect < 0.02:
            box[2] = width + 15  # outside
        objects.append(
            f"  <object>\n    <name>{rng.choice(CLASS_NAMES)}</name>\n    <difficult>0</difficult>\n"
            f"    <bndbox>\n      <xmin>{box[0]}</xmin>\n      <ymin>{box[1]}</ymin>\n"
            f"      <xmax>{box[2]}</xmax>\n      <ymax>{box[3]}</ymax>\n    </bndbox>\n  </object>\n"
        )
    if rng.random() < 0.01:
        objects.append(objects[0])  # duplicate
    return (
        f"<annotation>\n  <folder>JPEGImages</folder>\n  <filename>{stem}.jpg</filename>\n"
        f"  <size>\n    <width>{width}</width>\n    <height>{height}</height>\n"
        f"    <depth>3</depth>\n  </size>\n{''.join(objects)}</annotation>\n"
    )


def make_dataset(root: Path, num_images: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    variants = encoded_variants(seed)
    for folder in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / folder).mkdir(parents=True)
    stems = []
    for index in range(num_images):
        stem = f"{index:06d}"
        size = rng.choice(SIZES)
        (root / "JPEGImages" / f"{stem}.jpg").write_bytes(rng.choice(variants[size]))
        (root / "Annotations" / f"{stem}.xml").write_text(annotation_text(stem, size, rng))
        stems.append(stem)
    cut = num_images * 9 // 10
    (root / "ImageSets/Main/train.txt").write_text("\n".join(stems[:cut]) + "\n")
    (root / "ImageSets/Main/val.txt").write_text("\n".join(stems[cut:]) + "\n")


def best_of(repeat: int, run) -> tuple[float, object]:
    """(best wall seconds, the result of that run) of ``repeat`` calls of ``run()``."""
    best = (float("inf"), None)
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        elapsed = time.perf_counter() - start
        best = min(best, (elapsed, result), key=lambda item: item[0])
    return best


def report_line(label: str, count: int, seconds: float) -> str:
    return f"{label:<34} {count} images in {seconds:6.2f} s = {count / seconds:8,.0f} images/s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-images", type=int, default=10_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[2])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "voc"
        start = time.perf_counter()
        make_dataset(root, args.num_images)
        print(f"generated {args.num_images} images in {time.perf_counter() - start:.1f} s")
        print(f"load average before: {os.getloadavg()}, cores: {os.cpu_count()}")
        seconds, (record_set, _) = best_of(args.repeat, partial(read_whole_dataset, root))
        print(report_line("annotations only (reader)", len(record_set), seconds))
        paths = [record.image_path for record in record_set.records]
        for workers in args.workers:
            for deep in (False, True):
                mode = "deep" if deep else "header"
                seconds, _ = best_of(args.repeat, partial(inspect_images, paths, deep, workers))
                print(
                    report_line(
                        f"image checks only, {mode}, workers={workers}", len(paths), seconds
                    )
                )
                run = partial(check_dataset, root, deep=deep, workers=workers)
                seconds, report = best_of(args.repeat, run)
                print(
                    report_line(
                        f"check_dataset, {mode}, workers={workers}", report.num_images, seconds
                    )
                    + f"; {len(report.issues)} issues {report.summary()}"
                )
        print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
