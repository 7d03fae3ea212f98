"""How fast ``read_voc`` turns VOC annotations into records (target: 10,000 images in <= 3 s).

Generates a seeded VOC tree in a temporary folder: ``--num-images`` small XMLs with ``<size>``
and 1-5 objects each, and an empty placeholder per image (with ``<size>`` present the reader never
opens an image, it only lists ``JPEGImages/``). Times the best of ``--repeat`` reads, single
process, warm file cache, and prints images/s.

    python benchmarks/bench_voc_read.py --num-images 10000   # PYTHONPATH=. if not pip-installed

CPU time is printed beside wall time because other jobs on a shared machine inflate the latter.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from edgevision.data.formats.voc import read_voc

CLASS_NAMES = ("aircraft", "baggage_cart", "bus", "car", "fuel_truck", "person", "tug")


def annotation_text(stem: str, rng: random.Random) -> str:
    """One labelImg-style annotation with 1-5 random boxes inside a 1920x1080 image."""
    objects = []
    for _ in range(rng.randint(1, 5)):
        xmin, ymin = rng.randint(1, 1800), rng.randint(1, 1000)
        xmax, ymax = xmin + rng.randint(5, 119), ymin + rng.randint(5, 79)
        objects.append(
            f"\t<object>\n\t\t<name>{rng.choice(CLASS_NAMES)}</name>\n"
            "\t\t<pose>Unspecified</pose>\n"
            f"\t\t<truncated>0</truncated>\n\t\t<difficult>{int(rng.random() < 0.1)}</difficult>\n"
            f"\t\t<bndbox>\n\t\t\t<xmin>{xmin}</xmin>\n\t\t\t<ymin>{ymin}</ymin>\n"
            f"\t\t\t<xmax>{xmax}</xmax>\n\t\t\t<ymax>{ymax}</ymax>\n\t\t</bndbox>\n\t</object>\n"
        )
    return (
        f"<annotation>\n\t<folder>JPEGImages</folder>\n\t<filename>{stem}.jpg</filename>\n"
        f"\t<path>C:\\data\\JPEGImages\\{stem}.jpg</path>\n"
        "\t<source>\n\t\t<database>Unknown</database>\n\t</source>\n"
        "\t<size>\n\t\t<width>1920</width>\n\t\t<height>1080</height>\n\t\t<depth>3</depth>\n"
        f"\t</size>\n\t<segmented>0</segmented>\n{''.join(objects)}</annotation>\n"
    )


def make_dataset(root: Path, num_images: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    (root / "Annotations").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    for index in range(num_images):
        stem = f"{index:06d}"
        (root / "Annotations" / f"{stem}.xml").write_text(annotation_text(stem, rng))
        (root / "JPEGImages" / f"{stem}.jpg").touch()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-images", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "voc"
        make_dataset(root, args.num_images)
        times, cpu_times = [], []
        for _ in range(args.repeat):
            start, cpu_start = time.perf_counter(), time.process_time()
            record_set, issues = read_voc(root)
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
        best = min(times)
        print(
            f"read_voc: {len(record_set)} images, {record_set.num_objects} objects, "
            f"{len(issues)} issues; best of {args.repeat}: {best:.3f} s wall "
            f"({len(record_set) / best:,.0f} images/s), {min(cpu_times):.3f} s CPU; "
            f"all runs {[round(t, 3) for t in times]} s"
        )


if __name__ == "__main__":
    main()
