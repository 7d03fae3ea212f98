"""Detection loader throughput: images/s out of ``build_dataloader`` at ``--imgsz``.

Target: keep up with training a tiny model, about 48 images/s at 320 px, batch 32, on 2 CPU cores
while the model also trains. Generates the embedded synthetic set (``--num-images`` JPEGs, widths
320-400 px, 1-8 shapes each) in a temporary folder, then for every combination of mosaic on/off,
cache none/ram and ``--workers`` iterates ``--epochs`` epochs and reports images/s counted after
the first batch (worker start-up excluded) plus the single-process CPU cost of one sample in ms.

    python benchmarks/bench_loader.py --workers 0 1 2

The load average is printed because other jobs on a shared machine slow every figure down.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from edgevision.data.datasets.detect import AugmentConfig, DetectionDataset
from edgevision.data.datasets.loader import build_dataloader
from edgevision.data.synth.detect import synthesize_detection_records


def loader_images_per_second(
    dataset: DetectionDataset, batch: int, workers: int, epochs: int
) -> float:
    """Images/s over ``epochs`` epochs, timed from the first batch on."""
    loader = build_dataloader(dataset, batch, workers, shuffle=True, seed=0)
    images, start = 0, None
    for epoch in range(epochs):
        dataset.set_epoch(epoch)
        for batch_data in loader:
            if start is None:  # the first batch pays for worker start-up
                start = time.perf_counter()
                continue
            images += len(batch_data["meta"])
    elapsed = time.perf_counter() - start
    del loader  # shuts persistent workers down before the next configuration
    return images / elapsed


def sample_cpu_ms(dataset: DetectionDataset, count: int = 100) -> float:
    """CPU time of one ``dataset[i]`` in ms (decode + augment + tensor), mean of ``count``.

    CPU rather than wall time: it hardly changes when neighbours load the machine."""
    start = time.process_time()
    for index in range(count):
        dataset[index % len(dataset)]
    return (time.process_time() - start) / count * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-images", type=int, default=200)
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        record_set = synthesize_detection_records(
            folder, n_train=args.num_images, n_val=0, width_range=(320, 400), seed=0
        )["train"]
        print(f"{len(record_set)} images, {record_set.num_objects} objects; cpus={os.cpu_count()}")
        print(
            f"{'mosaic':>6} {'cache':>5} {'workers':>7} {'img/s':>7} {'cpu ms/sample':>13} {'load':>5}"
        )
        for mosaic in (1.0, 0.0):
            for cache in ("none", "ram"):
                dataset = DetectionDataset(
                    record_set,
                    args.imgsz,
                    augment=True,
                    hyp=AugmentConfig(mosaic=mosaic),
                    cache=cache,
                )
                per_sample = sample_cpu_ms(dataset)
                for workers in args.workers:
                    rate = loader_images_per_second(dataset, args.batch, workers, args.epochs)
                    load = os.getloadavg()[0]
                    print(
                        f"{mosaic:>6.0f} {cache:>5} {workers:>7} {rate:>7.1f} {per_sample:>13.2f} {load:>5.1f}"
                    )


if __name__ == "__main__":
    main()
