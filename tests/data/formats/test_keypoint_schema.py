"""Keypoint metadata: parsed from a data YAML or a COCO JSON, judged the same way, bad parts left
out with an Issue naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgevision.core import issues as kinds
from edgevision.data.formats.coco import read_coco
from edgevision.data.formats.keypoint_schema import (
    flip_idx_problem,
    judge_schema,
    sigmas_problem,
    skeleton_edges,
    yaml_keypoint_schema,
)
from edgevision.data.formats.yolo import read_yolo
from tests.data.pose_cases import (
    FLIP,
    NAMES,
    SIGMAS,
    SKELETON,
    coco_annotation,
    coco_pose,
    yolo_pose,
)

KEYS = ["kpt_names", "skeleton", "flip_idx", "kpt_oks_sigmas"]
KNOWN_KINDS = {v for k, v in vars(kinds).items() if k.isupper() and isinstance(v, str)}
POINTS = "0.25 0.5 2 0.5 0.25 1 0 0 0 0.75 0.75 2"  # 4 keypoints, normalised, with v


@pytest.mark.parametrize(
    "flip_idx, expected",
    [
        ([0, 2, 1, 3], None),
        ([1, 0], "has 2 entries for 4 keypoints"),
        ([0, 2, 2, 3], "is not a permutation of 0..3 (never names [1])"),
        ([0, 1, 2, 7], "is not a permutation of 0..3 (never names [3])"),
        ([1, 2, 3, 0], "is not its own inverse: 0 -> 1 but 1 -> 2"),
        ("0 2 1 3", "is not a list of whole numbers"),
        ([0, 2.0, 1, 3], "is not a list of whole numbers"),
    ],
)
def test_flip_idx_must_be_a_self_inverse_permutation(flip_idx, expected):
    problem = flip_idx_problem(flip_idx, 4)
    assert problem is None if expected is None else expected in problem


def test_sigmas_and_skeleton_problems():
    assert sigmas_problem([0.1, 0.2], 2) is None
    assert "3 sigmas for 2 keypoints" in sigmas_problem([0.1, 0.2, 0.3], 2)
    assert "positive finite" in sigmas_problem([0.1, 0.0], 2)
    assert "positive finite" in sigmas_problem([0.1, float("nan")], 2)
    assert "positive finite" in sigmas_problem([0.1, 10**400], 2)  # no OverflowError
    assert "not a list of numbers" in sigmas_problem(["a", 0.1], 2)
    edges, problems = skeleton_edges([[1, 2], [2, 5], [1], "x"], 4, base=1)
    assert edges == [(0, 1)]
    assert (
        "[2, 5] names a keypoint that does not exist (keypoints are numbered 1..4)" in problems[0]
    )
    assert len(problems) == 3


def test_judge_schema_keeps_the_good_parts_and_reports_the_rest(tmp_path):
    raw = {"names": NAMES[:3], "skeleton": [[0, 1], [0, 9]], "flip_idx": [1, 2, 3, 0]}
    schema, issues = judge_schema(raw | {"sigmas": [0.1, -1, 0.1, 0.1]}, 4, tmp_path / "d.yaml")
    assert schema.names is None and schema.flip_idx is None and schema.sigmas is None
    assert schema.skeleton == [(0, 1)]
    found = sorted(issue.kind for issue in issues)
    expected = [kinds.BAD_FLIP_IDX, kinds.BAD_KPT_SIGMAS, kinds.BAD_SKELETON, kinds.KEYPOINT_COUNT]
    assert found == sorted(expected)
    assert all(
        issue.path == tmp_path / "d.yaml" and "; left out" in issue.reason for issue in issues
    )
    flip = next(issue for issue in issues if issue.kind == kinds.BAD_FLIP_IDX)
    assert flip.reason.endswith("left out, so training does not flip images horizontally")


@pytest.mark.parametrize(
    "value",
    [NAMES, {0: NAMES}, {0: NAMES, 1: NAMES}, [NAMES, NAMES], {1: NAMES, 0: NAMES}],
)
def test_kpt_names_in_every_ultralytics_form(tmp_path, value):
    schema, issues = yaml_keypoint_schema({"kpt_names": value}, tmp_path / "d.yaml", 4)
    assert schema.names == NAMES and issues == []


def test_kpt_names_that_differ_per_class_keep_the_first(tmp_path):
    other = ["a", "b", "c", "d"]
    schema, issues = yaml_keypoint_schema({"kpt_names": {1: other, 0: NAMES}}, tmp_path / "y", 4)
    assert schema.names == NAMES
    assert [issue.kind for issue in issues] == [kinds.BAD_KPT_NAMES]


def test_yolo_reads_every_keypoint_key(tmp_path):
    yaml_path = yolo_pose(tmp_path, {"a": f"1 0.5 0.5 0.5 0.5 {POINTS}\n"})
    record_set, issues = read_yolo(yaml_path)
    assert issues == []
    assert record_set.kpt_names == NAMES and record_set.flip_idx == FLIP
    assert record_set.skeleton == SKELETON and record_set.kpt_sigmas == SIGMAS
    expected = [[16, 24, 2], [32, 12, 1], [0, 0, 0], [48, 36, 2]]
    np.testing.assert_allclose(record_set.records[0].keypoints, [expected])


def test_yolo_two_column_points_are_visible_unless_at_the_origin(tmp_path):
    labels = {"a": "0 0.5 0.5 0.5 0.5 0.25 0.5 0 0 0 1 1 1\n"}
    record_set, issues = read_yolo(yolo_pose(tmp_path, labels, {"kpt_shape": [4, 2]}))
    expected = [[16, 24, 2], [0, 0, 0], [0, 48, 2], [64, 48, 2]]
    np.testing.assert_array_equal(record_set.records[0].keypoints[0], expected)
    assert issues == []


def test_yolo_line_with_another_keypoint_count_is_skipped_with_its_line(tmp_path):
    good = f"1 0.5 0.5 0.5 0.5 {POINTS}"
    labels = {"a": f"{good}\n0 0.5 0.5 0.5 0.5 0.1 0.1 2 0.2 0.2 2\n{good}\n"}
    record_set, issues = read_yolo(yolo_pose(tmp_path, labels))
    assert record_set.records[0].num_objects == 2
    [issue] = issues
    assert (issue.kind, issue.line, issue.path.name) == (kinds.BAD_KEYPOINTS, 2, "a.txt")
    assert "2 keypoints, but kpt_shape says 4" in issue.reason


def test_yolo_bad_metadata_is_reported_at_the_yaml_and_left_out(tmp_path):
    config = {"flip_idx": [1, 2, 3, 0], "skeleton": [[0, 4]], "kpt_names": ["a", "b"]}
    config["kpt_oks_sigmas"] = [0.1] * 3
    yaml_path = yolo_pose(tmp_path, {"a": f"1 0.5 0.5 0.5 0.5 {POINTS}\n"}, config)
    record_set, issues = read_yolo(yaml_path)
    assert {issue.kind for issue in issues} == {
        kinds.BAD_FLIP_IDX,
        kinds.BAD_SKELETON,
        kinds.KEYPOINT_COUNT,
        kinds.BAD_KPT_SIGMAS,
    }
    assert {issue.path for issue in issues} == {yaml_path}
    assert record_set.flip_idx is None and record_set.kpt_names is None
    assert record_set.kpt_sigmas is None and record_set.skeleton == []


def test_yolo_without_kpt_shape_has_no_keypoint_metadata(tmp_path):
    yaml_path = yolo_pose(tmp_path, {"a": "1 0.5 0.5 0.5 0.5\n"}, {"kpt_shape": None})
    record_set, issues = read_yolo(yaml_path)
    assert record_set.flip_idx is None and record_set.kpt_names is None and issues == []


def _points(*values) -> list:
    return list(values) + [0, 0, 0] * (4 - len(values) // 3)


def test_coco_reads_flip_idx_sigmas_and_num_keypoints(tmp_path):
    annotations = [
        coco_annotation(1, 1, [5, 5, 20, 20], _points(10, 11, 2, 12, 9, 1)),
        coco_annotation(2, 1, [5, 5, 20, 20], _points(10, 11, 2), num_keypoints=3),
    ]
    extra = {"flip_idx": [0, 2, 1, 3], "kpt_oks_sigmas": SIGMAS}
    record_set, issues = read_coco(coco_pose(tmp_path, annotations, extra=extra))
    assert [i.kind for i in issues] == [kinds.NO_OBJECTS]
    assert record_set.flip_idx == FLIP and record_set.kpt_sigmas == SIGMAS
    assert record_set.skeleton == SKELETON and record_set.kpt_names == NAMES
    assert record_set.records[0].extra["num_keypoints"] == [2, 3]  # as written, for the doctor


def test_coco_flip_idx_comes_from_names_without_the_extra(tmp_path):
    annotations = [coco_annotation(1, 1, [5, 5, 20, 20], _points(10, 11, 2))]
    record_set, issues = read_coco(coco_pose(tmp_path, annotations))
    assert record_set.flip_idx == [0, 2, 1, 3] and record_set.kpt_sigmas is None


def test_coco_bad_skeleton_and_extra_are_issues_not_errors(tmp_path):
    annotations = [coco_annotation(1, 1, [5, 5, 20, 20], _points(10, 11, 2))]
    extra = {"flip_idx": [0, 1, 1, 3], "kpt_oks_sigmas": [0.1]}
    json_path = coco_pose(tmp_path, annotations, skeleton=[[1, 2], [0, 3], [4, 5]], extra=extra)
    record_set, issues = read_coco(json_path)
    problems = [i for i in issues if i.kind != kinds.NO_OBJECTS]
    assert sorted(i.kind for i in problems) == sorted(
        [kinds.BAD_SKELETON, kinds.BAD_SKELETON, kinds.BAD_FLIP_IDX, kinds.BAD_KPT_SIGMAS]
    )
    assert all(i.path == json_path for i in problems)
    assert record_set.skeleton == [(0, 1)] and record_set.flip_idx is None
    json_path = coco_pose(tmp_path / "x", annotations, extra=[1, 2])  # type: ignore[arg-type]
    _, issues = read_coco(json_path)
    assert any('"edgevision" is not an object' in i.reason for i in issues)


YAML_VALUE = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-3, 6),
        st.integers(),
        st.floats(),
        st.text(max_size=5),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.one_of(st.integers(-1, 3), st.text(max_size=3)), inner, max_size=3),
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.dictionaries(st.sampled_from(KEYS), YAML_VALUE, max_size=4), st.integers(1, 5))
def test_any_yaml_value_gives_a_schema_and_issues_never_an_exception(config, num_keypoints):
    schema, issues = yaml_keypoint_schema(config, Path("data.yaml"), num_keypoints)
    assert all(issue.kind in KNOWN_KINDS and issue.path == Path("data.yaml") for issue in issues)
    if schema.flip_idx is not None:
        assert flip_idx_problem(schema.flip_idx, num_keypoints) is None
    if schema.sigmas is not None:
        assert sigmas_problem(schema.sigmas, num_keypoints) is None
    assert schema.names is None or len(schema.names) == num_keypoints
    assert all(0 <= k < num_keypoints for edge in schema.skeleton or [] for k in edge)
