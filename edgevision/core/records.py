"""The one in-memory record every reader produces and every consumer reads.

Coordinates: absolute-pixel ``xyxy`` floats in a continuous, 0-based frame where the image spans
``[0, width] x [0, height]``. Format edges convert: VOC's 1-based inclusive pixels become
``(xmin - 1, ymin - 1, xmax, ymax)``; COCO ``[x, y, w, h]`` and YOLO normalised ``cx cy w h`` map
directly. Boxes are kept *as written* (possibly swapped or outside the image) so the data doctor can
report them; ``data.sanitize`` makes them training-ready.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# A box at most this many pixels wide or high is degenerate: an annotation tool's click without
# a drag (VOC xmin == xmax is one pixel wide), or a prediction squeezed flat by clipping. Nothing
# can be learned from it, and COCO tools drop or choke on such boxes.
MIN_BOX_SIDE = 1.0


def has_size(boxes: np.ndarray) -> np.ndarray:
    """(N,) True where an (N, 4) xyxy box is wider and higher than :data:`MIN_BOX_SIDE`."""
    boxes = np.asarray(boxes).reshape(-1, 4)
    return (boxes[:, 2] - boxes[:, 0] > MIN_BOX_SIDE) & (boxes[:, 3] - boxes[:, 1] > MIN_BOX_SIDE)


def _empty(shape: tuple[int, ...], dtype) -> np.ndarray:
    return np.zeros(shape, dtype=dtype)


@dataclass
class ImageRecord:
    """One image and its objects.

    Attributes:
        image_path: absolute path of the image file (resolved inside the dataset root).
        width, height: image size in pixels as annotated (0 when unknown and not yet read).
        boxes: (N, 4) float32 xyxy absolute pixels.
        labels: (N,) int64 indices into the dataset's ``class_names``.
        difficult: (N,) bool, VOC ``difficult`` (ignored by VOC AP, kept in training by default).
        iscrowd: (N,) bool, COCO ``iscrowd`` (ignored by COCO AP).
        keypoints: (N, K, 3) float32 ``x, y, v`` (COCO visibility 0/1/2), or None.
        annotation_path: file the objects came from (VOC xml, YOLO txt, COCO json), for messages.
        image_id: stable id (COCO id when read from COCO, else the running index).
        extra: per-image format details a writer may keep (e.g. VOC ``folder``, ``segmented``).
    """

    image_path: Path
    width: int
    height: int
    boxes: np.ndarray = field(default_factory=lambda: _empty((0, 4), np.float32))
    labels: np.ndarray = field(default_factory=lambda: _empty((0,), np.int64))
    difficult: np.ndarray | None = None
    iscrowd: np.ndarray | None = None
    keypoints: np.ndarray | None = None
    annotation_path: Path | None = None
    image_id: int | str = 0
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.image_path = Path(self.image_path)
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        n = len(self.boxes)
        if len(self.labels) != n:
            raise ValueError(f"{self.image_path}: {n} boxes but {len(self.labels)} labels")
        self.difficult = _flags(self.difficult, n)
        self.iscrowd = _flags(self.iscrowd, n)
        if self.keypoints is not None:
            keypoints = np.asarray(self.keypoints, dtype=np.float32)
            # (0, K, 3) must survive: "-1" cannot be inferred from zero objects.
            num_keypoints = (
                keypoints.shape[-2] if keypoints.size == 0 and keypoints.ndim >= 2 else -1
            )
            self.keypoints = keypoints.reshape(n, num_keypoints, 3)

    @property
    def num_objects(self) -> int:
        return len(self.boxes)

    def select(self, keep: np.ndarray) -> ImageRecord:
        """A copy holding only the objects where ``keep`` (bool mask or indices) selects."""
        return ImageRecord(
            image_path=self.image_path,
            width=self.width,
            height=self.height,
            boxes=self.boxes[keep],
            labels=self.labels[keep],
            difficult=self.difficult[keep],
            iscrowd=self.iscrowd[keep],
            keypoints=None if self.keypoints is None else self.keypoints[keep],
            annotation_path=self.annotation_path,
            image_id=self.image_id,
            extra=dict(self.extra),
        )


def _flags(values: np.ndarray | None, n: int) -> np.ndarray:
    if values is None:
        return np.zeros(n, dtype=bool)
    return np.asarray(values, dtype=bool).reshape(n)


@dataclass
class RecordSet:
    """A dataset split as records plus what applies to all of them.

    Attributes:
        records: the images, in a deterministic order (sorted by file name unless a list file
            gives the order).
        class_names: index -> name; class ids in records index this list.
        root: dataset root; image paths from annotations may not leave it.
        format: "voc", "coco", "yolo" or "classify"; where the records came from.
        split: "train", "val", "test", "trainval" or "all".
        kpt_names, skeleton, flip_idx: keypoint metadata (COCO keypoints), when present.
            ``skeleton`` holds 0-based index pairs; ``flip_idx[k]`` is the keypoint that ``k``
            becomes under a horizontal flip.
        category_ids: COCO category id per class name, when read from COCO.
        kpt_sigmas: (K,) per-keypoint OKS sigmas when the data states them (a data YAML's
            ``kpt_oks_sigmas``, a COCO JSON's ``"edgevision"`` dict); None otherwise, and
            ``data.sigmas.resolve_sigmas`` picks them.
    """

    records: list[ImageRecord]
    class_names: list[str]
    root: Path
    format: str
    split: str = "all"
    kpt_names: list[str] | None = None
    skeleton: list[tuple[int, int]] | None = None
    flip_idx: list[int] | None = None
    category_ids: dict[str, int] = field(
        default_factory=dict
    )  # COCO id per class name, when read from COCO
    kpt_sigmas: list[float] | None = None

    def __len__(self) -> int:
        return len(self.records)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_objects(self) -> int:
        return sum(r.num_objects for r in self.records)

    @property
    def num_keypoints(self) -> int:
        """K every object should have: the keypoint names' count, else the most common K of the
        records (0 when the dataset has no keypoints)."""
        if self.kpt_names:
            return len(self.kpt_names)
        counts = Counter(r.keypoints.shape[1] for r in self.records if r.keypoints is not None)
        return counts.most_common(1)[0][0] if counts else 0

    def with_records(self, records: list[ImageRecord], split: str | None = None) -> RecordSet:
        """The same dataset metadata around another list of records (a split, a cleaned copy)."""
        return RecordSet(
            records=records,
            class_names=list(self.class_names),
            root=self.root,
            format=self.format,
            split=self.split if split is None else split,
            kpt_names=self.kpt_names,
            skeleton=self.skeleton,
            flip_idx=self.flip_idx,
            category_ids=dict(self.category_ids),
            kpt_sigmas=None if self.kpt_sigmas is None else list(self.kpt_sigmas),
        )
