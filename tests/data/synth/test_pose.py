"""The pose demo set: a COCO keypoints tree that reads back to the drawn figures, mirror-consistent
layouts for any K, the promised variety (small figures, hidden and cut-off points), by seed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgevision.core import issues as kinds
from edgevision.core.errors import ConfigError, DataError
from edgevision.data.doctor.check import check_dataset
from edgevision.data.formats import list_splits, load_dataset
from edgevision.data.formats.keypoint_schema import flip_idx_problem, flip_index
from edgevision.data.synth import TASKS, synthesize
from edgevision.data.synth.figures import figure_layout
from edgevision.data.synth.pose import (
    DEMO_FIGURES,
    MAX_KEYPOINTS,
    SIGMA,
    synthesize_pose,
    synthesize_pose_records,
)


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_writes_coco_keypoints_that_read_back_to_the_drawn_records(tmp_path):
    root = synthesize_pose(tmp_path / "pose", n_train=8, n_val=3, num_keypoints=7, seed=2)
    assert list_splits(root) == ["train", "val"]
    assert len(list((root / "images" / "train").glob("pose_*.jpg"))) == 8
    drawn = synthesize_pose_records(tmp_path / "again", 8, 3, num_keypoints=7, seed=2)
    for split in ("train", "val"):
        read, issues = load_dataset(root, split)
        assert [i for i in issues if i.kind != kinds.NO_OBJECTS] == []
        assert read.class_names == ["figure"] and read.kpt_names == list(figure_layout(7).names)
        assert read.skeleton == list(figure_layout(7).skeleton)
        assert read.flip_idx == [0, 2, 1, 4, 3, 6, 5] and read.kpt_sigmas == [SIGMA] * 7
        for got, want in zip(read.records, drawn[split].records, strict=True):
            assert (got.width, got.height) == (want.width, want.height)
            np.testing.assert_allclose(got.boxes, want.boxes, atol=1e-4)
            np.testing.assert_allclose(got.keypoints, want.keypoints, atol=1e-4)
    data = json.loads((root / "annotations" / "instances_val.json").read_text())
    assert data["edgevision"] == {"flip_idx": [0, 2, 1, 4, 3, 6, 5], "kpt_oks_sigmas": [SIGMA] * 7}
    for annotation in data["annotations"]:
        assert annotation["num_keypoints"] == sum(v > 0 for v in annotation["keypoints"][2::3])
    assert [image["id"] for image in data["images"]] == [9, 10, 11]  # unique across splits


def test_same_seed_gives_byte_identical_files_and_another_seed_does_not(tmp_path):
    first = _tree_bytes(synthesize_pose(tmp_path / "a", n_train=4, n_val=2, seed=5))
    second = _tree_bytes(synthesize_pose(tmp_path / "b", n_train=4, n_val=2, seed=5))
    other = _tree_bytes(synthesize_pose(tmp_path / "c", n_train=4, n_val=2, seed=6))
    assert first == second and first.keys() == other.keys()
    assert first["images/train/pose_000000.jpg"] != other["images/train/pose_000000.jpg"]


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 6, 17, MAX_KEYPOINTS])
def test_every_layout_is_mirror_symmetric_with_distinct_points(count):
    layout = figure_layout(count)
    names = list(layout.names)
    assert len(names) == count == len(set(names)) and names[0] == "head"
    flip_idx = flip_index(names)
    assert flip_idx_problem(flip_idx, count) is None
    # The mirror image of a figure is the figure with left and right swapped: angles negate.
    np.testing.assert_allclose(np.sin(layout.angles[flip_idx]), -np.sin(layout.angles), atol=1e-12)
    np.testing.assert_allclose(np.cos(layout.angles[flip_idx]), np.cos(layout.angles))
    np.testing.assert_allclose(layout.lengths[flip_idx], layout.lengths)
    assert [layout.caps[i] for i in flip_idx] == list(layout.caps)
    assert all(0 <= a < count and 0 <= b < count for a, b in layout.skeleton)


def test_figures_have_the_promised_variety(tmp_path):
    records = synthesize_pose_records(tmp_path, n_train=60, n_val=0, seed=0)["train"].records
    with_objects = [r for r in records if r.num_objects]
    assert len(with_objects) >= 58 and max(r.num_objects for r in records) >= 4
    keypoints = np.concatenate([r.keypoints for r in with_objects])
    boxes = np.concatenate([r.boxes for r in with_objects])
    visibility = keypoints[..., 2]
    shares = [(visibility == v).mean() for v in (0, 1, 2)]
    assert 0.01 < shares[0] < 0.15 and 0.04 < shares[1] < 0.2 and shares[2] > 0.7
    assert (keypoints[visibility == 0][:, :2] == 0).all()  # cut off: 0, 0, 0 as COCO writes
    areas = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    assert 0.25 < (areas < 32**2).mean() < 0.7  # many COCO-small figures, not only
    for record in with_objects:
        labelled = record.keypoints[..., 2] > 0
        x, y = record.keypoints[..., 0], record.keypoints[..., 1]
        assert ((x >= 0) & (x < record.width) & (y >= 0) & (y < record.height))[labelled].all()
        low, high = record.boxes[:, None, :2] - 1e-3, record.boxes[:, None, 2:] + 1e-3
        inside = ((record.keypoints[..., :2] >= low) & (record.keypoints[..., :2] <= high)).all(-1)
        assert inside[labelled].all()


def test_demo_figures_are_nearly_upright_and_not_tiny(tmp_path):
    """The demo's FigureSampling: figures within 20 degrees of upright, limbs from 20 px; the
    default set turns figures any way. The head's direction from the mean of the other points
    carries the articulation jitter too, hence the loose bounds."""

    def head_angles_and_sizes(**options):
        records = synthesize_pose_records(tmp_path / str(len(options)), 30, 0, seed=2, **options)
        angles, sizes = [], []
        for record in records["train"].records:
            if not record.num_objects:
                continue
            points, boxes = record.keypoints, record.boxes
            whole = (points[..., 2] > 0).all(axis=1)  # every point labelled: none cut off
            head = points[whole, 0, :2] - points[whole, 1:, :2].mean(axis=1)
            angles.append(np.degrees(np.arctan2(head[:, 0], -head[:, 1])))  # 0 = straight up
            sizes.append((boxes[whole, 2:] - boxes[whole, :2]).max(axis=1))
        return np.concatenate(angles), np.concatenate(sizes)

    angles, sizes = head_angles_and_sizes(force=True, pose=DEMO_FIGURES)
    assert np.median(np.abs(angles)) < 25 and np.quantile(np.abs(angles), 0.9) < 50
    assert sizes.min() >= 20  # the longest side of a figure whose limbs are >= 20 px
    angles, sizes = head_angles_and_sizes()
    assert np.median(np.abs(angles)) > 60 and np.abs(angles).max() > 150 and sizes.min() < 25


def test_the_doctor_finds_nothing_wrong(tmp_path):
    root = synthesize_pose(tmp_path, n_train=20, n_val=5, num_keypoints=4, seed=1)
    report = check_dataset(root)
    assert {issue.kind for issue in report.issues} <= {kinds.NO_OBJECTS}


def test_registered_as_a_synth_task_with_checked_options(tmp_path):
    assert "pose" in TASKS
    root = synthesize(tmp_path / "a", task="pose", num_keypoints=3, n_train=2, n_val=1)
    record_set, _ = load_dataset(root, "train")
    assert record_set.kpt_names == ["head", "left_arm", "right_arm"]
    root = synthesize(tmp_path / "d", task="pose", num_keypoints=None, n_train=1, n_val=1)
    assert len(load_dataset(root, "train")[0].kpt_names) == 5  # None: the default K
    with pytest.raises(ConfigError, match="--num-keypoints applies to --task pose"):
        synthesize(tmp_path / "e", task="detect", num_keypoints=3)
    for bad in ({"num_keypoints": 0}, {"num_keypoints": MAX_KEYPOINTS + 1}, {"n_train": -1}):
        with pytest.raises(ConfigError):
            synthesize_pose(tmp_path / "b", **bad)
    with pytest.raises(DataError, match="already holds"):
        synthesize_pose(tmp_path / "a", n_train=2, n_val=1)
    (tmp_path / "a" / "annotations" / "mine.json").write_text("{}")
    synthesize_pose(tmp_path / "a", n_train=1, n_val=1, force=True)
    assert (tmp_path / "a" / "annotations" / "mine.json").is_file()  # only synth files replaced
    assert not (tmp_path / "a" / "images" / "train" / "pose_000001.jpg").exists()
