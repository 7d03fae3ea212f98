"""Noise injection: the truth list describes exactly what changed, by seed; and the finder's score."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from edgevision.analysis.noise_injection import (
    DUPLICATE_IOU,
    LOOSE_IOU,
    inject_label_noise,
    score_finder,
)
from edgevision.analysis.review_item import ReviewItem
from edgevision.core.errors import ConfigError
from edgevision.core.records import ImageRecord, RecordSet
from edgevision.data.formats import load_dataset
from edgevision.ops.boxes import box_iou_numpy
from tests.analysis.label_cases import synthetic_voc


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> RecordSet:
    voc = synthetic_voc(tmp_path_factory.mktemp("noise") / "voc", n_train=60)
    record_set, _ = load_dataset(voc, "train")
    return record_set


def iou(a, b) -> float:
    return float(box_iou_numpy(np.asarray([a], float), np.asarray([b], float))[0, 0])


def test_the_input_is_not_modified(clean):
    before = copy.deepcopy(clean)
    inject_label_noise(clean, 0.1, 0.1, 0.1, 0.1, seed=3)
    for one, two in zip(before.records, clean.records, strict=True):
        assert np.array_equal(one.boxes, two.boxes) and np.array_equal(one.labels, two.labels)


def test_truth_points_at_each_change_in_the_noisy_records(clean):
    noisy, truth = inject_label_noise(clean, 0.1, 0.1, 0.1, 0.05, seed=1)
    names = clean.class_names
    counts = {
        kind: sum(t["kind"] == kind for t in truth)
        for kind in ("missing", "wrong_class", "loose", "duplicate")
    }
    total = clean.num_objects
    assert counts["missing"] == round(0.1 * total) and counts["wrong_class"] == round(0.1 * total)
    assert counts["duplicate"] == round(0.05 * total)
    assert round(0.1 * total) - 2 <= counts["loose"] <= round(0.1 * total)  # a few may not fit
    assert noisy.num_objects == total - counts["missing"] + counts["duplicate"]
    for entry in truth:
        record = noisy.records[entry["image_index"]]
        if entry["kind"] == "missing":
            assert entry["object_index"] is None
            same = record.labels == names.index(entry["class"])
            assert not any(iou(entry["box"], box) > 0.99 for box in record.boxes[same])
            continue
        obj = entry["object_index"]
        assert np.allclose(record.boxes[obj], entry["box"], atol=1e-4)
        assert names[record.labels[obj]] == entry["class"]
        if entry["kind"] == "wrong_class":
            assert entry["true_class"] != entry["class"]
        elif entry["kind"] == "loose":
            assert LOOSE_IOU[0] <= iou(entry["box"], entry["true_box"]) <= LOOSE_IOU[1]
            assert (record.boxes[obj, 2:] <= (record.width, record.height)).all()
        else:
            others = [iou(entry["box"], box) for k, box in enumerate(record.boxes) if k != obj]
            copies = sum(
                t["kind"] == "duplicate" and t["image_index"] == entry["image_index"] for t in truth
            )
            assert (
                max(others) >= DUPLICATE_IOU - 1e-4 and obj >= record.num_objects - copies
            )  # appended


def test_the_same_seed_gives_the_same_noise(clean):
    one = inject_label_noise(clean, seed=5)[1]
    assert one == inject_label_noise(clean, seed=5)[1]
    assert one != inject_label_noise(clean, seed=6)[1]


def test_difficult_and_crowd_objects_are_never_changed(tmp_path):
    boxes = [[10, 10, 50, 50], [60, 60, 90, 90]]
    record = ImageRecord(
        tmp_path / "a.jpg", 100, 100, boxes, [0, 1], difficult=[True, False], iscrowd=[False, True]
    )
    record_set = RecordSet([record], ["a", "b"], tmp_path, "voc")
    noisy, truth = inject_label_noise(record_set, 0.25, 0.25, 0.25, 0.25)
    assert truth == [] and np.array_equal(noisy.records[0].boxes, record.boxes)


def test_bad_fractions_are_refused(clean, tmp_path):
    with pytest.raises(ConfigError, match="sum to at most 1"):
        inject_label_noise(clean, 0.5, 0.5, 0.5)
    with pytest.raises(ConfigError, match="sum to at most 1"):
        inject_label_noise(clean, remove=-0.1)
    single = RecordSet(
        [ImageRecord(tmp_path / "a.jpg", 9, 9, [[1, 1, 5, 5]], [0])], ["a"], tmp_path, "voc"
    )
    with pytest.raises(ConfigError, match="at least two classes"):
        inject_label_noise(single)
    assert inject_label_noise(single, relabel=0.0)[0].num_objects == 1


def item(image, kind, box=None, suggested=None, score=0.9) -> ReviewItem:
    return ReviewItem("a.jpg", image, 0, kind, score, "cat", box, "", suggested, "")


def test_score_finder_counts_each_truth_entry_once():
    truth = [
        {
            "image_index": 0,
            "object_index": None,
            "kind": "missing",
            "box": (0, 0, 10, 10),
            "class": "cat",
        },
        {
            "image_index": 0,
            "object_index": 1,
            "kind": "loose",
            "box": (20, 20, 30, 30),
            "class": "cat",
            "true_box": (22, 20, 32, 30),
        },
        {
            "image_index": 1,
            "object_index": 0,
            "kind": "wrong_class",
            "box": (0, 0, 10, 10),
            "class": "dog",
        },
    ]
    items = [
        item(0, "missing", suggested=(0, 0, 10, 11)),  # hit
        item(0, "missing", suggested=(0, 0, 10, 10)),  # the same entry again: not a hit
        item(0, "loose", box=(50, 50, 60, 60), suggested=(22, 20, 32, 30)),  # hit by the true box
        item(0, "wrong_class", box=(0, 0, 10, 10)),  # wrong image
        item(1, "unsupported", box=(0, 0, 10, 10)),  # never injected
        item(1, "wrong_class", box=(0, 0, 10, 10)),  # hit, but beyond top=5
    ]
    scores = score_finder(items, truth, top=5)
    assert scores["missing"] == {
        "flagged": 2,
        "hits": 1,
        "injected": 1,
        "precision": 0.5,
        "recall": 1.0,
    }
    assert scores["loose"]["precision"] == 1.0 and scores["loose"]["recall"] == 1.0
    assert scores["wrong_class"] == {
        "flagged": 1,
        "hits": 0,
        "injected": 1,
        "precision": 0.0,
        "recall": 0.0,
    }
    assert scores["unsupported"]["recall"] is None and scores["duplicate"]["precision"] is None
    assert scores["all"]["hits"] == 2 and scores["all"]["flagged"] == 5
    assert score_finder(items, truth, top=6)["wrong_class"]["hits"] == 1
