"""Format detection, data YAML variants, split rules and the shared path-safety rule."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from edgevision.core import issues as kinds
from edgevision.core.errors import DataError
from edgevision.core.records import ImageRecord, RecordSet
from edgevision.data.formats import (
    detect_format,
    list_splits,
    load_dataset,
    remap_classes,
    resolve_inside,
)
from edgevision.data.formats.voc import write_voc
from edgevision.data.formats.yolo import label_path


def _image(path: Path, width: int = 64, height: int = 48) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((height, width, 3), 127, np.uint8))
    return path


def _voc(root: Path, splits: dict[str, list[int]] | None = None) -> Path:
    """VOC root with 3 images (classes "b" then "a") and optional ImageSets lists."""
    src = root.parent / f"{root.name}_src"
    records = [
        ImageRecord(_image(src / f"im{i}.jpg"), 64, 48, [[i, i, 20 + i, 30]], [i % 2])
        for i in range(3)
    ]
    record_set = RecordSet(records, ["b", "a"], src, "voc")
    if splits is None:
        write_voc(record_set, root)
    for split, indices in (splits or {}).items():
        write_voc(record_set.with_records([records[i] for i in indices]), root, split=split)
    return root


def _coco(path: Path, file_name: str = "x.jpg") -> Path:
    _image(path.parent / file_name)
    data = {
        "images": [{"id": 1, "file_name": file_name, "width": 64, "height": 48}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 5, "bbox": [1, 1, 5, 5]}],
        "categories": [{"id": 5, "name": "cone"}],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def _yolo_tree(root: Path) -> None:
    for split in ("train", "val"):
        image = _image(root / "images" / split / f"{split}.jpg")
        label_path(image).parent.mkdir(parents=True, exist_ok=True)
        label_path(image).write_text("1 0.5 0.5 0.5 0.5\n")


def test_detects_each_layout(tmp_path):
    assert detect_format(_voc(tmp_path / "voc")) == "voc"
    assert detect_format(_coco(tmp_path / "c" / "ann.json")) == "coco"
    assert (
        detect_format(_coco(tmp_path / "cd" / "annotations" / "instances_val.json").parents[1])
        == "coco"
    )
    _yolo_tree(tmp_path / "y")
    (tmp_path / "y" / "data.yaml").write_text(
        "train: images/train\nval: images/val\nnames: [a, b]\n"
    )
    assert detect_format(tmp_path / "y") == "yolo"
    assert detect_format(tmp_path / "y" / "data.yaml") == "yolo"
    (tmp_path / "e.yaml").write_text("format: voc\npath: voc\n")
    assert detect_format(tmp_path / "e.yaml") == "edgevision"


def test_unknown_layout_names_what_was_found(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError) as info:
        detect_format(tmp_path)
    message = str(info.value)
    assert "photos/" in message and "notes.txt" in message
    assert "VOC root" in message and "COCO JSON" in message and "Ultralytics" in message
    (tmp_path / "other.json").write_text('{"foo": 1}')
    with pytest.raises(DataError, match="cannot tell"):
        detect_format(tmp_path / "other.json")


@pytest.mark.parametrize("names", [["cat", "dog"], {0: "cat", 1: "dog"}])
@pytest.mark.parametrize("train", ["images/train", "train.txt", ["images/train", "extra.txt"]])
@pytest.mark.parametrize("absolute", [False, True])
def test_ultralytics_yaml_variants(tmp_path, names, train, absolute):
    root = tmp_path / "dataset"
    _yolo_tree(root)
    (root / "train.txt").write_text("./images/train/train.jpg\n")
    (root / "extra.txt").write_text("images/val/val.jpg\n")
    config_dir = tmp_path / "configs"
    config_dir.mkdir()
    path = str(root.absolute()) if absolute else "../dataset"
    yaml_path = config_dir / "data.yaml"
    yaml_path.write_text(
        yaml.safe_dump({"path": path, "train": train, "val": "images/val", "names": names})
    )
    record_set, issues = load_dataset(yaml_path, "train")
    expected = ["train.jpg", "val.jpg"] if isinstance(train, list) else ["train.jpg"]
    assert [r.image_path.name for r in record_set.records] == expected
    assert record_set.class_names == ["cat", "dog"] and record_set.format == "yolo"
    assert issues == [] and list_splits(yaml_path) == ["train", "val"]


def test_yolo_all_merges_splits(tmp_path):
    _yolo_tree(tmp_path)
    (tmp_path / "data.yaml").write_text("train: images/train\nval: images/val\nnames: [a, b]\n")
    record_set, _ = load_dataset(tmp_path, split="all")
    assert [r.image_id for r in record_set.records] == [0, 1] and record_set.split == "all"


def test_voc_split_rules(tmp_path):
    root = _voc(tmp_path / "voc", {"train": [0, 1], "val": [2]})
    assert list_splits(root) == ["train", "val"]
    train, _ = load_dataset(root, "train")
    assert [r.image_path.name for r in train.records] == ["im0.jpg", "im1.jpg"]
    assert train.class_names == ["a", "b"]  # VOC discovery sorts
    everything, _ = load_dataset(root, None)
    assert len(everything) == 3 and everything.split == "all"
    unsplit = _voc(tmp_path / "plain")
    assert list_splits(unsplit) == ["all"]
    with pytest.raises(DataError, match="data split"):
        load_dataset(unsplit, "train")


def test_edgevision_yaml_fixes_class_order_and_maps_splits(tmp_path):
    _voc(tmp_path / "voc", {"trainval": [0, 1, 2]})
    yaml_path = tmp_path / "data.yaml"
    yaml_path.write_text("format: voc\npath: voc\ntrain: trainval\nnames: [b, a]\n")
    record_set, _ = load_dataset(yaml_path, "train")
    assert record_set.class_names == ["b", "a"] and record_set.split == "train"
    assert [r.labels.tolist() for r in record_set.records] == [[0], [1], [0]]
    assert list_splits(yaml_path) == ["train"]


def test_edgevision_yaml_unknown_key_suggests_a_fix(tmp_path):
    _voc(tmp_path / "voc")
    yaml_path = tmp_path / "data.yaml"
    yaml_path.write_text("format: voc\npath: voc\nnmaes: [a]\n")
    with pytest.raises(DataError, match='did you mean "names"'):
        load_dataset(yaml_path, "all")


def test_edgevision_yaml_for_coco_with_per_split_files(tmp_path):
    _coco(tmp_path / "anns" / "a.json")
    _coco(tmp_path / "anns" / "b.json")
    spec = {"format": "coco", "path": "anns", "train": "a.json"}
    spec["val"] = {"json": "b.json", "images": "."}
    spec["names"] = ["cone", "cup"]
    (tmp_path / "data.yaml").write_text(yaml.safe_dump(spec))
    assert detect_format(tmp_path) == "edgevision"
    assert list_splits(tmp_path) == ["train", "val"]
    record_set, _ = load_dataset(tmp_path, "val")
    assert record_set.class_names == ["cone", "cup"] and record_set.records[0].labels.tolist() == [
        0
    ]


def test_single_coco_file_holds_one_split(tmp_path):
    named = _coco(tmp_path / "annotations" / "instances_val2017.json")
    assert list_splits(named) == ["val"]
    assert len(load_dataset(named, "val")[0]) == 1
    unnamed = _coco(tmp_path / "labels.json")
    assert list_splits(unnamed) == ["all"]
    assert len(load_dataset(unnamed, "all")[0]) == 1
    with pytest.raises(DataError, match='no COCO file for split "train"'):
        load_dataset(unnamed, "train")


def test_coco_folder_prefers_instances_files(tmp_path):
    _coco(tmp_path / "annotations" / "instances_train.json")
    _coco(tmp_path / "annotations" / "person_keypoints_train.json")
    _coco(tmp_path / "annotations" / "captions_train.json")
    assert list_splits(tmp_path) == ["train"]
    record_set, _ = load_dataset(tmp_path, "train")
    assert record_set.records[0].annotation_path.name == "instances_train.json"


@pytest.mark.parametrize(
    ("name", "inside"),
    [("a.jpg", True), ("sub/../a.jpg", True), ("sub\\a.jpg", True), ("../a.jpg", False),
     ("/abs/a.jpg", False), ("C:\\a.jpg", False), ("sub/../../a.jpg", False)],
)  # fmt: skip
def test_resolve_inside(tmp_path, name, inside):
    resolved = resolve_inside(tmp_path, name)
    assert (resolved is not None) == inside
    if inside:
        assert resolved.is_absolute() and resolved.parent in (tmp_path, tmp_path / "sub")


def test_remap_classes_drops_unknown_with_issue(tmp_path):
    record = ImageRecord(tmp_path / "x.jpg", 10, 10, [[0, 0, 1, 1], [0, 0, 2, 2]], [0, 1])
    record_set = RecordSet([record], ["Car", "bus"], tmp_path, "coco")
    remapped, issues = remap_classes(record_set, ["truck", "car"], case="lower")
    assert remapped.class_names == ["truck", "car"]
    assert remapped.records[0].labels.tolist() == [1]
    assert [(i.kind, i.object_index) for i in issues] == [(kinds.UNKNOWN_CLASS, 1)]


def test_remap_classes_can_empty_a_pose_record(tmp_path):
    points = np.ones((1, 2, 3))
    record = ImageRecord(tmp_path / "x.jpg", 10, 10, [[0, 0, 1, 1]], [0], keypoints=points)
    record_set = RecordSet([record], ["cat"], tmp_path, "yolo")
    remapped, issues = remap_classes(record_set, ["dog"])
    assert remapped.records[0].num_objects == 0 and len(issues) == 1
