"""Seeded, generated evaluation cases shared by the eval tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgevision.core.records import ImageRecord, RecordSet

CLASS_NAMES = ["car", "truck", "tug"]


def make_record_set(records: list[ImageRecord], root: Path, names=CLASS_NAMES) -> RecordSet:
    return RecordSet(records=records, class_names=list(names), root=root, format="voc", split="val")


def record(root: Path, name: str, boxes, labels, difficult=None, iscrowd=None, size=(100, 100)):
    return ImageRecord(
        image_path=root / "JPEGImages" / name,
        width=size[0],
        height=size[1],
        boxes=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        labels=labels,
        difficult=difficult,
        iscrowd=iscrowd,
    )


def _random_gt(rng: np.random.Generator, width: int, height: int, count: int) -> np.ndarray:
    """Integer-valued xyxy boxes whose sizes span COCO small, medium and large."""
    sides = np.exp(rng.uniform(np.log(6), np.log(min(width, height) * 0.9), size=(count, 2)))
    sides = np.maximum(np.round(sides), 2)
    x0 = np.floor(rng.uniform(0, width - sides[:, 0]))
    y0 = np.floor(rng.uniform(0, height - sides[:, 1]))
    return np.stack([x0, y0, x0 + sides[:, 0], y0 + sides[:, 1]], axis=1)


def _perturb(rng: np.random.Generator, box: np.ndarray, scale: float) -> np.ndarray:
    size = np.array([box[2] - box[0], box[3] - box[1]] * 2)
    return box + rng.normal(0, scale, size=4) * size


def random_case(
    seed: int,
    root: Path,
    num_images: int = 30,
    difficult_rate: float = 0.1,
    crowd_rate: float = 0.05,
    integer_detections: bool = False,
) -> tuple[RecordSet, list[dict]]:
    """Records with random gts and detections = perturbed gts + duplicates + misses + FPs."""
    rng = np.random.default_rng(seed)
    records, detections = [], []
    for index in range(num_images):
        width, height = int(rng.integers(200, 640)), int(rng.integers(200, 640))
        count = int(rng.integers(0, 7))
        boxes = _random_gt(rng, width, height, count)
        labels = rng.integers(0, len(CLASS_NAMES), size=count)
        difficult = rng.random(count) < difficult_rate
        iscrowd = rng.random(count) < crowd_rate
        records.append(
            record(root, f"{index:04d}.jpg", boxes, labels, difficult, iscrowd, (width, height))
        )
        det_boxes, det_classes = [], []
        for box, label in zip(boxes, labels, strict=True):
            for _ in range(int(rng.random() < 0.85) + int(rng.random() < 0.15)):  # miss / dup
                det_boxes.append(_perturb(rng, box, 0.08))
                det_classes.append(
                    label if rng.random() < 0.9 else rng.integers(0, len(CLASS_NAMES))
                )
        for box in _random_gt(rng, width, height, int(rng.integers(0, 4))):  # false positives
            det_boxes.append(box)
            det_classes.append(rng.integers(0, len(CLASS_NAMES)))
        det_boxes = np.asarray(det_boxes, dtype=np.float64).reshape(-1, 4)
        if integer_detections:
            det_boxes = np.round(det_boxes)
            det_boxes[:, 2:] = np.maximum(det_boxes[:, 2:], det_boxes[:, :2] + 1)
        detections.append(
            {
                "boxes": det_boxes,
                "scores": rng.random(len(det_boxes)),
                "classes": np.asarray(det_classes, dtype=np.int64),
            }
        )
    return make_record_set(records, root), detections
