"""What a model says about one image, for every task: numpy only, so the PyTorch path and the
torch-free ONNX runtime return the very same objects.

Each result type has ``summary()`` (the line ``edgevision predict`` prints) and ``to_records()``
(JSON-ready rows), so the command line and the writers never ask which task produced it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np


class Result(Protocol):
    """The part every result type shares."""

    image_path: str

    def summary(self) -> str: ...

    def to_records(self) -> list[dict]: ...


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
        keypoints: (K, P, 3) float32 ``x, y, visibility score`` per detection, for pose models.
        skeleton: 0-based keypoint index pairs joined when drawing (pose models).
        masks: (K, H, W) bool instance masks at the original size, for segmentation models.
    """

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    class_names: list[str] = field(default_factory=list)
    image_path: str = ""
    orig_hw: tuple[int, int] = (0, 0)
    keypoints: np.ndarray | None = None
    masks: np.ndarray | None = None
    skeleton: list[tuple[int, int]] | None = None

    def __len__(self) -> int:
        return len(self.boxes)

    @property
    def labels(self) -> list[str]:
        return [self.class_names[int(c)] for c in self.classes]

    def summary(self) -> str:
        """``path: 2 circle, 1 square`` (counts per class in order of first appearance)."""
        labels = self.labels
        counts = {name: labels.count(name) for name in dict.fromkeys(labels)}
        found = ", ".join(f"{n} {name}" for name, n in counts.items()) or "nothing"
        return f"{self.image_path}: {found}"

    def to_records(self) -> list[dict]:
        """COCO-style result dicts (``bbox`` as x, y, w, h; 1-based ``category_id``) with file
        names; ``keypoints`` as COCO's flat ``[x1, y1, v1, ...]`` when the model has them."""
        rows = []
        for index, (box, score, cls) in enumerate(
            zip(self.boxes, self.scores, self.classes, strict=True)
        ):
            x0, y0, x1, y1 = (float(v) for v in box)
            row = {
                "file_name": Path(self.image_path).name if self.image_path else "",
                "category_id": int(cls) + 1,
                "category": self.class_names[int(cls)] if self.class_names else str(int(cls)),
                "bbox": [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)],
                "score": round(float(score), 5),
            }
            if self.keypoints is not None:
                row["keypoints"] = [round(float(v), 2) for v in self.keypoints[index].reshape(-1)]
            rows.append(row)
        return rows


@dataclass
class Classifications:
    """The top-k classes of one image, best first.

    Attributes:
        image_path: the image (as given or found in the source folder; ``video.mp4#N`` for frames).
        indices: class indices, length k.
        labels: class names, aligned with ``indices``.
        probabilities: softmax probabilities, aligned with ``indices``.
    """

    image_path: str
    indices: list[int]
    labels: list[str]
    probabilities: list[float]

    @classmethod
    def top(
        cls, image_path: str, probabilities: np.ndarray, class_names: list[str], k: int
    ) -> Classifications:
        """The ``k`` most probable of a (C,) probability row, best first (ties: lower index)."""
        best = np.argsort(-np.asarray(probabilities), kind="stable")[: max(1, k)]
        return cls(
            image_path,
            best.tolist(),
            [class_names[i] for i in best],
            [round(float(probabilities[i]), 6) for i in best],
        )

    def __len__(self) -> int:
        return len(self.indices)

    def summary(self) -> str:
        """``path: circle 0.91, square 0.05, ...``."""
        pairs = zip(self.labels, self.probabilities, strict=True)
        return f"{self.image_path}: " + ", ".join(f"{name} {p:.2f}" for name, p in pairs)

    def to_records(self) -> list[dict]:
        """One row: ``path`` and the ``topk`` list of label, index, probability."""
        topk = [
            {"label": label, "index": index, "probability": probability}
            for index, label, probability in zip(
                self.indices, self.labels, self.probabilities, strict=True
            )
        ]
        return [{"path": self.image_path, "topk": topk}]
