"""COCO metrics: GT/results conversion and parity with pycocotools' COCOeval run directly."""

from __future__ import annotations

import contextlib
import copy
import io
import sys
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from edgevision.core.errors import ConfigError, EdgevisionError
from edgevision.eval.coco import (
    STAT_NAMES,
    coco_evaluate,
    coco_image_ids,
    coco_results_with_file_names,
    detections_to_coco,
    records_to_coco_gt,
)
from tests.eval.cases import make_record_set, random_case, record


def _reference_cocoeval(gt: dict, results: list[dict]) -> COCOeval:
    """pycocotools exactly as its README runs it: loadRes, evaluate, accumulate, summarize."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(copy.deepcopy(results))
        evaluator = COCOeval(coco_gt, coco_dt, "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


def _reference_per_class(evaluator: COCOeval) -> tuple[list[float], list[float]]:
    precision = evaluator.eval["precision"]  # (T, R, K, A, M)
    ap, ap50 = [], []
    for k in range(precision.shape[2]):
        both = precision[:, :, k, 0, 2]
        ap.append(both[both > -1].mean())
        ap50.append(both[0][both[0] > -1].mean())
    return ap, ap50


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    return random_case(seed=7, root=tmp_path_factory.mktemp("coco") / "dataset")


@pytest.mark.parametrize("backend", ["faster_coco_eval", "pycocotools"])
def test_matches_pycocotools_directly(case, backend):
    record_set, detections = case
    ours = coco_evaluate(record_set, detections, backend=backend)
    gt = records_to_coco_gt(record_set)
    reference = _reference_cocoeval(gt, detections_to_coco(record_set, detections))
    np.testing.assert_allclose([ours[n] for n in STAT_NAMES], reference.stats, rtol=0, atol=1e-6)
    ref_ap, ref_ap50 = _reference_per_class(reference)
    np.testing.assert_allclose(ours["per_class_ap50_95"], ref_ap, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours["per_class_ap50"], ref_ap50, rtol=0, atol=1e-6)
    assert ours["backend"] == backend
    assert "Average Precision" in ours["summary_text"]


def test_random_case_exercises_every_stat(case):
    """The parity test above is only meaningful if the case is neither trivial nor degenerate."""
    record_set, detections = case
    result = coco_evaluate(record_set, detections)
    assert 0.2 < result["mAP50-95"] < result["mAP50"] < 0.98
    for name in STAT_NAMES:
        assert 0.0 < result[name] < 1.0, name
    gt = records_to_coco_gt(record_set)
    assert any(a["iscrowd"] for a in gt["annotations"])
    assert sum(a["difficult"] for a in gt["annotations"]) >= 3


def test_auto_prefers_faster_coco_eval(case):
    record_set, detections = case
    assert coco_evaluate(record_set, detections, backend="auto")["backend"] == "faster_coco_eval"


@pytest.mark.parametrize("backend", ["faster_coco_eval", "pycocotools"])
def test_perfect_detections_score_one(case, backend):
    record_set, _ = case
    perfect = [
        {"boxes": r.boxes, "scores": np.ones(len(r.boxes)), "classes": r.labels}
        for r in record_set.records
    ]
    result = coco_evaluate(record_set, perfect, backend=backend)
    for name in STAT_NAMES:
        if name != "AR1":  # one detection per image and class cannot recall two objects
            assert result[name] == pytest.approx(1.0), name
    assert result["AR1"] < 1.0
    assert result["per_class_ap50_95"] == pytest.approx([1.0, 1.0, 1.0])


@pytest.mark.parametrize("backend", ["faster_coco_eval", "pycocotools"])
def test_no_detections_at_all(tmp_path, backend):
    records = [record(tmp_path, "a.jpg", [[10, 10, 20, 20], [0, 0, 99, 99]], [0, 1])]
    record_set = make_record_set(records, tmp_path)
    empty = [{"boxes": np.zeros((0, 4)), "scores": [], "classes": []}]
    result = coco_evaluate(record_set, empty, backend=backend)
    assert result["mAP50-95"] == 0.0 and result["AR100"] == 0.0
    assert result["mAP_small"] == 0.0 and result["mAP_large"] == 0.0
    assert result["mAP_medium"] == -1.0  # no medium object: undefined, as COCOeval reports it
    assert result["per_class_ap50"][:2] == [0.0, 0.0]
    assert np.isnan(result["per_class_ap50"][2])  # "tug" has no ground truth
    assert result["num_gt"] == [1, 1, 0]


def test_gt_dict_contents(tmp_path):
    records = [
        record(tmp_path, "a.jpg", [[10, 20, 40, 30], [5, 5, 1, 1]], [2, 0], difficult=[0, 1]),
        record(tmp_path, "sub/b.jpg", [[0, 0, 50, 50]], [1], iscrowd=[1], size=(64, 48)),
    ]
    records[0].image_id, records[1].image_id = "a", "b"
    record_set = make_record_set(records, tmp_path)
    gt = records_to_coco_gt(record_set)
    assert [(i["id"], i["file_name"], i["width"], i["height"]) for i in gt["images"]] == [
        (1, "JPEGImages/a.jpg", 100, 100),
        (2, "JPEGImages/sub/b.jpg", 64, 48),
    ]
    first, swapped, crowd = gt["annotations"]
    assert first == {
        "id": 1, "image_id": 1, "category_id": 3, "bbox": [10.0, 20.0, 30.0, 10.0],
        "area": 300.0, "iscrowd": 0, "difficult": 0,
    }  # fmt: skip
    assert swapped["bbox"] == [1.0, 1.0, 4.0, 4.0] and swapped["iscrowd"] == 1  # difficult
    assert crowd["id"] == 3 and crowd["iscrowd"] == 1 and crowd["image_id"] == 2
    assert gt["categories"] == [
        {"id": 1, "name": "car"}, {"id": 2, "name": "truck"}, {"id": 3, "name": "tug"},
    ]  # fmt: skip
    keep = records_to_coco_gt(record_set, difficult="keep")["annotations"]
    assert [a["iscrowd"] for a in keep] == [0, 0, 1]
    drop = records_to_coco_gt(record_set, difficult="drop")["annotations"]
    assert [a["id"] for a in drop] == [1, 2] and [a["difficult"] for a in drop] == [0, 0]


def test_difficult_modes_change_the_score(tmp_path):
    """One found object and one missed difficult object: only "keep" charges the miss."""
    boxes = [[10, 10, 50, 50], [60, 60, 95, 95]]
    records = [record(tmp_path, "a.jpg", boxes, [0, 0], difficult=[0, 1])]
    record_set = make_record_set(records, tmp_path, names=["car"])
    found = [{"boxes": [[10, 10, 50, 50]], "scores": [0.9], "classes": [0]}]
    assert coco_evaluate(record_set, found, difficult="ignore")["AR100"] == pytest.approx(1.0)
    assert coco_evaluate(record_set, found, difficult="drop")["AR100"] == pytest.approx(1.0)
    assert coco_evaluate(record_set, found, difficult="keep")["AR100"] == pytest.approx(0.5)
    on_difficult = [{"boxes": boxes, "scores": [0.9, 0.95], "classes": [0, 0]}]
    assert coco_evaluate(record_set, on_difficult, difficult="ignore")["mAP50"] == pytest.approx(
        1.0
    )
    assert coco_evaluate(record_set, on_difficult, difficult="drop")["mAP50"] == pytest.approx(0.5)


def test_image_ids_kept_when_unique_ints(tmp_path):
    records = [record(tmp_path, f"{i}.jpg", [], []) for i in range(3)]
    for r, image_id in zip(records, [5, 9, 2], strict=True):
        r.image_id = image_id
    record_set = make_record_set(records, tmp_path)
    assert coco_image_ids(record_set) == [5, 9, 2]
    records[2].image_id = 5
    assert coco_image_ids(record_set) == [1, 2, 3]


def test_detections_to_coco(tmp_path):
    records = [record(tmp_path, "a.jpg", [], []), record(tmp_path, "b.jpg", [], [])]
    records[1].image_id = "b"
    record_set = make_record_set(records, tmp_path)
    detections = [
        {"boxes": np.zeros((0, 4)), "scores": [], "classes": []},
        {"boxes": [[1.25, 2.5, 11.125, 7.0]], "scores": [0.123456789], "classes": [2]},
    ]
    assert detections_to_coco(record_set, detections) == [
        {"image_id": 2, "category_id": 3, "bbox": [1.25, 2.5, 9.875, 4.5], "score": 0.123456789}
    ]
    with_names = coco_results_with_file_names(record_set, detections)
    assert with_names[0]["file_name"] == "JPEGImages/b.jpg"


def test_results_with_file_names_still_evaluate(case):
    record_set, detections = case
    gt = records_to_coco_gt(record_set)
    plain = _reference_cocoeval(gt, detections_to_coco(record_set, detections)).stats
    named = _reference_cocoeval(gt, coco_results_with_file_names(record_set, detections)).stats
    np.testing.assert_array_equal(plain, named)


def test_bad_arguments(case, tmp_path):
    record_set, detections = case
    with pytest.raises(ConfigError, match="backend"):
        coco_evaluate(record_set, detections, backend="detectron")
    with pytest.raises(ConfigError, match="iou_type"):
        coco_evaluate(record_set, detections, iou_type="segm")
    with pytest.raises(ConfigError, match="difficult"):
        records_to_coco_gt(record_set, difficult="maybe")
    with pytest.raises(ConfigError, match="one entry"):
        coco_evaluate(record_set, detections[:-1])
    bad = [dict(d) for d in detections]
    bad[0] = {"boxes": [[0, 0, 1, 1]], "scores": [0.5], "classes": [3]}
    with pytest.raises(ConfigError, match=r"detections\[0\].*outside \[0, 3\)"):
        coco_evaluate(record_set, bad)


def test_missing_evaluator_says_how_to_install(case, monkeypatch):
    record_set, detections = case
    monkeypatch.setitem(sys.modules, "faster_coco_eval", None)  # makes `import` raise
    monkeypatch.setitem(sys.modules, "pycocotools", None)
    with pytest.raises(EdgevisionError, match=r"pip install 'edgevision\[eval\]'"):
        coco_evaluate(record_set, detections)


def test_file_name_outside_root_is_absolute(tmp_path):
    outside = record(Path("/elsewhere"), "x.jpg", [], [])
    gt = records_to_coco_gt(make_record_set([outside], tmp_path))
    assert gt["images"][0]["file_name"] == "/elsewhere/JPEGImages/x.jpg"
