"""COCO reader/writer: sparse category ids, keypoints, defects as Issues, path safety, round trips."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgevision.core import issues as kinds
from edgevision.core.errors import DataError
from edgevision.core.records import ImageRecord, RecordSet
from edgevision.data.formats.coco import (
    category_ids,
    coco_split_name,
    default_image_dir,
    flip_index,
    read_coco,
    to_coco_dict,
    write_coco,
)


def _image(path: Path, width: int = 64, height: int = 48) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((height, width, 3), 127, np.uint8))
    return path


def _dataset(tmp_path: Path, **overrides) -> Path:
    """Two images under images/, categories with sparse ids 7, 1, 3 (listed out of order)."""
    _image(tmp_path / "images" / "a.jpg")
    _image(tmp_path / "images" / "sub" / "b.png", 32, 24)
    data = {
        "images": [
            {"id": 10, "file_name": "a.jpg", "width": 64, "height": 48},
            {"id": 20, "file_name": "sub/b.png", "width": 32, "height": 24},
        ],
        "annotations": [
            {"id": 1, "image_id": 10, "category_id": 7, "bbox": [1.5, 2, 10, 20.25], "iscrowd": 0},
            {"id": 2, "image_id": 10, "category_id": 1, "bbox": [0, 0, 64, 48], "iscrowd": 1},
            {"id": 3, "image_id": 20, "category_id": 3, "bbox": [4, 5, 6, 7]},
        ],
        "categories": [
            {"id": 7, "name": "truck"},
            {"id": 1, "name": "car"},
            {"id": 3, "name": "bus"},
        ],
    }
    data.update(overrides)
    json_path = tmp_path / "ann.json"
    json_path.write_text(json.dumps(data))
    return json_path


def test_sparse_category_ids_boxes_and_flags(tmp_path):
    record_set, issues = read_coco(_dataset(tmp_path))
    assert issues == []
    assert record_set.class_names == ["car", "bus", "truck"]  # sorted by id 1, 3, 7
    assert category_ids(record_set) == [1, 3, 7]
    first, second = record_set.records
    assert first.image_id == 10 and second.image_id == 20
    assert second.image_path == (tmp_path / "images" / "sub" / "b.png").absolute()
    np.testing.assert_array_equal(first.boxes, [[1.5, 2, 11.5, 22.25], [0, 0, 64, 48]])
    assert first.labels.tolist() == [2, 0]
    assert first.iscrowd.tolist() == [False, True]
    assert second.labels.tolist() == [1] and (first.width, first.height) == (64, 48)
    assert record_set.root == (tmp_path / "images").absolute()


def test_write_read_round_trip_keeps_ids_boxes_and_crowd(tmp_path):
    record_set, _ = read_coco(_dataset(tmp_path))
    out_json = write_coco(record_set, tmp_path / "out" / "annotations" / "instances_val.json")
    written = json.loads(out_json.read_text())
    assert [c["id"] for c in written["categories"]] == [1, 3, 7]
    assert written["annotations"][0] == {
        "id": 1, "image_id": 10, "category_id": 7, "bbox": [1.5, 2.0, 10.0, 20.25],
        "area": 202.5, "iscrowd": 0,
    }  # fmt: skip
    assert (tmp_path / "out" / "annotations" / "images" / "sub" / "b.png").is_file()
    again, issues = read_coco(out_json, image_dir=tmp_path / "out" / "annotations" / "images")
    assert issues == [] and again.class_names == record_set.class_names
    for old, new in zip(record_set.records, again.records, strict=True):
        np.testing.assert_array_equal(old.boxes, new.boxes)
        assert old.labels.tolist() == new.labels.tolist()
        assert old.iscrowd.tolist() == new.iscrowd.tolist()
        assert old.image_id == new.image_id


def test_written_json_loads_in_pycocotools(tmp_path):
    coco_module = pytest.importorskip("pycocotools.coco")
    record_set, _ = read_coco(_dataset(tmp_path))
    api = coco_module.COCO()
    api.dataset = to_coco_dict(record_set)
    api.createIndex()
    assert sorted(api.getCatIds()) == [1, 3, 7]
    assert len(api.getAnnIds(imgIds=[10])) == 2


def test_ids_default_to_one_based_for_records_from_elsewhere(tmp_path):
    image = _image(tmp_path / "x.jpg")
    record = ImageRecord(image, 64, 48, [[1, 2, 3, 4]], [1], difficult=[True], image_id="x")
    record_set = RecordSet([record], ["a", "b"], tmp_path, "voc")
    coco = to_coco_dict(record_set)
    assert [c["id"] for c in coco["categories"]] == [1, 2]
    assert coco["images"][0]["id"] == 1
    assert coco["annotations"][0]["category_id"] == 2
    assert coco["annotations"][0]["difficult"] == 1  # kept for a VOC round trip


def test_image_without_annotations_is_a_negative(tmp_path):
    json_path = _dataset(tmp_path, annotations=[])
    record_set, issues = read_coco(json_path)
    assert [r.num_objects for r in record_set.records] == [0, 0]
    assert [i.kind for i in issues] == [kinds.NO_OBJECTS] * 2


def test_unknown_image_category_and_bad_bbox_are_issues(tmp_path):
    annotations = [
        {"id": 1, "image_id": 10, "category_id": 1, "bbox": [1, 2, 3, 4]},
        {"id": 2, "image_id": 99, "category_id": 1, "bbox": [1, 2, 3, 4]},
        {"id": 3, "image_id": 10, "category_id": 5, "bbox": [1, 2, 3, 4]},
        {"id": 4, "image_id": 10, "category_id": 1, "bbox": [1, 2, "3", 4]},
        {"id": 5, "image_id": 20, "category_id": 1, "bbox": [1, 2, 3]},
    ]
    record_set, issues = read_coco(_dataset(tmp_path, annotations=annotations))
    corrupt = [i for i in issues if i.kind == kinds.CORRUPT_ANNOTATION]
    assert [i.object_index for i in corrupt] == [1, 2, 3, 4]
    assert "unknown image id 99" in corrupt[0].reason
    assert "unknown category id 5" in corrupt[1].reason
    assert [r.num_objects for r in record_set.records] == [1, 0]


def test_invalid_json_names_line_and_column(tmp_path):
    json_path = tmp_path / "bad.json"
    json_path.write_text('{\n  "images": [],\n  "annotations": [,]\n}')
    with pytest.raises(DataError) as info:
        read_coco(json_path)
    assert info.value.line == 3
    assert "column 19" in str(info.value) and str(json_path) in str(info.value)


@pytest.mark.parametrize(
    "categories",
    [
        [{"id": 1, "name": "a"}, {"id": 1, "name": "b"}],
        [{"id": 1, "name": "a"}, {"id": 2, "name": "a"}],
    ],
)
def test_duplicate_category_is_a_data_error(tmp_path, categories):
    with pytest.raises(DataError, match="twice"):
        read_coco(_dataset(tmp_path, categories=categories))


@pytest.mark.parametrize(
    "name", ["../a.jpg", "/etc/passwd", "C:\\images\\a.jpg", "sub/../../a.jpg"]
)
def test_file_name_outside_image_folder_is_refused(tmp_path, name):
    _image(tmp_path / "a.jpg")  # exists, but outside images/
    images = [{"id": 10, "file_name": "a.jpg", "width": 64, "height": 48}]
    images.append({"id": 30, "file_name": name, "width": 64, "height": 48})
    ann = [{"id": 9, "image_id": 30, "category_id": 1, "bbox": [0, 0, 1, 1]}]
    record_set, issues = read_coco(_dataset(tmp_path, images=images, annotations=ann))
    assert [r.image_id for r in record_set.records] == [10]
    assert [i.kind for i in issues if i.kind != kinds.NO_OBJECTS] == [kinds.PATH_ESCAPE]


def test_missing_image_and_missing_size(tmp_path):
    images = [
        {"id": 10, "file_name": "a.jpg"},  # size read from the header
        {"id": 11, "file_name": "gone.jpg", "width": 5, "height": 5},
    ]
    record_set, issues = read_coco(_dataset(tmp_path, images=images, annotations=[]))
    assert [(r.width, r.height) for r in record_set.records] == [(64, 48)]
    assert {i.kind for i in issues} == {kinds.MISSING_SIZE, kinds.MISSING_IMAGE, kinds.NO_OBJECTS}


def test_keypoints_schema_skeleton_and_flip(tmp_path):
    names = ["nose", "left_eye", "right_eye"]
    categories = [{"id": 1, "name": "person", "keypoints": names, "skeleton": [[1, 2], [1, 3]]}]
    points = [10, 11, 2, 12, 9, 1, 0, 0, 0]
    annotations = [
        {"id": 1, "image_id": 10, "category_id": 1, "bbox": [5, 5, 20, 20], "keypoints": points},
        {"id": 2, "image_id": 10, "category_id": 1, "bbox": [5, 5, 20, 20], "keypoints": [1, 2]},
    ]
    json_path = _dataset(tmp_path, categories=categories, annotations=annotations)
    record_set, issues = read_coco(json_path)
    assert record_set.kpt_names == names
    assert record_set.skeleton == [(0, 1), (0, 2)]
    assert record_set.flip_idx == [0, 2, 1]
    record = record_set.records[0]
    assert record.keypoints.shape == (2, 3, 3)
    np.testing.assert_array_equal(record.keypoints[0], np.reshape(points, (3, 3)))
    assert [i.kind for i in issues].count(kinds.BAD_KEYPOINTS) == 1
    assert record_set.records[1].keypoints is None  # no objects (records.py cannot hold (0, K, 3))
    written = to_coco_dict(record_set)
    assert written["categories"][0]["skeleton"] == [[1, 2], [1, 3]]
    assert written["annotations"][0]["keypoints"] == points
    assert written["annotations"][0]["num_keypoints"] == 2


def test_default_image_dir_for_annotations_folder(tmp_path):
    _image(tmp_path / "train2017" / "a.jpg")
    json_path = tmp_path / "annotations" / "instances_train2017.json"
    images = [{"id": 1, "file_name": "a.jpg"}]
    assert default_image_dir(json_path, images) == tmp_path / "train2017"
    _image(tmp_path / "images" / "train2017" / "a.jpg")
    assert default_image_dir(json_path, images) == tmp_path / "images" / "train2017"


@pytest.mark.parametrize(
    ("path", "split"),
    [
        ("annotations/instances_train2017.json", "train"),
        ("annotations/person_keypoints_val2017.json", "val"),
        ("annotations/image_info_test-dev2017.json", "test"),
        ("valid/_annotations.coco.json", "val"),
        ("labels.json", "all"),
    ],
)
def test_split_name_from_file_name(path, split):
    assert coco_split_name(path) == split


def test_flip_index_swaps_left_and_right():
    assert flip_index(["left_hand", "head", "right_hand", "left_foot"]) == [2, 1, 0, 3]
