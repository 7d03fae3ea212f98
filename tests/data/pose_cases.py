"""Hand-made pose datasets (YOLO-pose and COCO keypoints) shared by the pose data tests."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import yaml

NAMES = ["nose", "left_eye", "right_eye", "tail"]
FLIP = [0, 2, 1, 3]
SKELETON = [(0, 1), (0, 2), (0, 3)]
SIGMAS = [0.026, 0.025, 0.025, 0.08]


def image(path: Path, width: int = 64, height: int = 48) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((height, width, 3), 127, np.uint8))
    return path


def yolo_pose(
    root: Path, labels: dict[str, str], config: dict | None = None, size=(64, 48)
) -> Path:
    """``images/train/<stem>.jpg`` + ``labels/train/<stem>.txt`` per entry, and a data.yaml with
    K = 4 keypoints (names, flip_idx, skeleton, sigmas) updated by ``config``."""
    for stem, text in labels.items():
        image(root / "images" / "train" / f"{stem}.jpg", *size)
        label = root / "labels" / "train" / f"{stem}.txt"
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_text(text)
    base = {
        "path": ".",
        "train": "images/train",
        "names": {0: "cat", 1: "dog"},
        "kpt_shape": [4, 3],
        "flip_idx": FLIP,
        "kpt_names": {0: NAMES, 1: NAMES},
        "skeleton": [list(edge) for edge in SKELETON],
        "kpt_oks_sigmas": SIGMAS,
    }
    config = base | (config or {})
    yaml_path = root / "data.yaml"
    yaml_path.write_text(yaml.safe_dump({k: v for k, v in config.items() if v is not None}))
    return yaml_path


def coco_annotation(index: int, image_id: int, bbox: list, points: list, **extra) -> dict:
    """One keypoint annotation; ``num_keypoints`` counts the labelled points unless given."""
    labelled = sum(1 for k in range(2, len(points), 3) if points[k] > 0)
    annotation = {"id": index, "image_id": image_id, "category_id": 1, "bbox": bbox}
    annotation |= {"keypoints": points, "num_keypoints": labelled, "iscrowd": 0}
    return annotation | extra


def coco_pose(
    root: Path,
    annotations: list[dict],
    split: str = "train",
    names: list[str] | None = None,
    skeleton: list | None = None,
    extra: dict | None = None,
    images: int = 2,
) -> Path:
    """``annotations/instances_<split>.json`` over ``images/<split>/{0,1,...}.jpg`` (64x48), one
    category "person" with 1-based ``skeleton`` and the top-level ``"edgevision"`` ``extra``."""
    entries = []
    for index in range(images):
        image(root / "images" / split / f"{index}.jpg")
        entries.append({"id": index + 1, "file_name": f"{index}.jpg", "width": 64, "height": 48})
    category = {"id": 1, "name": "person", "keypoints": names or NAMES}
    category["skeleton"] = [[a + 1, b + 1] for a, b in SKELETON] if skeleton is None else skeleton
    data = {"images": entries, "annotations": annotations, "categories": [category]}
    if extra is not None:
        data["edgevision"] = extra
    json_path = root / "annotations" / f"instances_{split}.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(data))
    return json_path
