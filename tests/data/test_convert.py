"""Conversion between VOC, COCO and YOLO: every box, class name and order survives a round trip."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgevision.core.errors import ConfigError, DataError
from edgevision.core.records import ImageRecord, RecordSet
from edgevision.data.convert import convert_dataset
from edgevision.data.formats import detect_format, list_splits, load_dataset
from edgevision.data.formats.coco import write_coco
from edgevision.data.formats.voc import write_voc

CLASSES = ["zebra", "apple", "mango"]  # deliberately not alphabetical


def _image(path: Path, width: int, height: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((height, width, 3), 127, np.uint8))
    return path


def _records(folder: Path, count: int, seed: int = 0) -> list[ImageRecord]:
    """Small images with 0-3 boxes each at 2-decimal coordinates; image 1 is a negative."""
    rng = np.random.default_rng(seed)
    records = []
    for index in range(count):
        width, height = 64, 48
        num_objects = 0 if index == 1 else int(rng.integers(1, 4))
        corners = rng.uniform(0, 1, (num_objects, 2, 2)) * (width, height)
        boxes = np.round(np.concatenate([corners.min(1), corners.max(1) + 1], 1), 2)
        records.append(
            ImageRecord(
                _image(folder / f"img{index}.jpg", width, height), width, height, boxes,
                labels=rng.integers(0, len(CLASSES), num_objects),
                difficult=rng.uniform(size=num_objects) < 0.3, image_id=index,
            )
        )  # fmt: skip
    return records


def _voc_dataset(tmp_path: Path) -> tuple[Path, list[ImageRecord]]:
    """VOC root with train (5 images) and val (3) lists and a data.yaml fixing class order."""
    records = _records(tmp_path / "src", 8)
    record_set = RecordSet(records, CLASSES, tmp_path / "src", "voc")
    root = tmp_path / "voc"
    write_voc(record_set.with_records(records[:5]), root, split="train")
    write_voc(record_set.with_records(records[5:]), root, split="val")
    (root / "data.yaml").write_text("format: voc\npath: .\nnames: [zebra, apple, mango]\n")
    return root, records


def _by_stem(data: Path, split: str) -> tuple[list[str], dict]:
    record_set, issues = load_dataset(data, split)
    assert [i for i in issues if i.kind != "no_objects"] == []
    return record_set.class_names, {r.image_path.stem: r for r in record_set.records}


def _assert_same(original: ImageRecord, other: ImageRecord, names, atol: float, difficult: bool):
    np.testing.assert_allclose(other.boxes, original.boxes, atol=atol, rtol=0)
    assert [names[i] for i in other.labels] == [CLASSES[i] for i in original.labels]
    assert (other.width, other.height) == (original.width, original.height)
    if difficult:
        assert other.difficult.tolist() == original.difficult.tolist()


def test_voc_coco_yolo_voc_round_trip(tmp_path):
    voc, originals = _voc_dataset(tmp_path)
    coco = convert_dataset(voc, "coco", tmp_path / "coco")
    yolo = convert_dataset(coco, "yolo", tmp_path / "yolo")
    voc_again = convert_dataset(yolo, "voc", tmp_path / "voc_again")
    assert [detect_format(p) for p in (coco, yolo, voc_again)] == ["coco", "yolo", "edgevision"]
    for split, expected in (("train", originals[:5]), ("val", originals[5:])):
        for data, exact in ((coco, True), (yolo, False), (voc_again, False)):
            names, records = _by_stem(data, split)
            assert names == CLASSES
            assert sorted(records) == sorted(r.image_path.stem for r in expected)
            for original in expected:
                # COCO keeps 4 decimals (exact here); YOLO 6 decimals of the normalised value.
                atol = 1e-4 if exact else 1e-3
                _assert_same(original, records[original.image_path.stem], names, atol, exact)
    _, records = _by_stem(yolo, "train")
    assert not any(r.difficult.any() for r in records.values())  # YOLO has no difficult flag
    assert list_splits(voc_again) == ["train", "val"]
    assert sum(r.difficult.sum() for r in originals) > 0  # the flags tested above were real


def test_difficult_survives_voc_coco_voc(tmp_path):
    voc, originals = _voc_dataset(tmp_path)
    coco = convert_dataset(voc, "coco", tmp_path / "coco")
    back = convert_dataset(coco, "voc", tmp_path / "back")
    names, records = _by_stem(back, "train")
    for original in originals[:5]:
        _assert_same(original, records[original.image_path.stem], names, 1e-4, True)


def test_coco_to_coco_keeps_category_ids_and_crowd(tmp_path):
    source = tmp_path / "src"
    record = ImageRecord(
        _image(source / "a.jpg", 64, 48), 64, 48, [[1, 2, 30, 40], [0, 0, 64, 48]], [0, 1],
        iscrowd=[False, True], image_id=42,
    )  # fmt: skip
    record_set = RecordSet([record], ["car", "bus"], source, "coco")
    json_path = tmp_path / "in" / "annotations" / "instances_train.json"
    write_coco(record_set, json_path, image_dir_name="images/train", out_root=tmp_path / "in")
    data = json.loads(json_path.read_text())
    for category, new_id in zip(data["categories"], (3, 7), strict=True):
        category["id"] = new_id
    for annotation, new_id in zip(data["annotations"], (3, 7), strict=True):
        annotation["category_id"] = new_id
    json_path.write_text(json.dumps(data))
    out = convert_dataset(json_path, "coco", tmp_path / "out")
    written = json.loads((out / "annotations" / "instances_train.json").read_text())
    assert [(c["id"], c["name"]) for c in written["categories"]] == [(3, "car"), (7, "bus")]
    assert [a["iscrowd"] for a in written["annotations"]] == [0, 1]
    assert written["images"][0]["id"] == 42


def test_split_class_lists_are_merged_in_voc_order(tmp_path):
    """VOC discovers classes per split; every written split must share one list."""
    records = _records(tmp_path / "src", 4, seed=3)
    for record, label in zip(records, [[0], [], [2], [1]], strict=True):
        record.labels = np.array(label * record.num_objects, dtype=np.int64)[: record.num_objects]
    record_set = RecordSet(records, CLASSES, tmp_path / "src", "voc")
    write_voc(record_set.with_records(records[:2]), tmp_path / "voc", split="train")
    write_voc(record_set.with_records(records[2:]), tmp_path / "voc", split="val")
    out = convert_dataset(tmp_path / "voc", "yolo", tmp_path / "yolo")
    for split in ("train", "val"):
        assert load_dataset(out, split)[0].class_names == ["apple", "mango", "zebra"]


def test_refuses_non_empty_output_and_unknown_format(tmp_path):
    voc, _ = _voc_dataset(tmp_path)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    with pytest.raises(DataError, match="not empty"):
        convert_dataset(voc, "coco", tmp_path / "busy")
    with pytest.raises(ConfigError, match="did you mean 'yolo'"):
        convert_dataset(voc, "yollo", tmp_path / "new")
    assert not (tmp_path / "new").exists()


def test_unsplit_voc_becomes_yolo_train(tmp_path):
    records = _records(tmp_path / "src", 3)
    write_voc(RecordSet(records, CLASSES, tmp_path / "src", "voc"), tmp_path / "voc")
    out = convert_dataset(tmp_path / "voc", "yolo", tmp_path / "yolo")
    assert list_splits(out) == ["train"]
    assert len(load_dataset(out, "train")[0]) == 3


def test_keypoints_survive_coco_yolo_coco(tmp_path):
    source = tmp_path / "src"
    points = [[[10.5, 20.25, 2], [0, 0, 0], [30, 40, 1]]]
    record = ImageRecord(
        _image(source / "a.jpg", 64, 48), 64, 48, [[5, 5, 50, 45]], [0], keypoints=points
    )
    names = ["nose", "left_eye", "right_eye"]
    record_set = RecordSet([record], ["person"], source, "coco", "train", names, [(0, 1), (0, 2)])
    json_path = tmp_path / "in" / "annotations" / "instances_train.json"
    write_coco(record_set, json_path, image_dir_name="images/train", out_root=tmp_path / "in")
    yolo = convert_dataset(json_path, "yolo", tmp_path / "yolo")
    from_yolo, _ = load_dataset(yolo, "train")
    assert from_yolo.flip_idx == [0, 2, 1]  # derived from the COCO names, kept by YOLO
    back = convert_dataset(yolo, "coco", tmp_path / "back")
    record_set_back, _ = load_dataset(back, "train")
    np.testing.assert_allclose(record_set_back.records[0].keypoints, points, atol=1e-3)
    # The data YAML carries the keypoint names and skeleton (kpt_names, skeleton keys).
    assert record_set_back.kpt_names == ["nose", "left_eye", "right_eye"]
    assert record_set_back.skeleton == [(0, 1), (0, 2)]
