"""Metric printout names every AP; the results JSON round-trips through COCO's loadRes."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
from pycocotools.coco import COCO

from edgevision.eval.coco import coco_evaluate, records_to_coco_gt
from edgevision.eval.report import format_metrics, write_coco_results_json
from edgevision.eval.voc import voc_evaluate
from tests.eval.cases import CLASS_NAMES, random_case


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    return random_case(seed=5, root=tmp_path_factory.mktemp("report") / "dataset")


def test_format_metrics_names_each_ap(case):
    record_set, detections = case
    coco = coco_evaluate(record_set, detections)
    voc = voc_evaluate(record_set, detections)
    voc07 = voc_evaluate(record_set, detections, use_07_metric=True)
    text = format_metrics(coco, [voc, voc07], CLASS_NAMES)
    lines = text.splitlines()
    top = next(line for line in lines if line.startswith("mAP50-95 "))
    assert "(COCO, IoU .50:.05:.95, area all, maxDets 100" in top
    assert top.endswith(f"{coco['mAP50-95']:.3f}")
    area_line = next(line for line in lines if "VOC2010+ area" in line)
    assert area_line.startswith("mAP50 (VOC2010+ area, IoU 0.50, difficult ignored)")
    assert area_line.endswith(f"{voc['mAP']:.3f}")
    assert any(
        line.endswith(f"{voc07['mAP']:.3f}") and "VOC2007 11-point" in line for line in lines
    )
    assert sum(line.startswith("AR") for line in lines) == 6
    header = next(line for line in lines if line.startswith("class "))
    assert header.split() == [
        "class",
        "gts",
        "AP50-95",
        "AP50",
        "COCO",
        "AP50",
        "VOC",
        "AP50",
        "VOC07",
    ]
    truck = next(line for line in lines if line.startswith("truck "))
    assert truck.split() == [
        "truck",
        str(voc["num_gt"][1]),
        f"{coco['per_class_ap50_95'][1]:.3f}",
        f"{coco['per_class_ap50'][1]:.3f}",
        f"{voc['ap'][1]:.3f}",
        f"{voc07['ap'][1]:.3f}",
    ]


def test_format_metrics_with_only_voc_and_undefined_values(case):
    record_set, detections = case
    voc = voc_evaluate(record_set, detections)
    voc["ap"][2] = float("nan")
    text = format_metrics(None, voc, CLASS_NAMES)
    assert "COCO" not in text
    assert text.splitlines()[-1].split()[-1] == "-"


def test_write_coco_results_json(case, tmp_path):
    record_set, detections = case
    path = write_coco_results_json(tmp_path / "out" / "predictions.json", record_set, detections)
    results = json.loads(path.read_text())
    assert len(results) == sum(len(d["scores"]) for d in detections)
    first_image = next(i for i, d in enumerate(detections) if len(d["scores"]))
    assert results[0]["file_name"] == f"JPEGImages/{first_image:04d}.jpg"
    assert results[0]["score"] == float(detections[first_image]["scores"][0])
    np.testing.assert_allclose(
        results[0]["bbox"][2], np.diff(detections[first_image]["boxes"][0, ::2])
    )
    assert sorted(p.name for p in path.parent.iterdir()) == ["predictions.json"]
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = records_to_coco_gt(record_set)
        coco_gt.createIndex()
        assert len(coco_gt.loadRes(str(path)).anns) == len(results)
