"""Shared fixtures of the label-noise tests: hand-built record sets and a "model" made from labels.

``labels_as_detections`` turns clean labels into detections (random scores, optionally jittered
boxes, some objects missed and some weak false positives): the finder then sees the clean labels
through a model and the noisy labels as the dataset, so it must rank the injected noise first.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgevision.core.records import ImageRecord, RecordSet
from edgevision.data.synth.detect import synthesize_detection
from edgevision.ops.boxes import clip_boxes

CLASSES = ["cat", "dog"]


def one_image(
    root: Path, boxes, labels, difficult=None, iscrowd=None, size=(200, 200)
) -> RecordSet:
    """A record set of one 200 x 200 image (the file need not exist for the finder)."""
    record = ImageRecord(
        root / "images" / "a.jpg",
        size[0],
        size[1],
        np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        np.asarray(labels, dtype=np.int64),
        difficult,
        iscrowd,
    )
    return RecordSet([record], list(CLASSES), root, "coco")


def detections(boxes, scores, classes) -> list[dict]:
    """One image's detections in the evaluators' format."""
    return [
        {
            "boxes": np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
            "scores": np.asarray(scores, dtype=np.float64),
            "classes": np.asarray(classes, dtype=np.int64),
        }
    ]


def labels_as_detections(record_set: RecordSet, seed: int, realistic: bool) -> list[dict]:
    """Detections that are the labels of ``record_set`` with scores in [0.6, 0.99].

    ``realistic`` adds 3% box jitter, misses 5% of the objects and adds up to two weak
    (score < 0.3) random false positives per image.
    """
    rng = np.random.default_rng(seed)
    out = []
    for record in record_set.records:
        boxes, classes = record.boxes.astype(np.float64), record.labels.copy()
        scores = rng.uniform(0.6, 0.99, len(boxes))
        if realistic:
            size = np.tile(boxes[:, 2:] - boxes[:, :2], 2)
            boxes = clip_boxes(
                boxes + rng.normal(0, 0.03, boxes.shape) * size, record.width, record.height
            )
            keep = rng.random(len(boxes)) > 0.05
            boxes, classes, scores = boxes[keep], classes[keep], scores[keep]
            count = int(rng.integers(0, 3))
            corner = rng.uniform(0, 1, (count, 2)) * (record.width, record.height)
            extra = np.concatenate([corner, corner + rng.uniform(10, 40, (count, 2))], axis=1)
            boxes = np.concatenate([boxes, extra])
            classes = np.concatenate([classes, rng.integers(0, record_set.num_classes, count)])
            scores = np.concatenate([scores, rng.uniform(0.01, 0.3, count)])
        out.append({"boxes": boxes, "scores": scores, "classes": classes})
    return out


def synthetic_voc(root: Path, n_train: int = 120) -> Path:
    """A synthetic VOC set of small images (about 4.5 objects each)."""
    return synthesize_detection(root, n_train=n_train, n_val=0, width_range=(96, 128), seed=1)
