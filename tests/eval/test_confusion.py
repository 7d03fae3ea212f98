"""Confusion matrix: rows predicted, columns true, background last."""

from __future__ import annotations

import numpy as np
import pytest

from edgevision.core.errors import ConfigError
from edgevision.eval.confusion import confusion_matrix, greedy_match
from tests.eval.cases import make_record_set, random_case, record


def test_hand_example(tmp_path):
    objects = [[0, 0, 10, 10], [20, 20, 40, 40], [50, 50, 60, 60], [70, 70, 90, 90]]
    records = [record(tmp_path, "a.jpg", objects, [0, 1, 1, 0], difficult=[0, 0, 0, 1])]
    record_set = make_record_set(records, tmp_path, names=["car", "truck"])
    detections = [
        {
            "boxes": [
                [0, 0, 10, 10],  # car found as car
                [20, 20, 40, 40],  # truck found as car (class confusion)
                [100, 100, 110, 110],  # truck where nothing is (background FP)
                [50, 50, 60, 60],  # the second truck, but below conf: it counts as missed
                [1, 0, 10, 10],  # second car on the first car (duplicate: background FP)
                [70, 70, 90, 90],  # on the difficult car: not counted at all
            ],
            "scores": [0.9, 0.8, 0.5, 0.1, 0.7, 0.9],
            "classes": [0, 0, 1, 1, 0, 0],
        }
    ]
    matrix = confusion_matrix(record_set, detections, num_classes=2, conf=0.25, iou=0.5)
    expected = np.array(
        [
            # true: car, truck, background
            [1, 1, 1],  # predicted car
            [0, 0, 1],  # predicted truck
            [0, 1, 0],  # predicted background (missed)
        ]
    )
    np.testing.assert_array_equal(matrix, expected)
    assert matrix.dtype == np.int64


def test_matching_prefers_highest_iou(tmp_path):
    """Detection 0 overlaps both objects; greedy by IoU gives it object 1, and detection 1 object 0."""
    ious = np.array([[0.6, 0.9], [0.7, 0.0]])
    assert greedy_match(ious, 0.5) == [(0, 1), (1, 0)]
    assert greedy_match(ious, 0.8) == [(0, 1)]
    assert greedy_match(np.zeros((0, 3)), 0.5) == []


def test_counts_add_up_on_a_random_case(tmp_path):
    """Every kept object lands in exactly one column, every kept detection in at most one row."""
    record_set, detections = random_case(seed=11, root=tmp_path, crowd_rate=0.0)
    matrix = confusion_matrix(record_set, detections, num_classes=3, conf=0.3)
    objects = sum(int((~r.difficult).sum()) for r in record_set.records)
    assert matrix[:, :3].sum() == objects
    kept = sum(int((d["scores"] >= 0.3).sum()) for d in detections)
    assert matrix[:3, :].sum() <= kept
    assert matrix[3, 3] == 0
    assert np.trace(matrix[:3, :3]) > matrix[:3, :3].sum() / 2  # mostly right classes


def test_empty_image_and_bad_arguments(tmp_path):
    record_set = make_record_set([record(tmp_path, "a.jpg", [], [])], tmp_path)
    nothing = [{"boxes": np.zeros((0, 4)), "scores": [], "classes": []}]
    assert confusion_matrix(record_set, nothing, num_classes=3).sum() == 0
    with pytest.raises(ConfigError, match="iou"):
        confusion_matrix(record_set, nothing, num_classes=3, iou=1.5)
    with pytest.raises(ConfigError, match="outside"):
        bad = [{"boxes": [[0, 0, 1, 1]], "scores": [1.0], "classes": [5]}]
        confusion_matrix(record_set, bad, num_classes=3)
