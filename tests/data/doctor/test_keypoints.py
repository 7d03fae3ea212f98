"""The doctor's keypoint checks: each defect found in its file, on its object (YOLO line, COCO
annotation index), with a fix; the metadata defects at the data YAML or the COCO JSON."""

from __future__ import annotations

import numpy as np

from edgevision.core import issues as kinds
from edgevision.core.records import ImageRecord, RecordSet
from edgevision.data.doctor.check import check_dataset
from edgevision.data.doctor.keypoints import keypoint_issues
from tests.data.pose_cases import coco_annotation, coco_pose, yolo_pose

# 64 x 48 images. Box "0.5 0.5 0.5 0.5" is (16, 12, 48, 36); these points lie inside it.
BOX = "0.5 0.5 0.5 0.5"
CLEAN = "0.375 0.375 2 0.5 0.5 2 0.625 0.625 1 0 0 0"
YOLO_LINES = [
    f"0 {BOX} {CLEAN}",  # 1: clean
    f"0 {BOX} 0.1 0.1 2 0.2 0.2 2",  # 2: 2 keypoints, kpt_shape says 4: skipped by the reader
    "0 0.52 0.5 0.5 0.5 0.375 0.375 2 0.5 0.5 3 0.625 0.625 -1 0 0 0",  # 3: visibility 3, -1
    f"1 {BOX} 0.375 0.375 2 0.5 0.5 2 0.625 0.625 1 0.5 0.5 0",  # 4: v = 0 at (32, 24)
    "0 0.8 0.5 0.3 0.5 1.05 0.5 2 0.8 0.5 2 0.8 0.6 1 0 0 0",  # 5: x = 67.2 > 64, near its box
    "1 0.5 0.5 0.2 0.2 0.1 0.5 2 0.5 0.5 2 0.5 0.5 2 0 0 0",  # 6: 19 px left of a 13 px box
]
YOLO_EXPECTED = {
    (kinds.BAD_KEYPOINTS, 2),
    (kinds.KEYPOINT_VISIBILITY, 3),
    (kinds.KEYPOINT_UNLABELLED_XY, 4),
    (kinds.KEYPOINT_OUTSIDE, 5),
    (kinds.KEYPOINT_FAR_FROM_BOX, 6),
}


def test_yolo_keypoint_defects_point_at_their_lines(tmp_path):
    yaml_path = yolo_pose(tmp_path, {"a": "\n".join(YOLO_LINES) + "\n", "b": f"0 {BOX} {CLEAN}\n"})
    report = check_dataset(yaml_path)
    found = {(i.kind, i.line) for i in report.issues}
    assert found == YOLO_EXPECTED
    assert all(i.path.name == "a.txt" for i in report.issues)
    doctor = [i for i in report.issues if i.kind != kinds.BAD_KEYPOINTS]  # the reader's has a line
    assert all(i.object_index == i.line - 1 for i in doctor)
    by_kind = {i.kind: i for i in report.issues}
    visibility = by_kind[kinds.KEYPOINT_VISIBILITY]
    assert "keypoints 1 (left_eye), 2 (right_eye): visibility 3, -1 is not 0, 1 or 2" in str(
        visibility
    )
    assert "set v to 0 (not labelled), 1 (labelled, hidden) or 2" in visibility.hint
    assert "outside the 64x48 image at x, y = (67.2, 24)" in by_kind[kinds.KEYPOINT_OUTSIDE].reason
    assert "(6.4, 24)" in by_kind[kinds.KEYPOINT_FAR_FROM_BOX].reason
    assert by_kind[kinds.KEYPOINT_UNLABELLED_XY].severity == "warning"
    assert by_kind[kinds.KEYPOINT_FAR_FROM_BOX].severity == "warning"  # a heuristic
    assert "kpt_shape number of keypoints" in by_kind[kinds.BAD_KEYPOINTS].hint
    assert report.exit_code == 1


def test_yolo_metadata_defects_are_reported_at_the_yaml(tmp_path):
    config = {"flip_idx": [1, 0, 2, 2], "skeleton": [[0, 1], [3, 4]]}
    yaml_path = yolo_pose(tmp_path, {"a": f"0 {BOX} {CLEAN}\n"}, config)
    report = check_dataset(yaml_path)
    found = sorted((i.kind, i.path.name) for i in report.issues)
    assert found == [(kinds.BAD_FLIP_IDX, "data.yaml"), (kinds.BAD_SKELETON, "data.yaml")]
    flip = next(i for i in report.issues if i.kind == kinds.BAD_FLIP_IDX)
    assert "not a permutation of 0..3 (never names [3])" in flip.reason
    skeleton = next(i for i in report.issues if i.kind == kinds.BAD_SKELETON)
    assert "[3, 4] names a keypoint that does not exist (keypoints are numbered 0..3)" in str(
        skeleton
    )


def _points(*values) -> list:
    return list(values) + [0, 0, 0] * (4 - len(values) // 3)


def test_coco_keypoint_defects_point_at_annotation_indices(tmp_path):
    inside = _points(20, 20, 2, 30, 20, 2)
    annotations = [
        coco_annotation(1, 1, [10, 10, 30, 20], inside),  # 0: clean
        coco_annotation(2, 2, [10, 10, 30, 20], inside, num_keypoints=4),  # 1: says 4, has 2
        coco_annotation(3, 1, [12, 8, 30, 20], [1, 2, 3]),  # 2: malformed: kept, all v = 0
        coco_annotation(4, 2, [0, 0, 30, 20], _points(-5, 10, 1)),  # 3: outside the image
        coco_annotation(5, 1, [14, 12, 30, 20], _points(20, 20, 5)),  # 4: visibility 5
    ]
    json_path = coco_pose(tmp_path, annotations)
    report = check_dataset(tmp_path)
    found = {(i.kind, i.object_index) for i in report.issues}
    assert found == {
        (kinds.NUM_KEYPOINTS_MISMATCH, 1),
        (kinds.BAD_KEYPOINTS, 2),
        (kinds.KEYPOINT_OUTSIDE, 3),
        # Index 4, not 2: the malformed annotation before it is kept, so positions stay true.
        (kinds.KEYPOINT_VISIBILITY, 4),
    }
    assert all(i.path == json_path for i in report.issues)
    mismatch = next(i for i in report.issues if i.kind == kinds.NUM_KEYPOINTS_MISMATCH)
    assert "num_keypoints is 4 but 2 points are labelled (v > 0)" in mismatch.reason
    assert "set num_keypoints to 2" in mismatch.hint


def test_coco_keypoint_count_differing_between_files(tmp_path):
    coco_pose(tmp_path, [coco_annotation(1, 1, [10, 10, 30, 20], _points(20, 20, 2))])
    three = coco_annotation(1, 1, [10, 10, 30, 20], [20, 20, 2, 0, 0, 0, 0, 0, 0])
    val = coco_pose(tmp_path, [three], split="val", names=["a", "b", "c"], skeleton=[])
    report = check_dataset(tmp_path)
    [issue] = [i for i in report.issues if i.kind != kinds.NO_OBJECTS]
    assert (issue.kind, issue.path) == (kinds.KEYPOINT_COUNT, val)
    assert "objects here have 3 keypoints; the dataset has 4 (its keypoint names)" in issue.reason


def test_coco_metadata_defects_are_reported_at_the_json(tmp_path):
    annotations = [coco_annotation(1, 1, [10, 10, 30, 20], _points(20, 20, 2))]
    extra = {"flip_idx": [1, 2, 3, 0]}
    json_path = coco_pose(tmp_path, annotations, skeleton=[[1, 2], [2, 5]], extra=extra)
    report = check_dataset(tmp_path)
    found = sorted((i.kind, i.path) for i in report.issues if i.kind != kinds.NO_OBJECTS)
    assert found == [(kinds.BAD_FLIP_IDX, json_path), (kinds.BAD_SKELETON, json_path)]
    flip = next(i for i in report.issues if i.kind == kinds.BAD_FLIP_IDX)
    assert "not its own inverse: 0 -> 1 but 1 -> 2" in flip.reason


def test_keypoint_issues_on_records_in_memory(tmp_path):
    points = np.array([[[5, 5, 2], [0, 0, 0]], [[50, 5, 2], [40, 10, 7]]], np.float32)
    record = ImageRecord(tmp_path / "x.jpg", 40, 30, [[0, 0, 10, 10], [30, 0, 60, 20]], [0, 0])
    record.keypoints = points
    record_set = RecordSet([record], ["a"], tmp_path, "voc")
    found = {(i.kind, i.object_index) for i in keypoint_issues(record_set)}
    assert found == {(kinds.KEYPOINT_OUTSIDE, 1), (kinds.KEYPOINT_VISIBILITY, 1)}
    no_points = RecordSet(
        [ImageRecord(tmp_path / "x.jpg", 40, 30, [[0, 0, 5, 5]], [0])], ["a"], tmp_path, "voc"
    )
    assert keypoint_issues(no_points) == []
