"""YOLO reader/writer: label parsing, defects with line numbers, list files, pose, round trips."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from edgevision.core import issues as kinds
from edgevision.core.errors import DataError
from edgevision.core.records import ImageRecord, RecordSet
from edgevision.data.formats.yolo import label_path, read_yolo, write_yolo


def _image(path: Path, width: int = 64, height: int = 48) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((height, width, 3), 127, np.uint8))
    return path


def _labels(image: Path, text: str) -> None:
    target = label_path(image)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def _dataset(tmp_path: Path, config: dict | None = None) -> Path:
    """images/train/{a,b}.jpg (64x48) with labels; data.yaml with names as a dict."""
    a = _image(tmp_path / "images" / "train" / "a.jpg")
    _image(tmp_path / "images" / "train" / "b.jpg")
    _labels(a, "1 0.5 0.5 0.25 0.5\n0 0.125 0.25 0.25 0.5\n")
    _labels(tmp_path / "images" / "train" / "b.jpg", "")
    yaml_path = tmp_path / "data.yaml"
    base = {"path": ".", "train": "images/train", "names": {0: "cat", 1: "dog"}}
    yaml_path.write_text(yaml.safe_dump(base | (config or {})))
    return yaml_path


def test_reads_boxes_in_pixels(tmp_path):
    record_set, issues = read_yolo(_dataset(tmp_path))
    assert record_set.class_names == ["cat", "dog"]
    assert record_set.root == tmp_path.absolute()
    a, b = record_set.records
    np.testing.assert_allclose(a.boxes, [[24, 12, 40, 36], [0, 0, 16, 24]])
    assert a.labels.tolist() == [1, 0] and (a.width, a.height) == (64, 48)
    assert a.annotation_path == tmp_path / "labels" / "train" / "a.txt"
    assert b.num_objects == 0
    assert [(i.kind, i.path.name) for i in issues] == [(kinds.NO_OBJECTS, "b.jpg")]


def test_label_path_replaces_last_images_folder():
    image = Path("/data/images/set/images/train/x.v1.jpg")
    assert label_path(image) == Path("/data/images/set/labels/train/x.v1.txt")
    assert label_path(Path("/data/flat/x.png")) == Path("/data/flat/x.txt")


def test_bad_lines_are_reported_with_line_numbers(tmp_path):
    yaml_path = _dataset(tmp_path)
    text = "0 0.5 0.5 0.1 0.1\n0 0.5 0.5 0.1\n0 a 0.5 0.1 0.1\n7 0.5 0.5 0.1 0.1\n1.5 0.5 0.5 0.1 0.1\n"
    _labels(tmp_path / "images" / "train" / "a.jpg", text)
    record_set, issues = read_yolo(yaml_path)
    assert record_set.records[0].num_objects == 1
    found = [(i.kind, i.line) for i in issues if i.kind != kinds.NO_OBJECTS]
    assert found == [
        (kinds.CORRUPT_ANNOTATION, 2),
        (kinds.CORRUPT_ANNOTATION, 3),
        (kinds.UNKNOWN_CLASS, 4),
        (kinds.CORRUPT_ANNOTATION, 5),
    ]
    assert "5 columns" not in issues[0].reason and "4 columns, expected 5" in issues[0].reason


def test_polygon_line_becomes_its_bounding_box(tmp_path):
    yaml_path = _dataset(tmp_path)
    _labels(tmp_path / "images" / "train" / "a.jpg", "0 0.25 0.25 0.75 0.25 0.5 0.75\n")
    record_set, _ = read_yolo(yaml_path)
    np.testing.assert_allclose(record_set.records[0].boxes, [[16, 12, 48, 36]])


def test_missing_label_folder_gives_a_layout_hint(tmp_path):
    _image(tmp_path / "images" / "train" / "a.jpg")
    yaml_path = tmp_path / "data.yaml"
    yaml_path.write_text("train: images/train\nnames: [cat]\n")
    record_set, issues = read_yolo(yaml_path)
    assert len(record_set) == 1 and record_set.records[0].num_objects == 0
    assert [i.kind for i in issues] == [kinds.NO_OBJECTS, kinds.MISSING_ANNOTATION]
    assert "labels/train/a.txt" in issues[-1].hint


def test_list_file_paths_relative_absolute_and_escaping(tmp_path):
    yaml_path = _dataset(tmp_path / "set")
    outside = _image(tmp_path / "elsewhere.jpg")
    absolute_b = (tmp_path / "set" / "images" / "train" / "b.jpg").absolute()
    lines = ["./images/train/a.jpg", str(absolute_b), str(outside), "../elsewhere.jpg", "nope.jpg"]
    (tmp_path / "set" / "train.txt").write_text("\n".join(lines) + "\n")
    yaml_path.write_text("train: train.txt\nnames: [cat, dog]\n")
    record_set, issues = read_yolo(yaml_path)
    assert [r.image_path.name for r in record_set.records] == ["a.jpg", "b.jpg"]
    problems = [(i.kind, i.line) for i in issues if i.kind != kinds.NO_OBJECTS]
    expected = [(kinds.PATH_ESCAPE, 3), (kinds.PATH_ESCAPE, 4), (kinds.MISSING_IMAGE, 5)]
    assert problems == expected


def test_pose_keypoints_with_and_without_visibility(tmp_path):
    yaml_path = _dataset(tmp_path, {"kpt_shape": [2, 3], "flip_idx": [1, 0]})
    line = "0 0.5 0.5 0.5 0.5 0.25 0.5 2 0 0 0\n"
    _labels(tmp_path / "images" / "train" / "a.jpg", line)
    record_set, _ = read_yolo(yaml_path)
    np.testing.assert_allclose(record_set.records[0].keypoints, [[[16, 24, 2], [0, 0, 0]]])
    assert record_set.flip_idx == [1, 0]
    yaml_path = _dataset(tmp_path, {"kpt_shape": [2, 2]})
    _labels(tmp_path / "images" / "train" / "a.jpg", "0 0.5 0.5 0.5 0.5 0.25 0.5 0 0\n")
    record_set, _ = read_yolo(yaml_path)
    np.testing.assert_allclose(record_set.records[0].keypoints, [[[16, 24, 2], [0, 0, 0]]])


def test_class_names_remap_by_name(tmp_path):
    record_set, issues = read_yolo(_dataset(tmp_path), class_names=["dog"])
    assert record_set.class_names == ["dog"]
    assert record_set.records[0].labels.tolist() == [0]
    assert [i.kind for i in issues].count(kinds.UNKNOWN_CLASS) == 1


def test_missing_split_and_bad_yaml_are_data_errors(tmp_path):
    with pytest.raises(DataError, match='no "val:" entry'):
        read_yolo(_dataset(tmp_path), split="val")
    bad = tmp_path / "bad.yaml"
    bad.write_text("names: [a, b\ntrain: x\n")
    with pytest.raises(DataError) as info:
        read_yolo(bad)
    assert info.value.line is not None and "invalid YAML" in str(info.value)


def test_write_read_round_trip(tmp_path):
    source = _image(tmp_path / "src" / "img.jpg", 640, 480)
    boxes = [[10.25, 20.5, 300.75, 479], [0, 0, 640, 480]]
    points = [[[100.5, 200.25, 2], [0, 0, 0]], [[1, 2, 1], [3, 4, 2]]]
    record = ImageRecord(source, 640, 480, boxes, [1, 0], iscrowd=[True, False], keypoints=points)
    record_set = RecordSet([record], ["a", "b"], tmp_path / "src", "coco", flip_idx=[1, 0])
    yaml_path = write_yolo(record_set, tmp_path / "out", split="val")
    assert (tmp_path / "out" / "images" / "val" / "img.jpg").is_file()
    config = yaml.safe_load(yaml_path.read_text())
    assert config["names"] == {0: "a", 1: "b"} and config["val"] == "images/val"
    assert config["kpt_shape"] == [2, 3] and config["flip_idx"] == [1, 0]
    line = (tmp_path / "out" / "labels" / "val" / "img.txt").read_text().splitlines()[0]
    assert line.split()[:5] == ["1", "0.242969", "0.520312", "0.453906", "0.955208"]
    again, issues = read_yolo(yaml_path, split="val")
    assert issues == []
    np.testing.assert_allclose(again.records[0].boxes, boxes, atol=1e-3)
    np.testing.assert_allclose(again.records[0].keypoints, points, atol=1e-3)
    assert again.records[0].iscrowd.tolist() == [False, False]  # YOLO has no crowd flag


def test_writer_refuses_another_class_list(tmp_path):
    source = _image(tmp_path / "img.jpg")
    record = ImageRecord(source, 64, 48, [[1, 2, 3, 4]], [0])
    write_yolo(RecordSet([record], ["a"], tmp_path, "voc"), tmp_path / "out", "train")
    with pytest.raises(DataError, match="holds classes"):
        write_yolo(RecordSet([record], ["b"], tmp_path, "voc"), tmp_path / "out", "val")
