"""OKS sigmas: the resolution order with its stated source, validation, and the COCO recipe
recovering known annotation noise from repeated annotations."""

from __future__ import annotations

import numpy as np
import pytest

from edgevision.core.errors import ConfigError, DataError
from edgevision.core.records import ImageRecord, RecordSet
from edgevision.data.formats import load_dataset
from edgevision.data.sigmas import (
    COCO_PERSON_NAMES,
    COCO_PERSON_SIGMAS,
    DEFAULT_SIGMA,
    estimate_sigmas,
    resolve_sigmas,
    sigma_report,
)
from tests.data.pose_cases import SIGMAS, yolo_pose


def _pose_set(tmp_path, num_keypoints: int, names=None, sigmas=None, fmt="coco") -> RecordSet:
    points = np.tile([[10.0, 10.0, 2.0]], (1, num_keypoints, 1))
    record = ImageRecord(tmp_path / "a.jpg", 64, 48, [[0, 0, 20, 20]], [0], keypoints=points)
    return RecordSet([record], ["person"], tmp_path, fmt, kpt_names=names, kpt_sigmas=sigmas)


def test_coco_person_sigmas_are_the_cocoeval_values():
    assert len(COCO_PERSON_SIGMAS) == len(COCO_PERSON_NAMES) == 17
    np.testing.assert_allclose(
        COCO_PERSON_SIGMAS[[0, 1, 5, 9, 11, 16]], [0.026, 0.025, 0.079, 0.062, 0.107, 0.089]
    )


def test_resolution_order_and_its_source(tmp_path):
    person = _pose_set(tmp_path, 17, list(COCO_PERSON_NAMES), sigmas=[0.03] * 17)
    user = [0.1] * 17
    sigmas, source = resolve_sigmas(person, user)
    assert source == "the sigmas you gave" and sigmas.tolist() == user
    sigmas, source = resolve_sigmas(person)
    assert source == 'COCO JSON "edgevision" kpt_oks_sigmas' and sigmas.tolist() == [0.03] * 17
    person.kpt_sigmas = None
    sigmas, source = resolve_sigmas(person)
    assert source == "COCO person"
    np.testing.assert_array_equal(sigmas, COCO_PERSON_SIGMAS)
    for names in (None, [f"keypoint_{i}" for i in range(17)]):  # no names, or placeholders
        assert resolve_sigmas(_pose_set(tmp_path, 17, names))[1] == "COCO person"
    other = [f"point{i}" for i in range(17)]
    sigmas, source = resolve_sigmas(_pose_set(tmp_path, 17, other))
    assert sigmas.tolist() == [DEFAULT_SIGMA] * 17 and source.startswith(
        "default 0.05 for every point"
    )
    assert "set kpt_oks_sigmas" in source
    sigmas, source = resolve_sigmas(_pose_set(tmp_path, 5))  # never 1/K
    assert sigmas.tolist() == [0.05] * 5


def test_the_data_yaml_sigmas_are_used_and_named(tmp_path):
    yaml_path = yolo_pose(
        tmp_path, {"a": "0 0.5 0.5 0.5 0.5 0.1 0.1 2 0.2 0.2 2 0.3 0.3 2 0 0 0\n"}
    )
    record_set, _ = load_dataset(yaml_path, "train")
    sigmas, source = resolve_sigmas(record_set)
    assert source == "data YAML kpt_oks_sigmas" and sigmas.tolist() == SIGMAS


def test_bad_sigmas_are_refused_with_the_fix(tmp_path):
    record_set = _pose_set(tmp_path, 3, ["a", "b", "c"])
    with pytest.raises(
        ConfigError,
        match=r"--sigmas: 2 sigmas for 3 keypoints; give 3 positive numbers, one per keypoint "
        r"\(order: a, b, c\)",
    ):
        resolve_sigmas(record_set, [0.1, 0.1])
    with pytest.raises(ConfigError, match="positive finite"):
        resolve_sigmas(record_set, [0.1, 0.0, 0.1])
    record_set.kpt_sigmas = [0.1, -0.1, 0.1]
    with pytest.raises(DataError, match="positive finite"):
        resolve_sigmas(record_set)
    empty = RecordSet(
        [ImageRecord(tmp_path / "a.jpg", 9, 9, [[0, 0, 5, 5]], [0])], ["a"], tmp_path, "voc"
    )
    with pytest.raises(DataError, match="no keypoints"):
        resolve_sigmas(empty)


def _twice_annotated(tmp_path, sigmas: np.ndarray, num_objects: int, seed: int = 0) -> RecordSet:
    """Each object annotated twice; every annotation misses the true point by a 2-D Gaussian with
    E[d^2] = sigma^2 s^2 (s^2 the box area), which COCO's sigma_i^2 = E[d_i^2 / s^2] measures."""
    rng = np.random.default_rng(seed)
    records = []
    for index in range(num_objects):
        side = rng.uniform(20, 200)
        x0, y0 = rng.uniform(0, 300, 2)
        box = [x0, y0, x0 + side, y0 + side * rng.uniform(0.5, 1.5)]
        area = (box[2] - box[0]) * (box[3] - box[1])
        truth = rng.uniform([box[0], box[1]], [box[2], box[3]], (len(sigmas), 2))
        copies = []
        for _ in range(2):
            noise = rng.normal(0, 1, truth.shape) * (sigmas * np.sqrt(area / 2))[:, None]
            copies.append(np.concatenate([truth + noise, np.full((len(sigmas), 1), 2.0)], 1))
        copies[1][index % len(sigmas), 2] = 0  # one point unlabelled in one copy: not paired
        # A third object of another class at the same place, and one elsewhere: not repeats.
        boxes = [box, box, box, [0, 0, 5, 5]]
        keypoints = [*copies, copies[0] + 50, copies[0]]
        image = tmp_path / f"{index}.jpg"
        records.append(ImageRecord(image, 600, 600, boxes, [0, 0, 1, 0], keypoints=keypoints))
    return RecordSet(records, ["a", "b"], tmp_path, "coco", kpt_names=["p", "q", "r"])


def test_estimate_recovers_known_noise_within_ten_percent(tmp_path):
    truth = np.array([0.02, 0.05, 0.1])
    estimated, message = estimate_sigmas(_twice_annotated(tmp_path, truth, 600))
    np.testing.assert_allclose(estimated, truth, rtol=0.1)
    assert message.startswith(
        "estimated from 600 objects annotated twice (pairs per point: 400..400)"
    )


def test_estimate_merges_records_of_one_image(tmp_path):
    """Two annotator files of one image become two records of one image path."""
    truth = np.array([0.04, 0.04, 0.04])
    twice = _twice_annotated(tmp_path, truth, 300, seed=1)
    split = []
    for record in twice.records:  # copy 1 and copy 2 in separate records of the same image
        split += [record.select([0, 2, 3]), record.select([1])]
    estimated, _ = estimate_sigmas(twice.with_records(split))
    np.testing.assert_allclose(estimated, truth, rtol=0.1)


def test_estimate_says_plainly_when_nothing_is_annotated_twice(tmp_path):
    sigmas, message = estimate_sigmas(_pose_set(tmp_path, 3))
    assert sigmas is None
    assert message.startswith("cannot estimate: no object is annotated twice")
    assert "IoU >= 0.8" in message


def test_points_never_paired_keep_the_default_and_are_named(tmp_path):
    twice = _twice_annotated(tmp_path, np.array([0.05, 0.05, 0.05]), 10)
    for record in twice.records:
        record.keypoints[:, 2, 2] = 0  # point "r" never labelled
    estimated, message = estimate_sigmas(twice)
    assert estimated[2] == DEFAULT_SIGMA
    assert f"never labelled in a pair, left at {DEFAULT_SIGMA}: r" in message
    assert "rough (fewer than 20 pairs): p, q" in message


def test_sigma_report(tmp_path):
    text = sigma_report(_twice_annotated(tmp_path, np.array([0.02, 0.05, 0.1]), 100))
    lines = text.splitlines()
    assert lines[0].startswith("sigmas used: default 0.05 for every point")
    assert lines[2].startswith("p         0.0500  0.0")
    assert lines[-1].startswith(
        'to use the measured ones, add to the COCO JSON: "edgevision": {"kpt_oks_sigmas": [0.0'
    )
