"""Autoanchor: best possible recall by hand, re-clustering, training sizes and anchor files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgevision.core.errors import DataError
from edgevision.core.records import ImageRecord, RecordSet
from edgevision.data.anchors import format_anchors
from edgevision.data.autoanchor import (
    anchors_for_training,
    best_possible_recall,
    check_anchors,
    load_anchors_file,
    sizes_for_training,
    write_anchors_file,
)


def _sizes_around(centres, per_centre: int = 100, seed: int = 0) -> np.ndarray:
    """Sizes scattered +-10 % (log-normal) around each centre."""
    rng = np.random.default_rng(seed)
    centres = np.asarray(centres, dtype=np.float64)
    noise = np.exp(rng.normal(0, 0.1, (len(centres), per_centre, 2)))
    return (centres[:, None, :] * noise).reshape(-1, 2)


def test_best_possible_recall_by_hand():
    wh = np.array([[10, 10], [40, 10], [100, 5]])
    # [10, 10] fits the first anchor; [40, 10] is exactly 4x its width (not below 4) but 2x the
    # second's sides; [100, 5] is 5x and 4x away from them: 2 of 3 boxes.
    assert best_possible_recall(wh, np.array([[10, 10], [20, 20]])) == pytest.approx(2 / 3)
    assert best_possible_recall(wh, np.array([[[10, 10]], [[20, 20]]])) == pytest.approx(2 / 3)
    assert best_possible_recall(wh, np.array([[10, 10], [20, 20]]), anchor_t=5.1) == 1.0


def test_good_anchors_are_kept():
    wh = _sizes_around([[10, 12], [40, 30], [120, 160]])
    anchors = np.array([[[10, 12]], [[40, 30]], [[120, 160]]], dtype=np.float64)
    kept, report = check_anchors(wh, anchors)
    assert kept is anchors
    assert report == "autoanchor: best possible recall 1.000 with the default anchors, anchors kept"


def test_a_bad_anchor_set_is_re_clustered():
    # Long thin boxes, 200 x 10 and 20 x 400: square anchors reach neither.
    wh = _sizes_around([[200, 10], [20, 400]])
    anchors = np.array([[[20, 20]], [[60, 60]]], dtype=np.float64)
    new, report = check_anchors(wh, anchors, source="anchors.txt")
    assert best_possible_recall(wh, anchors) == 0.0
    assert new.shape == anchors.shape
    assert best_possible_recall(wh, new) == 1.0
    assert report.startswith(
        "autoanchor: best possible recall 0.000 < 0.98 with anchors.txt; re-clustered: 1.000 "
        "(anchors "
    )
    # Smallest area first, as the head's levels want them.
    assert new[0, 0, 0] * new[0, 0, 1] < new[1, 0, 0] * new[1, 0, 1]


def test_a_re_clustering_that_is_not_better_keeps_the_anchors():
    wh = _sizes_around([[10, 12], [40, 30]])
    anchors = np.array([[10, 12], [40, 30]], dtype=np.float64)
    kept, report = check_anchors(wh, anchors, threshold=1.01)  # 1.0 is below, nothing beats it
    assert kept is anchors
    assert report.endswith("re-clustered: 1.000, no better, anchors kept")


def test_too_few_sizes_to_cluster_keep_the_anchors():
    wh = np.array([[200.0, 10.0]] * 5)
    anchors = np.array([[20.0, 20.0], [60.0, 60.0]])
    kept, report = check_anchors(wh, anchors)
    assert kept is anchors
    assert "re-clustered: impossible (only 1 distinct box sizes" in report
    assert report.endswith("anchors kept")
    _, report = check_anchors(np.zeros((0, 2)), anchors)
    assert (
        report == "autoanchor: no labelled boxes to check the default anchors against, anchors kept"
    )


def test_sizes_for_training_are_letterbox_scaled():
    zero_width = [5, 5, 5, 30]
    records = [
        ImageRecord("a.jpg", 200, 100, boxes=[[0, 0, 20, 10], zero_width], labels=[0, 0]),
        ImageRecord("b.jpg", 50, 100, boxes=[[10, 10, 20, 40]], labels=[0]),
        ImageRecord("c.jpg", 0, 0),  # no boxes, no size needed
    ]
    want = np.array([[40.0, 20.0], [40.0, 120.0]])  # x 400/200, x 400/100
    np.testing.assert_allclose(sizes_for_training(records, 400), want)
    record_set = RecordSet(records, ["a"], Path("."), "yolo")
    np.testing.assert_allclose(sizes_for_training(record_set, 400), want)


def test_anchor_files_round_trip(tmp_path):
    anchors = np.array([[81, 82], [10, 14], [344, 319], [23, 27], [135, 169], [37, 58]], float)
    path = write_anchors_file(tmp_path / "anchors.txt", anchors, note="imgsz 416")
    text = path.read_text()
    assert text.startswith("# edgevision anchors") and "imgsz 416" in text.splitlines()[0]
    loaded = load_anchors_file(path, expected=6)
    np.testing.assert_array_equal(loaded, anchors[np.argsort(anchors.prod(axis=1))])
    # The first line `edgevision data anchors` prints, pasted into a file, and spaces or lines.
    (tmp_path / "pasted.txt").write_text(format_anchors(anchors) + "\n")
    np.testing.assert_array_equal(load_anchors_file(tmp_path / "pasted.txt"), anchors)
    (tmp_path / "lines.txt").write_text("10 14  # small\n\n23.5,27\n")
    np.testing.assert_array_equal(load_anchors_file(tmp_path / "lines.txt"), [[10, 14], [23.5, 27]])


@pytest.mark.parametrize(
    "text, message",
    [
        ("10,14,  23,27\nmean IoU 0.71\n", r"anchors.txt:2: 'mean' is not a number"),
        ("10,14,  23\n", r"anchors.txt: 3 numbers, not w,h pairs"),
        ("# nothing\n\n", r"anchors.txt: no anchors in the file"),
        ("10,14,  -23,27\n", r"anchors.txt:1: anchor size -23 is not a positive number"),
        ("10,14,  nan,27\n", r"anchors.txt:1: anchor size nan is not a positive number"),
    ],
)
def test_malformed_anchor_files_name_the_file_and_line(tmp_path, text, message):
    path = tmp_path / "anchors.txt"
    path.write_text(text)
    with pytest.raises(DataError, match=message) as info:
        load_anchors_file(path)
    assert "w,h pairs in input pixels" in str(info.value)  # says how to fix it


def test_anchor_file_errors_for_a_missing_file_and_a_wrong_count(tmp_path):
    with pytest.raises(DataError, match=r"missing.txt: cannot read the anchors file"):
        load_anchors_file(tmp_path / "missing.txt")
    path = tmp_path / "anchors.txt"
    path.write_text("10,14,  23,27\n")
    with pytest.raises(DataError, match=r"anchors.txt: 2 anchors, but the model needs 6; .* -k 6"):
        load_anchors_file(path, expected=6)


def test_anchors_for_training_follows_the_option(tmp_path):
    wh = _sizes_around([[200, 10], [20, 400]])
    current = np.array([[[20, 20]], [[60, 60]]], dtype=np.float64)
    kept, report = anchors_for_training("default", current, wh)
    assert kept is current
    assert report == (
        "anchors: the default anchors, best possible recall 0.000 (below 0.98: try --anchors auto)"
    )
    auto, report = anchors_for_training("auto", current, wh)
    assert best_possible_recall(wh, auto) == 1.0 and "re-clustered: 1.000" in report
    path = tmp_path / "anchors.txt"
    path.write_text("20,400,  200,10\n")  # any order: sorted by area, split by level
    from_file, report = anchors_for_training(str(path), current, wh)
    np.testing.assert_array_equal(from_file, [[[200, 10]], [[20, 400]]])
    assert report == f"anchors: the anchors of {path}, best possible recall 1.000"
    path.write_text("20,400\n")
    with pytest.raises(DataError, match="1 anchors, but the model needs 2"):
        anchors_for_training(str(path), current, wh)
