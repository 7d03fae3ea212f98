"""Applying an accepted review list: accepted rows edit the files, everything else is reported."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgevision.core.errors import ConfigError, DataError
from edgevision.core.records import RecordSet
from edgevision.data.convert import convert_dataset
from edgevision.data.doctor.apply_review import apply_review
from edgevision.data.doctor.changes import DROPPED, FIXED, NOT_FIXED
from edgevision.data.doctor.read_all import read_whole_dataset
from edgevision.data.doctor.review_csv import ReviewRow, write_review_rows
from edgevision.data.doctor.review_edits import ADDED
from edgevision.data.formats import relative_inside
from edgevision.ops.boxes import order_corners
from tests.data.doctor.test_check import hash_tree, make_clean_voc, stem


def records_of(data) -> RecordSet:
    return read_whole_dataset(data)[0]


def row(record_set, image, kind, obj=None, new_class="", new_box=None, accept=True, **changed):
    """A review row for object ``obj`` of image ``image``, as the finder would write it."""
    record = record_set.records[image]
    box = None if obj is None else tuple(float(v) for v in order_corners(record.boxes[obj]))
    name = "" if obj is None else record_set.class_names[record.labels[obj]]
    values = dict(
        file=relative_inside(record_set.root, record.image_path),
        object_index=obj,
        kind=kind,
        score=0.9,
        class_name=name,
        box=box,
        suggested_class=new_class,
        suggested_box=new_box,
        note="",
        accept=accept,
    )
    return ReviewRow(**(values | changed))


def other_class(record_set, image, obj) -> str:
    return next(
        n
        for n in record_set.class_names
        if n != record_set.class_names[record_set.records[image].labels[obj]]
    )


@pytest.fixture(scope="module")
def voc(tmp_path_factory) -> Path:
    return make_clean_voc(tmp_path_factory.mktemp("review") / "voc")


def voc_rows(records: RecordSet, csv_path: Path) -> Path:
    """Rows of every kind, accepted, rejected and stale (expected outcomes in the comments)."""
    first = records.records[11]
    rows = [
        row(records, 0, "wrong_class", 0, other_class(records, 0, 0)),  # fixed
        row(records, 1, "loose", 1, new_box=(10, 10, 30, 30)),  # fixed
        row(records, 3, "duplicate", 1),  # dropped
        row(records, 3, "unsupported", 2),  # dropped
        row(records, 3, "loose", 1, new_box=(5, 5, 20, 20)),  # not fixed: object removed
        row(records, 4, "missing", None, "star", (2, 2, 20, 20)),  # added
        row(records, 5, "wrong_class", 0, other_class(records, 5, 0), accept=False),  # rejected
        row(records, 7, "wrong_class", 0, other_class(records, 7, 0), box=(1, 1, 9, 9)),  # stale
        row(
            records, 8, "wrong_class", 0, other_class(records, 8, 0), class_name="nothing"
        ),  # stale
        row(records, 9, "unsupported", 0, object_index=5),  # not fixed: image 9 has 3 objects
        row(records, 10, "missing", None, "airplane", (2, 2, 20, 20)),  # unknown class
        row(records, 10, "missing", None, "ring", (2, 2, 20, 20), file="JPEGImages/gone.jpg"),
        row(
            records,
            11,
            "missing",
            None,
            records.class_names[first.labels[0]],
            tuple(first.boxes[0]),
        ),
        row(records, 12, "wrong_class", 0, other_class(records, 12, 0)),  # fixed
        row(records, 12, "wrong_class", 0, "circle"),  # not fixed: line 15 already relabels
    ]
    return write_review_rows(rows, csv_path)


def test_accepted_rows_are_applied_to_a_copy(voc, tmp_path):
    before = hash_tree(voc)
    records = records_of(voc)
    report = apply_review(
        voc, voc_rows(records, tmp_path / "label_review.csv"), out=tmp_path / "out"
    )
    assert hash_tree(voc) == before
    assert report.summary() == {ADDED: 1, FIXED: 3, DROPPED: 2, NOT_FIXED: 8}
    assert report.rows == 15 and report.accepted == 14
    after = records_of(report.data)
    names = records.class_names
    assert names[after.records[0].labels[0]] == other_class(records, 0, 0)
    assert np.allclose(after.records[1].boxes[1], (10, 10, 30, 30))
    assert np.array_equal(after.records[3].boxes, records.records[3].boxes[[0, 3, 4]])
    assert after.records[4].num_objects == records.records[4].num_objects + 1
    assert (
        np.allclose(after.records[4].boxes[-1], (2, 2, 20, 20))
        and names[after.records[4].labels[-1]] == "star"
    )
    for image in (2, 5, 6, 7, 8, 9, 10, 11):
        assert np.array_equal(after.records[image].labels, records.records[image].labels)
        assert np.array_equal(after.records[image].boxes, records.records[image].boxes)
    copied = hash_tree(report.data)
    changed = {name for name in before if before[name] != copied[name]}
    assert changed == {f"Annotations/{stem(i)}.xml" for i in (0, 1, 3, 4, 12)}
    assert {str(p.relative_to(report.data)) for p in report.written} == changed


def test_every_refusal_says_which_line_and_why(voc, tmp_path):
    records = records_of(voc)
    report = apply_review(
        voc, voc_rows(records, tmp_path / "label_review.csv"), out=tmp_path / "out"
    )
    refused = [c.before for c in report.changes if c.action == NOT_FIXED]
    refused.sort(key=lambda text: int(text.split(":")[1].split()[0]))  # by CSV line
    expected = [
        ":6 (JPEGImages/synth_000003.jpg): the object is removed by line 4",
        ":9 (JPEGImages/synth_000007.jpg): object 0 is now",
        ":10 (JPEGImages/synth_000008.jpg): object 0 is now",
        ":11 (JPEGImages/synth_000009.jpg): object 5 does not exist",
        ":12 (JPEGImages/synth_000010.jpg): class 'airplane' is not one of",
        ":13 (JPEGImages/gone.jpg): no such image in the dataset",
        ":14 (JPEGImages/synth_000011.jpg): already annotated",
        ":16 (JPEGImages/synth_000012.jpg): line 15 already edits this object",
    ]
    for text, start in zip(refused, expected, strict=True):
        assert text.startswith("label_review.csv" + start), text
    text = report.format_text()
    assert "15 rows, 14 accepted; 1 added, 3 fixed, 2 removed, 8 not applied" in text
    assert f"Annotations/{stem(0)}.xml: object 0: wrong_class fixed:" in text
    added = records.records[4].num_objects
    assert (
        f"Annotations/{stem(4)}.xml: object {added}: missing added: star xmin=3 ymin=3 xmax=20 ymax=20"
        in text
    )
    assert json.loads(json.dumps(report.to_json()))["summary"][ADDED] == 1


def test_in_place_backs_up_and_a_second_run_changes_nothing(voc, tmp_path):
    root = shutil.copytree(voc, tmp_path / "voc")
    csv_path = voc_rows(records_of(root), tmp_path / "label_review.csv")
    before = hash_tree(root)
    report = apply_review(root, csv_path, in_place=True)
    touched = {str(p.relative_to(root)) for p in report.written}
    after = hash_tree(root)
    assert len(touched) == 5 and len(report.backups) == 5
    for name in touched:
        assert after[name + ".bak"] == before[name] and after[name] != before[name]
    again = apply_review(root, csv_path, in_place=True)
    assert again.summary() == {ADDED: 0, FIXED: 0, DROPPED: 0, NOT_FIXED: 14}
    assert again.written == [] and hash_tree(root) == after


def test_coco_json_is_edited(voc, tmp_path):
    convert_dataset(voc, "coco", tmp_path / "coco", splits=["train"])
    json_path = tmp_path / "coco" / "annotations" / "instances_train.json"
    original = json.loads(json_path.read_text())
    records = records_of(json_path)
    rows = [
        row(records, 0, "wrong_class", 0, other_class(records, 0, 0)),
        row(records, 1, "loose", 0, new_box=(10, 10, 30, 40)),
        row(records, 3, "duplicate", 1),
        row(records, 4, "missing", None, "star", (2, 2, 20, 20)),
        row(records, 5, "unsupported", 0, accept=False),
    ]
    csv_path = write_review_rows(rows, tmp_path / "review.csv")
    report = apply_review(json_path, csv_path, out=tmp_path / "out")
    assert report.summary() == {ADDED: 1, FIXED: 2, DROPPED: 1, NOT_FIXED: 0}
    assert json.loads(json_path.read_text()) == original
    data = json.loads(report.data.read_text())
    category = {c["name"]: c["id"] for c in data["categories"]}
    by_image = {}
    for annotation in data["annotations"]:
        by_image.setdefault(annotation["image_id"], []).append(annotation)
    image_ids = [record.image_id for record in records.records]
    assert by_image[image_ids[0]][0]["category_id"] == category[other_class(records, 0, 0)]
    assert (
        by_image[image_ids[1]][0]["bbox"] == [10, 10, 20, 30]
        and by_image[image_ids[1]][0]["area"] == 600
    )
    assert len(data["annotations"]) == len(original["annotations"])  # one removed, one added
    added = by_image[image_ids[4]][-1]
    assert added["bbox"] == [2, 2, 18, 18] and added["category_id"] == category["star"]
    assert added["id"] == max(a["id"] for a in original["annotations"]) + 1
    after = records_of(report.data)
    assert after.records[3].num_objects == records.records[3].num_objects - 1


def test_yolo_labels_are_edited_and_a_missing_label_file_is_created(voc, tmp_path):
    yaml_path = convert_dataset(voc, "yolo", tmp_path / "yolo", splits=["train"]) / "data.yaml"
    (tmp_path / "yolo" / "labels" / "train" / f"{stem(2)}.txt").unlink()  # a negative image
    records = records_of(yaml_path)
    assert records.records[2].num_objects == 0
    rows = [
        row(records, 0, "wrong_class", 1, records.class_names[0]),
        row(records, 1, "loose", 0, new_box=(10, 10, 30, 40)),
        row(records, 2, "missing", None, "ring", (4, 6, 20, 30)),
        row(records, 3, "duplicate", 0),
    ]
    report = apply_review(
        yaml_path, write_review_rows(rows, tmp_path / "r.csv"), out=tmp_path / "out"
    )
    assert report.summary() == {ADDED: 1, FIXED: 2, DROPPED: 1, NOT_FIXED: 0}
    labels = tmp_path / "out" / "labels" / "train"
    assert labels.joinpath(f"{stem(0)}.txt").read_text().splitlines()[1].startswith("0 ")
    created = labels.joinpath(f"{stem(2)}.txt").read_text().split()
    width, height = records.records[2].width, records.records[2].height
    expected = [12 / width, 18 / height, 16 / width, 24 / height]
    assert created[0] == str(records.class_names.index("ring")) and np.allclose(
        [float(v) for v in created[1:]], expected, atol=1e-6
    )
    after = records_of(report.data)
    assert np.allclose(after.records[1].boxes[0], (10, 10, 30, 40), atol=1e-3)
    assert after.records[3].num_objects == records.records[3].num_objects - 1
    assert not (tmp_path / "yolo" / "labels" / "train" / f"{stem(2)}.txt").exists()


def test_bad_targets_and_a_malformed_csv_are_refused(voc, tmp_path):
    csv_path = write_review_rows([], tmp_path / "empty.csv")
    with pytest.raises(ConfigError, match="exactly one target"):
        apply_review(voc, csv_path)
    with pytest.raises(ConfigError, match="exactly one target"):
        apply_review(voc, csv_path, out=tmp_path / "x", in_place=True)
    with pytest.raises(ConfigError, match="overlaps"):
        apply_review(voc, csv_path, out=voc / "fixed")
    bad = tmp_path / "bad.csv"
    bad.write_text(csv_path.read_text() + "JPEGImages/a.jpg,0,loose,0.5,cat,1 1 9,,,,yes\n")
    with pytest.raises(DataError, match="bad.csv:2: column box"):
        apply_review(voc, bad, out=tmp_path / "y")
    empty = apply_review(voc, csv_path, out=tmp_path / "z")
    assert empty.changes == [] and empty.written == []


def test_the_same_object_is_added_once(voc, tmp_path):
    records = records_of(voc)
    rows = [row(records, 4, "missing", None, "star", (2, 2, 20, 20))] * 2
    report = apply_review(voc, write_review_rows(rows, tmp_path / "r.csv"), out=tmp_path / "out")
    assert report.summary() == {ADDED: 1, FIXED: 0, DROPPED: 0, NOT_FIXED: 1}
    (refused,) = [c for c in report.changes if c.action == NOT_FIXED]
    assert refused.before.endswith("line 2 already adds this object")


def test_a_class_missing_from_one_coco_file_is_not_added_there(voc, tmp_path):
    convert_dataset(voc, "coco", tmp_path / "coco", splits=["train", "val"])
    val_json = tmp_path / "coco" / "annotations" / "instances_val.json"
    data = json.loads(val_json.read_text())
    gone = data["categories"].pop()
    data["annotations"] = [a for a in data["annotations"] if a["category_id"] != gone["id"]]
    val_json.write_text(json.dumps(data))
    records = records_of(tmp_path / "coco")
    assert gone["name"] in records.class_names  # the train file still has it
    val_image = next(i for i, r in enumerate(records.records) if r.annotation_path == val_json)
    name = records.records[val_image].image_path.name  # as found on the "val" split alone
    rows = [row(records, val_image, "missing", None, gone["name"], (2, 2, 20, 20), file=name)]
    report = apply_review(
        tmp_path / "coco", write_review_rows(rows, tmp_path / "r.csv"), out=tmp_path / "out"
    )
    (refused,) = report.changes
    assert refused.action == NOT_FIXED and "add it to categories" in refused.before
    assert report.written == []
