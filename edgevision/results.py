"""Detection results: numpy only, so the torch path and the ONNX runtime path share them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Detections:
    """Detections for one image, in original image pixels.

    Attributes:
        boxes: (K, 4) float32 xyxy.
        scores: (K,) float32.
        classes: (K,) int64 indices into ``class_names``.
        class_names: the model's class list.
        image_path: the source image (or ``video.mp4#frame`` for video frames).
        orig_hw: (height, width) of the source image.
    """

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    class_names: list[str] = field(default_factory=list)
    image_path: str = ""
    orig_hw: tuple[int, int] = (0, 0)

    def __len__(self) -> int:
        return len(self.boxes)

    @property
    def labels(self) -> list[str]:
        return [self.class_names[int(c)] for c in self.classes]

    def to_records(self) -> list[dict]:
        """COCO-style result dicts (``bbox`` as x, y, w, h; 1-based ``category_id``) with file names."""
        rows = []
        for box, score, cls in zip(self.boxes, self.scores, self.classes, strict=True):
            x0, y0, x1, y1 = (float(v) for v in box)
            rows.append(
                {
                    "file_name": Path(self.image_path).name if self.image_path else "",
                    "category_id": int(cls) + 1,
                    "category": self.class_names[int(cls)] if self.class_names else str(int(cls)),
                    "bbox": [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)],
                    "score": round(float(score), 5),
                }
            )
        return rows
