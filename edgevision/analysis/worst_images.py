"""The images that cost the most, drawn: ground truth in white, predictions above the operating
confidence in their class colour, so a user sees at once what was missed and what was invented."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np

from edgevision.core.errors import DataError
from edgevision.core.fileio import atomic_write_bytes
from edgevision.core.image import read_image
from edgevision.core.records import RecordSet
from edgevision.viz.draw import draw_detections, image_grid

_TRUTH = (255, 255, 255)


def draw_worst_images(
    record_set: RecordSet,
    detections: Sequence[Mapping],
    worst: Sequence[Mapping],
    path: str | Path,
    conf: float = 0.25,
) -> Path | None:
    """A grid of the ``worst`` images (rows of ``error_breakdown(...)["worst_images"]``) with
    ground truth (white, 1 px wider) and predictions scoring at least ``conf``.

    Returns:
        The JPEG written, or None when there is no image to show (none cost anything or none
        could be read).
    """
    tiles = []
    for row in worst:
        record, found = record_set.records[row["index"]], detections[row["index"]]
        try:
            image = read_image(record.image_path)
        except DataError:
            continue  # named by val already; a report never fails for one image
        tiles.append(_draw_one(image, record, found, record_set.class_names, conf))
    if not tiles:
        return None
    grid = image_grid(tiles, columns=min(4, len(tiles)), cell=320)
    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(grid, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88]
    )
    return atomic_write_bytes(Path(path), data.tobytes()) if ok else None


def _draw_one(
    image: np.ndarray, record, found: Mapping, names: list[str], conf: float
) -> np.ndarray:
    thickness = max(1, round(sum(image.shape[:2]) / 600)) + 1
    for box in record.boxes:
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        cv2.rectangle(image, (x0, y0), (x1, y1), _TRUTH, thickness, cv2.LINE_AA)
    scores = np.asarray(found["scores"], dtype=np.float64).reshape(-1)
    keep = scores >= conf
    boxes = np.asarray(found["boxes"], dtype=np.float64).reshape(-1, 4)[keep]
    classes = np.asarray(found["classes"]).reshape(-1)[keep]
    return draw_detections(image, boxes, classes, scores[keep], names)
